"""``run()``: trace a pipeline, record the run, and drive its steps through an executor to the end.

The runner lives on the caller's side (SDK process) and talks to the service only through the
Client, so it works embedded and remote alike. Steps run in topological order as soon as their
inputs exist; a step whose cache key matches an earlier successful step run is not run but
recorded CACHED with that run's outputs. A failed step (after its retries) fails the pipeline
run, its downstream steps are SKIPPED and independent branches still finish, so a re-run resumes
from the cache. A heartbeat thread keeps the run's liveness fresh while the runner lives.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInput
from shipyard.pipelines.code import cache_key, import_reference
from shipyard.pipelines.decorators import Pipeline
from shipyard.pipelines.entities import PipelineFailed, PipelineRun, PipelineStatus, StepRun, StepStatus
from shipyard.pipelines.execution import AttemptResult, StepTask, describe_error
from shipyard.pipelines.executors import EXECUTORS, Attempt, Executor, make_executor
from shipyard.pipelines.graph import OutputRef, PipelineGraph, StepNode, trace
from shipyard.pipelines.refs import DatasetRef
from shipyard.pipelines.service import HEARTBEAT_INTERVAL_S, runner_identity
from shipyard.tracking.entities import RunStatus

if TYPE_CHECKING:
    from shipyard.client import Client

Progress = Callable[[StepRun], None]


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
    progress: Progress | None = None,
) -> PipelineRun:
    """Run ``target`` (a ``@pipeline`` function or ``"package.module:function"``) with ``params``.

    Returns the finished PipelineRun; raises :class:`PipelineFailed` (carrying the run) when a step
    failed, and InvalidInput before anything runs for a bad target, params or pipeline.
    ``progress`` is called with each step run as it ends.
    """
    pipe = resolve_target(target)
    if executor not in EXECUTORS:
        raise InvalidInput(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}", field="executor")
    if max_workers is not None and max_workers < 1:
        raise InvalidInput("max_workers must be at least 1", field="max_workers")
    if address is not None and executor != "dask":
        raise InvalidInput("address is only used by the dask executor", field="address")
    graph = trace(pipe, params)
    if client is None:
        from shipyard.client.fluent import get_client

        client = get_client()
    # An unknown dataset version is bad input like an unknown param: refuse it before a run is recorded.
    for node in graph.nodes.values():
        for value in node.inputs.values():
            if isinstance(value, DatasetRef):
                client.get_dataset(value.ref)
    with make_executor(executor, client, address, max_workers) as runner_executor:
        driver = _Driver(client, pipe, graph, runner_executor, no_cache=no_cache, progress=progress)
        return driver.run(executor, schedule_id)


def resolve_target(target: Any) -> Pipeline:
    if isinstance(target, str):
        target = import_reference(target)
    if not isinstance(target, Pipeline):
        raise InvalidInput(f"{target!r} is not a @pipeline function", field="target")
    return target


class _Driver:
    """The state of one pipeline run while it executes."""

    def __init__(
        self,
        client: Client,
        pipe: Pipeline,
        graph: PipelineGraph,
        executor: Executor,
        *,
        no_cache: bool,
        progress: Progress | None,
    ):
        self.client = client
        self.pipe = pipe
        self.graph = graph
        self.executor = executor
        self.no_cache = no_cache
        self.progress = progress
        self.environment = executor.environment()
        self.outputs: dict[str, dict[str, Any]] = {}  # step → its stored outputs
        self.failed: dict[str, dict[str, Any]] = {}  # step → error
        self.skipped: set[str] = set()
        self.step_ids: dict[str, str] = {}
        self.tracking_runs: dict[str, str] = {}  # step → its tracking run id
        self.attempts: dict[str, int] = {}
        self.retry_at: dict[str, float] = {}
        self.prepared: dict[str, tuple[dict[str, Any], str]] = {}  # step → (inputs record, cache key)
        self.pipeline_run_id: str | None = None

    # ----------------------------------------------------------------------------------------------

    def run(self, executor_name: str, schedule_id: str | None) -> PipelineRun:
        client, graph = self.client, self.graph
        experiment = client.get_or_create_experiment(self.pipe.experiment or self.pipe.name)
        self.experiment_id = experiment.id
        structure = graph.structure()
        tracking = client.create_run(
            experiment.id, self.pipe.name, tags={"shipyard.pipeline": self.pipe.name, "shipyard.step": "(pipeline)"}
        )
        self.tracking_run_id = tracking.id
        scalar_params = _scalars(graph.params)
        if scalar_params:
            client.log_params(tracking.id, scalar_params)
        record: PipelineRun = client._call(
            "pipelines",
            "create_pipeline_run",
            name=self.pipe.name,
            structure=structure,
            params=graph.params,
            executor=executor_name,
            run_id=tracking.id,
            schedule_id=schedule_id,
            owner=runner_identity(),
        )
        self.pipeline_run_id = record.id
        self.step_ids = {s.name: s.id for s in record.steps}
        client.set_tags(
            tracking.id,
            {"shipyard.pipeline_run_id": record.id, "shipyard.pipeline_definition": record.definition_digest},
        )
        heartbeat = _Heartbeat(client, record.id)
        heartbeat.start()
        try:
            self._loop()
        except BaseException as exc:
            self._abort(exc)
            raise
        finally:
            heartbeat.stop()
        return self._finish()

    def _loop(self) -> None:
        pending = list(self.graph.nodes)
        running: list[Attempt] = []
        while pending or running or self.retry_at:
            pending = self._launch_ready(pending, running)
            self._launch_retries(running)
            if not running:
                if self.retry_at:
                    time.sleep(max(0.0, min(self.retry_at.values()) - time.monotonic()))
                    continue
                if pending:  # pragma: no cover - every pending step is blocked or launchable
                    raise RuntimeError(f"steps cannot start: {pending}")
                break
            for attempt, result in self._wait(running):
                running.remove(attempt)
                self._settle(attempt, result)

    def _launch_ready(self, pending: list[str], running: list[Attempt]) -> list[str]:
        left = []
        for name in pending:
            node = self.graph.nodes[name]
            blocked = [up for up in node.upstream if up in self.failed or up in self.skipped]
            if blocked:
                self.skipped.add(name)
                self._finish_step(
                    name, "SKIPPED", error={"type": "Skipped", "message": f"upstream {blocked[0]!r} failed"}
                )
                continue
            if any(up not in self.outputs for up in node.upstream) or len(running) >= self.executor.parallelism:
                left.append(name)
                continue
            inputs, key = self._prepare(node)
            if node.step.options.cache and not self.no_cache:
                hit: StepRun | None = self.client._call("pipelines", "find_cached_step", cache_key=key)
                if hit is not None:
                    self.outputs[name] = hit.outputs
                    self._finish_step(name, "CACHED", cached_from=hit.id, cache_key=key, inputs=inputs)
                    continue
            self.tracking_runs[name] = self._create_step_run(node, inputs)
            running.append(self._submit(node))
        return left

    def _launch_retries(self, running: list[Attempt]) -> None:
        now = time.monotonic()
        for name, at in list(self.retry_at.items()):
            if at <= now and len(running) < self.executor.parallelism:
                del self.retry_at[name]
                running.append(self._submit(self.graph.nodes[name]))

    def _wait(self, running: list[Attempt]) -> list[tuple[Attempt, AttemptResult]]:
        now = time.monotonic()
        wakeups = [a.deadline for a in running if a.deadline is not None] + list(self.retry_at.values())
        timeout = max(0.0, min(wakeups) - now) if wakeups else None
        finished = self.executor.wait(running, timeout)
        done = {id(a) for a, _ in finished}
        now = time.monotonic()
        for attempt in running:
            if id(attempt) not in done and attempt.deadline is not None and now >= attempt.deadline:
                self.executor.kill(attempt)
                timeout_s = self.graph.nodes[attempt.task.step_name].step.options.timeout
                finished.append((attempt, _timed_out(attempt.task, timeout_s)))
        return finished

    # ----------------------------------------------------------------------------------------------

    def _prepare(self, node: StepNode) -> tuple[dict[str, Any], str]:
        """The step's inputs as recorded, and its cache key (code + input identities + environment)."""
        inputs: dict[str, Any] = {}
        identities: dict[str, Any] = {}
        for arg, value in node.inputs.items():
            if isinstance(value, OutputRef):
                ref = self.outputs[value.step][value.output]
                inputs[arg] = {
                    "kind": "output",
                    "step": value.step,
                    "output": value.output,
                    "digest": ref["digest"],
                    "output_kind": ref["kind"],
                }
                identities[arg] = ref["digest"]
            elif isinstance(value, DatasetRef):
                version_id = self._resolve_dataset(value.ref)
                inputs[arg] = {"kind": "dataset", "ref": value.ref, "version_id": version_id}
                identities[arg] = {"dataset": version_id or value.ref}
            else:
                inputs[arg] = {"kind": "value", "value": value}
                identities[arg] = {"value": value}
        key = cache_key(node.step.code_digest, identities, self.environment)
        self.prepared[node.name] = (inputs, key)
        return inputs, key

    def _resolve_dataset(self, ref: str) -> str | None:
        from shipyard.api.operations import BY_NAME

        if ("data", "resolve_version") not in BY_NAME:
            return None  # the service resolves it when recording the step's inputs
        version = self.client._call("data", "resolve_version", ref=ref)
        return getattr(version, "id", None)

    def _create_step_run(self, node: StepNode, inputs: dict[str, Any]) -> str:
        step_run_id = self.step_ids[node.name]
        run = self.client.create_run(
            self.experiment_id,
            node.name,
            parent_run_id=self.tracking_run_id,
            tags={
                "shipyard.pipeline": self.pipe.name,
                "shipyard.pipeline_run_id": self.pipeline_run_id,
                "shipyard.step": node.name,
                "shipyard.step_run_id": step_run_id,
                "shipyard.code_digest": node.step.code_digest,
            },
        )
        values = _scalars({k: v["value"] for k, v in inputs.items() if v["kind"] == "value"})
        if values:
            self.client.log_params(run.id, values)
        return run.id

    def _submit(self, node: StepNode) -> Attempt:
        name = node.name
        self.attempts[name] = self.attempts.get(name, 0) + 1
        inputs, key = self.prepared[name]
        self.client._call(
            "pipelines",
            "start_step_run",
            step_run_id=self.step_ids[name],
            cache_key=key,
            inputs=inputs,
            run_id=self.tracking_runs[name],
        )
        step = node.step
        reference = step.reference
        pickled = None
        if reference is None:
            import cloudpickle

            pickled = cloudpickle.dumps(step.fn)
        task = StepTask(
            settings=self.client.settings,
            pipeline_run_id=self.pipeline_run_id,
            step_run_id=self.step_ids[name],
            step_name=name,
            run_id=self.tracking_runs[name],
            inputs=inputs,
            outputs=step.outputs,
            output_types=step.output_types if reference is not None else {},
            multiple_outputs=step.multiple_outputs,
            reference=reference,
            pickled_fn=pickled,
            attempt=self.attempts[name],
        )
        return self.executor.submit(task, step.options.timeout)

    def _settle(self, attempt: Attempt, result: AttemptResult) -> None:
        name = attempt.task.step_name
        options = self.graph.nodes[name].step.options
        if result.ok:
            self.outputs[name] = result.outputs
            self._finish_step(name, "SUCCEEDED", outputs=result.outputs, logs_digest=result.logs_digest)
            self.client.end_run(self.tracking_runs[name], RunStatus.FINISHED)
            return
        number = self.attempts[name]
        if number <= options.retries:
            self.retry_at[name] = time.monotonic() + options.backoff(number)
            return
        error = dict(result.error or {})
        error["attempts"] = number
        self.failed[name] = error
        self._finish_step(name, "FAILED", error=error, logs_digest=result.logs_digest)
        self.client.end_run(self.tracking_runs[name], RunStatus.FAILED)

    def _finish_step(self, name: str, status: str, **values: Any) -> None:
        step_run: StepRun = self.client._call(
            "pipelines", "finish_step_run", step_run_id=self.step_ids[name], status=StepStatus(status), **values
        )
        if self.progress is not None:
            self.progress(step_run)

    # ----------------------------------------------------------------------------------------------

    def _finish(self) -> PipelineRun:
        client = self.client
        if not self.failed:
            record = client._call(
                "pipelines",
                "finish_pipeline_run",
                pipeline_run_id=self.pipeline_run_id,
                status=PipelineStatus.SUCCEEDED,
            )
            client.end_run(self.tracking_run_id, RunStatus.FINISHED)
            return record
        name, error = next(iter(self.failed.items()))
        summary = {
            "step": name,
            "type": error.get("type"),
            "message": error.get("message"),
            "failed": list(self.failed),
        }
        record = client._call(
            "pipelines",
            "finish_pipeline_run",
            pipeline_run_id=self.pipeline_run_id,
            status=PipelineStatus.FAILED,
            error=summary,
        )
        client.end_run(self.tracking_run_id, RunStatus.FAILED)
        short_type = str(error.get("type", "")).rsplit(".", 1)[-1]
        raise PipelineFailed(
            f"pipeline {self.pipe.name!r} failed at step {name!r}: {short_type}: {error.get('message')} "
            f"(pipeline run {record.id})",
            run=record,
            step=name,
        )

    def _abort(self, exc: BaseException) -> None:
        """The runner itself failed or was interrupted: record that, best effort, and let ``exc`` propagate."""
        if self.pipeline_run_id is None:
            return
        error = describe_error(exc)
        for name in self.graph.nodes:
            if name in self.outputs or name in self.failed or name in self.skipped:
                continue
            run_id = self.tracking_runs.get(name)
            try:  # started steps failed with the runner; the others never will run
                self._finish_step(name, "FAILED" if run_id else "SKIPPED", error=error)
                if run_id:
                    self.client.end_run(run_id, RunStatus.FAILED)
            except Exception:
                pass
        try:
            self.client._call(
                "pipelines",
                "finish_pipeline_run",
                pipeline_run_id=self.pipeline_run_id,
                status=PipelineStatus.FAILED,
                error={"type": error["type"], "message": error["message"]},
            )
            self.client.end_run(
                self.tracking_run_id, RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            )
        except Exception:
            pass


class _Heartbeat:
    def __init__(self, client: Client, pipeline_run_id: str):
        self.client = client
        self.pipeline_run_id = pipeline_run_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="shipyard-pipeline-heartbeat", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_INTERVAL_S):
            with contextlib.suppress(Exception):  # a missed beat is retried at the next interval
                self.client._call("pipelines", "heartbeat_pipeline_run", pipeline_run_id=self.pipeline_run_id)


def _timed_out(task: StepTask, timeout: float | None) -> AttemptResult:
    from shipyard.core.time import now_ms

    now = now_ms()
    return AttemptResult(
        ok=False,
        error={
            "type": "StepTimeout",
            "message": f"step {task.step_name!r} timed out after {timeout:g}s (attempt killed)",
        },
        start_time=now,
        end_time=now,
    )


def _scalars(values: dict[str, Any]) -> dict[str, Any]:
    """The values worth logging as tracking params: short scalars (params are write-once strings)."""
    return {
        k: v
        for k, v in values.items()
        if isinstance(v, (bool, int, float, str)) and not (isinstance(v, str) and len(v) > 500)
    }
