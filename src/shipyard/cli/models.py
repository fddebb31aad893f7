"""``shipyard models`` / ``versions`` / ``aliases``: the model registry from the command line.

Versions are shown with their full digest everywhere (it is what identifies the content); run ids
are shortened in tables only.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli.output import (
    State,
    cell,
    clip,
    done,
    emit_json,
    human_size,
    key_values,
    mapping_table,
    parse_pairs,
    short,
    state,
    table,
    when,
)
from shipyard.cli.transfer import download
from shipyard.core.errors import InvalidInput
from shipyard.registry.entities import ModelVersion, RegisteredModel
from shipyard.registry.uri import RunRef, parse_model_uri

models_app = typer.Typer(no_args_is_help=True)
versions_app = typer.Typer(no_args_is_help=True)
aliases_app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Registered model name.")]
DIGEST_COLUMN = {"no_wrap": True, "min_width": 71}  # sha256: + 64 hex digits, never cut


def _aliases(model: RegisteredModel) -> str:
    return ", ".join(f"{alias}→v{version}" for alias, version in sorted(model.aliases.items()))


def show_model(st: State, model: RegisteredModel, versions: list[ModelVersion] | None = None) -> None:
    key_values(
        st,
        [
            ("name", model.name),
            ("id", model.id),
            ("description", model.description),
            ("latest version", model.latest_version),
            ("aliases", _aliases(model)),
            ("created by", model.created_by),
            ("created", when(model.created_at)),
            ("updated", when(model.updated_at)),
        ],
    )
    if model.tags:
        st.out.print()
        st.out.print(mapping_table("tags", model.tags))
    if versions:
        st.out.print()
        st.out.print(versions_table(versions, title="versions"))


def versions_table(versions: list[ModelVersion], title: str | None = None) -> Any:
    grid = table("version", "digest", "flavor", "aliases", "source run", "created", title=title, digest=DIGEST_COLUMN)
    for v in versions:
        grid.add_row(
            cell(v.version, "bold"),
            cell(v.digest),
            cell(v.flavor),
            cell(", ".join(sorted(v.aliases)), "cyan"),
            cell(short(v.source_run_id)),
            cell(when(v.created_at)),
        )
    return grid


def _signature(signature: dict[str, Any] | None) -> str | None:
    if not signature:
        return None
    parts = []
    for side in ("inputs", "outputs"):
        spec = signature.get(side)
        if isinstance(spec, list):
            names = [str(c.get("name", "?")) if isinstance(c, dict) else str(c) for c in spec]
            parts.append(f"{side}: {clip(', '.join(names), 60)}")
        elif spec is not None:
            parts.append(f"{side}: {clip(spec, 60)}")
    return "; ".join(parts) or clip(signature, 80)


def show_version(st: State, version: ModelVersion) -> None:
    env = version.environment or {}
    python = (env.get("python") or {}).get("version")
    key_values(
        st,
        [
            ("model", version.model_name),
            ("version", version.version),
            ("uri", version.uri),
            ("digest", version.digest),
            ("flavor", version.flavor),
            ("status", version.status),
            ("aliases", ", ".join(sorted(version.aliases))),
            ("source run", version.source_run_id),
            ("source uri", version.source_uri),
            ("code commit", version.code_commit),
            ("python", python),
            ("signature", _signature(version.signature)),
            ("data refs", ", ".join(version.data_refs)),
            ("description", version.description),
            ("created by", version.created_by),
            ("created", when(version.created_at)),
            ("id", version.id),
        ],
    )
    if version.tags:
        st.out.print()
        st.out.print(mapping_table("tags", version.tags))


# --------------------------------------------------------------------------------------------------
# models


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    like: Annotated[str | None, typer.Option("--like", help="Name pattern (SQL LIKE, % matches anything).")] = None,
) -> None:
    """List registered models."""
    st = state(ctx)
    models = st.client.list_models(name_like=like)
    if st.json:
        emit_json(models)
        return
    grid = table("name", "latest", "aliases", "updated", "description", latest={"justify": "right"})
    for m in models:
        grid.add_row(
            cell(m.name, "bold"),
            cell(m.latest_version if m.latest_version is not None else "-"),
            cell(_aliases(m), "cyan"),
            cell(when(m.updated_at)),
            cell(clip(m.description, 50)),
        )
    st.out.print(grid)


@models_app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE, repeatable.")] = None,
) -> None:
    """Create an empty registered model."""
    st = state(ctx)
    model = st.client.create_model(name, description=description, tags=parse_pairs(tag or []) or None)
    if st.json:
        emit_json(model)
    else:
        done(st, "created", "model", model.name, model.id)


@models_app.command("show")
def show(ctx: typer.Context, name: NameArg) -> None:
    """Show a registered model, its aliases and versions."""
    st = state(ctx)
    model = st.client.get_model(name)
    versions = st.client.list_versions(name)
    if st.json:
        emit_json({**model.model_dump(), "versions": versions})
        return
    show_model(st, model, versions)


@models_app.command("delete")
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete a registered model that has no versions."""
    st = state(ctx)
    st.client.delete_model(name)
    if st.json:
        emit_json({"name": name, "deleted": True})
    else:
        done(st, "deleted", "model", name)


@models_app.command("describe")
def describe(
    ctx: typer.Context, name: NameArg, text: Annotated[str, typer.Argument(help="The new description.")]
) -> None:
    """Set the description of a registered model."""
    st = state(ctx)
    model = st.client.update_model(name, description=text)
    if st.json:
        emit_json(model)
    else:
        done(st, "described", "model", model.name)


@models_app.command("register")
def register(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="runs:/RUN_ID/PATH or a local model directory.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Registered model name (created if new).")],
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE, repeatable.")] = None,
    data_ref: Annotated[list[str] | None, typer.Option("--data-ref", help="Dataset reference, repeatable.")] = None,
) -> None:
    """Register a model directory or a run's model artifact as the next version of NAME."""
    st = state(ctx)
    version = st.client.register_model(
        source, name, description=description, tags=parse_pairs(tag or []) or None, data_refs=data_ref or None
    )
    if st.json:
        emit_json(version)
        return
    st.out.print(Text(f"registered {version.uri}", style="bold"), soft_wrap=True)
    show_version(st, version)


@models_app.command("download")
def download_model(
    ctx: typer.Context,
    uri: Annotated[
        str, typer.Argument(help="models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME or runs:/ID/PATH.")
    ],
    dest: Annotated[str, typer.Argument(help="Directory to create (must not exist or be empty).")],
) -> None:
    """Materialise a model's files into DEST, every file verified against its digest."""
    st = state(ctx)
    ref = parse_model_uri(uri)
    version: ModelVersion | None = None
    if isinstance(ref, RunRef):
        artifact = next((a for a in st.client.list_artifacts(ref.run_id) if a.path == ref.path.strip("/")), None)
        if artifact is None:
            from shipyard.core.errors import NotFound

            raise NotFound(f"run {ref.run_id} has no artifact {ref.path!r}", field="uri")
        if not artifact.is_tree:
            raise InvalidInput(f"{uri!r} is a single file, not a model directory", field="uri")
        digest = artifact.digest
    else:
        version = st.client.resolve_model(uri)
        digest = version.digest
    result = download(st, digest, True, dest, version.uri if version else uri)
    if st.json:
        emit_json({"uri": uri, "version": version, "digest": digest, "dest": str(result.dest), "files": result.files})
        return
    label = f"{version.uri} (digest {digest})" if version else f"{uri} (digest {digest})"
    st.out.print(
        f"downloaded {label} → {result.dest} ({result.files} files, {human_size(result.size)})",
        markup=False,
        soft_wrap=True,
    )


# --------------------------------------------------------------------------------------------------
# versions


@versions_app.command("list")
def list_versions(ctx: typer.Context, name: NameArg) -> None:
    """List the versions of a registered model."""
    st = state(ctx)
    versions = st.client.list_versions(name)
    if st.json:
        emit_json(versions)
        return
    st.out.print(versions_table(versions))
    if not versions:
        st.err.print("no versions", style="dim")


@versions_app.command("show")
def show_version_command(
    ctx: typer.Context, name: NameArg, version: Annotated[int, typer.Argument(help="Version number.", min=1)]
) -> None:
    """Show one version: digest, lineage, signature."""
    st = state(ctx)
    mv = st.client.get_version(name, version)
    if st.json:
        emit_json(mv)
    else:
        show_version(st, mv)


# --------------------------------------------------------------------------------------------------
# aliases


@aliases_app.command("set")
def set_alias(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
) -> None:
    """Point an alias at a version (moving it if it exists)."""
    st = state(ctx)
    mv = st.client.set_alias(name, alias, version)
    if st.json:
        emit_json(mv)
        return
    st.out.print(f"{name}@{alias} → {mv.uri} ({mv.digest})", markup=False, soft_wrap=True)


@aliases_app.command("delete")
def delete_alias(
    ctx: typer.Context, name: NameArg, alias: Annotated[str, typer.Argument(help="Alias to remove.")]
) -> None:
    """Remove an alias."""
    st = state(ctx)
    st.client.delete_alias(name, alias)
    if st.json:
        emit_json({"name": name, "alias": alias, "deleted": True})
    else:
        done(st, "deleted", "alias", f"{name}@{alias}")


@aliases_app.command("list")
def list_aliases(ctx: typer.Context, name: NameArg) -> None:
    """List the aliases of a model and the versions they point at."""
    st = state(ctx)
    model = st.client.get_model(name)
    versions = {v.version: v for v in st.client.list_versions(name)} if model.aliases else {}
    rows = [
        {"alias": alias, "version": number, "digest": versions[number].digest if number in versions else None}
        for alias, number in sorted(model.aliases.items())
    ]
    if st.json:
        emit_json(rows)
        return
    grid = table("alias", "version", "digest", digest=DIGEST_COLUMN)
    for row in rows:
        grid.add_row(cell(row["alias"], "cyan"), cell(row["version"]), cell(row["digest"] or "-"))
    st.out.print(grid)
    if not rows:
        st.err.print("no aliases", style="dim")


@aliases_app.command("history")
def alias_history(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[str | None, typer.Argument(help="Only this alias.")] = None,
) -> None:
    """Every move of the model's aliases (or of one alias), oldest first, from the journal."""
    st = state(ctx)
    moves = st.client.alias_history(name, alias)
    if st.json:
        emit_json(moves)
        return
    grid = table("seq", "time", "actor", "alias", "from", "to", seq={"justify": "right"})
    for m in moves:
        grid.add_row(
            cell(m.seq),
            cell(when(m.ts)),
            cell(m.actor),
            cell(m.alias, "cyan"),
            cell("-" if m.from_version is None else f"v{m.from_version}"),
            cell("(deleted)" if m.to_version is None else f"v{m.to_version}", "bold"),
        )
    st.out.print(grid)
    if not moves:
        st.err.print("no alias moves", style="dim")
