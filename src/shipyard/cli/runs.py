"""``shipyard runs``: list and search runs, show one, compare several side by side, end/delete/restore."""

from __future__ import annotations

import re
from collections import Counter
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli.output import (
    State,
    cell,
    clip,
    done,
    duration,
    emit_json,
    key_values,
    mapping_table,
    number,
    short,
    state,
    table,
    when,
)
from shipyard.tracking.entities import Run, RunStatus

app = typer.Typer(no_args_is_help=True)

STATUS_STYLE = {
    RunStatus.RUNNING: "blue",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "red",
    RunStatus.KILLED: "yellow",
}
MAX_METRIC_COLUMNS = 4
MAX_PARAM_COLUMNS = 3
_REFERENCE = re.compile(r"\b(metrics?|params?)\.(`[^`]*`|\"[^\"]*\"|[\w./-]+)", re.IGNORECASE)

RunArg = Annotated[str, typer.Argument(help="Run id.")]
ExperimentOpt = Annotated[
    list[str] | None, typer.Option("--experiment", "-e", help="Experiment name or id (repeatable).")
]
OrderOpt = Annotated[
    list[str] | None,
    typer.Option("--order-by", "-o", help="FIELD [ASC|DESC], e.g. 'metrics.accuracy DESC' (repeatable)."),
]
MaxOpt = Annotated[int, typer.Option("--max", "-n", min=1, help="Runs per page.")]
TokenOpt = Annotated[str | None, typer.Option("--page-token", help="Continue after a previous page.")]
AllOpt = Annotated[bool, typer.Option("--all", "-a", help="Include deleted runs.")]


class EndStatus(StrEnum):
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


def status_text(status: RunStatus | str) -> Text:
    status = RunStatus(status)
    return Text(status.value, style=STATUS_STYLE.get(status, ""))


def _referenced_keys(texts: list[str]) -> tuple[list[str], list[str]]:
    """Metric and param keys named in a filter or order-by, in order of appearance."""
    metrics: list[str] = []
    params: list[str] = []
    for prefix, key in _REFERENCE.findall(" ".join(texts)):
        if key[:1] in '`"':
            key = key[1:-1]
        target = metrics if prefix.lower().startswith("metric") else params
        if key and key not in target:
            target.append(key)
    return metrics, params


def choose_columns(runs: list[Run], filter: str | None, order_by: list[str]) -> tuple[list[str], list[str]]:
    """The metric and param columns worth showing: those the query mentions, then the most common."""
    metric_keys, param_keys = _referenced_keys([filter or "", *order_by])
    metric_counts = Counter(k for r in runs for k in r.metrics)
    param_counts = Counter(k for r in runs for k in r.params)

    def pick(chosen: list[str], counts: Counter[str], limit: int) -> list[str]:
        chosen = [k for k in chosen if k in counts][:limit]
        for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if len(chosen) >= limit:
                break
            if key not in chosen:
                chosen.append(key)
        return chosen

    return pick(metric_keys, metric_counts, MAX_METRIC_COLUMNS), pick(param_keys, param_counts, MAX_PARAM_COLUMNS)


def _list_runs(
    st: State,
    experiments: list[str] | None,
    filter: str | None,
    order_by: list[str] | None,
    max_results: int,
    page_token: str | None,
    include_deleted: bool,
) -> None:
    page = st.client.search_runs(
        experiments=experiments or None,
        filter=filter,
        order_by=order_by or None,
        max_results=max_results,
        page_token=page_token,
        include_deleted=include_deleted,
    )
    if st.json:
        emit_json(page)
        return
    metric_cols, param_cols = choose_columns(page.runs, filter, order_by or [])
    right = {"justify": "right"}
    grid = table(
        "id",
        "name",
        "status",
        "start time",
        "duration",
        *(f"metrics.{k}" for k in metric_cols),
        *(f"params.{k}" for k in param_cols),
        **{"duration": right, **{f"metrics.{k}": right for k in metric_cols}},
    )
    for run in page.runs:
        grid.add_row(
            cell(short(run.id)),
            cell(run.name, "bold" if run.lifecycle == "active" else "dim strike"),
            status_text(run.status),
            cell(when(run.start_time)),
            cell(duration(run.start_time, run.end_time)),
            *(cell(number(run.metrics.get(k))) for k in metric_cols),
            *(cell(clip(run.params.get(k), 30)) for k in param_cols),
        )
    st.out.print(grid)
    if not page.runs:
        st.err.print("no runs match", style="dim")
    if page.next_page_token:
        st.err.print(Text(f"more runs: --page-token {page.next_page_token}"), soft_wrap=True)


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: ExperimentOpt = None,
    filter: Annotated[str | None, typer.Option("--filter", "-f", help="Filter expression, see `runs search`.")] = None,
    order_by: OrderOpt = None,
    max_results: MaxOpt = 50,
    page_token: TokenOpt = None,
    all_: AllOpt = False,
) -> None:
    """List runs, newest first (or in --order-by order)."""
    _list_runs(state(ctx), experiment, filter, order_by, max_results, page_token, all_)


@app.command("search")
def search(
    ctx: typer.Context,
    filter: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="e.g. \"metrics.accuracy > 0.9 and params.model = 'rf'\"; fields: metrics.K, params.K, tags.K, "
            "status, name, user, start_time, end_time, run_id, experiment_id.",
        ),
    ],
    experiment: ExperimentOpt = None,
    order_by: OrderOpt = None,
    max_results: MaxOpt = 50,
    page_token: TokenOpt = None,
    all_: AllOpt = False,
) -> None:
    """Search runs with a filter expression (like `list --filter`)."""
    _list_runs(state(ctx), experiment, filter, order_by, max_results, page_token, all_)


def _environment_rows(environment: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if not environment:
        return [("environment", "not captured")]
    python = environment.get("python") or {}
    git = environment.get("git") or {}
    host = environment.get("host") or {}
    plat = environment.get("platform") or {}
    rows: list[tuple[str, Any]] = []
    if python:
        rows.append(("python", " ".join(str(v) for v in (python.get("implementation"), python.get("version")) if v)))
    if git.get("commit"):
        state_ = "dirty" if git.get("dirty") else "clean"
        branch = f" on {git['branch']}" if git.get("branch") else ""
        rows.append(("git", f"{git['commit']} ({state_}){branch}"))
    else:
        rows.append(("git", "not a git checkout"))
    if host.get("hostname"):
        rows.append(("host", host["hostname"]))
    if plat:
        rows.append(("platform", " ".join(str(plat[k]) for k in ("system", "release", "machine") if plat.get(k))))
    packages = environment.get("packages") or {}
    if packages:
        rows.append(("packages", f"{len(packages)} recorded"))
    if environment.get("seeds"):
        rows.append(("seeds", ", ".join(f"{k}={v}" for k, v in environment["seeds"].items())))
    return rows


@app.command("show")
def show(ctx: typer.Context, run_id: RunArg) -> None:
    """Show a run: attributes, params, metrics, tags and where it ran."""
    st = state(ctx)
    run = st.client.get_run(run_id)
    if st.json:
        emit_json(run)
        return
    key_values(
        st,
        [
            ("id", run.id),
            ("name", run.name),
            ("experiment", run.experiment_id),
            ("status", status_text(run.status)),
            ("user", run.user),
            ("start time", when(run.start_time)),
            ("end time", when(run.end_time)),
            ("duration", duration(run.start_time, run.end_time)),
            ("parent run", run.parent_run_id),
            ("lifecycle", run.lifecycle),
            ("description", run.description),
        ],
    )
    for title, values, numeric in (
        ("params", run.params, False),
        ("metrics", run.metrics, True),
        ("tags", run.tags, False),
    ):
        if values:
            st.out.print()
            st.out.print(mapping_table(title, values, numeric=numeric))
    st.out.print()
    key_values(st, _environment_rows(run.environment), title="environment")


def _same(values: list[Any]) -> bool:
    first = values[0]
    return all(v == first or (v != v and first != first) for v in values[1:])  # NaN equals NaN here


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.", metavar="RUN_ID RUN_ID...")],
) -> None:
    """Params and metrics of several runs side by side; differing rows are marked and highlighted."""
    st = state(ctx)
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids", param_hint="RUN_ID")
    runs = [st.client.get_run(run_id) for run_id in run_ids]
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    params = {k: [r.params.get(k) for r in runs] for k in param_keys}
    metrics = {k: [r.metrics.get(k) for r in runs] for k in metric_keys}
    differing = {
        "params": [k for k, v in params.items() if not _same(v)],
        "metrics": [k for k, v in metrics.items() if not _same(v)],
    }
    if st.json:
        emit_json({"runs": runs, "params": params, "metrics": metrics, "differing": differing})
        return
    grid = table("", "field", *(f"{short(r.id)} {r.name}" for r in runs))
    attributes: list[tuple[str, list[Any]]] = [
        ("status", [r.status.value for r in runs]),
        ("duration", [duration(r.start_time, r.end_time) for r in runs]),
        ("experiment", [short(r.experiment_id) for r in runs]),
    ]
    sections: list[tuple[str, list[tuple[str, list[Any]]], bool]] = [
        ("", attributes, False),
        ("params.", list(params.items()), False),
        ("metrics.", list(metrics.items()), True),
    ]
    for prefix, rows, numeric in sections:
        if prefix and rows:
            grid.add_section()
        for key, values in rows:
            differ = not _same(values)
            style = "bold yellow" if differ else None
            shown = [
                cell("-", "dim") if v is None else cell(number(v) if numeric else clip(v, 40), style) for v in values
            ]
            grid.add_row(cell("≠" if differ else "", "yellow"), cell(prefix + key, style), *shown)
    st.out.print(grid)


@app.command("delete")
def delete(ctx: typer.Context, run_id: RunArg) -> None:
    """Delete a run (soft: `restore` brings it back)."""
    st = state(ctx)
    run = st.client.delete_run(run_id)
    if st.json:
        emit_json(run)
    else:
        done(st, "deleted", "run", run.name, run.id)


@app.command("restore")
def restore(ctx: typer.Context, run_id: RunArg) -> None:
    """Restore a deleted run."""
    st = state(ctx)
    run = st.client.restore_run(run_id)
    if st.json:
        emit_json(run)
    else:
        done(st, "restored", "run", run.name, run.id)


@app.command("end")
def end(
    ctx: typer.Context,
    run_id: RunArg,
    status: Annotated[EndStatus, typer.Option("--status", "-s", case_sensitive=False)] = EndStatus.FINISHED,
) -> None:
    """End a running run with a terminal status."""
    st = state(ctx)
    run = st.client.end_run(run_id, RunStatus(status.value))
    if st.json:
        emit_json(run)
    else:
        done(st, f"ended ({run.status.value})", "run", run.name, run.id)
