"""API operations of the contract services (part of the contract in ``operations.py``)."""

from __future__ import annotations

from shipyard.api.operation import Operation

CONTRACT_OPERATIONS: tuple[Operation, ...] = ()
