"""API operations of governance."""

from __future__ import annotations

from shipyard.api.operation import Operation

GOVERNANCE_OPERATIONS: tuple[Operation, ...] = ()
