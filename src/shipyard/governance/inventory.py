"""The model inventory: one row per registered model with what a governance dashboard shows first —
risk tier, each version's lifecycle stage, approvals and latest policy decision, where it is
deployed, its monitors' latest status and the alerts still open.

Read-only and assembled with a fixed number of queries whatever the number of models, so the
dashboard's landing page stays fast on a large registry.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from shipyard.core.errors import NotFound
from shipyard.governance.lifecycle import rounds
from shipyard.store import schema as t


class VersionSummary(BaseModel):
    version: int
    stage: str
    digest: str
    created_by: str | None = None
    created_at: int
    aliases: list[str] = Field(default_factory=list)
    approvals: int = 0  # approvals that count: this review round, bound to this version's digest
    rejections: int = 0  # in this review round
    policy: dict[str, Any] | None = None  # the latest gate decision: gate, passed, override, violations, at
    signed: bool = False


class MonitorSummary(BaseModel):
    name: str
    endpoint: str | None = None
    last_window_end: int | None = None
    rows: int | None = None
    drift_share: float | None = None
    drifted: list[str] = Field(default_factory=list)
    performance: dict[str, Any] = Field(default_factory=dict)


class AlertSummary(BaseModel):
    id: str
    monitor: str
    status: str
    severity: str
    metric: str
    value: float | None = None
    fired_at: int


class InventoryItem(BaseModel):
    name: str
    description: str | None = None
    risk_tier: str | None = None
    owner: str | None = None
    latest_version: int | None = None
    aliases: dict[str, int] = Field(default_factory=dict)
    versions: list[VersionSummary] = Field(default_factory=list)
    endpoints: list[dict[str, Any]] = Field(default_factory=list)  # {name, version, deployment_id}
    monitors: list[MonitorSummary] = Field(default_factory=list)
    open_alerts: list[AlertSummary] = Field(default_factory=list)
    status: str = "ok"  # ok | attention (open alerts or a failed policy) | critical (a critical alert firing)


class InventoryService:
    def __init__(self, services: Any):
        self.services = services
        self.db = services.db

    def model_inventory(self, name_like: str | None = None, risk_tier: str | None = None) -> list[InventoryItem]:
        """Every registered model (optionally filtered by a name substring or risk tier) for the dashboard."""
        with self.db.read() as conn:
            query = sa.select(t.registered_models).order_by(t.registered_models.c.name)
            if name_like:
                query = query.where(t.registered_models.c.name.contains(name_like, autoescape=True))
            if risk_tier:
                query = query.where(t.registered_models.c.risk_tier == risk_tier)
            models = conn.execute(query).all()
            return self._items(conn, models)

    def model_overview(self, name: str) -> InventoryItem:
        """One model's inventory row."""
        with self.db.read() as conn:
            model = conn.execute(sa.select(t.registered_models).where(t.registered_models.c.name == name)).first()
            if model is None:
                raise NotFound(f"registered model {name!r} not found", field="name")
            return self._items(conn, [model])[0]

    def _items(self, conn: sa.Connection, models: list[sa.Row]) -> list[InventoryItem]:
        if not models:
            return []
        ids = [m.id for m in models]
        names = [m.name for m in models]
        versions = conn.execute(
            sa.select(t.model_versions)
            .where(t.model_versions.c.model_id.in_(ids))
            .order_by(t.model_versions.c.model_id, t.model_versions.c.version)
        ).all()
        version_ids = [v.id for v in versions]
        aliases: dict[str, list[str]] = defaultdict(list)
        for alias, version_id in conn.execute(
            sa.select(t.model_aliases.c.alias, t.model_aliases.c.version_id).where(t.model_aliases.c.model_id.in_(ids))
        ):
            aliases[version_id].append(alias)
        reviews: dict[str, list[sa.Row]] = defaultdict(list)
        for row in conn.execute(
            sa.select(t.version_reviews)
            .where(t.version_reviews.c.version_id.in_(version_ids))
            .order_by(t.version_reviews.c.created_at, t.version_reviews.c.id)
        ):
            reviews[row.version_id].append(row)
        decisions: dict[str, sa.Row] = {}
        for row in conn.execute(
            sa.select(t.policy_decisions)
            .where(t.policy_decisions.c.version_id.in_(version_ids))
            .order_by(t.policy_decisions.c.created_at)
        ):
            decisions[row.version_id] = row  # the newest wins
        signed = set(
            conn.execute(
                sa.select(t.artifact_signatures.c.subject_id).where(
                    t.artifact_signatures.c.subject_type == "model_version",
                    t.artifact_signatures.c.subject_id.in_(version_ids),
                )
            ).scalars()
        )
        owners = dict(
            conn.execute(
                sa.select(t.tags.c.entity_id, t.tags.c.value).where(
                    t.tags.c.entity_type == "model", t.tags.c.entity_id.in_(ids), t.tags.c.key == "owner"
                )
            ).all()
        )
        endpoints: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in conn.execute(sa.select(t.endpoints).where(t.endpoints.c.model_name.in_(names))):
            endpoints[e.model_name].append(
                {"name": e.name, "version": e.model_version, "deployment_id": e.deployment_id}
            )
        monitors = conn.execute(sa.select(t.monitors).where(t.monitors.c.model.in_(names))).all()
        monitor_ids = [m.id for m in monitors]
        latest_windows = self._latest_windows(conn, monitor_ids)
        alerts: dict[str, list[sa.Row]] = defaultdict(list)
        for a in conn.execute(
            sa.select(t.alerts)
            .where(t.alerts.c.monitor_id.in_(monitor_ids), t.alerts.c.status != "resolved")
            .order_by(t.alerts.c.fired_at.desc())
        ):
            alerts[a.monitor_id].append(a)

        by_model: dict[str, list[sa.Row]] = defaultdict(list)
        for v in versions:
            by_model[v.model_id].append(v)
        monitors_of: dict[str, list[sa.Row]] = defaultdict(list)
        for m in monitors:
            monitors_of[m.model].append(m)

        items = []
        for model in models:
            summaries = [
                VersionSummary(
                    version=v.version,
                    stage=v.stage,
                    digest=v.digest,
                    created_by=v.created_by,
                    created_at=v.created_at,
                    aliases=sorted(aliases.get(v.id, [])),
                    **_votes(model.name, v, reviews.get(v.id, [])),
                    policy=_decision(decisions.get(v.id)),
                    signed=v.id in signed,
                )
                for v in by_model[model.id]
            ]
            model_monitors = monitors_of[model.name]
            open_alerts = [
                AlertSummary(
                    id=a.id,
                    monitor=m.name,
                    status=a.status,
                    severity=a.severity,
                    metric=a.metric,
                    value=a.value,
                    fired_at=a.fired_at,
                )
                for m in model_monitors
                for a in alerts.get(m.id, [])
            ]
            item = InventoryItem(
                name=model.name,
                description=model.description,
                risk_tier=model.risk_tier,
                owner=owners.get(model.id),
                latest_version=summaries[-1].version if summaries else None,
                aliases={a: s.version for s in summaries for a in s.aliases},
                versions=summaries,
                endpoints=endpoints.get(model.name, []),
                monitors=[_monitor(m, latest_windows.get(m.id)) for m in model_monitors],
                open_alerts=open_alerts,
            )
            item.status = _status(item)
            items.append(item)
        return items

    def _latest_windows(self, conn: sa.Connection, monitor_ids: list[str]) -> dict[str, sa.Row]:
        if not monitor_ids:
            return {}
        w = t.monitor_windows
        newest = (
            sa.select(w.c.monitor_id, sa.func.max(w.c.end).label("end"))
            .where(w.c.monitor_id.in_(monitor_ids), w.c.segment == "")
            .group_by(w.c.monitor_id)
            .subquery()
        )
        rows = conn.execute(
            sa.select(w.c.monitor_id, w.c.end, w.c.rows, w.c.metrics)
            .join(newest, sa.and_(w.c.monitor_id == newest.c.monitor_id, w.c.end == newest.c.end))
            .where(w.c.segment == "")
        ).all()
        return {r.monitor_id: r for r in rows}


def _votes(name: str, version: sa.Row, rows: list[sa.Row]) -> dict[str, int]:
    """Approvals that count (this review round, this digest) and rejections in this round."""
    judged = rounds(name, version.version, version.digest, rows)
    current = judged[-1].round if judged else 0
    return {
        "approvals": sum(1 for r in judged if r.counts),
        "rejections": sum(1 for r in judged if r.decision == "reject" and r.round == current),
    }


def _decision(row: sa.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    violations = [r for r in row.results or [] if isinstance(r, dict) and not r.get("passed", True)]
    return {
        "gate": row.gate,
        "passed": row.passed,
        "override": row.override,
        "violations": len(violations),
        "at": row.created_at,
        "actor": row.actor,
    }


def _monitor(monitor: sa.Row, window: sa.Row | None) -> MonitorSummary:
    summary = MonitorSummary(name=monitor.name, endpoint=monitor.endpoint)
    if window is not None:
        metrics = window.metrics or {}
        drift = metrics.get("drift") or {}
        summary.last_window_end = window.end
        summary.rows = window.rows
        summary.drift_share = drift.get("share")
        summary.drifted = list(drift.get("drifted") or [])
        perf = metrics.get("performance") or {}
        summary.performance = {k: v for k, v in perf.items() if isinstance(v, (int, float)) and k != "count"}
    return summary


def _status(item: InventoryItem) -> str:
    if any(a.status == "firing" and a.severity == "critical" for a in item.open_alerts):
        return "critical"
    failed_policy = any(v.policy and not v.policy["passed"] and not v.policy["override"] for v in item.versions)
    if item.open_alerts or failed_policy:
        return "attention"
    return "ok"
