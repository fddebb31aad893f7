"""Retention policies: how long prediction logs, feedback and labels are kept, and their enforcement.

A policy per target (``predictions``, ``feedback``, ``labels``) says the maximum age in days.
:func:`enforce` removes what is older than ``now - max_age``:

* predictions: segments whose newest row is older are dropped whole; a segment straddling the cutoff
  is rewritten without its old rows (a new blob, the segment row switched in the same transaction);
  routing rows (``routed_predictions``) older than the cutoff go with them;
* feedback by ``created_at``, labels by ``received_at``.

New blobs are written first, the references switch in one transaction (``last_enforced_at`` updated;
a target that lost rows journaled as ``retention.enforced`` with its counts), and replaced blobs are
deleted last, once nothing references them. The server's background loop calls
``PrivacyService.enforce_retention``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sqlalchemy as sa

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.time import now_ms
from shipyard.governance.erasure.storage import compact_sqlite, purge, read_parquet, secure_delete, segment_bytes
from shipyard.governance.privacy_entities import RETENTION_TARGETS, RetentionPolicy, RetentionRun
from shipyard.store import schema as t

DAY_MS = 86_400_000
MAX_DAYS = 365 * 100
MAX_TIME_MS = 2**53  # far beyond any real time, and inside every store's integer columns


def check_target(target: Any) -> str:
    if target not in RETENTION_TARGETS:
        raise InvalidInput(f"target must be one of {', '.join(RETENTION_TARGETS)}, not {target!r}", field="target")
    return str(target)


def check_days(days: Any) -> float:
    if isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days):
        raise InvalidInput(f"max_age_days must be a number of days, not {days!r}", field="max_age_days")
    if not 0 < days <= MAX_DAYS:
        raise InvalidInput(f"max_age_days must be more than 0 and at most {MAX_DAYS}, not {days}", field="max_age_days")
    return float(days)


def policy_of(row: Any) -> RetentionPolicy:
    return RetentionPolicy(
        target=row.target,
        max_age_days=row.max_age_ms / DAY_MS,
        max_age_ms=row.max_age_ms,
        last_enforced_at=row.last_enforced_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def set_policy(db: Any, target: str, max_age_days: float) -> RetentionPolicy:
    target, days = check_target(target), check_days(max_age_days)
    values = {"max_age_ms": int(round(days * DAY_MS)), "updated_at": now_ms()}
    r = t.retention_policies.c
    with db.write() as tx:
        values["updated_by"] = tx.actor
        old = tx.conn.execute(sa.select(t.retention_policies).where(r.target == target)).first()
        if old is None:
            tx.conn.execute(t.retention_policies.insert().values(target=target, **values))
        else:
            tx.conn.execute(t.retention_policies.update().where(r.target == target).values(**values))
        before = None if old is None else {"max_age_ms": old.max_age_ms}
        tx.journal(
            "retention.set", "retention", target, {"before": before, "after": {"max_age_ms": values["max_age_ms"]}}
        )
        row = tx.conn.execute(sa.select(t.retention_policies).where(r.target == target)).one()
    return policy_of(row)


def list_policies(db: Any) -> list[RetentionPolicy]:
    with db.read() as conn:
        rows = conn.execute(sa.select(t.retention_policies).order_by(t.retention_policies.c.target)).all()
    return [policy_of(r) for r in rows]


def remove_policy(db: Any, target: str) -> None:
    target = check_target(target)
    r = t.retention_policies.c
    with db.write() as tx:
        old = tx.conn.execute(sa.select(t.retention_policies).where(r.target == target)).first()
        if old is None:
            raise NotFound(f"no retention policy for {target}", field="target")
        tx.conn.execute(t.retention_policies.delete().where(r.target == target))
        tx.journal("retention.removed", "retention", target, {"before": {"max_age_ms": old.max_age_ms}, "after": None})


def enforce(services: Any, now: int | None = None) -> RetentionRun:
    """Remove everything older than each policy allows; ``now`` (epoch ms) makes the cutoff testable."""
    if now is not None and (isinstance(now, bool) or not isinstance(now, int) or not 0 <= now < MAX_TIME_MS):
        raise InvalidInput(f"now_ms must be a time in epoch milliseconds, not {now!r}", field="now_ms")
    now = now_ms() if now is None else int(now)
    db = services.db
    policies = {p.target: p for p in list_policies(db)}
    run = RetentionRun(enforced_at=now, cutoffs={target: now - p.max_age_ms for target, p in policies.items()})
    if not policies:
        return run
    cutoff = run.cutoffs.get("predictions")
    plans = _plan_segments(services, cutoff) if cutoff is not None else []
    old_blobs = [p["digest"] for p in plans]
    s = t.prediction_segments.c
    with db.write() as tx:
        secure_delete(tx)
        for plan in plans:
            # only if the segment still holds the blob the plan read (an erasure may have replaced it)
            where = sa.and_(s.id == plan["id"], s.digest == plan["digest"])
            if plan["new"] is None:
                if tx.conn.execute(t.prediction_segments.delete().where(where)).rowcount:
                    run.segments_deleted += 1
                    run.predictions += plan["removed"]
            elif tx.conn.execute(t.prediction_segments.update().where(where).values(**plan["new"])).rowcount:
                run.segments_rewritten += 1
                run.predictions += plan["removed"]
            else:  # another run got there first: the blob written for it may be referenced by nothing
                old_blobs.append(plan["new"]["digest"])
        if cutoff is not None:
            rp = t.routed_predictions
            run.routed = tx.conn.execute(rp.delete().where(rp.c.ts < cutoff)).rowcount or 0
        if "feedback" in run.cutoffs:
            fb = t.prediction_feedback
            run.feedback = tx.conn.execute(fb.delete().where(fb.c.created_at < run.cutoffs["feedback"])).rowcount or 0
        if "labels" in run.cutoffs:
            lb = t.prediction_labels
            run.labels = tx.conn.execute(lb.delete().where(lb.c.received_at < run.cutoffs["labels"])).rowcount or 0
        counts = {
            "predictions": {
                "rows": run.predictions,
                "segments_deleted": run.segments_deleted,
                "segments_rewritten": run.segments_rewritten,
                "routed": run.routed,
            },
            "feedback": {"rows": run.feedback},
            "labels": {"rows": run.labels},
        }
        for target in policies:
            # last_enforced_at is bookkeeping (like a heartbeat): the server's loop runs this often, so
            # only a run that removed something is journaled, with its counts
            tx.conn.execute(
                t.retention_policies.update()
                .where(t.retention_policies.c.target == target)
                .values(last_enforced_at=now)
            )
            if any(counts[target].values()):
                payload = {"cutoff": run.cutoffs[target], **counts[target]}
                tx.journal("retention.enforced", "retention", target, payload)
    if old_blobs:
        run.blobs_deleted, _ = purge(services, old_blobs)
    if run.predictions or run.feedback or run.labels:
        compact_sqlite(db)
    return run


def _plan_segments(services: Any, cutoff: int) -> list[dict[str, Any]]:
    """Segments holding rows older than ``cutoff``: dropped whole, or rewritten (new blob written now)."""
    s = t.prediction_segments.c
    with services.db.read() as conn:
        rows = conn.execute(sa.select(s.id, s.digest, s.rows, s.last_ts).where(s.first_ts < cutoff)).all()
    plans = []
    rewritten: dict[str, dict[str, Any] | None] = {}  # a blob shared by several segment rows is rewritten once
    for row in rows:
        if row.last_ts < cutoff:
            plans.append({"id": row.id, "digest": row.digest, "new": None, "removed": row.rows})
            continue
        if row.digest not in rewritten:
            try:
                table = read_parquet(services.artifacts, row.digest)
            except NotFound:
                continue
            ts = table.column("ts").to_numpy()
            keep = ts >= cutoff
            if keep.all():
                rewritten[row.digest] = None
                continue
            kept = table.filter(keep)
            digest, _ = services.artifacts.put_bytes(segment_bytes(kept))
            left = ts[keep]
            rewritten[row.digest] = {
                "digest": digest,
                "rows": kept.num_rows,
                "first_ts": int(np.min(left)),
                "last_ts": int(np.max(left)),
                "removed": int((~keep).sum()),
            }
        new = rewritten[row.digest]
        if new is not None:
            values = {k: v for k, v in new.items() if k != "removed"}
            plans.append({"id": row.id, "digest": row.digest, "new": values, "removed": new["removed"]})
    return plans
