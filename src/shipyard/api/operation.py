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
    # What the caller needs (governance/roles.py): "" means read for GET and write otherwise.
    permission: str = ""
    # Where a role granted on one resource applies: (resource type, argument naming it), e.g.
    # ("model", "name") or ("experiment", "experiment"); None checks global grants only.
    scope: tuple[str, str] | None = None

    @property
    def required_permission(self) -> str:
        return self.permission or ("read" if self.method == "GET" else "write")
