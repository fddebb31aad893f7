"""The SDK's evaluations calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

from typing import Any


class EvaluationsMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError
