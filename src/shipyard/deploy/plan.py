"""What one serving replica must do for an endpoint right now: the pure function of the stored state.

The controller only ever changes rows in the store; each replica polls the endpoint's revision and,
when it moves, computes its :class:`ReplicaPlan` here and applies it (load, smoke-test, swap). Keeping
this a pure function means a restarted server resumes a rollout exactly where the store says it is.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from shipyard.deploy.entities import Deployment, Endpoint, VersionRef


class PlannedVariant(BaseModel):
    name: str  # "stable" | "baseline" | "candidate"
    version: VersionRef
    weight: float  # share of traffic in [0, 1]


class ReplicaPlan(BaseModel):
    endpoint: str
    revision: int
    deployment_id: str | None = None
    strategy: str | None = None
    step: int = 0
    variants: list[PlannedVariant]
    shadow: VersionRef | None = None
    shadow_sample: float = 0.0
    key: str | None = None  # sticky routing key (header name or "field:NAME")
    warm: list[VersionRef] = Field(default_factory=list)  # loaded (and smoke-tested) but not routed to
    smoke_file: str | None = None  # digest of a file of smoke-test inputs
    smoke_samples: int = 20  # logged requests replayed as smoke tests when there is no file

    @property
    def needed(self) -> list[VersionRef]:
        """Every version this replica must have loaded, routed or not."""
        seen: dict[str, VersionRef] = {}
        for ref in [v.version for v in self.variants] + ([self.shadow] if self.shadow else []) + self.warm:
            seen.setdefault(ref.digest, ref)
        return list(seen.values())


def plan_for(endpoint: Endpoint, deployment: Deployment | None, replica_id: str) -> ReplicaPlan:
    base = ReplicaPlan(endpoint=endpoint.name, revision=endpoint.revision, variants=[])
    if deployment is None or not deployment.active:
        base.variants = [PlannedVariant(name="stable", version=endpoint.stable, weight=1.0)]
        return base
    d = deployment
    base.deployment_id, base.strategy, base.step = d.id, d.strategy, d.step
    base.smoke_file, base.smoke_samples = d.config.get("smoke_file"), int(d.config.get("smoke_samples", 20))
    baseline, candidate = d.baseline, d.candidate
    only = [PlannedVariant(name="baseline", version=baseline, weight=1.0)]
    if d.strategy == "rolling":
        batch, done = d.replicas.get("batch", []), d.replicas.get("done", [])
        if replica_id in batch or replica_id in done:
            base.variants = [PlannedVariant(name="candidate", version=candidate, weight=1.0)]
        else:
            base.variants = only
        base.warm = [baseline]  # a replica that switched can switch back instantly on abort
        return base
    if d.status == "loading":
        # The candidate loads and is smoke-tested on every replica before it sees any traffic.
        base.variants, base.warm = only, [candidate]
        return base
    if d.strategy == "shadow":
        base.variants, base.shadow, base.shadow_sample = only, candidate, float(d.config.get("sample", 1.0))
        return base
    if d.strategy == "bluegreen":
        base.variants, base.warm = [PlannedVariant(name="candidate", version=candidate, weight=1.0)], [baseline]
        return base
    # canary and A/B: a weighted split, sticky when a key is configured
    base.key = d.config.get("key")
    base.variants = [
        PlannedVariant(name="baseline", version=baseline, weight=1.0 - d.weight),
        PlannedVariant(name="candidate", version=candidate, weight=d.weight),
    ]
    return base
