"""API operations of the model inventory (the governance dashboard's landing data)."""

from __future__ import annotations

from shipyard.api.operation import Operation

INVENTORY_OPERATIONS: tuple[Operation, ...] = (
    Operation("model_inventory", "inventory", "GET", "/inventory", "Every model: risk, stages, approvals, health"),
    Operation(
        "model_overview", "inventory", "GET", "/inventory/{name}", "One model's inventory row", scope=("model", "name")
    ),
)
