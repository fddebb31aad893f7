"""API operations of privacy: erasure of a data subject, retention policies and their enforcement."""

from __future__ import annotations

from shipyard.api.operation import Operation

PRIVACY_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "erase_subject", "privacy", "POST", "/privacy/erasures",
        "Erase a data subject's rows everywhere (dry_run: report only)", permission="admin",
    ),
    Operation("list_erasures", "privacy", "GET", "/privacy/erasures", "Erasures: keys and counts", permission="admin"),
    Operation("get_erasure", "privacy", "GET", "/privacy/erasures/{erasure_id}", "One erasure", permission="admin"),
    Operation("set_retention", "privacy", "POST", "/retention", "Set a retention policy", permission="admin"),
    Operation("list_retention", "privacy", "GET", "/retention", "Retention policies", permission="read"),
    Operation("remove_retention", "privacy", "DELETE", "/retention/{target}", "Remove a policy", permission="admin"),
    Operation(
        "enforce_retention", "privacy", "POST", "/retention/enforce", "Delete what is too old",
        permission="admin",
    ),
)  # fmt: skip
