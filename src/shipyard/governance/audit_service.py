"""The audit trail: per-model audit log, signing of versions, signed journal checkpoints, evidence bundles."""

from __future__ import annotations

from typing import Any


class AuditService:
    def __init__(self, services: Any):
        # the assembled Services: this service reaches the store and its sibling services through it
        self.services = services
        self.db = services.db
