"""Endpoints and deployments: the rollout state machine, its controller tick and the judge's evidence.

All state lives in the store and every transition is journaled. The data plane (serving replicas)
never decides anything: it reports what it runs and what it observed (``sync_replica``,
``record_samples``), and calls ``advance_deployment`` — the controller tick — which moves a
rollout forward when its evidence is in. Ticks from many replicas are safe: each runs in one write
transaction with the deployment row locked, so a step is taken once.

Lifecycle: ``loading`` (the candidate loads and passes smoke tests on every live replica; it gets no
traffic) -> ``running`` (the strategy's traffic policy) -> ``promoted`` | ``rolled_back`` |
``aborted`` | ``failed``. A ``rolling`` update skips ``loading``: it replaces replicas batch by batch.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from shipyard.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.core.ids import new_id
from shipyard.core.names import check_name
from shipyard.core.time import now_ms
from shipyard.deploy.entities import (
    STRATEGIES,
    Deployment,
    DeploymentStatus,
    Endpoint,
    Feedback,
    JudgementRecord,
    Replica,
    ShadowComparison,
    VariantReport,
    VersionRef,
)
from shipyard.deploy.options import DeployOptions
from shipyard.deploy.plan import ReplicaPlan, plan_for
from shipyard.deploy.stats import JudgePolicy, MetricSummary, VariantSample, judge, msprt
from shipyard.registry.service import RegistryService
from shipyard.store import schema as t
from shipyard.store.database import Database, Tx

LIVE_MS = 10_000  # a replica silent for longer is not counted (it died or was stopped)
MAX_SAMPLE = 2_000  # latencies / predictions kept per variant and replica (reservoir)
MAX_JUDGEMENTS = 500  # judgements kept on a deployment (the journal keeps every one)


class DeploymentService:
    def __init__(self, db: Database, registry: RegistryService):
        self.db = db
        self.registry = registry
        # Governance plugs in here (services.py): gates run before a deployment is written with
        # (model name, version, strategy, override justification) and raise to refuse it; live hooks
        # run inside the transaction where a version goes live with (tx, model name, version, endpoint).
        self.deploy_gates: list[Callable[[str, int, str, str | None], None]] = []
        self.live_hooks: list[Callable[[Tx, str, int, str], None]] = []

    # ------------------------------------------------------------------------------------------
    # endpoints

    def get_endpoint(self, name: str) -> Endpoint:
        with self.db.read() as conn:
            return _endpoint(self._endpoint_row(conn, name))

    def list_endpoints(self) -> list[Endpoint]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.endpoints).order_by(t.endpoints.c.name)).all()
        return [_endpoint(row) for row in rows]

    def ensure_endpoint(self, name: str, model: str) -> Endpoint:
        """The endpoint ``name``, created to serve ``model`` if it does not exist (``shipyard serve URI``)."""
        with self.db.read() as conn:
            row = self._endpoint_row(conn, name, required=False)
        if row is not None:
            return _endpoint(row)
        with contextlib.suppress(AlreadyExists, Conflict):  # another caller created it first
            self.create_deployment(name, model, "direct")
        return self.get_endpoint(name)

    # ------------------------------------------------------------------------------------------
    # deployments: the operator's verbs

    def create_deployment(
        self,
        endpoint: str,
        model: str,
        strategy: str = "canary",
        options: dict[str, Any] | None = None,
        override_justification: str | None = None,
    ) -> Deployment:
        """Roll ``model`` (a ``models:/`` URI) out to ``endpoint`` with ``strategy``.

        A new endpoint simply starts serving the model (strategy ``direct``: there is nothing to compare
        against). ``options`` are the strategy's (see :class:`DeployOptions`). Policies that apply to the
        model must pass the deploy gate; an admin may override them with ``override_justification``.
        """
        check_name(endpoint, "endpoint name")
        if strategy not in STRATEGIES:
            raise InvalidInput(
                f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}", field="strategy"
            )
        parsed = DeployOptions.for_strategy(strategy, options)
        version = self.registry.resolve(model)
        candidate = VersionRef(model_name=version.model_name, version=version.version, digest=version.digest)
        for gate in self.deploy_gates:
            gate(candidate.model_name, candidate.version, strategy, override_justification)
        now = now_ms()
        with self.db.write() as tx:
            row = self._endpoint_row(tx.conn, endpoint, required=False, lock=True)
            if row is None:
                values = {
                    "name": endpoint,
                    "model_name": candidate.model_name,
                    "model_version": candidate.version,
                    "digest": candidate.digest,
                    "revision": 1,
                    "deployment_id": None,
                    "created_by": tx.actor,
                    "created_at": now,
                    "updated_at": now,
                }
                tx.conn.execute(t.endpoints.insert().values(**values))
                tx.journal("endpoint.created", "endpoint", endpoint, {"after": {"model": candidate.label}})
                baseline, strategy = candidate, "direct"
                status, phase = "promoted", "first version of the endpoint: served directly"
            else:
                if row.deployment_id is not None:
                    raise Conflict(
                        f"endpoint {endpoint!r} already has a deployment in progress ({row.deployment_id}); "
                        "promote, roll back or abort it first",
                        field="endpoint",
                    )
                baseline = VersionRef(model_name=row.model_name, version=row.model_version, digest=row.digest)
                if baseline.digest == candidate.digest:
                    raise Conflict(f"endpoint {endpoint!r} already serves {candidate.label}", field="model")
                if strategy == "rolling":
                    status, phase = "running", "waiting for serving replicas"
                else:
                    status, phase = "loading", "loading and smoke-testing the candidate on every replica"
            deployment_id = new_id()
            record = {
                "id": deployment_id,
                "endpoint": endpoint,
                "strategy": strategy,
                "status": status,
                "phase": phase,
                "baseline_model": baseline.model_name,
                "baseline_version": baseline.version,
                "baseline_digest": baseline.digest,
                "candidate_model": candidate.model_name,
                "candidate_version": candidate.version,
                "candidate_digest": candidate.digest,
                "config": parsed.model_dump(mode="json"),
                "step": 0,
                "weight": 0.0,
                "step_started_at": now if status == "running" else None,
                "next_judgement_at": None,
                "replicas": {"batch": [], "done": []} if strategy == "rolling" else {},
                "judgements": [],
                "outcome": "promoted" if status == "promoted" else None,
                "created_by": tx.actor,
                "created_at": now,
                "updated_at": now,
                "finished_at": now if status == "promoted" else None,
            }
            tx.conn.execute(t.deployments.insert().values(**record))
            tx.journal(
                "deployment.created",
                "deployment",
                deployment_id,
                {
                    "endpoint": endpoint,
                    "strategy": strategy,
                    "baseline": baseline.label,
                    "candidate": candidate.label,
                    "options": record["config"],
                },
            )
            if row is not None:
                changes: dict[str, Any] = {"revision": row.revision + 1, "updated_at": now}
                if status == "promoted":
                    changes.update(_stable(candidate))
                    tx.journal("deployment.promoted", "deployment", deployment_id, {"endpoint": endpoint})
                else:
                    changes["deployment_id"] = deployment_id
                tx.conn.execute(t.endpoints.update().where(t.endpoints.c.name == endpoint).values(**changes))
            if status == "promoted":
                for hook in self.live_hooks:
                    hook(tx, candidate.model_name, candidate.version, endpoint)
        return self.get_deployment(deployment_id)

    def get_deployment(self, deployment_id: str) -> Deployment:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.deployments).where(t.deployments.c.id == deployment_id)).first()
        if row is None:
            raise NotFound(f"no deployment {deployment_id!r}", field="deployment_id")
        return _deployment(row)

    def deployment_history(self, endpoint: str, limit: int = 20) -> list[Deployment]:
        """The endpoint's deployments, newest first, each with its judgements and outcome."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000", field="limit")
        with self.db.read() as conn:
            self._endpoint_row(conn, endpoint)
            rows = conn.execute(
                sa.select(t.deployments)
                .where(t.deployments.c.endpoint == endpoint)
                .order_by(t.deployments.c.created_at.desc(), t.deployments.c.id.desc())
                .limit(limit)
            ).all()
        return [_deployment(row) for row in rows]

    def deployment_status(self, endpoint: str) -> DeploymentStatus:
        """The endpoint, its active (or latest) deployment, live figures per variant, the judge's current
        view and the replicas serving it."""
        with self.db.read() as conn:
            ep = _endpoint(self._endpoint_row(conn, endpoint))
            row = conn.execute(
                sa.select(t.deployments)
                .where(t.deployments.c.endpoint == endpoint)
                .order_by(t.deployments.c.created_at.desc(), t.deployments.c.id.desc())
                .limit(1)
            ).first()
            replicas = self._replicas(conn, endpoint, live_only=False)
            deployment = _deployment(row) if row is not None else None
            status = DeploymentStatus(endpoint=ep, deployment=deployment, replicas=replicas)
            if deployment is None or deployment.strategy in ("direct", "rolling"):
                return status
            samples = self._samples(conn, deployment)
        policy = JudgePolicy.model_validate(deployment.config.get("judge", {}))
        labels = {"baseline": deployment.baseline.label, "candidate": deployment.candidate.label}
        for variant in ("baseline", "candidate", "shadow"):
            if variant in samples:
                status.variants.append(
                    _variant_report(variant, labels.get(variant, deployment.candidate.label), samples[variant])
                )
        if deployment.strategy == "shadow" and "shadow" in samples:
            shadow = samples["shadow"]
            status.shadow = ShadowComparison(
                compared=shadow.compared,
                agreement_rate=shadow.agreed / shadow.compared if shadow.compared else None,
                mean_abs_diff=shadow.abs_diff / shadow.compared if shadow.compared else None,
                judgement=judge(samples.get("baseline", _Observed()).sample, shadow.sample, policy),
            )
        elif "baseline" in samples or "candidate" in samples:
            status.judgement = judge(
                samples.get("baseline", _Observed()).sample, samples.get("candidate", _Observed()).sample, policy
            )
        return status

    def promote_deployment(self, endpoint: str, reason: str | None = None) -> Deployment:
        """Finish the active rollout with the candidate serving all traffic, now."""
        with self.db.write() as tx:
            d = self._active(tx.conn, endpoint)
            if d.status == "loading":
                raise Conflict(
                    f"the candidate {d.candidate.label} is still loading on the replicas of {endpoint!r}; "
                    "it can be promoted once it has passed its smoke tests",
                    field="endpoint",
                )
            self._finish(tx, d, "promoted", reason or "promoted by an operator")
        return self.get_deployment(d.id)

    def rollback_deployment(self, endpoint: str, reason: str | None = None) -> Deployment:
        """Send all traffic back to the baseline. Without an active rollout, roll the endpoint back to the
        version it served before its last promotion (a new ``direct`` deployment records it)."""
        with self.db.write() as tx:
            row = self._endpoint_row(tx.conn, endpoint, lock=True)
            if row.deployment_id is not None:
                d = self._active(tx.conn, endpoint)
                self._finish(tx, d, "rolled_back", reason or "rolled back by an operator")
                return_id = d.id
            else:
                last = tx.conn.execute(
                    sa.select(t.deployments)
                    .where(
                        t.deployments.c.endpoint == endpoint,
                        t.deployments.c.status == "promoted",
                        t.deployments.c.baseline_digest != t.deployments.c.candidate_digest,
                    )
                    .order_by(t.deployments.c.finished_at.desc())
                    .limit(1)
                ).first()
                if last is None or last.candidate_digest != row.digest:
                    raise Conflict(
                        f"endpoint {endpoint!r} has no rollout to roll back (nothing in progress, and its current "
                        "version was not reached by a promotion)",
                        field="endpoint",
                    )
                previous = _deployment(last).baseline
                now = now_ms()
                return_id = new_id()
                tx.conn.execute(
                    t.deployments.insert().values(
                        id=return_id,
                        endpoint=endpoint,
                        strategy="direct",
                        status="promoted",
                        phase=f"rollback of deployment {last.id}",
                        baseline_model=row.model_name,
                        baseline_version=row.model_version,
                        baseline_digest=row.digest,
                        candidate_model=previous.model_name,
                        candidate_version=previous.version,
                        candidate_digest=previous.digest,
                        config={},
                        step=0,
                        weight=1.0,
                        replicas={},
                        judgements=[],
                        outcome=reason or f"rolled back to {previous.label}",
                        created_by=tx.actor,
                        created_at=now,
                        updated_at=now,
                        finished_at=now,
                    )
                )
                tx.conn.execute(
                    t.endpoints.update()
                    .where(t.endpoints.c.name == endpoint)
                    .values(**_stable(previous), revision=row.revision + 1, updated_at=now)
                )
                tx.journal(
                    "deployment.rolled_back",
                    "deployment",
                    return_id,
                    {
                        "endpoint": endpoint,
                        "to": previous.label,
                        "from": f"{row.model_name}/{row.model_version}",
                        "reason": reason,
                    },
                )
        return self.get_deployment(return_id)

    def abort_deployment(self, endpoint: str, reason: str | None = None) -> Deployment:
        """Stop the active rollout without a verdict; the baseline keeps (or gets back) all traffic."""
        with self.db.write() as tx:
            d = self._active(tx.conn, endpoint)
            self._finish(tx, d, "aborted", reason or "aborted by an operator")
        return self.get_deployment(d.id)

    # ------------------------------------------------------------------------------------------
    # the data plane's calls

    def sync_replica(
        self,
        replica_id: str,
        endpoint: str,
        *,
        host: str = "",
        pid: int = 0,
        revision: int = 0,
        serving: list[str] | None = None,
        versions: dict[str, str] | None = None,
    ) -> ReplicaPlan:
        """Heartbeat of a serving replica (what it runs, what it loaded) and, in return, its plan."""
        now = now_ms()
        values = {
            "host": host,
            "pid": pid,
            "revision": revision,
            "serving": serving or [],
            "versions": versions or {},
            "heartbeat_at": now,
        }
        with self.db.write() as tx:
            updated = tx.conn.execute(
                t.serving_replicas.update()
                .where(t.serving_replicas.c.id == replica_id, t.serving_replicas.c.endpoint == endpoint)
                .values(**values)
            ).rowcount
            if not updated:
                self._endpoint_row(tx.conn, endpoint)
                tx.conn.execute(
                    t.serving_replicas.insert().values(id=replica_id, endpoint=endpoint, started_at=now, **values)
                )
                # Replicas silent for a minute are gone: forget them so the table stays small.
                tx.conn.execute(
                    t.serving_replicas.delete().where(
                        t.serving_replicas.c.endpoint == endpoint, t.serving_replicas.c.heartbeat_at < now - 60_000
                    )
                )
        return self.replica_plan(endpoint, replica_id)

    def replica_plan(self, endpoint: str, replica_id: str) -> ReplicaPlan:
        with self.db.read() as conn:
            row = self._endpoint_row(conn, endpoint)
            d = None
            if row.deployment_id is not None:
                d_row = conn.execute(sa.select(t.deployments).where(t.deployments.c.id == row.deployment_id)).first()
                d = _deployment(d_row) if d_row is not None else None
        return plan_for(_endpoint(row), d, replica_id)

    def record_samples(self, replica_id: str, samples: list[dict[str, Any]], routes: list[dict[str, Any]]) -> None:
        """Store a replica's cumulative observations per (deployment, step, variant) and which variant
        answered each prediction of a rollout (for feedback attribution)."""
        for field, items, required in (
            ("samples", samples, ("deployment_id", "step", "variant")),
            ("routes", routes, ("prediction_id", "deployment_id", "variant")),
        ):
            for i, item in enumerate(items):
                missing = [k for k in required if not isinstance(item, dict) or k not in item]
                if missing:
                    raise InvalidInput(f"{field}[{i}] lacks {missing[0]!r}", field=f"{field}.{i}.{missing[0]}")
        try:
            self._record_samples(replica_id, samples, routes)
        except (TypeError, ValueError) as exc:  # a field of the wrong type: nothing was stored
            raise InvalidInput(f"malformed replica samples: {exc}", field="samples") from None

    def _record_samples(self, replica_id: str, samples: list[dict[str, Any]], routes: list[dict[str, Any]]) -> None:
        now = now_ms()
        with self.db.write() as tx:
            for sample in samples:
                key = {
                    "deployment_id": str(sample["deployment_id"]),
                    "step": int(sample["step"]),
                    "variant": str(sample["variant"]),
                    "replica_id": replica_id,
                }
                values = {
                    "requests": int(sample.get("requests", 0)),
                    "errors": int(sample.get("errors", 0)),
                    "latencies": [float(x) for x in sample.get("latencies", [])][:MAX_SAMPLE],
                    "predictions": list(sample.get("predictions", []))[:MAX_SAMPLE],
                    "compared": int(sample.get("compared", 0)),
                    "agreed": int(sample.get("agreed", 0)),
                    "abs_diff": float(sample.get("abs_diff", 0.0)),
                    "updated_at": now,
                }
                s = t.deployment_samples.c
                updated = tx.conn.execute(
                    t.deployment_samples.update()
                    .where(
                        s.deployment_id == key["deployment_id"],
                        s.step == key["step"],
                        s.variant == key["variant"],
                        s.replica_id == replica_id,
                    )
                    .values(**values)
                ).rowcount
                if not updated:
                    tx.conn.execute(t.deployment_samples.insert().values(**key, **values))
            if routes:
                rows = [
                    {
                        "prediction_id": str(r["prediction_id"]),
                        "deployment_id": str(r["deployment_id"]),
                        "variant": str(r["variant"]),
                        "ts": int(r.get("ts", now)),
                    }
                    for r in routes
                ]
                ids = [r["prediction_id"] for r in rows]
                known = set(
                    tx.conn.execute(
                        sa.select(t.routed_predictions.c.prediction_id).where(
                            t.routed_predictions.c.prediction_id.in_(ids)
                        )
                    ).scalars()
                )
                fresh = [r for r in rows if r["prediction_id"] not in known]
                if fresh:
                    tx.conn.execute(t.routed_predictions.insert(), fresh)

    def record_feedback(self, items: list[dict[str, Any]], metric: str = "reward") -> Feedback:
        """Report business outcomes (or labels) by prediction id: ``[{"prediction_id", "value"[, "metric"]}]``.

        Idempotent per (prediction id, metric): sending a value again replaces it. Ids that no rollout
        routed are stored too, and listed, so a typo is visible rather than silently dropped.
        """
        if not isinstance(items, list) or not items:
            raise InvalidInput("give a non-empty list of {prediction_id, value} items", field="items")
        rows = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("prediction_id"), str):
                raise InvalidInput(f"item {i} needs a string 'prediction_id'", field=f"items[{i}].prediction_id")
            value = item.get("value")
            if isinstance(value, bool):
                value = float(value)
            if not isinstance(value, int | float) or value != value or value in (float("inf"), float("-inf")):
                raise InvalidInput(f"item {i} needs a finite number 'value'", field=f"items[{i}].value")
            name = str(item.get("metric") or metric)
            check_name(name, "metric name")
            rows.append({"prediction_id": item["prediction_id"], "metric": name, "value": float(value)})
        now = now_ms()
        with self.db.write() as tx:
            f = t.prediction_feedback.c
            for row in rows:
                updated = tx.conn.execute(
                    t.prediction_feedback.update()
                    .where(f.prediction_id == row["prediction_id"], f.metric == row["metric"])
                    .values(value=row["value"], created_at=now)
                ).rowcount
                if not updated:
                    tx.conn.execute(t.prediction_feedback.insert().values(**row, created_at=now))
            ids = sorted({r["prediction_id"] for r in rows})
            routed = set(
                tx.conn.execute(
                    sa.select(t.routed_predictions.c.prediction_id).where(t.routed_predictions.c.prediction_id.in_(ids))
                ).scalars()
            )
            tx.journal("feedback.recorded", "feedback", rows[0]["metric"], {"count": len(rows)})
        return Feedback(accepted=len(rows), unknown=[i for i in ids if i not in routed])

    # ------------------------------------------------------------------------------------------
    # the controller tick

    def advance_deployment(self, endpoint: str, now: int | None = None) -> Deployment | None:
        """Move the endpoint's active rollout forward if its evidence is in; None when nothing is active."""
        now = now_ms() if now is None else now
        with self.db.read() as conn:
            row = self._endpoint_row(conn, endpoint)
            if row.deployment_id is None:
                return None
            d = _deployment(conn.execute(sa.select(t.deployments).where(t.deployments.c.id == row.deployment_id)).one())
        if not _due(d, now):
            return d
        with self.db.write() as tx:
            try:
                d = self._active(tx.conn, endpoint)
            except Conflict:
                return None
            if _due(d, now):
                _Controller(self, tx, d, now).tick()
        return self.get_deployment(d.id)

    # ------------------------------------------------------------------------------------------
    # internals

    def _finish(self, tx: Tx, d: Deployment, status: str, outcome: str, evidence: dict[str, Any] | None = None) -> None:
        now = now_ms()
        tx.conn.execute(
            t.deployments.update()
            .where(t.deployments.c.id == d.id)
            .values(
                status=status,
                phase=outcome,
                outcome=outcome,
                updated_at=now,
                finished_at=now,
                weight=1.0 if status == "promoted" else 0.0,
            )
        )
        row = self._endpoint_row(tx.conn, d.endpoint)
        changes: dict[str, Any] = {"deployment_id": None, "revision": row.revision + 1, "updated_at": now}
        if status == "promoted":
            changes.update(_stable(d.candidate))
            for hook in self.live_hooks:
                hook(tx, d.candidate.model_name, d.candidate.version, d.endpoint)
        tx.conn.execute(t.endpoints.update().where(t.endpoints.c.name == d.endpoint).values(**changes))
        tx.journal(
            f"deployment.{status}",
            "deployment",
            d.id,
            {
                "endpoint": d.endpoint,
                "baseline": d.baseline.label,
                "candidate": d.candidate.label,
                "outcome": outcome,
                **(evidence or {}),
            },
        )

    def _active(self, conn: sa.Connection, endpoint: str) -> Deployment:
        row = self._endpoint_row(conn, endpoint, lock=True)
        if row.deployment_id is None:
            raise Conflict(f"endpoint {endpoint!r} has no deployment in progress", field="endpoint")
        d_row = conn.execute(
            sa.select(t.deployments).where(t.deployments.c.id == row.deployment_id).with_for_update()
        ).one()
        return _deployment(d_row)

    def _endpoint_row(self, conn: sa.Connection, name: str, *, required: bool = True, lock: bool = False) -> Any:
        query = sa.select(t.endpoints).where(t.endpoints.c.name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None and required:
            raise NotFound(f"no endpoint named {name!r}", field="endpoint")
        return row

    def _replicas(self, conn: sa.Connection, endpoint: str, *, live_only: bool = True) -> list[Replica]:
        now = now_ms()
        rows = conn.execute(
            sa.select(t.serving_replicas)
            .where(t.serving_replicas.c.endpoint == endpoint)
            .order_by(t.serving_replicas.c.id)
        ).all()
        replicas = [Replica(**row._mapping, live=now - row.heartbeat_at <= LIVE_MS) for row in rows]
        return [r for r in replicas if r.live] if live_only else replicas

    def _samples(self, conn: sa.Connection, d: Deployment, step: int | None = None) -> dict[str, _Observed]:
        """Observations of ``d`` summed over replicas, per variant (this step only when ``step`` is given)."""
        s = t.deployment_samples.c
        query = sa.select(t.deployment_samples).where(s.deployment_id == d.id)
        if step is not None:
            query = query.where(s.step == step)
        observed: dict[str, _Observed] = defaultdict(_Observed)
        for row in conn.execute(query):
            observed[row.variant].add(row)
        # business metrics reported through feedback, attributed by the routed prediction ids
        r, f = t.routed_predictions.c, t.prediction_feedback.c
        metric_rows = conn.execute(
            sa.select(r.variant, f.metric, sa.func.count(), sa.func.sum(f.value), sa.func.sum(f.value * f.value))
            .select_from(t.routed_predictions.join(t.prediction_feedback, r.prediction_id == f.prediction_id))
            .where(r.deployment_id == d.id)
            .group_by(r.variant, f.metric)
        ).all()
        for variant, metric, n, total, total_sq in metric_rows:
            observed[variant].sample.metrics[metric] = MetricSummary(n=n, total=total or 0.0, total_sq=total_sq or 0.0)
        return dict(observed)


class _Observed:
    """One variant's observations summed over replicas."""

    def __init__(self) -> None:
        self.sample = VariantSample()
        self.compared = 0
        self.agreed = 0
        self.abs_diff = 0.0

    def add(self, row: Any) -> None:
        self.sample.requests += row.requests
        self.sample.errors += row.errors
        self.sample.latencies_ms.extend(row.latencies)
        self.sample.predictions.extend(row.predictions)
        self.compared += row.compared
        self.agreed += row.agreed
        self.abs_diff += row.abs_diff


def _variant_report(variant: str, model: str, observed: _Observed) -> VariantReport:
    import numpy as np

    s = observed.sample
    lat = np.asarray(s.latencies_ms, dtype=float)
    return VariantReport(
        variant=variant,
        model=model,
        requests=s.requests,
        errors=s.errors,
        error_rate=s.errors / s.requests if s.requests else None,
        latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else None,
        latency_p99_ms=float(np.percentile(lat, 99)) if lat.size else None,
        feedback={name: {"n": m.n, "mean": m.total / m.n if m.n else 0.0} for name, m in s.metrics.items()},
    )


def _due(d: Deployment, now: int) -> bool:
    """Whether a tick could change anything (checked before taking the write lock)."""
    if d.status == "loading" or d.strategy == "rolling":
        return True
    if d.strategy == "bluegreen":  # manual: the old slot stays warm until an operator promotes or rolls back
        held = d.step_started_at is not None and now >= d.step_started_at + d.config["hold_seconds"] * 1000
        return held and d.config.get("auto", True)
    return d.next_judgement_at is not None and now >= d.next_judgement_at


class _Controller:
    """One tick of one rollout, inside the service's write transaction."""

    def __init__(self, service: DeploymentService, tx: Tx, d: Deployment, now: int):
        self.service, self.tx, self.d, self.now = service, tx, d, now
        self.options = DeployOptions.model_validate(d.config)

    def tick(self) -> None:
        if self.d.status == "loading":
            self.loading()
        elif self.d.strategy == "rolling":
            self.rolling()
        elif self.d.strategy == "bluegreen":
            self.service._finish(self.tx, self.d, "promoted", "blue-green hold elapsed; the old slot is released")
        elif self.d.strategy == "ab":
            self.ab_test()
        else:
            self.judge_step()

    # -- helpers

    def update(self, journal_action: str | None = None, payload: dict[str, Any] | None = None, **values: Any) -> None:
        values["updated_at"] = self.now
        self.tx.conn.execute(t.deployments.update().where(t.deployments.c.id == self.d.id).values(**values))
        if journal_action:
            self.tx.journal(journal_action, "deployment", self.d.id, {"endpoint": self.d.endpoint, **(payload or {})})

    def bump_revision(self) -> None:
        self.tx.conn.execute(
            t.endpoints.update()
            .where(t.endpoints.c.name == self.d.endpoint)
            .values(revision=t.endpoints.c.revision + 1, updated_at=self.now)
        )

    def record(self, record: JudgementRecord, **values: Any) -> None:
        judgements = [j.model_dump(mode="json") for j in self.d.judgements][-(MAX_JUDGEMENTS - 1) :]
        judgements.append(record.model_dump(mode="json"))
        self.update("deployment.judged", {"judgement": record.model_dump(mode="json")}, judgements=judgements, **values)

    def replicas(self) -> list[Replica]:
        return self.service._replicas(self.tx.conn, self.d.endpoint)

    def interval_ms(self) -> int:
        return max(1, int(self.options.step_seconds * 1000))

    # -- loading: the candidate must be ready on every live replica before it gets traffic

    def loading(self) -> None:
        replicas = self.replicas()
        digest = self.d.candidate.digest
        for replica in replicas:
            state = replica.versions.get(digest, "")
            if state.startswith("failed"):
                self.service._finish(
                    self.tx,
                    self.d,
                    "failed",
                    f"candidate {self.d.candidate.label} failed on replica {replica.id}: {state[len('failed: ') :]}",
                )
                return
        if not replicas:
            if self.d.phase != "waiting for a serving replica":
                self.update(phase="waiting for a serving replica")
            return
        if not all(r.versions.get(digest) == "ready" for r in replicas):
            return
        if self.d.strategy == "direct":
            self.service._finish(self.tx, self.d, "promoted", f"loaded on {len(replicas)} replica(s), then switched")
            return
        weight = {"canary": self.options.steps[0] / 100, "ab": self.options.split / 100}.get(self.d.strategy, 0.0)
        phase = {
            "canary": f"step 1/{len(self.options.steps)}: {self.options.steps[0]:g}% of traffic to the candidate",
            "ab": f"A/B test: {self.options.split:g}% of keys to the candidate",
            "shadow": f"shadowing {self.options.sample:.0%} of requests to the candidate",
            "bluegreen": "switched to the candidate; the old slot stays warm",
        }[self.d.strategy]
        self.update(
            "deployment.started",
            {"phase": phase, "replicas": [r.id for r in replicas]},
            status="running",
            phase=phase,
            weight=1.0 if self.d.strategy == "bluegreen" else weight,
            step=0,
            step_started_at=self.now,
            next_judgement_at=self.now + self.interval_ms(),
        )
        self.bump_revision()

    # -- canary and shadow: the judge at every interval

    def spent_policy(self) -> JudgePolicy:
        """The judge's policy for this look, with alpha spent over the looks of the step.

        A step that stays inconclusive is judged again at every interval. Testing each look at the same
        alpha would make a false verdict ever likelier the longer a step runs; spending
        ``alpha * 6 / (pi^2 k^2)`` at the k-th look that had data keeps the total over all looks within
        ``alpha`` (the series sums to 1), so a long step is as trustworthy as a short one.
        """
        looks = 1 + sum(
            1
            for j in self.d.judgements
            if j.step == self.d.step and any("more_samples_needed" not in c.details for c in j.checks)
        )
        policy = self.options.judge
        return policy.model_copy(update={"alpha": policy.alpha * 6 / (math.pi**2 * looks**2)})

    def judge_step(self) -> None:
        d = self.d
        samples = self.service._samples(self.tx.conn, d, step=d.step)
        policy = self.spent_policy()
        baseline = samples.get("baseline", _Observed()).sample
        other = "shadow" if d.strategy == "shadow" else "candidate"
        candidate = samples.get(other, _Observed()).sample
        # business metrics are judged on every step so far (feedback arrives late and is sparse)
        for variant, observed in self.service._samples(self.tx.conn, d).items():
            target = baseline if variant == "baseline" else candidate if variant == other else None
            if target is not None:
                target.metrics = observed.sample.metrics
        judgement = judge(baseline, candidate, policy)
        steps = self.options.steps
        nxt = self.now + self.interval_ms()
        base = {
            "at": self.now,
            "step": d.step,
            "weight": d.weight,
            "verdict": judgement.verdict,
            "summary": judgement.summary,
            "checks": judgement.checks,
            "alpha": policy.alpha,
        }
        if judgement.verdict == "fail":
            if self.options.auto:
                self.record(JudgementRecord(**base, action="rollback"))
                self.service._finish(
                    self.tx,
                    self.fresh(),
                    "rolled_back",
                    f"judge failed: {judgement.summary}",
                    {"judgement": judgement.model_dump(mode="json")},
                )
            else:
                self.record(
                    JudgementRecord(**base, action="hold"),
                    next_judgement_at=nxt,
                    phase=f"judge failed; waiting for an operator to roll back or promote ({judgement.summary})",
                )
            return
        if judgement.verdict == "inconclusive" or d.strategy == "shadow" or not self.options.auto:
            action = "extend" if judgement.verdict == "inconclusive" else "hold"
            if d.strategy == "shadow" and judgement.verdict == "pass" and self.options.auto:
                self.record(JudgementRecord(**base, action="promote"))
                self.service._finish(self.tx, self.fresh(), "promoted", f"shadow judged: {judgement.summary}")
                return
            self.record(JudgementRecord(**base, action=action), next_judgement_at=nxt)
            return
        if d.step + 1 >= len(steps):
            self.record(JudgementRecord(**base, action="promote"))
            self.service._finish(self.tx, self.fresh(), "promoted", f"all {len(steps)} canary steps passed the judge")
            return
        step = d.step + 1
        phase = f"step {step + 1}/{len(steps)}: {steps[step]:g}% of traffic to the candidate"
        self.record(
            JudgementRecord(**base, action="advance"),
            step=step,
            weight=steps[step] / 100,
            step_started_at=self.now,
            next_judgement_at=nxt,
            phase=phase,
        )
        self.bump_revision()

    def fresh(self) -> Deployment:
        row = self.tx.conn.execute(sa.select(t.deployments).where(t.deployments.c.id == self.d.id)).one()
        return _deployment(row)

    # -- A/B: a sequential test on the business metric, with the error rate as a guardrail

    def ab_test(self) -> None:
        d, o = self.d, self.options
        samples = self.service._samples(self.tx.conn, d)
        baseline = samples.get("baseline", _Observed()).sample
        candidate = samples.get("candidate", _Observed()).sample
        guard_policy = self.spent_policy()
        guard = judge(
            VariantSample(requests=baseline.requests, errors=baseline.errors),
            VariantSample(requests=candidate.requests, errors=candidate.errors),
            guard_policy,
        )
        summary_empty = MetricSummary()
        test = msprt(
            baseline.metrics.get(o.metric, summary_empty),
            candidate.metrics.get(o.metric, summary_empty),
            alpha=o.alpha,
            max_samples=o.max_samples,
        )
        if not o.higher_is_better and test.decision in ("candidate_better", "baseline_better"):
            flipped = "baseline_better" if test.decision == "candidate_better" else "candidate_better"
            test = test.model_copy(update={"decision": flipped})
        base = {
            "at": self.now,
            "step": d.step,
            "weight": d.weight,
            "checks": guard.checks,
            "sequential": test,
            "alpha": guard_policy.alpha,
        }
        nxt = self.now + self.interval_ms()
        if guard.verdict == "fail":
            self.record(JudgementRecord(**base, verdict="fail", summary=guard.summary, action="rollback"))
            self.service._finish(self.tx, self.fresh(), "rolled_back", f"error-rate guardrail failed: {guard.summary}")
            return
        if test.decision == "continue" or not o.auto:
            self.record(
                JudgementRecord(**base, verdict=test.decision, summary=test.message, action="extend"),
                next_judgement_at=nxt,
            )
            return
        if test.decision == "candidate_better":
            self.record(JudgementRecord(**base, verdict=test.decision, summary=test.message, action="promote"))
            self.service._finish(self.tx, self.fresh(), "promoted", f"A/B winner: candidate ({test.message})")
        else:
            self.record(JudgementRecord(**base, verdict=test.decision, summary=test.message, action="rollback"))
            why = "baseline won" if test.decision == "baseline_better" else "no difference at the maximum sample"
            self.service._finish(self.tx, self.fresh(), "rolled_back", f"A/B: {why} ({test.message})")

    # -- rolling: replace replicas batch by batch, readiness-checked; restore everything on failure

    def rolling(self) -> None:
        d, o = self.d, self.options
        batch: list[str] = list(d.replicas.get("batch", []))
        done: list[str] = list(d.replicas.get("done", []))
        replicas = {r.id: r for r in self.replicas()}
        digest = d.candidate.digest
        if batch:
            for rid in batch:
                replica = replicas.get(rid)
                state = replica.versions.get(digest, "") if replica else ""
                if state.startswith("failed"):
                    self.service._finish(
                        self.tx,
                        d,
                        "rolled_back",
                        f"replica {rid} failed its readiness check: {state[len('failed: ') :]}; "
                        f"all replicas restored to {d.baseline.label}",
                    )
                    return
            if d.step_started_at is not None and self.now - d.step_started_at > o.readiness_timeout_seconds * 1000:
                self.service._finish(
                    self.tx,
                    d,
                    "rolled_back",
                    f"replicas {', '.join(batch)} were not ready within "
                    f"{o.readiness_timeout_seconds:g} s; all replicas restored to {d.baseline.label}",
                )
                return
            ready = all(
                rid not in replicas
                or (replicas[rid].serving == [digest] and replicas[rid].versions.get(digest) == "ready")
                for rid in batch
            )
            if not ready:
                return
            done += [rid for rid in batch if rid in replicas]
            batch = []
        remaining = [rid for rid in sorted(replicas) if rid not in done]
        if not replicas:
            if d.phase != "waiting for serving replicas":
                self.update(phase="waiting for serving replicas", replicas={"batch": [], "done": done})
            return
        if not remaining:
            self.update(replicas={"batch": [], "done": done})
            self.service._finish(
                self.tx, self.fresh(), "promoted", f"all {len(done)} replicas replaced with {d.candidate.label}"
            )
            return
        batch = remaining[: o.batch_size]
        phase = f"replacing replicas {', '.join(batch)} ({len(done)}/{len(replicas)} done)"
        self.update(
            "deployment.step",
            {"batch": batch, "done": done},
            replicas={"batch": batch, "done": done},
            step=d.step + 1,
            step_started_at=self.now,
            phase=phase,
        )
        self.bump_revision()


def _stable(version: VersionRef) -> dict[str, Any]:
    return {"model_name": version.model_name, "model_version": version.version, "digest": version.digest}


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        name=row.name,
        stable=VersionRef(model_name=row.model_name, version=row.model_version, digest=row.digest),
        revision=row.revision,
        deployment_id=row.deployment_id,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _deployment(row: Any) -> Deployment:
    m = row._mapping
    return Deployment(
        **{
            k: m[k]
            for k in (
                "id",
                "endpoint",
                "strategy",
                "status",
                "phase",
                "config",
                "step",
                "weight",
                "step_started_at",
                "next_judgement_at",
                "replicas",
                "judgements",
                "outcome",
                "created_by",
                "created_at",
                "updated_at",
                "finished_at",
            )
        },
        baseline=VersionRef(model_name=m["baseline_model"], version=m["baseline_version"], digest=m["baseline_digest"]),
        candidate=VersionRef(
            model_name=m["candidate_model"], version=m["candidate_version"], digest=m["candidate_digest"]
        ),
    )


def reservoir(
    values: list[Any], seen: int, value: Any, capacity: int = MAX_SAMPLE, rng: random.Random | None = None
) -> None:
    """Algorithm R: keep a uniform sample of at most ``capacity`` of the ``seen`` values so far."""
    if len(values) < capacity:
        values.append(value)
        return
    j = (rng or random).randrange(seen)
    if j < capacity:
        values[j] = value
