"""API operations of the pipeline services (part of the contract in ``operations.py``)."""

from __future__ import annotations

from shipyard.api.operation import Operation

PIPELINE_OPERATIONS: tuple[Operation, ...] = ()
