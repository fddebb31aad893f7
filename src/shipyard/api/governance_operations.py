"""API operations of governance: the version lifecycle, reviews, policies and their gates."""

from __future__ import annotations

from shipyard.api.operation import Operation

_VERSION = "/models/{name}/versions/{version}"
_MODEL = ("model", "name")

GOVERNANCE_OPERATIONS: tuple[Operation, ...] = (
    # the lifecycle
    Operation(
        "submit_for_review",
        "governance",
        "POST",
        f"{_VERSION}/submit",
        "Submit a version for review",
        permission="write",
        scope=_MODEL,
    ),
    Operation(
        "approve_version",
        "governance",
        "POST",
        f"{_VERSION}/approve",
        "Approve a version",
        permission="review",
        scope=_MODEL,
    ),
    Operation(
        "reject_version",
        "governance",
        "POST",
        f"{_VERSION}/reject",
        "Reject a version",
        permission="review",
        scope=_MODEL,
    ),
    Operation(
        "retire_version",
        "governance",
        "POST",
        f"{_VERSION}/retire",
        "Retire a version",
        permission="deploy",
        scope=_MODEL,
    ),
    Operation("list_reviews", "governance", "GET", f"{_VERSION}/reviews", "A version's reviews", scope=_MODEL),
    Operation(
        "review_status", "governance", "GET", f"{_VERSION}/review", "Where a version's review stands", scope=_MODEL
    ),
    # policies
    Operation(
        "add_policy", "governance", "POST", "/policies", "Add a policy (or its next version)", permission="admin"
    ),
    Operation("list_policies", "governance", "GET", "/policies", "Policies (current versions)"),
    Operation("get_policy", "governance", "GET", "/policies/{name}", "A policy (a given version or the current one)"),
    Operation("list_policy_versions", "governance", "GET", "/policies/{name}/versions", "Every version of a policy"),
    Operation(
        "set_policy_enabled",
        "governance",
        "POST",
        "/policies/{name}/enabled",
        "Enable or disable a policy",
        permission="admin",
    ),
    Operation(
        "set_risk_tier",
        "governance",
        "POST",
        "/models/{name}/risk-tier",
        "Set a model's risk tier",
        permission="admin",
        scope=_MODEL,
    ),
    Operation("check_version", "governance", "GET", f"{_VERSION}/policy-check", "Dry-run a policy gate", scope=_MODEL),
    Operation(
        "list_policy_decisions",
        "governance",
        "GET",
        "/models/{name}/policy-decisions",
        "Stored gate evaluations of a model",
        scope=_MODEL,
    ),
)
