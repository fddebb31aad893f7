"""``shipyard artifacts``: log a file or directory to a run, list a run's artifacts, download one."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.output import cell, emit_json, human_size, key_values, short_digest, state, table, when
from shipyard.cli.transfer import download as transfer
from shipyard.core.errors import NotFound

app = typer.Typer(no_args_is_help=True)

RunArg = Annotated[str, typer.Argument(help="Run id.")]


@app.command("list")
def list_artifacts(ctx: typer.Context, run_id: RunArg) -> None:
    """List the artifacts of a run."""
    st = state(ctx)
    artifacts = st.client.list_artifacts(run_id)
    if st.json:
        emit_json(artifacts)
        return
    grid = table("path", "kind", "size", "digest", "logged", size={"justify": "right"})
    for a in sorted(artifacts, key=lambda a: a.path):
        grid.add_row(
            cell(a.path, "bold"),
            cell("dir" if a.is_tree else "file"),
            cell(human_size(a.size)),
            cell(short_digest(a.digest)),
            cell(when(a.created_at)),
        )
    st.out.print(grid)
    if not artifacts:
        st.err.print("no artifacts", style="dim")


@app.command("log")
def log(
    ctx: typer.Context,
    run_id: RunArg,
    local_path: Annotated[Path, typer.Argument(help="File or directory to store.")],
    path: Annotated[
        str | None, typer.Option("--path", "-p", help="Artifact path in the run (default: the file's name).")
    ] = None,
) -> None:
    """Store a file or a directory as an artifact of a (running) run."""
    st = state(ctx)
    with st.err.status(f"uploading {local_path}", spinner="dots") if st.err.is_terminal else nullcontext():
        artifact = st.client.log_artifact(run_id, local_path, path)
    if st.json:
        emit_json(artifact)
        return
    key_values(
        st,
        [
            ("logged", artifact.path),
            ("kind", "directory" if artifact.is_tree else "file"),
            ("size", human_size(artifact.size)),
            ("digest", artifact.digest),
        ],
    )


@app.command("download")
def download(
    ctx: typer.Context,
    run_id: RunArg,
    path: Annotated[str, typer.Argument(help="Artifact path in the run.")],
    dest: Annotated[
        Path,
        typer.Argument(help="Where to write it; an existing directory receives it under its own name."),
    ],
) -> None:
    """Download an artifact (file or directory), verified against its digest."""
    st = state(ctx)
    wanted = path.strip("/")
    artifact = next((a for a in st.client.list_artifacts(run_id) if a.path == wanted), None)
    if artifact is None:
        raise NotFound(f"run {run_id} has no artifact {path!r}", field="path")
    target = dest / Path(wanted).name if dest.is_dir() else dest
    result = transfer(st, artifact.digest, artifact.is_tree, target, wanted, size=artifact.size)
    if st.json:
        emit_json(
            {
                "run_id": run_id,
                "path": wanted,
                "digest": result.digest,
                "is_tree": result.is_tree,
                "dest": str(result.dest),
                "files": result.files,
                "size": result.size,
            }
        )
        return
    what = f"{result.files} files" if result.is_tree else "1 file"
    st.out.print(
        f"downloaded {wanted} → {result.dest} ({what}, {human_size(result.size)})", markup=False, soft_wrap=True
    )
