"""PipelineService: the records of pipeline definitions, pipeline runs and step runs.

The runner executes steps on the caller's side and records every transition here, one
transaction each, journaled: a run is created with all its steps PENDING; a step is started
(RUNNING, one more attempt), then finished (SUCCEEDED, FAILED, CACHED or SKIPPED); the run is
finished. A runner that dies leaves a RUNNING run whose owner process is gone or whose heartbeat
stopped: reading runs (or starting the next one) marks such runs FAILED, their running steps
FAILED and their pending steps SKIPPED. Completed steps keep their outputs for the cache.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import sqlalchemy as sa

from shipyard.artifacts import ArtifactStore
from shipyard.core.errors import Conflict, InvalidInput, NotFound
from shipyard.core.hashing import normalize_digest
from shipyard.core.ids import new_id
from shipyard.core.names import check_name
from shipyard.core.time import now_ms
from shipyard.pipelines.diff import diff_runs
from shipyard.pipelines.entities import (
    PipelineDefinition,
    PipelineRun,
    PipelineRunDiff,
    PipelineStatus,
    StepLogs,
    StepRun,
    StepStatus,
)
from shipyard.pipelines.graph import definition_digest
from shipyard.store import schema as t
from shipyard.store.database import Database, Tx
from shipyard.tracking.entities import RunStatus
from shipyard.tracking.service import TrackingService

HEARTBEAT_INTERVAL_S = 5.0
STALE_AFTER_MS = 60_000  # a RUNNING run without a heartbeat for this long has lost its runner
EXECUTORS = ("inprocess", "process", "dask")
MAX_LIST = 1000


class PipelineService:
    def __init__(self, db: Database, artifacts: ArtifactStore, tracking: TrackingService):
        self.db = db
        self.artifacts = artifacts
        self.tracking = tracking

    # ----------------------------------------------------------------------------------------------
    # Pipeline runs

    def create_pipeline_run(
        self,
        name: str,
        structure: dict[str, Any],
        params: dict[str, Any] | None = None,
        executor: str = "inprocess",
        run_id: str | None = None,
        schedule_id: str | None = None,
        owner: str | None = None,
    ) -> PipelineRun:
        """Record the definition (if new) and a RUNNING pipeline run with every step PENDING."""
        check_name(name, "pipeline name")
        steps = _check_structure(name, structure)
        if executor not in EXECUTORS:
            raise InvalidInput(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}", field="executor")
        if run_id is not None:
            self.tracking.get_run(run_id)
        self.reap_stale_runs()
        digest = definition_digest(structure)
        pipeline_run_id = new_id()
        now = now_ms()
        with self.db.write() as tx:
            exists = tx.conn.execute(
                sa.select(t.pipeline_definitions.c.digest).where(t.pipeline_definitions.c.digest == digest)
            ).first()
            if exists is None:
                tx.conn.execute(
                    t.pipeline_definitions.insert().values(
                        digest=digest, name=name, structure=structure, created_at=now
                    )
                )
                tx.journal("pipeline_definition.created", "pipeline_definition", digest, {"after": {"name": name}})
            tx.conn.execute(
                t.pipeline_runs.insert().values(
                    id=pipeline_run_id,
                    name=name,
                    definition_digest=digest,
                    status=PipelineStatus.RUNNING.value,
                    params=params or {},
                    executor=executor,
                    run_id=run_id,
                    schedule_id=schedule_id,
                    created_by=tx.actor,
                    start_time=now,
                    owner=owner,
                    heartbeat_at=now,
                )
            )
            tx.conn.execute(
                t.step_runs.insert(),
                [
                    {
                        "id": new_id(),
                        "pipeline_run_id": pipeline_run_id,
                        "name": step["name"],
                        "code_digest": step["code_digest"],
                        "status": StepStatus.PENDING.value,
                        "attempts": 0,
                    }
                    for step in steps
                ],
            )
            tx.journal(
                "pipeline_run.started",
                "pipeline_run",
                pipeline_run_id,
                {
                    "after": {
                        "name": name,
                        "definition_digest": digest,
                        "params": params or {},
                        "executor": executor,
                        "run_id": run_id,
                        "schedule_id": schedule_id,
                        "steps": [s["name"] for s in steps],
                    }
                },
            )
        return self._read_run(pipeline_run_id)

    def heartbeat_pipeline_run(self, pipeline_run_id: str) -> None:
        """The runner is alive (telemetry: not journaled)."""
        with self.db.write() as tx:
            tx.conn.execute(
                t.pipeline_runs.update()
                .where(t.pipeline_runs.c.id == pipeline_run_id, t.pipeline_runs.c.status == PipelineStatus.RUNNING)
                .values(heartbeat_at=now_ms())
            )

    def finish_pipeline_run(
        self, pipeline_run_id: str, status: PipelineStatus, error: dict[str, Any] | None = None
    ) -> PipelineRun:
        status = PipelineStatus(status)
        if status is PipelineStatus.RUNNING:
            raise InvalidInput("a pipeline run finishes SUCCEEDED or FAILED", field="status")
        with self.db.write() as tx:
            row = self._run_row(tx.conn, pipeline_run_id)
            if row.status != PipelineStatus.RUNNING:
                raise Conflict(f"pipeline run {pipeline_run_id} already ended {row.status}", field="status")
            open_steps = tx.conn.execute(
                sa.select(t.step_runs.c.name).where(
                    t.step_runs.c.pipeline_run_id == pipeline_run_id,
                    t.step_runs.c.status.in_([StepStatus.PENDING, StepStatus.RUNNING]),
                )
            ).all()
            if open_steps and status is PipelineStatus.SUCCEEDED:
                names = ", ".join(r.name for r in open_steps)
                raise Conflict(f"pipeline run {pipeline_run_id} still has unfinished steps: {names}", field="status")
            tx.conn.execute(
                t.pipeline_runs.update()
                .where(t.pipeline_runs.c.id == pipeline_run_id)
                .values(status=status.value, error=error, end_time=now_ms())
            )
            tx.journal(
                "pipeline_run.finished",
                "pipeline_run",
                pipeline_run_id,
                {"before": {"status": row.status}, "after": {"status": status.value, "error": error}},
            )
        return self._read_run(pipeline_run_id)

    def get_pipeline_run(self, pipeline_run_id: str) -> PipelineRun:
        """A pipeline run with its step runs in DAG order (runs whose runner died are marked FAILED first)."""
        self.reap_stale_runs()
        return self._read_run(pipeline_run_id)

    def _read_run(self, pipeline_run_id: str) -> PipelineRun:
        with self.db.read() as conn:
            row = self._run_row(conn, pipeline_run_id)
            return self._runs(conn, [row])[0]

    def list_pipeline_runs(
        self, name: str | None = None, limit: int = 50, schedule_id: str | None = None, status: str | None = None
    ) -> list[PipelineRun]:
        """Newest first."""
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}", field="limit")
        self.reap_stale_runs()
        query = sa.select(t.pipeline_runs).order_by(t.pipeline_runs.c.start_time.desc(), t.pipeline_runs.c.id)
        if name is not None:
            query = query.where(t.pipeline_runs.c.name == name)
        if schedule_id is not None:
            query = query.where(t.pipeline_runs.c.schedule_id == schedule_id)
        if status is not None:
            if status.upper() not in PipelineStatus.__members__.values():
                allowed = ", ".join(PipelineStatus.__members__.values())
                raise InvalidInput(f"status must be one of {allowed}, not {status!r}", field="status")
            query = query.where(t.pipeline_runs.c.status == PipelineStatus(status.upper()).value)
        with self.db.read() as conn:
            return self._runs(conn, conn.execute(query.limit(limit)).all())

    def get_pipeline_definition(self, digest: str) -> PipelineDefinition:
        digest = normalize_digest(digest)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.pipeline_definitions).where(t.pipeline_definitions.c.digest == digest)
            ).first()
        if row is None:
            raise NotFound(f"pipeline definition {digest} not found", field="digest")
        return PipelineDefinition(**row._mapping)

    def diff_pipeline_runs(self, a: str, b: str) -> PipelineRunDiff:
        """What changed from run ``a`` to run ``b``: definition, params, step code, inputs, outputs, status, timing."""
        run_a, run_b = self.get_pipeline_run(a), self._read_run(b)
        return diff_runs(run_a, run_b)

    # ----------------------------------------------------------------------------------------------
    # Step runs

    def start_step_run(
        self,
        step_run_id: str,
        cache_key: str | None = None,
        inputs: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> StepRun:
        """Begin an attempt: RUNNING, one more attempt; dataset inputs become lineage edges of the step and run."""
        with self.db.write() as tx:
            row = self._step_row(tx.conn, step_run_id)
            self._check_open(tx.conn, row)
            if row.status not in (StepStatus.PENDING, StepStatus.RUNNING):
                raise Conflict(f"step {row.name!r} already ended {row.status}", field="status")
            now = now_ms()
            values: dict[str, Any] = {"status": StepStatus.RUNNING.value, "attempts": row.attempts + 1}
            if row.start_time is None:
                values["start_time"] = now
            if cache_key is not None:
                values["cache_key"] = normalize_digest(cache_key)
            if inputs is not None:
                values["inputs"] = inputs
            if run_id is not None:
                values["run_id"] = run_id
            tx.conn.execute(t.step_runs.update().where(t.step_runs.c.id == step_run_id).values(**values))
            self._record_dataset_inputs(tx, row, inputs or {})
            tx.journal(
                "step_run.started",
                "step_run",
                step_run_id,
                {
                    "before": {"status": row.status},
                    "after": {"status": "RUNNING", "attempt": row.attempts + 1, "run_id": run_id or row.run_id},
                },
            )
        return self._step(step_run_id)

    def finish_step_run(
        self,
        step_run_id: str,
        status: StepStatus,
        outputs: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        logs_digest: str | None = None,
        cached_from: str | None = None,
        cache_key: str | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> StepRun:
        """End a step: SUCCEEDED (with outputs), FAILED (with error), CACHED (from ``cached_from``) or SKIPPED."""
        status = StepStatus(status)
        if not status.terminal:
            raise InvalidInput(f"a step finishes SUCCEEDED, FAILED, CACHED or SKIPPED, not {status}", field="status")
        outputs = _check_outputs(outputs or {}, self.artifacts) if status in (StepStatus.SUCCEEDED,) else outputs
        with self.db.write() as tx:
            row = self._step_row(tx.conn, step_run_id)
            self._check_open(tx.conn, row)
            if row.status not in (StepStatus.PENDING, StepStatus.RUNNING):
                raise Conflict(f"step {row.name!r} already ended {row.status}", field="status")
            now = now_ms()
            values: dict[str, Any] = {"status": status.value, "end_time": now, "error": error}
            if row.start_time is None:
                values["start_time"] = now
            if logs_digest is not None:
                values["logs_digest"] = normalize_digest(logs_digest)
            if inputs is not None:
                values["inputs"] = inputs
            if cache_key is not None:
                values["cache_key"] = normalize_digest(cache_key)
            if status is StepStatus.CACHED:
                source = self._step_row(tx.conn, cached_from or "", what="cached_from")
                if source.status != StepStatus.SUCCEEDED:
                    raise Conflict(
                        f"step run {source.id} did not succeed; its outputs cannot be reused", field="cached_from"
                    )
                values.update(cached_from=source.id, outputs=source.outputs)
                self._record_dataset_inputs(tx, row, inputs or {})
            elif status is StepStatus.SUCCEEDED:
                values["outputs"] = outputs
            tx.conn.execute(t.step_runs.update().where(t.step_runs.c.id == step_run_id).values(**values))
            tx.journal(
                "step_run.finished",
                "step_run",
                step_run_id,
                {
                    "before": {"status": row.status},
                    "after": {
                        "status": status.value,
                        "outputs": values.get("outputs"),
                        "cached_from": values.get("cached_from"),
                        "error": error,
                    },
                },
            )
        return self._step(step_run_id)

    def find_cached_step(self, cache_key: str) -> StepRun | None:
        """The newest SUCCEEDED step run with this cache key whose outputs are all still stored."""
        cache_key = normalize_digest(cache_key)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.step_runs)
                .where(t.step_runs.c.cache_key == cache_key, t.step_runs.c.status == StepStatus.SUCCEEDED)
                .order_by(t.step_runs.c.end_time.desc())
                .limit(20)
            ).all()
        for row in rows:
            if all(self.artifacts.has(ref["digest"]) for ref in (row.outputs or {}).values()):
                return _step_entity(row)
        return None

    def get_step_run_by_run_id(self, run_id: str) -> StepRun:
        """The step run that logged to tracking run ``run_id`` (its ``pipeline_run_id`` leads to the pipeline run)."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.step_runs).where(t.step_runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFound(f"run {run_id} is not the run of a pipeline step", field="run_id")
        return _step_entity(row)

    def get_step_logs(self, pipeline_run_id: str, step: str) -> StepLogs:
        """The captured stdout, stderr and logging of a step (of its last attempt)."""
        run = self._read_run(pipeline_run_id)
        step_run = run.step(step)
        source = step_run
        if step_run.status is StepStatus.CACHED and step_run.cached_from:
            source = self._step(step_run.cached_from)  # a cache hit shows the logs of the run it reused
        text = ""
        if source.logs_digest:
            text = self.artifacts.read_bytes(source.logs_digest).decode("utf-8", errors="replace")
        return StepLogs(pipeline_run_id=pipeline_run_id, step=step, digest=source.logs_digest, text=text)

    # ----------------------------------------------------------------------------------------------
    # Lost runners

    def reap_stale_runs(self) -> list[str]:
        """Mark FAILED every RUNNING pipeline run whose runner is gone; returns their ids."""
        now = now_ms()
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.pipeline_runs.c.id, t.pipeline_runs.c.owner, t.pipeline_runs.c.heartbeat_at).where(
                    t.pipeline_runs.c.status == PipelineStatus.RUNNING
                )
            ).all()
        stale = [r for r in rows if _runner_lost(r.owner, r.heartbeat_at, now)]
        reaped: list[str] = []
        for row in stale:
            tracking_runs = self._fail_lost_run(row.id, row.owner)
            if tracking_runs is None:
                continue
            reaped.append(row.id)
            for run_id in tracking_runs:
                with contextlib.suppress(Conflict, InvalidInput, NotFound):  # already ended
                    self.tracking.update_run(run_id, status=RunStatus.FAILED)
        return reaped

    def _fail_lost_run(self, pipeline_run_id: str, owner: str | None) -> list[str] | None:
        error = {
            "type": "RunnerLost",
            "message": f"the runner ({owner or 'unknown'}) stopped without finishing the run",
        }
        with self.db.write() as tx:
            row = self._run_row(tx.conn, pipeline_run_id)
            if row.status != PipelineStatus.RUNNING or not _runner_lost(row.owner, row.heartbeat_at, now_ms()):
                return None  # finished or reaped meanwhile
            now = now_ms()
            steps = tx.conn.execute(sa.select(t.step_runs).where(t.step_runs.c.pipeline_run_id == pipeline_run_id))
            tracking_runs = [row.run_id] if row.run_id else []
            for step in steps:
                if step.status == StepStatus.RUNNING:
                    new_status, step_error = StepStatus.FAILED, error
                    if step.run_id:
                        tracking_runs.append(step.run_id)
                elif step.status == StepStatus.PENDING:
                    new_status, step_error = StepStatus.SKIPPED, None
                else:
                    continue
                tx.conn.execute(
                    t.step_runs.update()
                    .where(t.step_runs.c.id == step.id)
                    .values(status=new_status.value, error=step_error, end_time=now)
                )
                tx.journal(
                    "step_run.finished",
                    "step_run",
                    step.id,
                    {"before": {"status": step.status}, "after": {"status": new_status.value, "error": step_error}},
                )
            tx.conn.execute(
                t.pipeline_runs.update()
                .where(t.pipeline_runs.c.id == pipeline_run_id)
                .values(status=PipelineStatus.FAILED.value, error=error, end_time=now)
            )
            tx.journal(
                "pipeline_run.finished",
                "pipeline_run",
                pipeline_run_id,
                {"before": {"status": row.status}, "after": {"status": "FAILED", "error": error}},
            )
        return tracking_runs

    # ----------------------------------------------------------------------------------------------
    # Rows

    def _run_row(self, conn: sa.Connection, pipeline_run_id: str) -> sa.Row:
        row = conn.execute(sa.select(t.pipeline_runs).where(t.pipeline_runs.c.id == pipeline_run_id)).first()
        if row is None:
            raise NotFound(f"pipeline run {pipeline_run_id!r} not found", field="pipeline_run_id")
        return row

    def _step_row(self, conn: sa.Connection, step_run_id: str, what: str = "step_run_id") -> sa.Row:
        row = conn.execute(sa.select(t.step_runs).where(t.step_runs.c.id == step_run_id)).first()
        if row is None:
            raise NotFound(f"step run {step_run_id!r} not found", field=what)
        return row

    def _step(self, step_run_id: str) -> StepRun:
        with self.db.read() as conn:
            return _step_entity(self._step_row(conn, step_run_id))

    def _check_open(self, conn: sa.Connection, step: sa.Row) -> None:
        status = conn.execute(
            sa.select(t.pipeline_runs.c.status).where(t.pipeline_runs.c.id == step.pipeline_run_id)
        ).scalar_one()
        if status != PipelineStatus.RUNNING:
            raise Conflict(f"pipeline run {step.pipeline_run_id} already ended {status}", field="pipeline_run_id")

    def _runs(self, conn: sa.Connection, rows: list[sa.Row]) -> list[PipelineRun]:
        ids = [r.id for r in rows]
        if not ids:
            return []
        steps: dict[str, list[StepRun]] = {i: [] for i in ids}
        for step in conn.execute(sa.select(t.step_runs).where(t.step_runs.c.pipeline_run_id.in_(ids))):
            steps[step.pipeline_run_id].append(_step_entity(step))
        structures = dict(
            conn.execute(
                sa.select(t.pipeline_definitions.c.digest, t.pipeline_definitions.c.structure).where(
                    t.pipeline_definitions.c.digest.in_({r.definition_digest for r in rows})
                )
            ).all()
        )
        result = []
        for row in rows:
            order = {s["name"]: i for i, s in enumerate(structures.get(row.definition_digest, {}).get("steps", []))}
            ordered = sorted(steps[row.id], key=lambda s: order.get(s.name, len(order)))
            values = dict(row._mapping)
            values["params"] = values["params"] or {}
            result.append(PipelineRun(**values, steps=ordered))
        return result

    def _record_dataset_inputs(self, tx: Tx, step: sa.Row, inputs: dict[str, Any]) -> None:
        from shipyard.data.usage import record_usage

        for value in inputs.values():
            if isinstance(value, dict) and value.get("kind") == "dataset":
                version_id = value.get("version_id") or self._resolve_dataset(value.get("ref"))
                if version_id:
                    record_usage(tx, version_id, "step_run", step.id)
                    record_usage(tx, version_id, "pipeline_run", step.pipeline_run_id)

    def _resolve_dataset(self, ref: Any) -> str | None:
        from shipyard.data.service import DatasetService

        resolve = getattr(DatasetService, "resolve_version", None)
        if resolve is None or not isinstance(ref, str):
            return None  # the dataset service cannot resolve references yet
        version = resolve(DatasetService(self.db, self.artifacts), ref)
        return getattr(version, "id", None)


def _step_entity(row: sa.Row) -> StepRun:
    values = dict(row._mapping)
    values["inputs"] = values["inputs"] or {}
    values["outputs"] = values["outputs"] or {}
    return StepRun(**values)


def _check_structure(name: str, structure: Any) -> list[dict[str, Any]]:
    if not isinstance(structure, dict) or not isinstance(structure.get("steps"), list) or not structure["steps"]:
        raise InvalidInput("pipeline structure must be an object with a non-empty list of steps", field="structure")
    steps = structure["steps"]
    seen: set[str] = set()
    for step in steps:
        if not isinstance(step, dict):
            raise InvalidInput("each step of a pipeline structure must be an object", field="structure")
        step_name = check_name(step.get("name"), "step name")
        if step_name in seen:
            raise InvalidInput(f"pipeline {name!r} has two steps named {step_name!r}", field="structure")
        step["code_digest"] = normalize_digest(str(step.get("code_digest", "")))
        # Steps are listed in topological order: an input from a later step (or itself) would be a cycle.
        for arg, source in (step.get("inputs") or {}).items():
            if isinstance(source, dict) and source.get("kind") == "output" and source.get("step") not in seen:
                raise InvalidInput(
                    f"step {step_name!r} input {arg!r} comes from step {source.get('step')!r}, "
                    "which is not an earlier step of the pipeline",
                    field="structure",
                )
        seen.add(step_name)
    return steps


def _check_outputs(outputs: dict[str, Any], artifacts: ArtifactStore) -> dict[str, Any]:
    for name, ref in outputs.items():
        if not isinstance(ref, dict) or "digest" not in ref or "kind" not in ref:
            raise InvalidInput(f"output {name!r} must be an object with digest and kind", field="outputs")
        ref["digest"] = normalize_digest(ref["digest"])
        if not artifacts.has(ref["digest"]):
            raise NotFound(f"output {name!r} ({ref['digest']}) is not in the artifact store", field="outputs")
    return outputs


def runner_identity() -> str:
    """``host:pid`` of this process, the owner recorded on the runs it drives."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _runner_lost(owner: str | None, heartbeat_at: int | None, now: int) -> bool:
    if heartbeat_at is not None and now - heartbeat_at > STALE_AFTER_MS:
        return True
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only the heartbeat tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False
