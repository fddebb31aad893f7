"""API operations of evaluation."""

from __future__ import annotations

from shipyard.api.operation import Operation

EVALUATION_OPERATIONS: tuple[Operation, ...] = ()
