"""Tracking: experiments, runs, params, metrics, tags and run artifacts — the domain rules live here.

Every state change goes through ``Database.write()`` and appends a journal entry in the same
transaction. Metric points are telemetry: they are written in bulk and not journaled one by one.
"""

from __future__ import annotations

import base64
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.artifacts import ArtifactStore
from shipyard.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.core.hashing import normalize_digest
from shipyard.core.ids import new_id
from shipyard.core.names import (
    MAX_DESCRIPTION,
    MAX_PARAM_VALUE,
    check_key,
    check_metric_value,
    check_name,
    check_text,
)
from shipyard.core.time import now_ms
from shipyard.store import schema as t
from shipyard.store.database import Database, Tx
from shipyard.store.tags import delete_tag, get_tags, set_tags, validate_tags
from shipyard.tracking.downsample import Point, bucket_extremes
from shipyard.tracking.entities import (
    Artifact,
    Experiment,
    MetricHistory,
    MetricPoint,
    Run,
    RunPage,
    RunStatus,
)

DEFAULT_EXPERIMENT = "Default"
_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, value, is_nan, step, timestamp) VALUES ({p}, {p}, {p}, {p}, {p}, {p}) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, "
    "step = excluded.step, timestamp = excluded.timestamp "
    "WHERE excluded.step > latest_metrics.step "
    "OR (excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)"
)
MAX_PAGE = 10_000
MAX_BATCH_POINTS = 100_000


class TrackingService:
    def __init__(self, db: Database, artifacts: ArtifactStore):
        self.db = db
        self.artifacts = artifacts

    # ----------------------------------------------------------------------------------------------
    # Experiments

    def create_experiment(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> Experiment:
        check_name(name, "experiment name")
        description = check_text(description, "description", MAX_DESCRIPTION) if description else None
        tag_values = validate_tags(tags)
        with self.db.write() as tx:
            if tx.conn.execute(sa.select(t.experiments.c.id).where(t.experiments.c.name == name)).first():
                raise AlreadyExists(f"experiment {name!r} already exists", field="name")
            exp_id = self._insert_experiment(tx, name, description)
            set_tags(tx, "experiment", exp_id, tag_values)
            tx.journal("experiment.created", "experiment", exp_id, {"after": {"name": name, "tags": tag_values}})
        return self.get_experiment(exp_id)

    def _insert_experiment(self, tx: Tx, name: str, description: str | None) -> str:
        exp_id = new_id()
        now = now_ms()
        tx.conn.execute(
            t.experiments.insert().values(
                id=exp_id,
                name=name,
                description=description,
                created_by=tx.actor,
                created_at=now,
                updated_at=now,
            )
        )
        return exp_id

    def get_experiment(self, id_or_name: str) -> Experiment:
        with self.db.read() as conn:
            row = self._experiment_row(conn, id_or_name)
            return Experiment(**row._mapping, tags=get_tags(conn, "experiment", [row.id]).get(row.id, {}))

    def _experiment_row(self, conn: sa.Connection, id_or_name: str) -> sa.Row:
        row = conn.execute(
            sa.select(t.experiments).where(sa.or_(t.experiments.c.id == id_or_name, t.experiments.c.name == id_or_name))
        ).first()
        if row is None:
            raise NotFound(f"experiment {id_or_name!r} not found", field="experiment")
        return row

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        with self.db.read() as conn:
            query = sa.select(t.experiments).order_by(t.experiments.c.created_at, t.experiments.c.name)
            if not include_deleted:
                query = query.where(t.experiments.c.lifecycle == "active")
            rows = conn.execute(query).all()
            all_tags = get_tags(conn, "experiment", [r.id for r in rows])
            return [Experiment(**r._mapping, tags=all_tags.get(r.id, {})) for r in rows]

    def update_experiment(self, experiment: str, name: str | None = None, description: str | None = None) -> Experiment:
        with self.db.write() as tx:
            row = self._experiment_row(tx.conn, experiment)
            changes: dict[str, Any] = {}
            if name is not None and name != row.name:
                check_name(name, "experiment name")
                if tx.conn.execute(sa.select(t.experiments.c.id).where(t.experiments.c.name == name)).first():
                    raise AlreadyExists(f"experiment {name!r} already exists", field="name")
                changes["name"] = name
            if description is not None and description != row.description:
                changes["description"] = check_text(description, "description", MAX_DESCRIPTION)
            if changes:
                tx.conn.execute(
                    t.experiments.update().where(t.experiments.c.id == row.id).values(**changes, updated_at=now_ms())
                )
                before = {k: getattr(row, k) for k in changes}
                tx.journal("experiment.updated", "experiment", row.id, {"before": before, "after": changes})
        return self.get_experiment(row.id)

    def set_experiment_lifecycle(self, experiment: str, lifecycle: str) -> Experiment:
        if lifecycle not in ("active", "deleted"):
            raise InvalidInput(f"lifecycle must be 'active' or 'deleted', not {lifecycle!r}", field="lifecycle")
        with self.db.write() as tx:
            row = self._experiment_row(tx.conn, experiment)
            if row.lifecycle != lifecycle:
                tx.conn.execute(
                    t.experiments.update()
                    .where(t.experiments.c.id == row.id)
                    .values(lifecycle=lifecycle, updated_at=now_ms())
                )
                action = "experiment.deleted" if lifecycle == "deleted" else "experiment.restored"
                tx.journal(action, "experiment", row.id, {"before": {"lifecycle": row.lifecycle}})
        return self.get_experiment(row.id)

    def set_experiment_tags(self, experiment: str, tags: dict[str, str]) -> Experiment:
        values = validate_tags(tags)
        with self.db.write() as tx:
            row = self._experiment_row(tx.conn, experiment)
            before = set_tags(tx, "experiment", row.id, values)
            if before:
                after = {k: values[k] for k in before}
                tx.journal("experiment.tags_set", "experiment", row.id, {"before": before, "after": after})
        return self.get_experiment(row.id)

    # ----------------------------------------------------------------------------------------------
    # Runs

    def create_run(
        self,
        experiment: str | None = None,
        name: str | None = None,
        description: str | None = None,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        user: str | None = None,
        start_time: int | None = None,
        environment: dict[str, Any] | None = None,
    ) -> Run:
        if name is not None:
            check_name(name, "run name")
        description = check_text(description, "description", MAX_DESCRIPTION) if description else None
        tag_values = validate_tags(tags)
        run_id = new_id()
        with self.db.write() as tx:
            exp_id = self._resolve_experiment_for_run(tx, experiment)
            if parent_run_id is not None:
                parent = self._run_row(tx.conn, parent_run_id)
                if parent.experiment_id != exp_id and experiment is None:
                    exp_id = parent.experiment_id
            values = {
                "id": run_id,
                "experiment_id": exp_id,
                "parent_run_id": parent_run_id,
                "name": name or f"run-{run_id[:8]}",
                "description": description,
                "status": RunStatus.RUNNING.value,
                "user": user or tx.actor,
                "start_time": start_time if start_time is not None else now_ms(),
                "environment": environment,
            }
            tx.conn.execute(t.runs.insert().values(**values))
            set_tags(tx, "run", run_id, tag_values)
            summary = {k: v for k, v in values.items() if k != "environment"}
            tx.journal("run.created", "run", run_id, {"after": {**summary, "tags": tag_values}})
        return self.get_run(run_id)

    def _resolve_experiment_for_run(self, tx: Tx, experiment: str | None) -> str:
        if experiment is not None:
            return self._experiment_row(tx.conn, experiment).id
        row = tx.conn.execute(sa.select(t.experiments.c.id).where(t.experiments.c.name == DEFAULT_EXPERIMENT)).first()
        if row is not None:
            return row.id
        exp_id = self._insert_experiment(tx, DEFAULT_EXPERIMENT, "Runs started without an experiment.")
        tx.journal("experiment.created", "experiment", exp_id, {"after": {"name": DEFAULT_EXPERIMENT}})
        return exp_id

    def _run_row(self, conn: sa.Connection, run_id: str) -> sa.Row:
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput("run id must be a non-empty string", field="run_id")
        row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"run {run_id!r} not found", field="run_id")
        return row

    def _running_run(self, conn: sa.Connection, run_id: str) -> None:
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput("run id must be a non-empty string", field="run_id")
        # Raw and narrow: this check precedes every metric batch.
        placeholder = "?" if conn.dialect.name == "sqlite" else "%s"
        status = conn.exec_driver_sql(f"SELECT status FROM runs WHERE id = {placeholder}", (run_id,)).scalar()
        if status is None:
            raise NotFound(f"run {run_id!r} not found", field="run_id")
        if status != RunStatus.RUNNING.value:
            raise Conflict(
                f"run {run_id!r} is {status}; params, metrics and artifacts can only be logged to a RUNNING run",
                field="run_id",
            )

    def run_links(self, run_id: str, limit: int = 100) -> dict[str, list[dict[str, Any]]]:
        """What the run is linked to by lineage: the model versions registered from it and the dataset
        versions it read or wrote (at most ``limit`` of each, oldest first)."""
        mv, rm, du, dv, ds = t.model_versions, t.registered_models, t.data_usages, t.dataset_versions, t.datasets
        with self.db.read() as conn:
            models = conn.execute(
                sa.select(rm.c.name, mv.c.version, mv.c.created_at)
                .join(rm, rm.c.id == mv.c.model_id)
                .where(mv.c.source_run_id == run_id)
                .order_by(mv.c.created_at)
                .limit(limit)
            ).all()
            datasets = conn.execute(
                sa.select(ds.c.name, dv.c.version, du.c.role, dv.c.row_count)
                .join(dv, dv.c.id == du.c.dataset_version_id)
                .join(ds, ds.c.id == dv.c.dataset_id)
                .where(du.c.consumer_type == "run", du.c.consumer_id == run_id)
                .order_by(du.c.created_at)
                .limit(limit)
            ).all()
        return {"models": [dict(r._mapping) for r in models], "datasets": [dict(r._mapping) for r in datasets]}

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            self._run_row(conn, run_id)
            return self._load_runs(conn, [run_id], with_environment=True)[0]

    def _load_runs(self, conn: sa.Connection, run_ids: Sequence[str], with_environment: bool = False) -> list[Run]:
        if not run_ids:
            return []
        columns = [c for c in t.runs.c if with_environment or c.name != "environment"]
        rows = {r.id: r for r in conn.execute(sa.select(*columns).where(t.runs.c.id.in_(run_ids)))}
        run_params: dict[str, dict[str, str]] = defaultdict(dict)
        for rid, key, value in conn.execute(
            sa.select(t.params.c.run_id, t.params.c.key, t.params.c.value).where(t.params.c.run_id.in_(run_ids))
        ):
            run_params[rid][key] = value
        run_metrics: dict[str, dict[str, float]] = defaultdict(dict)
        for rid, key, value, nan in conn.execute(
            sa.select(
                t.latest_metrics.c.run_id,
                t.latest_metrics.c.key,
                t.latest_metrics.c.value,
                t.latest_metrics.c.is_nan,
            ).where(t.latest_metrics.c.run_id.in_(run_ids))
        ):
            run_metrics[rid][key] = math.nan if nan else value
        run_tags = get_tags(conn, "run", run_ids)
        return [
            Run(
                **rows[rid]._mapping,
                params=run_params.get(rid, {}),
                metrics=run_metrics.get(rid, {}),
                tags=run_tags.get(rid, {}),
            )
            for rid in run_ids
            if rid in rows
        ]

    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> Run:
        with self.db.write() as tx:
            row = self._run_row(tx.conn, run_id)
            changes: dict[str, Any] = {}
            if name is not None and name != row.name:
                changes["name"] = check_name(name, "run name")
            if description is not None and description != row.description:
                changes["description"] = check_text(description, "description", MAX_DESCRIPTION)
            if status is not None:
                status = RunStatus(status)
                current = RunStatus(row.status)
                if current.terminal and status != current:
                    raise Conflict(
                        f"run {run_id!r} already ended as {current}; it cannot become {status}",
                        field="status",
                    )
                if status.terminal and not current.terminal:
                    changes["status"] = status.value
                    changes["end_time"] = end_time if end_time is not None else now_ms()
            if changes:
                tx.conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**changes))
                action = "run.ended" if "status" in changes else "run.updated"
                before = {k: getattr(row, k) for k in changes}
                tx.journal(action, "run", run_id, {"before": before, "after": changes})
        return self.get_run(run_id)

    def set_run_lifecycle(self, run_id: str, lifecycle: str) -> Run:
        if lifecycle not in ("active", "deleted"):
            raise InvalidInput(f"lifecycle must be 'active' or 'deleted', not {lifecycle!r}", field="lifecycle")
        with self.db.write() as tx:
            row = self._run_row(tx.conn, run_id)
            if row.lifecycle != lifecycle:
                tx.conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(lifecycle=lifecycle))
                action = "run.deleted" if lifecycle == "deleted" else "run.restored"
                tx.journal(action, "run", run_id, {"before": {"lifecycle": row.lifecycle}})
        return self.get_run(run_id)

    # ----------------------------------------------------------------------------------------------
    # Params, tags, metrics

    def log_params(self, run_id: str, params: dict[str, Any]) -> dict[str, str]:
        """Params are write-once: the same value again is accepted, a different one is a Conflict."""
        values = {
            check_key(k, "param key"): check_text(_param_text(v), f"params.{k}", MAX_PARAM_VALUE)
            for k, v in params.items()
        }
        if not values:
            return {}
        with self.db.write() as tx:
            self._running_run(tx.conn, run_id)
            existing = dict(
                tx.conn.execute(
                    sa.select(t.params.c.key, t.params.c.value).where(
                        t.params.c.run_id == run_id, t.params.c.key.in_(list(values))
                    )
                ).all()
            )
            for key, value in values.items():
                if key in existing and existing[key] != value:
                    raise Conflict(
                        f"param {key!r} of run {run_id} is already {existing[key]!r}; it cannot change to {value!r}",
                        field=f"params.{key}",
                    )
            new = {k: v for k, v in values.items() if k not in existing}
            if new:
                tx.conn.execute(t.params.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in new.items()])
                tx.journal("run.params_logged", "run", run_id, {"after": new})
        return values

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> dict[str, str]:
        values = validate_tags(tags)
        with self.db.write() as tx:
            self._run_row(tx.conn, run_id)
            before = set_tags(tx, "run", run_id, values)
            if before:
                tx.journal("run.tags_set", "run", run_id, {"before": before, "after": {k: values[k] for k in before}})
        return values

    def delete_run_tag(self, run_id: str, key: str) -> None:
        with self.db.write() as tx:
            self._run_row(tx.conn, run_id)
            old = delete_tag(tx, "run", run_id, key)
            if old is None:
                raise NotFound(f"run {run_id} has no tag {key!r}", field="key")
            tx.journal("run.tag_deleted", "run", run_id, {"before": {key: old}})

    def log_metrics(self, run_id: str, points: list[MetricPoint]) -> int:
        """Append metric points in one transaction and keep each key's latest value current."""
        if len(points) > MAX_BATCH_POINTS:
            raise InvalidInput(f"{len(points)} points in one batch; the limit is {MAX_BATCH_POINTS}", field="points")
        if not points:
            return 0
        now = now_ms()
        for key in {point.key for point in points}:
            check_key(key, "metric key")
        rows: list[tuple[str, str, float | None, bool, int, int]] = []
        latest: dict[str, tuple[str, str, float | None, bool, int, int]] = {}
        for point in points:
            value = check_metric_value(point.value, point.key)
            nan = value != value
            row = (
                run_id,
                point.key,
                None if nan else value,
                nan,
                int(point.step),
                int(point.timestamp) if point.timestamp is not None else now,
            )
            rows.append(row)
            best = latest.get(point.key)
            if best is None or (row[4], row[5]) >= (best[4], best[5]):
                latest[point.key] = row
        with self.db.write() as tx:
            self._running_run(tx.conn, run_id)
            # Raw executemany: SQLAlchemy's per-row parameter processing dominated bulk ingestion.
            placeholder = "?" if tx.dialect == "sqlite" else "%s"
            tx.conn.exec_driver_sql(
                "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) VALUES "
                f"({', '.join([placeholder] * 6)})",
                rows,
            )
            self._upsert_latest(tx.conn, list(latest.values()))
        return len(rows)

    def _upsert_latest(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Keep each key's latest point: the same ON CONFLICT statement works on SQLite and PostgreSQL."""
        placeholder = "?" if conn.dialect.name == "sqlite" else "%s"
        conn.exec_driver_sql(_UPSERT_LATEST.format(p=placeholder), rows)

    def metric_history(self, run_id: str, key: str, max_points: int | None = None) -> MetricHistory:
        """The whole series ordered by step, or at most ``max_points`` keeping each bucket's min and max."""
        if max_points is not None and max_points < 3:
            raise InvalidInput("max_points must be at least 3", field="max_points")
        with self.db.read() as conn:
            self._run_row(conn, run_id)
            total, lo, hi, nans = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.min(t.metrics.c.step),
                    sa.func.max(t.metrics.c.step),
                    sa.func.count().filter(t.metrics.c.is_nan),
                ).where(t.metrics.c.run_id == run_id, t.metrics.c.key == key)
            ).one()
            if total == 0:
                known = self._load_runs(conn, [run_id])[0].metrics
                if key not in known:
                    raise NotFound(f"run {run_id} has no metric {key!r}", field="key")
                points: list[Point] = []
            elif max_points is not None and total > max_points:
                points = bucket_extremes(conn, run_id, key, int(lo), int(hi), max_points, with_nan=bool(nans))
            else:
                points = self._all_points(conn, run_id, key)
        return MetricHistory(
            run_id=run_id,
            key=key,
            total_points=int(total),
            downsampled=len(points) < total,
            steps=[p[0] for p in points],
            values=[math.nan if p[2] else p[1] for p in points],
            timestamps=[p[3] for p in points],
        )

    def _all_points(self, conn: sa.Connection, run_id: str, key: str) -> list[Point]:
        # Plain DB-API tuples: a million SQLAlchemy Row objects cost seconds to build.
        placeholder = "?" if conn.dialect.name == "sqlite" else "%s"
        cursor = conn.connection.cursor()
        try:
            cursor.execute(
                "SELECT step, value, is_nan, timestamp FROM metrics "
                f"WHERE run_id = {placeholder} AND key = {placeholder} ORDER BY step, id",
                (run_id, key),
            )
            return [(step, value, bool(nan), stamp) for step, value, nan, stamp in cursor.fetchall()]
        finally:
            cursor.close()

    def log_batch(
        self,
        run_id: str,
        metrics: list[MetricPoint] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        if params:
            self.log_params(run_id, params)
        if tags:
            self.set_run_tags(run_id, tags)
        if metrics:
            self.log_metrics(run_id, metrics)

    # ----------------------------------------------------------------------------------------------
    # Search

    def search_runs(
        self,
        experiments: list[str] | None = None,
        filter: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunPage:
        from shipyard.tracking.search import build_search_query

        if not 1 <= max_results <= MAX_PAGE:
            raise InvalidInput(f"max_results must be between 1 and {MAX_PAGE}", field="max_results")
        offset = _decode_page_token(page_token)
        with self.db.read() as conn:
            exp_ids = [self._experiment_row(conn, e).id for e in experiments] if experiments else None
            query = build_search_query(exp_ids, filter, order_by, include_deleted=include_deleted)
            ids = [r[0] for r in conn.execute(query.limit(max_results + 1).offset(offset))]
            more = len(ids) > max_results
            ids = ids[:max_results]
            page = self._load_runs(conn, ids)
        token = _encode_page_token(offset + max_results) if more else None
        return RunPage(runs=page, next_page_token=token)

    # ----------------------------------------------------------------------------------------------
    # Artifacts

    def log_artifact(self, run_id: str, path: str, digest: str, size: int, is_tree: bool) -> Artifact:
        """Record content already in the artifact store under ``path`` of the run."""
        path = _check_artifact_path(path)
        digest = normalize_digest(digest)
        if not self.artifacts.has(digest):
            raise NotFound(f"artifact object {digest} is not in the artifact store; upload it first", field="digest")
        with self.db.write() as tx:
            self._running_run(tx.conn, run_id)
            existing = tx.conn.execute(
                sa.select(t.run_artifacts).where(t.run_artifacts.c.run_id == run_id, t.run_artifacts.c.path == path)
            ).first()
            if existing is not None:
                if existing.digest == digest:
                    return Artifact(**{k: v for k, v in existing._mapping.items() if k != "run_id"})
                raise AlreadyExists(
                    f"run {run_id} already has an artifact at {path!r} ({existing.digest})", field="path"
                )
            values = {
                "path": path,
                "digest": digest,
                "size": size,
                "is_tree": is_tree,
                "created_at": now_ms(),
            }
            tx.conn.execute(t.run_artifacts.insert().values(run_id=run_id, **values))
            tx.journal("run.artifact_logged", "run", run_id, {"after": values})
        return Artifact(**values)

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        with self.db.read() as conn:
            self._run_row(conn, run_id)
            rows = conn.execute(
                sa.select(t.run_artifacts).where(t.run_artifacts.c.run_id == run_id).order_by(t.run_artifacts.c.path)
            )
            return [Artifact(**{k: v for k, v in r._mapping.items() if k != "run_id"}) for r in rows]

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        path = _check_artifact_path(path)
        for artifact in self.list_artifacts(run_id):
            if artifact.path == path:
                return artifact
        raise NotFound(f"run {run_id} has no artifact {path!r}", field="path")


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _check_artifact_path(path: str) -> str:
    clean = path.strip().strip("/")
    if not clean or any(part in ("", ".", "..") for part in clean.split("/")) or len(clean) > 1000:
        raise InvalidInput(f"invalid artifact path {path!r}", field="path")
    return clean


def _encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except Exception as exc:
        raise InvalidInput("invalid page token", field="page_token") from exc
    if offset < 0:
        raise InvalidInput("invalid page token", field="page_token")
    return offset


def metric_points(values: Iterable[tuple[str, float, int, int | None]]) -> list[MetricPoint]:
    return [MetricPoint(key=k, value=v, step=s, timestamp=t) for k, v, s, t in values]
