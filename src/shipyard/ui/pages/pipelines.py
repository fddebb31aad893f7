"""Dashboard pages of pipeline runs: the list (status filter, cache hits, durations) and one run with
its DAG coloured by step status, the step table (cache hit, timings, code digest, tracking run,
outputs) and one step's captured logs.

The DAG's edges come from the run's pipeline definition (which step's output feeds which step), so
steps that have not started yet are drawn too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.core.errors import NotFound
from shipyard.pipelines.entities import PipelineRun, PipelineStatus, StepRun, StepStatus
from shipyard.ui.charts import dag_figure
from shipyard.ui.web import render, services_of

router = APIRouter()

PAGE = 50  # runs per page of the list
MAX_RUNS = 1000  # the service's own bound on one listing
LOG_CHARS = 64_000  # the end of a step's log is what explains a failure: the page shows its last characters
REFRESH_SECONDS = 5
STATUS_COLORS = {
    StepStatus.SUCCEEDED: "#16a34a",
    StepStatus.CACHED: "#0ea5e9",
    StepStatus.FAILED: "#dc2626",
    StepStatus.RUNNING: "#f59e0b",
    StepStatus.PENDING: "#9ca3af",
    StepStatus.SKIPPED: "#d1d5db",
}


@router.get("/pipelines")
def pipelines_page(request: Request, status: str = "", name: str = "", page: int = 1) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    page = max(1, min(page, MAX_RUNS // PAGE))
    # One more than the pages so far tells whether there is a next page (the service lists newest first).
    runs = services.pipelines.list_pipeline_runs(
        name=name or None, status=status or None, limit=min(MAX_RUNS, page * PAGE + 1)
    )
    has_next = len(runs) > page * PAGE
    shown = runs[(page - 1) * PAGE : page * PAGE]
    return render(
        request,
        "pipelines_list.html",
        rows=[run_summary(r) for r in shown],
        status=status.upper(),
        statuses=[s.value for s in PipelineStatus],
        name=name,
        page=page,
        has_next=has_next,
        refresh=REFRESH_SECONDS if any(r.status is PipelineStatus.RUNNING for r in shown) else None,
    )


@router.get("/pipelines/{run_id}")
def pipeline_run_page(request: Request, run_id: str, step: str = "") -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    run = services.pipelines.get_pipeline_run(run_id)
    structure = _structure(services, run)
    edges = dag_edges(run, structure)
    chosen = _chosen_step(run, step)
    logs = services.pipelines.get_step_logs(run.id, chosen.name) if chosen is not None else None
    text = logs.text if logs is not None else ""
    return render(
        request,
        "pipelines_run.html",
        run=run,
        summary=run_summary(run),
        steps=[step_row(s) for s in run.steps],
        dag=dag_figure(dag_nodes(run, structure), edges),
        chosen=chosen,
        logs=text[-LOG_CHARS:],
        logs_cut=max(0, len(text) - LOG_CHARS),
        logs_digest=logs.digest if logs is not None else None,
        refresh=REFRESH_SECONDS if run.status is PipelineStatus.RUNNING else None,
        colors={s.value: c for s, c in STATUS_COLORS.items()},
    )


def run_summary(run: PipelineRun) -> dict[str, Any]:
    """A run's line in the list: step counts by status and its cache hits."""
    counts: dict[str, int] = {}
    for s in run.steps:
        counts[s.status.value] = counts.get(s.status.value, 0) + 1
    return {
        "run": run,
        "duration_ms": run.end_time - run.start_time if run.end_time is not None else None,
        "steps": len(run.steps),
        "counts": counts,
        "cache_hits": counts.get(StepStatus.CACHED.value, 0),
        "failed_step": next((s.name for s in run.steps if s.status is StepStatus.FAILED), None),
    }


def step_row(s: StepRun) -> dict[str, Any]:
    outputs = [
        {"name": name, "kind": (ref or {}).get("kind", ""), "size": (ref or {}).get("size"),
         "digest": (ref or {}).get("digest", "")}
        for name, ref in sorted(s.outputs.items())
    ]
    error = s.error or {}
    return {
        "step": s,
        "status": s.status.value,
        "cache_hit": s.status is StepStatus.CACHED,
        "duration_ms": s.duration_ms,
        "outputs": outputs,
        "error": error.get("message") or error.get("type") or (str(error) if error else ""),
    }


def _structure(services: Any, run: PipelineRun) -> dict[str, Any]:
    try:
        return services.pipelines.get_pipeline_definition(run.definition_digest).structure
    except NotFound:  # a run recorded without its definition: fall back on the steps' own inputs
        return {}


def dag_edges(run: PipelineRun, structure: dict[str, Any]) -> list[tuple[str, str]]:
    """(upstream step, step) for every step input that is another step's output, without duplicates."""
    sources: list[tuple[str, dict[str, Any]]] = [(s["name"], s.get("inputs", {})) for s in structure.get("steps", [])]
    if not sources:
        sources = [(s.name, s.inputs) for s in run.steps]
    edges: list[tuple[str, str]] = []
    for name, inputs in sources:
        for spec in inputs.values():
            if isinstance(spec, dict) and spec.get("kind") == "output" and spec.get("step"):
                edge = (str(spec["step"]), name)
                if edge not in edges:
                    edges.append(edge)
    return edges


def dag_nodes(run: PipelineRun, structure: dict[str, Any]) -> list[dict[str, Any]]:
    """One node per step of the definition (PENDING until it has a step run), coloured by status."""
    by_name = {s.name: s for s in run.steps}
    names = [s["name"] for s in structure.get("steps", [])] or list(by_name)
    names += [n for n in by_name if n not in names]
    nodes = []
    for name in names:
        s = by_name.get(name)
        status = s.status if s is not None else StepStatus.PENDING
        hover = [f"<b>{name}</b>", status.value]
        if s is not None and s.duration_ms is not None:
            hover.append(f"{s.duration_ms / 1000:.2f} s")
        if s is not None and s.cached_from:
            hover.append(f"cache hit of step run {s.cached_from[:8]}")
        nodes.append({"id": name, "label": f"{name}<br>{status.value.lower()}", "color": STATUS_COLORS[status],
                      "hover": "<br>".join(hover)})
    return nodes


def _chosen_step(run: PipelineRun, name: str) -> StepRun | None:
    """The step whose logs the page shows: the one asked for, else the first failed step."""
    if name:
        return run.step(name)  # NotFound names the run's steps
    return next((s for s in run.steps if s.status is StepStatus.FAILED), None)
