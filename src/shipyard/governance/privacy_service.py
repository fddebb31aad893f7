"""Privacy: erasure of a data subject and retention of prediction logs and feedback."""

from __future__ import annotations

from typing import Any


class PrivacyService:
    def __init__(self, services: Any):
        # the assembled Services: this service reaches the store and its sibling services through it
        self.services = services
        self.db = services.db
