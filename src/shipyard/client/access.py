"""The SDK's access calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

from typing import Any


class AccessMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError
