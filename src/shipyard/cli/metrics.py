"""``shipyard metrics``: the history (step, value, time) of one metric of a run."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.output import cell, emit_json, number, state, table, when

app = typer.Typer(no_args_is_help=True)


@app.command("history")
def history(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    key: Annotated[str, typer.Argument(help="Metric key.")],
    max_points: Annotated[
        int | None, typer.Option("--max-points", min=1, help="Downsample long series to about N points.")
    ] = None,
) -> None:
    """Show every logged point of a metric (downsampled with --max-points)."""
    st = state(ctx)
    series = st.client.get_metric_history(run_id, key, max_points=max_points)
    if st.json:
        emit_json(series)
        return
    grid = table(
        "step", "value", "time", title=f"{key} ({run_id})", step={"justify": "right"}, value={"justify": "right"}
    )
    for step, value, ts in zip(series.steps, series.values, series.timestamps, strict=True):
        grid.add_row(cell(step), cell(number(value)), cell(when(ts)))
    st.out.print(grid)
    if series.downsampled:
        st.err.print(f"downsampled: {len(series.steps)} of {series.total_points} points", style="dim")
    elif not series.steps:
        st.err.print("no points", style="dim")
