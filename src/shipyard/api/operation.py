"""One API operation: a service method bound to an HTTP method and path (see ``operations.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    name: str  # the service method, and the name the SDK backend calls
    service: str  # attribute of shipyard.services.Services
    method: str
    path: str
    summary: str = ""
