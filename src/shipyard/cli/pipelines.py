"""``shipyard pipeline …``: run a pipeline, list its runs, show one as a DAG, diff two, read a step's logs.

Thin adapters over the SDK. ``run`` prints each step on stderr as it ends (CACHED shown with the
step run it reused) and the finished run on stdout; a failed run ends with one ``error:`` line.
The ``schedule`` subcommands are added to :data:`app` by ``cli/main.py`` from ``cli/schedules.py``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli.output import (
    State,
    cell,
    clip,
    duration,
    emit_json,
    import_from_cwd,
    key_values,
    parse_params,
    short,
    short_digest,
    state,
    table,
    when,
)
from shipyard.pipelines.entities import PipelineRun, PipelineRunDiff, StepRun, StepStatus

app = typer.Typer(no_args_is_help=True)

RunArg = Annotated[str, typer.Argument(help="Pipeline run id.")]
STATUS_STYLE = {
    "SUCCEEDED": "green",
    "CACHED": "cyan",
    "FAILED": "red",
    "SKIPPED": "yellow",
    "RUNNING": "blue",
    "PENDING": "dim",
}


# --------------------------------------------------------------------------------------------------
# Commands


@app.command("run")
def run_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The @pipeline function, as 'package.module:function'.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A pipeline parameter KEY=VALUE.")] = None,
    executor: Annotated[str, typer.Option(help="inprocess, process or dask.")] = "inprocess",
    address: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://host:port).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step even when cached.")] = False,
    max_workers: Annotated[int | None, typer.Option(help="Steps at once (process, dask).")] = None,
) -> None:
    """Run a pipeline; each step is printed as it ends."""
    from shipyard.pipelines.runner import run

    st = state(ctx)
    params = parse_params(param or [])
    import_from_cwd()

    def progress(step: StepRun) -> None:
        if not st.json:
            st.err.print(_progress_line(step), soft_wrap=True)

    result = run(
        target,
        params,
        executor=executor,
        address=address,
        no_cache=no_cache,
        client=st.client,
        max_workers=max_workers,
        progress=progress,
    )
    if st.json:
        emit_json(result)
        return
    line = Text(f"pipeline run {result.id} ")
    line.append(result.status.value, style=STATUS_STYLE.get(result.status.value, ""))
    cached = sum(1 for s in result.steps if s.status is StepStatus.CACHED)
    line.append(f" ({len(result.steps)} steps, {cached} cached, {duration(result.start_time, result.end_time)})")
    st.out.print(line, soft_wrap=True)


@app.command("runs")
def runs_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    status: Annotated[str | None, typer.Option(help="RUNNING, SUCCEEDED or FAILED.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first.")] = 50,
) -> None:
    """List pipeline runs, newest first."""
    st = state(ctx)
    runs = st.client.pipeline_runs(name=name, limit=limit, status=status)
    if st.json:
        emit_json(runs)
        return
    grid = table("id", "pipeline", "status", "steps", "executor", "started", "duration")
    for r in runs:
        grid.add_row(
            cell(r.id),
            cell(r.name, "bold"),
            cell(r.status.value, STATUS_STYLE.get(r.status.value)),
            cell(_step_counts(r)),
            cell(r.executor),
            cell(when(r.start_time)),
            cell(duration(r.start_time, r.end_time)),
        )
    st.out.print(grid)


@app.command("show")
def show_command(ctx: typer.Context, run_id: RunArg) -> None:
    """A pipeline run: its params and each step of the DAG with status, cache hit, attempts and timing."""
    st = state(ctx)
    record = st.client.get_pipeline_run(run_id)
    definition = st.client.get_pipeline_definition(record.definition_digest)
    if st.json:
        emit_json({**record.model_dump(mode="json"), "definition": definition.structure})
        return
    key_values(
        st,
        [
            ("pipeline run", record.id),
            ("pipeline", record.name),
            ("status", Text(record.status.value, style=STATUS_STYLE.get(record.status.value, ""))),
            ("target", definition.structure.get("target")),
            ("definition", record.definition_digest),
            ("params", json.dumps(record.params, sort_keys=True)),
            ("executor", record.executor),
            ("tracking run", record.run_id),
            ("schedule", record.schedule_id),
            ("started", when(record.start_time)),
            ("duration", duration(record.start_time, record.end_time)),
            ("error", _error_text(record.error)),
        ],
    )
    upstream = {s["name"]: _upstream(s) for s in definition.structure.get("steps", [])}
    grid = table("step", "after", "status", "cached from", "attempts", "duration", "outputs", "code", title="steps")
    for s in record.steps:
        grid.add_row(
            cell(s.name, "bold"),
            cell(", ".join(upstream.get(s.name, [])) or "-"),
            cell(s.status.value, STATUS_STYLE.get(s.status.value)),
            cell(short(s.cached_from)),
            cell(s.attempts),
            cell(duration(s.start_time, s.end_time)),
            cell(", ".join(f"{k}:{v.get('kind')}" for k, v in s.outputs.items())),
            cell(short_digest(s.code_digest)),
        )
    st.out.print()
    st.out.print(grid)
    for s in record.steps:
        if s.status is StepStatus.FAILED and s.error:
            st.out.print(Text(f"{s.name}: {_error_text(s.error)}", style="red"), soft_wrap=True)


@app.command("diff")
def diff_command(ctx: typer.Context, run_a: RunArg, run_b: RunArg) -> None:
    """What changed between two pipeline runs: definition, params, step code, inputs, outputs, status, timing."""
    st = state(ctx)
    diff = st.client.diff_pipeline_runs(run_a, run_b)
    if st.json:
        emit_json(diff)
        return
    _print_diff(st, diff)


@app.command("logs")
def logs_command(ctx: typer.Context, run_id: RunArg, step: Annotated[str, typer.Argument(help="Step name.")]) -> None:
    """The captured stdout, stderr and logging of a step."""
    st = state(ctx)
    logs = st.client._call("pipelines", "get_step_logs", pipeline_run_id=run_id, step=step)
    if st.json:
        emit_json(logs)
        return
    typer.echo(logs.text, nl=not logs.text.endswith("\n"))


# --------------------------------------------------------------------------------------------------
# Rendering


def _progress_line(step: StepRun) -> Text:
    status = step.status.value
    line = Text(f"{status:<9} ", style=STATUS_STYLE.get(status, ""))
    line.append(step.name, style="bold")
    if step.status is StepStatus.CACHED:
        line.append(f"  (from step run {short(step.cached_from)})")
    elif step.status is StepStatus.FAILED:
        line.append(f"  {clip(_error_text(step.error), 100)}")
    elif step.status is StepStatus.SUCCEEDED:
        attempts = f", {step.attempts} attempts" if step.attempts > 1 else ""
        line.append(f"  {duration(step.start_time, step.end_time)}{attempts}")
    return line


def _step_counts(record: PipelineRun) -> str:
    counts: dict[str, int] = {}
    for s in record.steps:
        counts[s.status.value.lower()] = counts.get(s.status.value.lower(), 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _upstream(step: dict[str, Any]) -> list[str]:
    sources = (step.get("inputs") or {}).values()
    return list(dict.fromkeys(s["step"] for s in sources if isinstance(s, dict) and s.get("kind") == "output"))


def _error_text(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    kind = str(error.get("type", "error")).rsplit(".", 1)[-1]
    where = f"step {error['step']}: " if error.get("step") else ""
    return f"{where}{kind}: {error.get('message', '')}"


def _print_diff(st: State, diff: PipelineRunDiff) -> None:
    rows: list[tuple[str, Any]] = [("a", diff.a), ("b", diff.b)]
    if diff.definition:
        rows.append(("definition", f"{diff.definition.a} → {diff.definition.b}"))
    if diff.status:
        rows.append(("status", f"{diff.status.a} → {diff.status.b}"))
    rows.append(("duration", f"{_ms(diff.duration_ms.a)} → {_ms(diff.duration_ms.b)}"))
    key_values(st, rows)
    if diff.params:
        grid = table("param", "a", "b", title="params")
        for key, change in diff.params.items():
            grid.add_row(cell(key), cell(json.dumps(change.a)), cell(json.dumps(change.b)))
        st.out.print()
        st.out.print(grid)
    grid = table("step", "change", "a", "b", title="steps")
    for step in diff.steps:
        if step.only_in:
            grid.add_row(cell(step.name, "bold"), cell(f"only in {step.only_in}"), cell(""), cell(""))
            continue
        changes: list[tuple[str, Any, Any]] = []
        if step.status:
            changes.append(("status", step.status.a, step.status.b))
        if step.code_digest:
            changes.append(("code", short_digest(step.code_digest.a), short_digest(step.code_digest.b)))
        for arg, change in step.inputs.items():
            changes.append((f"input {arg}", _value(change.a), _value(change.b)))
        for output, change in step.outputs.items():
            changes.append((f"output {output}", short_digest(change.a), short_digest(change.b)))
        changes.append(("duration", _ms(step.duration_ms.a), _ms(step.duration_ms.b)))
        for i, (what, a, b) in enumerate(changes):
            grid.add_row(cell(step.name if i == 0 else "", "bold"), cell(what), cell(a), cell(b))
    st.out.print()
    st.out.print(grid)


def _value(value: Any) -> str:
    if isinstance(value, str) and value.startswith("sha256:"):
        return short_digest(value)
    return clip(json.dumps(value, default=str), 40)


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f}s"
