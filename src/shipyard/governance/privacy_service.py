"""Privacy: erasure of a data subject and retention of prediction logs and feedback.

The service is the one entry point (SDK, API, CLI, the server's retention loop); the work is in
:mod:`shipyard.governance.erasure` and :mod:`shipyard.governance.retention`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shipyard.core.errors import NotFound
from shipyard.governance import erasure, retention
from shipyard.governance.privacy_entities import Erasure, RetentionPolicy, RetentionRun
from shipyard.store import schema as t


class PrivacyService:
    def __init__(self, services: Any):
        # the assembled Services: this service reaches the store and its sibling services through it
        self.services = services
        self.db = services.db

    # -- erasure -----------------------------------------------------------------------------------

    def erase_subject(self, subject: dict[str, str | int | float | bool], dry_run: bool = False) -> Erasure:
        """Remove every stored row of the subject (all ``KEY: VALUE`` pairs match, compared as text)
        from the prediction log, feedback, labels, datasets and monitor samples; flag the model
        versions trained on it. ``dry_run`` reports what would go and changes nothing."""
        pairs = erasure.parse_subject(subject)
        if not dry_run:
            self._resume_erasures()  # an earlier erasure interrupted after its switch has blobs to delete
        eraser = erasure.Eraser(self.services, pairs)
        plan = eraser.plan()
        if dry_run:
            return eraser.report(plan, None)
        return eraser.execute(plan, erasure.new_erasure_id())

    def get_erasure(self, erasure_id: str) -> Erasure:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.erasures).where(t.erasures.c.id == erasure_id)).first()
        if row is None:
            raise NotFound(f"erasure {erasure_id!r} not found", field="erasure_id")
        return erasure.erasure_of(row._mapping)

    def list_erasures(self, limit: int = 100) -> list[Erasure]:
        """Erasures, newest first (keys and counts; never the erased values)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.erasures).order_by(t.erasures.c.created_at.desc()).limit(max(1, min(int(limit), 10_000)))
            ).all()
        return [erasure.erasure_of(r._mapping) for r in rows]

    # -- retention ---------------------------------------------------------------------------------

    def set_retention(self, target: str, max_age_days: float) -> RetentionPolicy:
        """Keep ``target`` (predictions | feedback | labels) for at most ``max_age_days`` days."""
        return retention.set_policy(self.db, target, max_age_days)

    def list_retention(self) -> list[RetentionPolicy]:
        return retention.list_policies(self.db)

    def remove_retention(self, target: str) -> None:
        retention.remove_policy(self.db, target)

    def enforce_retention(self, now_ms: int | None = None) -> RetentionRun:
        """Delete what the policies say is too old (``now_ms``: the time to judge ages at, default now).
        Also finishes the blob deletions of an erasure that was interrupted after its switch."""
        self._resume_erasures()
        return retention.enforce(self.services, now_ms)

    def _resume_erasures(self) -> None:
        for pending in erasure.pending_erasures(self.db):
            erasure.finish_purge(self.services, pending)
