"""``shipyard experiments``: list, create, show, rename, delete, restore and tag experiments."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.output import (
    State,
    cell,
    done,
    emit_json,
    key_values,
    mapping_table,
    parse_pairs,
    short,
    state,
    table,
    when,
)
from shipyard.tracking.entities import Experiment

app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Experiment name or id.")]


def _show(st: State, experiment: Experiment, verb: str | None = None) -> None:
    if st.json:
        emit_json(experiment)
        return
    if verb:
        done(st, verb, "experiment", experiment.name, experiment.id)
        return
    key_values(
        st,
        [
            ("name", experiment.name),
            ("id", experiment.id),
            ("description", experiment.description),
            ("lifecycle", experiment.lifecycle),
            ("created by", experiment.created_by),
            ("created", when(experiment.created_at)),
            ("updated", when(experiment.updated_at)),
        ],
    )
    if experiment.tags:
        st.out.print()
        st.out.print(mapping_table("tags", experiment.tags))


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include deleted experiments.")] = False,
) -> None:
    """List experiments."""
    st = state(ctx)
    experiments = st.client.list_experiments(include_deleted=all_)
    if st.json:
        emit_json(experiments)
        return
    grid = table("id", "name", "lifecycle", "created", "description", "tags")
    for e in experiments:
        grid.add_row(
            cell(short(e.id)),
            cell(e.name, "bold"),
            cell(e.lifecycle, "dim" if e.lifecycle != "active" else None),
            cell(when(e.created_at)),
            cell(e.description or ""),
            cell(", ".join(f"{k}={v}" for k, v in sorted(e.tags.items()))),
        )
    st.out.print(grid)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new experiment.")],
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE, repeatable.")] = None,
) -> None:
    """Create an experiment."""
    st = state(ctx)
    tags = parse_pairs(tag or [])
    experiment = st.client.create_experiment(name, description=description, tags=tags or None)
    _show(st, experiment, "created")


@app.command("show")
def show(ctx: typer.Context, name: NameArg) -> None:
    """Show one experiment."""
    st = state(ctx)
    _show(st, st.client.get_experiment(name))


@app.command("rename")
def rename(ctx: typer.Context, name: NameArg, new_name: Annotated[str, typer.Argument(help="The new name.")]) -> None:
    """Rename an experiment."""
    st = state(ctx)
    _show(st, st.client.update_experiment(name, name=new_name), "renamed")


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete an experiment (soft: `restore` brings it back)."""
    st = state(ctx)
    _show(st, st.client.delete_experiment(name), "deleted")


@app.command("restore")
def restore(ctx: typer.Context, name: NameArg) -> None:
    """Restore a deleted experiment."""
    st = state(ctx)
    _show(st, st.client.restore_experiment(name), "restored")


@app.command("tag")
def tag(
    ctx: typer.Context,
    name: NameArg,
    pairs: Annotated[list[str], typer.Argument(help="KEY=VALUE pairs.", metavar="KEY=VALUE...")],
) -> None:
    """Set tags on an experiment."""
    st = state(ctx)
    experiment = st.client.set_experiment_tags(name, parse_pairs(pairs))
    _show(st, experiment, "tagged")
