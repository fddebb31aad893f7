"""The SDK's contracts calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

from typing import Any


class ContractsMixin:
    """Methods use ``self._call(service, operation, **kwargs)`` and ``self.artifacts`` of the Client."""

    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError
