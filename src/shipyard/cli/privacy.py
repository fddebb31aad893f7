"""``shipyard privacy …`` (erase a data subject, list erasures) and ``shipyard retention …`` (policies)."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.output import State, emit_json, key_values, number, state, table, when
from shipyard.core.errors import InvalidInput
from shipyard.governance.privacy_entities import Erasure, RetentionRun

privacy_app = typer.Typer(no_args_is_help=True)
retention_app = typer.Typer(no_args_is_help=True)


def _subject(pairs: list[str]) -> dict[str, str]:
    subject: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            # never echo the pair: its value is the personal data being erased
            raise InvalidInput("--subject takes KEY=VALUE (e.g. --subject user_id=42)", field="subject")
        subject[key.strip()] = value
    if not subject:
        raise InvalidInput("give at least one --subject KEY=VALUE", field="subject")
    return subject


@privacy_app.command("erase")
def erase(
    ctx: typer.Context,
    subject: Annotated[
        list[str],
        typer.Option("--subject", "-s", help="KEY=VALUE naming the subject's rows; repeat: every pair must match."),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be erased; change nothing.")] = False,
) -> None:
    """Erase a data subject's rows everywhere and flag the models trained on them (the value is never recorded)."""
    st = state(ctx)
    result = st.client.erase_subject(_subject(subject), dry_run=dry_run)
    if st.json:
        emit_json(result)
        return
    _show_erasure(st, result)


@privacy_app.command("list")
def list_(ctx: typer.Context, limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 100) -> None:
    """Erasures, newest first: keys and counts (never the values)."""
    st = state(ctx)
    erasures = st.client.list_erasures(limit=limit)
    if st.json:
        emit_json(erasures)
        return
    grid = table("erasure", "when", "by", "keys", "predictions", "datasets", "flagged models", "status")
    for e in erasures:
        grid.add_row(
            e.id or "",
            when(e.created_at),
            e.actor or "",
            ",".join(e.subject_keys),
            str(e.predictions),
            str(len(e.datasets)),
            str(len(e.model_versions)),
            e.status,
        )
    st.out.print(grid)


@privacy_app.command("show")
def show(ctx: typer.Context, erasure_id: Annotated[str, typer.Argument(help="Erasure id.")]) -> None:
    """One erasure's record."""
    st = state(ctx)
    result = st.client.get_erasure(erasure_id)
    if st.json:
        emit_json(result)
        return
    _show_erasure(st, result)


def _show_erasure(st: State, e: Erasure) -> None:
    title = "dry run: nothing was changed" if e.dry_run else f"erasure {e.id}"
    key_values(
        st,
        [
            ("keys", ", ".join(e.subject_keys)),
            ("status", e.status),
            ("predictions", f"{e.predictions} rows ({e.segments_rewritten} segments rewritten, "
             f"{e.segments_deleted} deleted)"),
            ("feedback", e.feedback),
            ("labels", e.labels),
            ("routed", e.routed),
            ("blobs deleted", e.blobs_deleted),
        ],
        title=title,
    )  # fmt: skip
    if e.datasets:
        grid = table("dataset", "rows", "erased versions", "new version")
        for d in e.datasets:
            grid.add_row(d.dataset, str(d.rows), ", ".join(d.erased_versions), d.new_version or "-")
        st.out.print(grid)
    if e.model_versions:
        grid = table("flagged model version", "why")
        for m in e.model_versions:
            grid.add_row(f"{m.model}/{m.version}", "; ".join(m.reasons))
        st.out.print(grid)
    if e.monitors:
        grid = table("monitor", "reference rows", "windows", "profiles the key")
        for m in e.monitors:
            grid.add_row(m.monitor, str(m.reference_rows), str(m.windows), ", ".join(m.key_in_bins) or "-")
        st.out.print(grid)
    for kept in e.blobs_kept:
        st.out.print(f"kept {kept['digest']}: still referenced by a {kept['referenced_by']}")


@retention_app.command("set")
def set_(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="predictions, feedback or labels.")],
    days: Annotated[float, typer.Option("--days", "-d", help="Keep at most this many days.")],
) -> None:
    """Keep prediction logs, feedback or labels for at most --days days (the server enforces it)."""
    st = state(ctx)
    policy = st.client.set_retention(target, days)
    if st.json:
        emit_json(policy)
        return
    st.out.print(f"retention of {policy.target}: {number(policy.max_age_days)} days")


@retention_app.command("list")
def list_policies(ctx: typer.Context) -> None:
    """Retention policies and when they were last enforced."""
    st = state(ctx)
    policies = st.client.list_retention()
    if st.json:
        emit_json(policies)
        return
    grid = table("target", "max age (days)", "last enforced", "set by", "set at")
    for p in policies:
        grid.add_row(p.target, number(p.max_age_days), when(p.last_enforced_at), p.updated_by or "", when(p.updated_at))
    st.out.print(grid)


@retention_app.command("remove")
def remove(ctx: typer.Context, target: Annotated[str, typer.Argument(help="predictions, feedback or labels.")]) -> None:
    """Remove a retention policy (nothing is deleted any more for that target)."""
    st = state(ctx)
    st.client.remove_retention(target)
    if st.json:
        emit_json({"removed": target})
    else:
        st.out.print(f"removed the retention policy of {target}")


@retention_app.command("enforce")
def enforce(
    ctx: typer.Context,
    now: Annotated[int | None, typer.Option("--now", help="Judge ages at this time (epoch ms).")] = None,
) -> None:
    """Delete now what the policies say is too old (the server also does this on its own)."""
    st = state(ctx)
    run: RetentionRun = st.client.enforce_retention(now_ms=now)
    if st.json:
        emit_json(run)
        return
    if not run.cutoffs:
        st.out.print("no retention policies")
        return
    key_values(
        st,
        [
            *((f"cutoff {target}", when(cutoff)) for target, cutoff in run.cutoffs.items()),
            ("predictions", f"{run.predictions} rows ({run.segments_deleted} segments deleted, "
             f"{run.segments_rewritten} rewritten)"),
            ("routed", run.routed),
            ("feedback", run.feedback),
            ("labels", run.labels),
            ("blobs deleted", run.blobs_deleted),
        ],
    )  # fmt: skip
