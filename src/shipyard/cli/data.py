"""``shipyard data …``: thin adapters over the SDK's dataset calls (add, log, show, diff, get, as-of, lineage, list)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.text import Text

from shipyard.cli.output import (
    State,
    cell,
    clip,
    emit_json,
    human_size,
    key_values,
    mapping_table,
    number,
    parse_pairs,
    short,
    state,
    table,
    when,
)
from shipyard.data.entities import DatasetVersion

app = typer.Typer(no_args_is_help=True)

RefArg = Annotated[str, typer.Argument(help="Dataset version: NAME@3, NAME or NAME@latest.")]
NameArg = Annotated[str, typer.Argument(help="Dataset name.")]
DIGEST_COLUMN = {"no_wrap": True, "min_width": 71}


def _version_lines(st: State, v: DatasetVersion) -> None:
    key_values(
        st,
        [
            ("ref", v.ref),
            ("digest", v.digest),
            ("format", v.format),
            ("files", v.file_count),
            ("size", human_size(v.size)),
            ("rows", v.row_count),
            ("source", v.source_uri),
            ("parents", ", ".join(v.parents)),
            ("description", v.description),
            ("created by", v.created_by),
            ("created", when(v.created_at)),
            ("id", v.id),
        ],
    )
    if v.tags:
        st.out.print()
        st.out.print(mapping_table("tags", v.tags))


def _columns_table(v: DatasetVersion) -> Any:
    grid = table("column", "type", "kind", "missing", "min", "max", "mean", "distinct", title="columns")
    columns = (v.profile or {}).get("columns", {})
    for c in v.schema or []:
        p = columns.get(c["name"], {})
        grid.add_row(
            cell(c["name"], "bold"),
            cell(c.get("type")),
            cell(p.get("kind")),
            cell(p.get("missing")),
            cell(_stat(p.get("min"))),
            cell(_stat(p.get("max"))),
            cell(_stat(p.get("mean"))),
            cell(p.get("distinct")),
        )
    return grid


def _stat(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value)
    return clip(value, 24)


def _versions_table(versions: list[DatasetVersion], title: str | None = None) -> Any:
    grid = table("ref", "digest", "format", "files", "size", "rows", "created", title=title, digest=DIGEST_COLUMN)
    for v in versions:
        grid.add_row(
            cell(v.ref, "bold"),
            cell(v.digest),
            cell(v.format),
            cell(v.file_count),
            cell(human_size(v.size)),
            cell(v.row_count if v.row_count is not None else "-"),
            cell(when(v.created_at)),
        )
    return grid


@app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="A file or directory (Parquet, CSV, JSON lines, or any files).")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name (created if new).")],
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE, repeatable.")] = None,
    parent: Annotated[list[str] | None, typer.Option("--parent", "-p", help="Parent version ref, repeatable.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Record the version as an output of this run.")] = None,
    no_profile: Annotated[bool, typer.Option("--no-profile", help="Skip schema, row count and profile.")] = False,
) -> None:
    """Snapshot PATH as the next version of NAME (unchanged content returns the latest version)."""
    st = state(ctx)
    tags = parse_pairs(tag or []) or None
    progress = Progress(
        TextColumn("hashing {task.fields[files]} files"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=st.err,
        disable=not st.err.is_terminal,
        transient=True,
    )
    with progress:
        task = progress.add_task("hash", total=None, files=0)

        def plan(files: int, size: int) -> None:
            progress.update(task, total=size, files=files)

        version = st.client.log_dataset(
            path,
            name,
            description=description,
            tags=tags,
            parents=parent or None,
            run_id=run,
            profile=not no_profile,
            on_plan=plan,
            on_progress=lambda n: progress.update(task, advance=n),
        )
    snap = st.client.last_snapshot
    if st.json:
        stats = {}
        if snap is not None:
            stats = {"hashed_files": snap.hashed_files, "hashed_bytes": snap.hashed_bytes, "seconds": snap.seconds}
        emit_json({**version.model_dump(), "snapshot": stats})
        return
    line = Text("dataset ")
    line.append(version.ref, style="bold")
    line.append(f"  {version.digest}  {version.file_count} files, {human_size(version.size)}")
    if version.row_count is not None:
        line.append(f", {version.row_count} rows")
    if snap is not None:
        line.append(f"  (hashed {snap.hashed_files} files in {snap.seconds:.2f}s)", style="dim")
    st.out.print(line, soft_wrap=True)


@app.command("list")
def list_datasets(
    ctx: typer.Context,
    like: Annotated[str | None, typer.Option("--like", help="Name pattern (SQL LIKE, % matches anything).")] = None,
) -> None:
    """List datasets."""
    st = state(ctx)
    datasets = st.client.list_datasets(name_like=like)
    if st.json:
        emit_json(datasets)
        return
    grid = table("name", "latest", "versions", "updated", latest={"justify": "right"}, versions={"justify": "right"})
    for d in datasets:
        grid.add_row(
            cell(d.name, "bold"),
            cell(d.latest_version if d.latest_version is not None else "-"),
            cell(d.version_count),
            cell(when(d.updated_at)),
        )
    st.out.print(grid)


@app.command("log")
def log(ctx: typer.Context, name: NameArg) -> None:
    """Versions of NAME, newest first."""
    st = state(ctx)
    versions = st.client.dataset_versions(name)
    if st.json:
        emit_json(versions)
        return
    st.out.print(_versions_table(versions))


@app.command("show")
def show(ctx: typer.Context, ref: RefArg) -> None:
    """A version: digest, format, size, rows, source, parents, tags, and its columns' statistics."""
    st = state(ctx)
    version = st.client.get_dataset(ref)
    if st.json:
        emit_json(version)
        return
    _version_lines(st, version)
    if version.schema:
        st.out.print()
        st.out.print(_columns_table(version))


@app.command("diff")
def diff(ctx: typer.Context, ref_a: RefArg, ref_b: RefArg) -> None:
    """Files added/removed/changed, schema changes and column statistics changes from REF_A to REF_B."""
    st = state(ctx)
    result = st.client.diff_datasets(ref_a, ref_b)
    if st.json:
        emit_json(result)
        return
    if result.identical:
        st.out.print(Text(f"{result.a} and {result.b} are identical ({result.digest_a})"))
        return
    st.out.print(Text(f"{result.a} → {result.b}", style="bold"))
    st.out.print(
        Text(
            f"rows {result.row_count_a if result.row_count_a is not None else '-'} → "
            f"{result.row_count_b if result.row_count_b is not None else '-'}, "
            f"size {human_size(result.size_a)} → {human_size(result.size_b)}"
        )
    )
    if result.files:
        grid = table("change", "path", "size", title="files")
        styles = {"added": "green", "removed": "red", "changed": "yellow"}
        for f in result.files:
            sizes = " → ".join(human_size(s) for s in (f.size_a, f.size_b) if s is not None)
            grid.add_row(cell(f.change, styles.get(f.change)), cell(f.path), cell(sizes))
        st.out.print()
        st.out.print(grid)
    if result.columns:
        grid = table("column", "change", "type", "statistics", title="columns")
        for c in result.columns:
            types = c.type_a if c.type_a == c.type_b else " → ".join(x or "-" for x in (c.type_a, c.type_b))
            stats = ", ".join(f"{k} {_stat(v.get('a'))} → {_stat(v.get('b'))}" for k, v in c.stats.items())
            grid.add_row(cell(c.name, "bold"), cell(c.change), cell(types), cell(stats))
        st.out.print()
        st.out.print(grid)


@app.command("get")
def get(
    ctx: typer.Context,
    ref: RefArg,
    dest: Annotated[str, typer.Argument(help="Destination directory (must not exist or be empty).")],
    copy: Annotated[bool, typer.Option("--copy", help="Copy files instead of hard-linking read-only objects.")] = False,
) -> None:
    """Materialise a version's files at DEST (verified; hard links to the local store unless --copy)."""
    st = state(ctx)
    version = st.client.get_dataset(ref)
    if copy:  # a real download: show its progress
        from shipyard.cli.transfer import download

        target = download(st, version.digest, True, dest, f"{version.ref}").dest
    else:
        target = st.client.get_dataset_files(version.ref, dest, link=True)
    if st.json:
        emit_json(
            {"ref": version.ref, "digest": version.digest, "dest": str(target.absolute()), "files": version.file_count}
        )
        return
    st.out.print(Text(f"{version.ref} → {target} ({version.file_count} files, {human_size(version.size)})"))


@app.command("as-of")
def as_of(
    ctx: typer.Context,
    name: NameArg,
    time: Annotated[str, typer.Argument(help="ISO-8601 time (UTC unless it has a zone) or epoch milliseconds.")],
) -> None:
    """The version of NAME that was current at TIME."""
    st = state(ctx)
    version = st.client.dataset_as_of(name, time)
    if st.json:
        emit_json(version)
        return
    _version_lines(st, version)


@app.command("lineage")
def lineage(ctx: typer.Context, ref: RefArg) -> None:
    """What produced a version (parents, runs, steps) and what used it (runs, steps, model versions)."""
    st = state(ctx)
    result = st.client.dataset_lineage(ref)
    if st.json:
        emit_json(result)
        return
    st.out.print(Text(f"{result.ref}  {result.digest}", style="bold"))
    sections = (
        ("derived from", result.parents),
        ("produced by", result.produced_by),
        ("used by", result.used_by),
        ("derived into", result.children),
    )
    for title, nodes in sections:
        if not nodes:
            continue
        grid = table("type", "name", "id", "when", title=title)
        for n in nodes:
            grid.add_row(
                cell(n.type),
                cell(n.name, "bold"),
                cell(short(n.id) if n.type != "dataset_version" else n.id),
                cell(when(n.created_at)),
            )
        st.out.print()
        st.out.print(grid)
    if not any(nodes for _, nodes in sections):
        st.out.print(Text("no recorded lineage"))


@app.command("tag")
def tag(
    ctx: typer.Context,
    ref: RefArg,
    pairs: Annotated[list[str], typer.Argument(help="KEY=VALUE tags to set.")],
) -> None:
    """Set tags on a version (tags are the one mutable part of a version)."""
    st = state(ctx)
    version = st.client.set_dataset_tags(ref, parse_pairs(pairs))
    if st.json:
        emit_json(version)
        return
    st.out.print(Text(f"tagged {version.ref}: " + ", ".join(f"{k}={v}" for k, v in sorted(version.tags.items()))))
