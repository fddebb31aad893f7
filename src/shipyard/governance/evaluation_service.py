"""Fairness evaluations, explanations and model cards of model versions."""

from __future__ import annotations

from typing import Any


class EvaluationService:
    def __init__(self, services: Any):
        # the assembled Services: this service reaches the store and its sibling services through it
        self.services = services
        self.db = services.db
