"""What the lifecycle and policy calls return: reviews, review status, policies, rule results, decisions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Review(BaseModel):
    """One row of a version's review history: a submission, an approval or a rejection.

    ``round`` counts submissions (1 = the first); ``counts`` says whether an approval still counts
    towards the version's approval: it is in the current round and bound to the version's digest.
    """

    id: str
    model: str
    version: int
    reviewer: str  # for a submission: the submitter
    decision: str  # submit | approve | reject
    comment: str | None = None
    digest: str
    created_at: int
    round: int
    counts: bool = False


class ApproverRule(BaseModel):
    """Who may approve a version, merged over every policy that applies."""

    required: int = 1
    roles: list[list[str]] = Field(default_factory=list)  # one list per policy: hold one role of each
    groups: list[list[str]] = Field(default_factory=list)  # one list per policy: be in one group of each
    policies: list[str] = Field(default_factory=list)  # NAME@VERSION of the policies that set these


class ReviewStatus(BaseModel):
    model: str
    version: int
    stage: str
    digest: str
    author: str | None = None
    submitter: str | None = None
    submitted_at: int | None = None
    round: int = 0
    required: int
    approvals: list[str] = Field(default_factory=list)  # reviewers whose approval counts
    rejected_by: str | None = None
    rules: ApproverRule
    may_approve: list[str] = Field(default_factory=list)  # known principals who may still approve
    reviews: list[Review] = Field(default_factory=list)  # the current round


class Policy(BaseModel):
    name: str
    version: int
    text: str
    spec: dict[str, Any]
    digest: str
    enabled: bool
    created_by: str | None = None
    created_at: int


class RuleResult(BaseModel):
    """One rule of one policy judged at one gate, with what was measured and what was required."""

    policy: str
    policy_version: int
    rule: str  # readable name, e.g. "metric accuracy >= 0.9"
    kind: str  # metric | data_validation | fairness | model_card | signature | reproducibility | stage | ...
    gate: str
    passed: bool
    value: Any = None  # the measured value
    threshold: Any = None
    message: str


class PolicyCheck(BaseModel):
    """A gate's verdict on a version: every rule result, and the violated ones."""

    model: str
    version: int
    gate: str
    passed: bool
    policies: list[str] = Field(default_factory=list)  # NAME@VERSION
    results: list[RuleResult] = Field(default_factory=list)
    violations: list[RuleResult] = Field(default_factory=list)


class PolicyDecision(BaseModel):
    """A stored gate evaluation (``policy_decisions``)."""

    id: str
    model: str
    version: int
    gate: str
    passed: bool
    override: bool
    justification: str | None = None
    actor: str
    created_at: int
    results: list[dict[str, Any]] = Field(default_factory=list)
