"""The SDK's pipelines calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.pipelines.entities import PipelineDefinition, PipelineRun, PipelineRunDiff, StepRun


class PipelinesMixin:
    """Methods use ``self._call(service, operation, **kwargs)`` and ``self.artifacts`` of the Client."""

    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def run_pipeline(
        self,
        target: Any,
        params: dict[str, Any] | None = None,
        *,
        executor: str = "inprocess",
        address: str | None = None,
        no_cache: bool = False,
        max_workers: int | None = None,
        schedule_id: str | None = None,
        progress: Callable[[StepRun], None] | None = None,
    ) -> PipelineRun:
        """``shipyard.pipelines.run(target, params, ..., client=self)``."""
        from shipyard.pipelines.runner import run

        return run(
            target,
            params,
            executor=executor,
            address=address,
            no_cache=no_cache,
            client=self,  # type: ignore[arg-type]
            max_workers=max_workers,
            schedule_id=schedule_id,
            progress=progress,
        )

    def pipeline_runs(
        self, name: str | None = None, limit: int = 50, schedule_id: str | None = None, status: str | None = None
    ) -> list[PipelineRun]:
        """Pipeline runs, newest first."""
        return self._call(
            "pipelines", "list_pipeline_runs", name=name, limit=limit, schedule_id=schedule_id, status=status
        )

    def get_pipeline_run(self, pipeline_run_id: str) -> PipelineRun:
        return self._call("pipelines", "get_pipeline_run", pipeline_run_id=pipeline_run_id)

    def get_pipeline_definition(self, digest: str) -> PipelineDefinition:
        return self._call("pipelines", "get_pipeline_definition", digest=digest)

    def diff_pipeline_runs(self, a: str, b: str) -> PipelineRunDiff:
        return self._call("pipelines", "diff_pipeline_runs", a=a, b=b)

    def step_logs(self, pipeline_run_id: str, step: str) -> str:
        """The captured stdout, stderr and logging of a step (a cache hit shows the reused run's logs)."""
        return self._call("pipelines", "get_step_logs", pipeline_run_id=pipeline_run_id, step=step).text

    def get_step_run_by_run_id(self, run_id: str) -> StepRun:
        """The step run whose tracking run is ``run_id`` (e.g. a model version's ``source_run_id``), else NotFound."""
        return self._call("pipelines", "get_step_run_by_run_id", run_id=run_id)

    step_run_of = get_step_run_by_run_id

    def load_step_output(self, pipeline_run_id: str, step: str, output: str = "output") -> Any:
        """The value a step produced (or reused from the cache), loaded from the artifact store."""
        from shipyard.core.errors import NotFound
        from shipyard.pipelines.outputs import load_output

        step_run = self.get_pipeline_run(pipeline_run_id).step(step)
        if output not in step_run.outputs:
            known = ", ".join(step_run.outputs) or "none"
            raise NotFound(f"step {step!r} has no stored output {output!r} (outputs: {known})", field="output")
        return load_output(self, step_run.outputs[output])  # type: ignore[arg-type]
