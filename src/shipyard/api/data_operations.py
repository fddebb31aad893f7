"""API operations of the data services (part of the contract in ``operations.py``)."""

from __future__ import annotations

from shipyard.api.operation import Operation

DATA_OPERATIONS: tuple[Operation, ...] = ()
