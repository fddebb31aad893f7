"""``shipyard audit …``: the journal's hash chain, signed checkpoints, per-model audit logs, signing of
versions and evidence bundles. ``verify-bundle`` and ``verify-checkpoints --journal`` work offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.output import State, cell, emit_json, key_values, state, table, when
from shipyard.core.errors import IntegrityError

app = typer.Typer(no_args_is_help=True)
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registered model name.")]


def _fail(st: State, message: str) -> None:
    st.err.print(message, markup=False, highlight=False)
    raise typer.Exit(1)


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check that no journal entry was altered, inserted or removed (exit 1 and the first bad one if so)."""
    st = state(ctx)
    result = st.client.verify_journal()
    if st.json:
        emit_json(result)
    elif result["ok"]:
        key_values(st, [("journal", "intact"), ("entries", result["checked"]), ("last hash", result["last_hash"])])
    else:
        st.err.print(
            f"journal broken at seq {result['first_bad_seq']}: {result['problem']} ({result['detail']}); "
            f"{result['checked']} entries before it verified",
            markup=False,
            highlight=False,
        )
    if not result["ok"]:
        raise typer.Exit(1)


# -- audit log -------------------------------------------------------------------------------------


@app.command("log")
def log(
    ctx: typer.Context,
    model: ModelOpt,
    version: Annotated[int | None, typer.Option("--version", "-v", help="Only this version.")] = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="JSON Lines, one entry per line (an export).")] = False,
) -> None:
    """Who registered, signed, evaluated, approved, deployed and rolled back each version, when, with what evidence."""
    st = state(ctx)
    entries = st.client.audit_log(model, version)
    if jsonl:
        for entry in entries:
            emit_json(entry, lines=True)
        return
    if st.json:
        emit_json(entries)
        return
    grid = table("seq", "time", "actor", "version", "action", "summary")
    for e in entries:
        grid.add_row(
            str(e.seq),
            when(e.ts),
            cell(e.actor),
            "" if e.version is None else str(e.version),
            e.action,
            cell(e.summary),
        )
    st.out.print(grid)


# -- checkpoints -----------------------------------------------------------------------------------


@app.command("checkpoint")
def checkpoint(ctx: typer.Context) -> None:
    """Sign the journal's current head with the server key (admin)."""
    st = state(ctx)
    cp = st.client.create_checkpoint()
    if st.json:
        emit_json(cp)
        return
    key_values(
        st, [("checkpoint seq", cp.seq), ("head hash", cp.hash), ("key", cp.key_id), ("at", when(cp.created_at))]
    )


@app.command("export-checkpoints")
def export_checkpoints(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the JSON here (default: stdout).")] = None,
    after: Annotated[int, typer.Option("--after", help="Only checkpoints after this seq.")] = 0,
) -> None:
    """The signed checkpoints as JSON, for an outside party to keep."""
    st = state(ctx)
    cps = [cp.model_dump() for cp in st.client.export_checkpoints(after)]
    if out is None:
        emit_json(cps)
        return
    out.write_text(json.dumps(cps, indent=2) + "\n", encoding="utf-8")
    if st.json:
        emit_json({"file": str(out), "checkpoints": len(cps)})
    else:
        st.out.print(f"wrote {len(cps)} checkpoints to {out}", markup=False, highlight=False)


@app.command("export-journal")
def export_journal(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="The JSON Lines file to write.")],
) -> None:
    """Write the whole journal as JSON Lines (what `verify-checkpoints --journal` reads offline)."""
    st = state(ctx)
    count = st.client.export_journal(out)
    if st.json:
        emit_json({"file": str(out), "entries": count})
    else:
        st.out.print(f"wrote {count} journal entries to {out}", markup=False, highlight=False)


@app.command("verify-checkpoints")
def verify_checkpoints(
    ctx: typer.Context,
    checkpoints: Annotated[
        Path | None, typer.Option("--checkpoints", "-c", help="Exported checkpoints (default: the store's own).")
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option("--journal", "-j", help="A journal export (JSON Lines): verify offline, without a store."),
    ] = None,
) -> None:
    """Prove the journal was only appended to since the checkpoints (exit 1 naming the first that fails)."""
    from shipyard.governance import checkpoints as checkpoint_log

    st = state(ctx)
    kept = checkpoint_log.load_checkpoints_file(str(checkpoints)) if checkpoints else None
    if journal is not None:
        if kept is None:
            _fail(st, "--journal needs --checkpoints: the checkpoints you kept")
        result = checkpoint_log.verify(kept, checkpoint_log.journal_file_rows(str(journal)))
    else:
        result = st.client.verify_checkpoints(kept)
    _report_checkpoints(st, result)


def _report_checkpoints(st: State, result: dict[str, Any]) -> None:
    if st.json:
        emit_json(result)
    elif result["ok"]:
        key_values(
            st,
            [
                ("checkpoints", f"{result['checked']} verified"),
                ("journal", f"{result['entries']} entries, only appended to (last seq {result['last_seq']})"),
            ],
        )
    if not result["ok"]:
        _fail(st, f"checkpoints FAILED: {result['problem']}")


# -- keys and signatures ---------------------------------------------------------------------------


@app.command("keys")
def keys(ctx: typer.Context) -> None:
    """List the registered signing keys (the server's and identities')."""
    st = state(ctx)
    found = st.client.list_signing_keys()
    if st.json:
        emit_json(found)
        return
    grid = table("key id", "owner", "public key", "created", "revoked")
    for k in found:
        grid.add_row(k.key_id, cell(k.owner), k.public_key, when(k.created_at), when(k.revoked_at))
    st.out.print(grid)


@app.command("keygen")
def keygen(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the new private key (PEM, mode 0600).")],
    register: Annotated[bool, typer.Option("--register/--no-register", help="Register its public key.")] = True,
) -> None:
    """Create your own ed25519 signing key (and register its public key under your identity)."""
    from shipyard.client import Client

    st = state(ctx)
    public = Client.generate_signing_key(out)
    registered = st.client.register_signing_key(public) if register else None
    if st.json:
        emit_json({"file": str(out), "public_key": public, "key": registered})
        return
    rows = [("private key", str(out)), ("public key", public)]
    if registered is not None:
        rows += [("key id", registered.key_id), ("owner", registered.owner)]
    key_values(st, rows)


@app.command("sign")
def sign(
    ctx: typer.Context,
    model: ModelOpt,
    version: Annotated[int, typer.Option("--version", "-v", help="The version to sign.")],
    key: Annotated[Path, typer.Option("--key", "-k", help="Your ed25519 private key (PEM).")],
) -> None:
    """Sign a version's digest with your own key (locally) and attach the signature."""
    st = state(ctx)
    result = st.client.sign_version(model, version, key)
    _report_signature(st, model, version, result)


@app.command("verify-version")
def verify_version(
    ctx: typer.Context,
    model: ModelOpt,
    version: Annotated[int, typer.Option("--version", "-v", help="The version to check.")],
) -> None:
    """Re-hash a version's stored objects and check its signatures (exit 1 if either fails)."""
    st = state(ctx)
    result = st.client.verify_artifact(model, version)
    if st.json:
        emit_json(result)
    else:
        key_values(
            st,
            [
                ("version", f"{model}/{version}"),
                ("digest", result["digest"]),
                ("objects", f"{result['objects']} ({'intact' if result['objects_ok'] else 'TAMPERED'})"),
                ("signatures", _signature_line(result["signature"])),
            ],
        )
    if not result["valid"] and (result["signature"]["signatures"] or not result["objects_ok"]):
        raise IntegrityError(f"model {model}/{version}: {result['reason']}")


def _signature_line(verdict: dict[str, Any]) -> str:
    if not verdict["signatures"]:
        return "none (unsigned)"
    return ", ".join(
        f"{s['key_id']} ({s['owner']}): {'valid' if s['valid'] else 'INVALID'}" for s in verdict["signatures"]
    )


def _report_signature(st: State, model: str, version: int, result: dict[str, Any]) -> None:
    if st.json:
        emit_json(result)
        return
    key_values(
        st, [("version", f"{model}/{version}"), ("digest", result["digest"]), ("signatures", _signature_line(result))]
    )


# -- evidence bundles ------------------------------------------------------------------------------


@app.command("bundle")
def bundle(
    ctx: typer.Context,
    model: ModelOpt,
    version: Annotated[int, typer.Option("--version", "-v", help="The version.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The zip to write (default: NAME-vN-evidence.zip).")
    ] = None,
) -> None:
    """Build a version's evidence bundle (card, approvals, policy decisions, metrics, lineage, signatures,
    journal entries, a signed checkpoint) and download it."""
    st = state(ctx)
    target = out or Path(f"{model}-v{version}-evidence.zip")
    built = st.client.download_bundle(model, version, target)
    if st.json:
        emit_json({"file": str(target), **built.model_dump()})
        return
    key_values(
        st,
        [
            ("bundle", str(target)),
            ("digest", built.digest),
            ("files", len(built.files)),
            ("checkpoint", built.checkpoint_seq),
        ],
    )
    st.out.print(f"verify offline: shipyard audit verify-bundle {target}", markup=False, highlight=False)


@app.command("verify-bundle")
def verify_bundle(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The evidence bundle (.zip).")],
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", help="Trusted server key id or public key (repeatable).")
    ] = None,
) -> None:
    """Verify an evidence bundle offline (no store): exit 0 with a summary, or 1 naming the first failure."""
    from shipyard.governance.verify_bundle import summary_lines
    from shipyard.governance.verify_bundle import verify_bundle as check

    st = state(ctx)
    result = check(path, key)
    if st.json:
        emit_json(result)
    elif result["ok"]:
        for line in summary_lines(result):
            st.out.print(line, markup=False, highlight=False, soft_wrap=True)
    if not result["ok"]:
        _fail(st, f"bundle INVALID: {result['problem']}")
