"""Pipelines: ``@step`` functions composed by ``@pipeline`` functions into a cached, recorded DAG.

``run(target, params)`` executes one (in-process, in local processes or on Dask); see ``docs/pipelines.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.pipelines.decorators import Pipeline, Step, pipeline, step
from shipyard.pipelines.entities import PipelineFailed, PipelineRun, PipelineStatus, StepRun, StepStatus
from shipyard.pipelines.refs import DatasetRef

if TYPE_CHECKING:
    from shipyard.client import Client


def run(
    target: Pipeline | str,
    params: dict[str, Any] | None = None,
    *,
    executor: str = "inprocess",
    address: str | None = None,
    no_cache: bool = False,
    client: Client | None = None,
    max_workers: int | None = None,
    schedule_id: str | None = None,
    progress: Callable[[StepRun], None] | None = None,
) -> PipelineRun:
    """Run a ``@pipeline`` function or ``"package.module:function"``; see :func:`shipyard.pipelines.runner.run`."""
    from shipyard.pipelines.runner import run as run_pipeline

    return run_pipeline(
        target,
        params,
        executor=executor,
        address=address,
        no_cache=no_cache,
        client=client,
        max_workers=max_workers,
        schedule_id=schedule_id,
        progress=progress,
    )


__all__ = [
    "DatasetRef",
    "Pipeline",
    "PipelineFailed",
    "PipelineRun",
    "PipelineStatus",
    "Step",
    "StepRun",
    "StepStatus",
    "pipeline",
    "run",
    "step",
]
