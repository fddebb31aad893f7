"""The version lifecycle's rules, without storage: stages and transitions, review rounds, and who may approve.

Stages: draft -> in_review -> approved | rejected -> deployed -> retired. A rejected version can be
resubmitted; each submission opens a new review *round*, and only approvals of the current round
whose digest equals the version's digest count. Separation of duties: neither the version's author
nor the round's submitter may approve (or reject) it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard.core.errors import Conflict, PermissionDenied
from shipyard.governance.lifecycle_entities import ApproverRule, Review
from shipyard.governance.policy_rules import PolicyRef, tier_settings

STAGES: tuple[str, ...] = ("draft", "in_review", "approved", "rejected", "deployed", "retired")

# action -> (stages it may start from, the stage it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "submit": (("draft", "rejected"), "in_review"),
    "approve": (("in_review",), "approved"),
    "reject": (("in_review",), "rejected"),
    "deploy": (("approved", "deployed"), "deployed"),
    "retire": (("draft", "in_review", "rejected", "approved", "deployed"), "retired"),
}


def allowed_actions(stage: str) -> list[str]:
    return [action for action, (sources, _) in TRANSITIONS.items() if stage in sources]


def check_transition(action: str, stage: str, name: str, version: int) -> str:
    """The stage ``action`` leads to; Conflict naming the current stage and what it allows otherwise."""
    sources, target = TRANSITIONS[action]
    if stage not in sources:
        allowed = allowed_actions(stage)
        options = ", ".join(allowed) if allowed else "nothing (it is final)"
        raise Conflict(
            f"cannot {action} version {version} of {name!r}: it is {stage} and {action} needs a version that is "
            f"{' or '.join(sources)}; from {stage} the allowed transitions are: {options}",
            field="stage",
            details={"stage": stage, "action": action, "allowed": allowed, "required_stage": list(sources)},
        )
    return target


def approver_rule(policies: Sequence[PolicyRef], risk_tier: str | None) -> ApproverRule:
    """Merge the approval settings of every applying policy: the largest count, every role and group
    constraint. Without a policy: one approval by a reviewer (or admin)."""
    if not policies:
        return ApproverRule(required=1, roles=[["reviewer"]], groups=[], policies=[])
    rule = ApproverRule(required=1, policies=[p.label for p in policies])
    for policy in policies:
        approvals = policy.spec.get("approvals", {})
        rule.required = max(rule.required, int(tier_settings(policy.spec, risk_tier)["approvals"]))
        roles = approvals.get("roles", ["reviewer"])
        if roles and roles not in rule.roles:  # an empty list: membership of a group decides alone
            rule.roles.append(roles)
        groups = approvals.get("groups") or []
        if groups and groups not in rule.groups:
            rule.groups.append(groups)
    return rule


def ineligibility(
    principal: str, roles: Sequence[str], groups: Sequence[str], rule: ApproverRule, author: str | None
) -> str | None:
    """Why ``principal`` may not review this version (None when they may). Admin satisfies any role."""
    if author is not None and principal == author:
        return f"{principal!r} registered this version and may not review it (separation of duties)"
    for wanted in rule.roles:
        if "admin" not in roles and not set(wanted) & set(roles):
            return f"reviewers must hold one of the roles {', '.join(wanted)} on this model; {principal!r} does not"
    for wanted in rule.groups:
        if not set(wanted) & set(groups):
            return f"reviewers must be in one of the groups {', '.join(wanted)}; {principal!r} is not"
    return None


def denied(message: str, name: str, version: int, principal: str) -> PermissionDenied:
    return PermissionDenied(
        f"{principal!r} may not review version {version} of {name!r}: {message}",
        field="reviewer",
        details={"model": name, "version": version, "reviewer": principal},
    )


def rounds(name: str, version: int, digest: str, rows: Sequence[Any]) -> list[Review]:
    """Review rows (ordered by time) → Reviews with their round and whether each approval counts."""
    current = max((i for i, r in enumerate(rows) if r.decision == "submit"), default=-1)
    out: list[Review] = []
    number = 0
    for i, row in enumerate(rows):
        if row.decision == "submit":
            number += 1
        counts = row.decision == "approve" and i > current and row.digest == digest
        out.append(
            Review(
                id=row.id,
                model=name,
                version=version,
                reviewer=row.reviewer,
                decision=row.decision,
                comment=row.comment,
                digest=row.digest,
                created_at=row.created_at,
                round=number,
                counts=counts,
            )
        )
    return out


def current_round(reviews: Sequence[Review]) -> list[Review]:
    """The reviews since (and including) the latest submission."""
    starts = [i for i, r in enumerate(reviews) if r.decision == "submit"]
    return list(reviews[starts[-1] :]) if starts else []
