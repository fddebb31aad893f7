"""The access vocabulary: five roles, five permissions, and which role grants which permission.

A role is held globally or on one registered model or experiment (``role_grants``). The matrix
below is the whole policy; ``docs/security.md`` prints it and the RBAC tests check every route
against it.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = ("viewer", "developer", "reviewer", "deployer", "admin")
PERMISSIONS: tuple[str, ...] = ("read", "write", "review", "deploy", "admin")

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "developer": frozenset({"read", "write"}),
    "reviewer": frozenset({"read", "review"}),
    "deployer": frozenset({"read", "deploy"}),
    "admin": frozenset(PERMISSIONS),
}

SCOPE_TYPES: tuple[str, ...] = ("global", "model", "experiment")


def permissions_of(roles: set[str] | frozenset[str] | list[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)
