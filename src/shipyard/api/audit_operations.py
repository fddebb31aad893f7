"""API operations of audit."""

from __future__ import annotations

from shipyard.api.operation import Operation

AUDIT_OPERATIONS: tuple[Operation, ...] = ()
