"""What the deployment service returns: endpoints, deployments, replicas and status reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shipyard.deploy.stats import CheckResult, Judgement, SequentialResult

Strategy = Literal["direct", "bluegreen", "canary", "shadow", "ab", "rolling"]
STRATEGIES: tuple[str, ...] = ("direct", "bluegreen", "canary", "shadow", "ab", "rolling")
ACTIVE = ("loading", "running")
FINISHED = ("promoted", "rolled_back", "aborted", "failed")


class VersionRef(BaseModel):
    """One registered model version, as a deployment refers to it."""

    model_name: str
    version: int
    digest: str

    @property
    def label(self) -> str:
        return f"{self.model_name}/{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


class Endpoint(BaseModel):
    name: str
    stable: VersionRef  # what the endpoint serves when no deployment is active
    revision: int
    deployment_id: str | None = None
    created_by: str | None = None
    created_at: int
    updated_at: int


class JudgementRecord(BaseModel):
    """One verdict of the judge (or a sequential test), with the evidence it was based on."""

    at: int
    step: int
    weight: float
    verdict: str  # pass | fail | inconclusive | candidate_better | baseline_better | no_difference | continue
    summary: str
    checks: list[CheckResult] = Field(default_factory=list)
    sequential: SequentialResult | None = None
    action: str  # what the controller did: advance, extend, promote, rollback, ...
    alpha: float | None = None  # the level this look was judged at (alpha spent over the step's looks)


class Deployment(BaseModel):
    id: str
    endpoint: str
    strategy: Strategy
    status: str  # loading | running | promoted | rolled_back | aborted | failed
    phase: str  # human-readable: "step 2/4: 25% of traffic", "waiting for replicas to load ..."
    baseline: VersionRef
    candidate: VersionRef
    config: dict[str, Any]
    step: int
    weight: float
    step_started_at: int | None = None
    next_judgement_at: int | None = None
    replicas: dict[str, Any] = Field(default_factory=dict)
    judgements: list[JudgementRecord] = Field(default_factory=list)
    outcome: str | None = None
    created_by: str | None = None
    created_at: int
    updated_at: int
    finished_at: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class Replica(BaseModel):
    id: str
    endpoint: str
    host: str
    pid: int
    revision: int
    serving: list[str]
    versions: dict[str, str]
    started_at: int
    heartbeat_at: int
    live: bool = True


class VariantReport(BaseModel):
    """Live figures of one variant in the current step, summed over replicas."""

    variant: str
    model: str
    requests: int
    errors: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    feedback: dict[str, dict[str, float]] = Field(default_factory=dict)  # metric -> {n, mean}


class ShadowComparison(BaseModel):
    compared: int
    agreement_rate: float | None
    mean_abs_diff: float | None
    judgement: Judgement | None = None


class DeploymentStatus(BaseModel):
    """``deploy status``: the endpoint, its active (or last) deployment, live figures and replicas."""

    endpoint: Endpoint
    deployment: Deployment | None = None
    variants: list[VariantReport] = Field(default_factory=list)
    shadow: ShadowComparison | None = None
    judgement: Judgement | None = None  # the judge's view of the current step right now
    replicas: list[Replica] = Field(default_factory=list)


class Feedback(BaseModel):
    accepted: int
    unknown: list[str] = Field(default_factory=list)  # ids never routed through a deployment (still stored)
