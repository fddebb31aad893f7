"""The audit log of one registered model, read back from the journal.

Who registered, signed, evaluated, reviewed, approved, deployed and rolled back each version, when,
and with what evidence: the journal entries of the model itself (registrations, alias moves, and
the governance entries written with ``{"version": N, ...}`` payloads), of its versions, of the
deployments and endpoints that served its versions, and of the alerts on its monitors. Nothing is
kept twice: the journal is the record, this only selects and summarises it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shipyard.governance.audit_entities import AuditEntry
from shipyard.store import schema as t

MAX_ENTRIES = 100_000


def model_entries(conn: sa.Connection, model: sa.Row) -> list[AuditEntry]:
    """Every journal entry about ``model`` (a registered_models row), in sequence order."""
    name = model.name
    version_ids = dict(
        conn.execute(
            sa.select(t.model_versions.c.id, t.model_versions.c.version).where(t.model_versions.c.model_id == model.id)
        ).all()
    )
    deployments = conn.execute(
        sa.select(t.deployments.c.id, t.deployments.c.endpoint).where(
            sa.or_(t.deployments.c.baseline_model == name, t.deployments.c.candidate_model == name)
        )
    ).all()
    endpoints = {d.endpoint for d in deployments} | set(
        conn.execute(sa.select(t.endpoints.c.name).where(t.endpoints.c.model_name == name)).scalars()
    )
    monitors = dict(
        conn.execute(sa.select(t.monitors.c.id, t.monitors.c.version).where(t.monitors.c.model == name)).all()
    )
    alerts = dict(
        conn.execute(sa.select(t.alerts.c.id, t.alerts.c.monitor_id).where(t.alerts.c.monitor_id.in_(monitors))).all()
        if monitors
        else []
    )
    j = t.journal
    subjects = [sa.and_(j.c.entity_type == "model", j.c.entity_id == model.id)]
    if version_ids:
        subjects.append(sa.and_(j.c.entity_type.in_(("version", "model_version")), j.c.entity_id.in_(version_ids)))
    if deployments:
        subjects.append(sa.and_(j.c.entity_type == "deployment", j.c.entity_id.in_([d.id for d in deployments])))
    if endpoints:
        subjects.append(sa.and_(j.c.entity_type == "endpoint", j.c.entity_id.in_(endpoints)))
    if alerts:
        subjects.append(sa.and_(j.c.entity_type == "alert", j.c.entity_id.in_(alerts)))
    rows = conn.execute(sa.select(j).where(sa.or_(*subjects)).order_by(j.c.seq).limit(MAX_ENTRIES))
    entries = []
    for row in rows:
        payload = row.payload
        if row.entity_type == "endpoint" and not _mentions(payload, name):
            continue  # an endpoint created for another model
        if row.entity_type in ("version", "model_version"):
            version = version_ids.get(row.entity_id)
        elif row.entity_type == "alert":
            version = monitors.get(alerts.get(row.entity_id))
        else:
            version = version_of(payload, name, row.action)
        entries.append(
            AuditEntry(
                seq=row.seq,
                ts=row.ts,
                actor=row.actor,
                action=row.action,
                version=version,
                summary=summarize(row.action, payload, version, row.entity_type, row.entity_id),
                evidence=payload,
                entity_type=row.entity_type,
                entity_id=row.entity_id,
                hash=row.hash,
            )
        )
    return entries


def _mentions(payload: Any, name: str) -> bool:
    return isinstance(payload, dict) and any(
        isinstance(label, str) and label.startswith(f"{name}/") for label in _labels(payload)
    )


def _labels(payload: dict[str, Any]) -> list[Any]:
    after = payload.get("after") if isinstance(payload.get("after"), dict) else {}
    return [payload.get(k) for k in ("candidate", "baseline", "from", "to", "model")] + [after.get("model")]


def _version_in_label(label: Any, name: str) -> int | None:
    if isinstance(label, str) and label.startswith(f"{name}/"):
        tail = label[len(name) + 1 :]
        if tail.isdigit():
            return int(tail)
    return None


def version_of(payload: Any, name: str, action: str) -> int | None:
    """The version a journal payload is about: ``version``, ``after.version`` (registrations, alias
    moves), ``before.version`` (alias removals), or a ``NAME/N`` label of a deployment (the version
    rolled back, for a rollback; else the candidate)."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("version"), int):
        return int(payload["version"])
    order = ("from", "candidate", "to", "baseline") if action.endswith("rolled_back") else ("candidate", "baseline")
    for key in order:
        version = _version_in_label(payload.get(key), name)
        if version is not None:
            return version
    for side in ("after", "before"):
        value = payload.get(side)
        if isinstance(value, dict):
            if isinstance(value.get("version"), int):
                return int(value["version"])
            version = _version_in_label(value.get("model"), name)
            if version is not None:
                return version
    return None


def summarize(action: str, payload: Any, version: int | None, entity_type: str, entity_id: str) -> str:
    """One human line per entry; unknown actions fall back to the action and the version."""
    p = payload if isinstance(payload, dict) else {}
    after = p.get("after") if isinstance(p.get("after"), dict) else {}
    before = p.get("before") if isinstance(p.get("before"), dict) else {}
    v = f"version {version}" if version is not None else "the model"
    if action == "model.created":
        return "model created"
    if action == "version.registered":
        return f"registered version {version} (tree {after.get('digest')}, flavor {after.get('flavor')})"
    if action == "version.signed":
        return f"{v} signed by key {p.get('key_id')} ({p.get('owner', 'server')})"
    if action == "alias.set":
        return f"alias @{p.get('alias')} moved to version {after.get('version')} (was {before.get('version')})"
    if action == "alias.deleted":
        return f"alias @{p.get('alias')} removed (was version {before.get('version')})"
    if action == "deployment.created":
        return (
            f"deployment to endpoint {p.get('endpoint')!r} started: {p.get('strategy')} "
            f"{p.get('candidate')} over {p.get('baseline')}"
        )
    if action == "deployment.rolled_back":
        target = p.get("to") or p.get("baseline")
        source = p.get("from") or p.get("candidate")
        why = p.get("reason") or p.get("outcome")
        return f"endpoint {p.get('endpoint')!r} rolled back from {source} to {target}" + (f": {why}" if why else "")
    if action.startswith("deployment."):
        outcome = f": {p['outcome']}" if p.get("outcome") else ""
        return f"deployment {action.split('.', 1)[1]} on endpoint {p.get('endpoint')!r}{outcome}"
    if action == "endpoint.created":
        return f"endpoint {entity_id!r} created serving {after.get('model')}"
    if action in ("version.submitted", "version.stage", "version.rejected", "version.approved"):
        verb = {"version.submitted": "submitted for review", "version.approved": "approved"}.get(action, "moved")
        approvers = p.get("approvers")
        by = f" by {', '.join(map(str, approvers))}" if isinstance(approvers, list) and approvers else ""
        why = f": {p['comment']}" if p.get("comment") else ""
        return f"{v} {verb}{by} ({p.get('from')} → {p.get('to')}){why}"
    if action == "version.review":
        count = f" ({p.get('approvals')} of {p.get('required')} approvals)" if p.get("required") is not None else ""
        why = f": {p['comment']}" if p.get("comment") else ""
        return f"{v} reviewed: {p.get('decision')}{count}{why}"
    if action in ("policy.evaluated", "policy.override"):
        outcome = "passed" if p.get("passed") else f"blocked ({len(p.get('violations') or [])} violated rules)"
        if action == "policy.override":
            return f"{v} {p.get('gate')} gate OVERRIDDEN: {p.get('justification')}"
        return f"{v} {p.get('gate')} gate {outcome}"
    if action == "version.evaluated":
        on = f" on {p['dataset']}" if p.get("dataset") else ""
        return f"{v} evaluated: {p.get('kind')}{on}"
    if action == "card.section_set":
        what = "removed" if p.get("removed") else "edited"
        return f"model card section {p.get('section')!r} {what} ({v})"
    if action.startswith("alert."):
        return f"alert {action.split('.', 1)[1]}: {p.get('rule') or ''} {p.get('monitor') or ''}".rstrip()
    comment = p.get("comment") or p.get("justification")
    detail = f": {comment}" if isinstance(comment, str) and comment else ""
    return f"{action} ({v}){detail}"
