"""API operations of privacy."""

from __future__ import annotations

from shipyard.api.operation import Operation

PRIVACY_OPERATIONS: tuple[Operation, ...] = ()
