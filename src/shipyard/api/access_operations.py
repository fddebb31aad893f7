"""API operations of access."""

from __future__ import annotations

from shipyard.api.operation import Operation

ACCESS_OPERATIONS: tuple[Operation, ...] = ()
