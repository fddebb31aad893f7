"""The SDK's governance calls, mixed into :class:`shipyard.Client`: the version lifecycle, reviews,
policies as code and their gates (the rules are in ``governance/service.py``)."""

from __future__ import annotations

from typing import Any

from shipyard.governance.lifecycle_entities import Policy, PolicyCheck, PolicyDecision, Review, ReviewStatus
from shipyard.registry.entities import RegisteredModel


class GovernanceMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    # -- the lifecycle: draft -> in_review -> approved | rejected -> deployed -> retired

    def submit_for_review(
        self, name: str, version: int, comment: str | None = None, override_justification: str | None = None
    ) -> ReviewStatus:
        """Open a review round (from draft or rejected); the review gate's rules must pass."""
        return self._call(
            "governance",
            "submit_for_review",
            name=name,
            version=version,
            comment=comment,
            override_justification=override_justification,
        )

    def approve_version(
        self, name: str, version: int, comment: str | None = None, override_justification: str | None = None
    ) -> ReviewStatus:
        """Approve as the caller; the approval reaching the required count moves the version to approved."""
        return self._call(
            "governance",
            "approve_version",
            name=name,
            version=version,
            comment=comment,
            override_justification=override_justification,
        )

    def reject_version(self, name: str, version: int, comment: str | None = None) -> ReviewStatus:
        return self._call("governance", "reject_version", name=name, version=version, comment=comment)

    def retire_version(self, name: str, version: int, comment: str | None = None) -> ReviewStatus:
        return self._call("governance", "retire_version", name=name, version=version, comment=comment)

    def list_reviews(self, name: str, version: int) -> list[Review]:
        return self._call("governance", "list_reviews", name=name, version=version)

    def review_status(self, name: str, version: int) -> ReviewStatus:
        """Approvals that count, how many are required, and who may still approve."""
        return self._call("governance", "review_status", name=name, version=version)

    # -- policies

    def add_policy(self, name: str, text: str) -> Policy:
        """Store a policy's YAML text: new text becomes the policy's next version."""
        return self._call("governance", "add_policy", name=name, text=text)

    def list_policies(self) -> list[Policy]:
        return self._call("governance", "list_policies")

    def get_policy(self, name: str, version: int | None = None) -> Policy:
        return self._call("governance", "get_policy", name=name, version=version)

    def list_policy_versions(self, name: str) -> list[Policy]:
        return self._call("governance", "list_policy_versions", name=name)

    def set_policy_enabled(self, name: str, enabled: bool) -> Policy:
        return self._call("governance", "set_policy_enabled", name=name, enabled=enabled)

    def set_risk_tier(self, name: str, tier: str | None) -> RegisteredModel:
        """low, medium or high (None clears it); policies select models and settings by tier."""
        return self._call("governance", "set_risk_tier", name=name, tier=tier)

    def check_version(self, name: str, version: int, gate: str = "deploy", strategy: str | None = None) -> PolicyCheck:
        """Dry-run a gate (review, approve, deploy) on a version: every rule with its value and threshold."""
        return self._call("governance", "check_version", name=name, version=version, gate=gate, strategy=strategy)

    def list_policy_decisions(self, name: str, version: int | None = None) -> list[PolicyDecision]:
        return self._call("governance", "list_policy_decisions", name=name, version=version)
