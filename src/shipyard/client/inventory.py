"""The SDK's model-inventory calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

from typing import Any

from shipyard.governance.inventory import InventoryItem


class InventoryMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def model_inventory(self, name_like: str | None = None, risk_tier: str | None = None) -> list[InventoryItem]:
        """Every registered model with risk tier, version stages, approvals, policy status, monitors, open alerts."""
        return self._call("inventory", "model_inventory", name_like=name_like, risk_tier=risk_tier)

    def model_overview(self, name: str) -> InventoryItem:
        return self._call("inventory", "model_overview", name=name)
