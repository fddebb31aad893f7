"""``shipyard pipeline schedule …`` and ``shipyard scheduler``: cron schedules of pipelines, and their runner."""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer

from shipyard.cli.output import State, done, emit_json, import_from_cwd, parse_params, state, table, when
from shipyard.core.errors import InvalidInput
from shipyard.core.time import ms_to_iso
from shipyard.pipelines.schedules import Schedule

app = typer.Typer(no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="Schedule name.")]


def _show(st: State, schedules: list[Schedule]) -> None:
    if st.json:
        emit_json(schedules)
        return
    grid = table("name", "cron (UTC)", "target", "catch-up", "state", "next run", "last run", "last pipeline run")
    for s in schedules:
        grid.add_row(
            s.name,
            s.cron,
            s.target,
            s.catchup,
            "active" if s.enabled else "paused",
            when(s.next_run_at),
            when(s.last_run_at),
            s.last_pipeline_run_id or "",
        )
    st.out.print(grid)


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    target: Annotated[str, typer.Argument(help="Pipeline import reference, package.module:function.")],
    cron: Annotated[str, typer.Option("--cron", help="Cron expression in UTC, e.g. '0 3 * * *'.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Pipeline parameter k=v (repeat).")] = None,
    catchup: Annotated[
        str, typer.Option("--catchup", help="Missed runs while no scheduler ran: skip, latest or all.")
    ] = "skip",
    executor: Annotated[str, typer.Option("--executor", help="inprocess, process or dask.")] = "inprocess",
) -> None:
    st = state(ctx)
    schedule = st.client.create_schedule(
        name, target, cron, parse_params(param or []), catchup=catchup, executor=executor
    )
    if st.json:
        emit_json(schedule)
        return
    done(st, "scheduled", "pipeline", target, f"{name}, next run {ms_to_iso(schedule.next_run_at)}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    st = state(ctx)
    _show(st, st.client.list_schedules())


@app.command("show")
def show(ctx: typer.Context, name: NameArg) -> None:
    st = state(ctx)
    _show(st, [st.client.get_schedule(name)])


@app.command("pause")
def pause(ctx: typer.Context, name: NameArg) -> None:
    st = state(ctx)
    _show(st, [st.client.pause_schedule(name)])


@app.command("resume")
def resume(ctx: typer.Context, name: NameArg) -> None:
    st = state(ctx)
    _show(st, [st.client.resume_schedule(name)])


@app.command("remove")
def remove(ctx: typer.Context, name: NameArg) -> None:
    st = state(ctx)
    st.client.delete_schedule(name)
    if st.json:
        emit_json({"deleted": name})
        return
    done(st, "removed", "schedule", name)


def scheduler(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between checks for due schedules.")] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="Check once, run what is due, and exit.")] = False,
) -> None:
    """Run due pipeline schedules and due monitors until stopped (Ctrl-C / SIGTERM)."""
    from shipyard.pipelines.scheduler import Firing, Scheduler

    st = state(ctx)
    if interval <= 0:
        raise InvalidInput("--interval must be positive", field="interval")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def report(firing: Firing) -> None:
        if st.json:
            emit_json(firing.__dict__, lines=True)
        else:
            st.err.print(
                f"{ms_to_iso(firing.fire_time)} {firing.schedule}: {firing.status} "
                f"{firing.pipeline_run_id or ''} {firing.error or ''}".rstrip()
            )

    import_from_cwd()
    runner = Scheduler(st.client, interval=interval, on_firing=report, monitors=True)
    if once:
        runner.tick()
        return
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    if not st.json:
        st.err.print(f"scheduler: checking every {interval:g}s; Ctrl-C to stop")
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop()
