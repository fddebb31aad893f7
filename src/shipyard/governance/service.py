"""Model version lifecycle, reviews and approvals, policies as code and their gates (owner: lifecycle helper)."""

from __future__ import annotations

from typing import Any


class GovernanceService:
    def __init__(self, services: Any):
        # the assembled Services: this service reaches the store and its sibling services through it
        self.services = services
        self.db = services.db
