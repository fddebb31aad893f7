"""``shipyard batch-score`` and ``shipyard reproduce``: batch inference and reproducibility checks of models."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shipyard.cli.output import emit_json, import_from_cwd, key_values, number, state, table


def batch_score(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model URI, e.g. models:/churn@champion.")],
    dataset: Annotated[str, typer.Argument(help="Dataset version to score, e.g. customers@3.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Dataset name for the scored rows.")],
    executor: Annotated[str, typer.Option("--executor", help="dask (default) or inprocess.")] = "dask",
    address: Annotated[
        str | None, typer.Option("--address", help="Dask scheduler tcp://host:port; default: a LocalCluster.")
    ] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Also write class probabilities.")] = False,
    prediction_column: Annotated[str, typer.Option("--prediction-column", help="Name of the output column.")] = (
        "prediction"
    ),
) -> None:
    """Score a dataset version with a registered model on Dask partitions; write a new dataset version."""
    from shipyard.pipelines.batch import batch_score as run_batch

    st = state(ctx)
    with Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=st.err, transient=True
    ) as bar:
        task = bar.add_task("score", total=None)
        result = run_batch(
            st.client,
            model,
            dataset,
            output,
            executor=executor,
            address=address,
            proba=proba,
            prediction_column=prediction_column,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if st.json:
        emit_json(result)
        return
    key_values(
        st,
        [
            ("model", result.model_uri),
            ("input", result.input_ref),
            ("output", result.output_ref),
            ("rows", result.rows),
            ("partitions", result.partitions),
            ("executor", result.executor),
            ("run", result.run_id),
        ],
        title="batch scoring",
    )


def reproduce(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model URI of a pipeline-built version, e.g. models:/churn/3.")],
    executor: Annotated[str, typer.Option("--executor", help="inprocess, process or dask.")] = "inprocess",
) -> None:
    """Re-run the pipeline that built a model version and report whether the result is bit-identical.

    Exit code 0 when it is, 1 when it is not.
    """
    from shipyard.pipelines.reproduce import reproduce as run_reproduce

    st = state(ctx)

    def show(step: Any) -> None:  # printed as the re-run goes, so errors before it stay one line
        st.err.print(f"  re-run: {step.status.value:<9} {step.name}", markup=False)

    import_from_cwd()
    result = run_reproduce(st.client, model, executor=executor, progress=show)
    if st.json:
        emit_json(result)
    else:
        verdict = "bit-identical" if result.identical else "different"
        key_values(
            st,
            [
                ("model", result.model_uri),
                ("verdict", verdict),
                ("original digest", result.original_digest),
                ("reproduced digest", result.reproduced_digest or "(no model was logged)"),
                ("pipeline", f"{result.target} {result.params}"),
                ("original run", result.original_pipeline_run_id),
                ("reproduction run", result.reproduced_pipeline_run_id),
                ("code changed in", ", ".join(result.code_changes) or "-"),
                ("outputs diverged", ", ".join(result.diverged_outputs) or "-"),
            ],
            title="reproduction",
        )
        if result.metric_differences:
            grid = table("step", "metric", "original", "reproduced", "difference")
            for d in result.metric_differences:
                grid.add_row(d.step, d.metric, number(d.original), number(d.reproduced), number(d.difference))
            st.out.print(grid)
    if not result.identical:
        raise typer.Exit(1)
