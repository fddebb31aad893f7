"""Options of each rollout strategy, validated once when a deployment is created and stored with it.

Every option has a default an operator would pick; ``DeployOptions.for_strategy`` refuses options
that mean nothing for the chosen strategy, so a typo is an error instead of a silent no-op.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shipyard.core.errors import InvalidInput
from shipyard.deploy.stats import JudgePolicy

# Options that only some strategies use (the rest apply to all).
STRATEGY_OPTIONS: dict[str, set[str]] = {
    "direct": set(),
    "bluegreen": {"hold_seconds"},
    "canary": {"steps", "step_seconds", "key"},
    "shadow": {"sample", "step_seconds"},
    "ab": {"key", "split", "metric", "alpha", "max_samples", "higher_is_better", "step_seconds"},
    "rolling": {"max_unavailable", "max_surge", "readiness_timeout_seconds"},
}
COMMON_OPTIONS = {"auto", "smoke_file", "smoke_samples", "judge"}


class DeployOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto: bool = True  # the controller promotes and rolls back by itself; False waits for `deploy promote`
    smoke_file: str | None = None  # digest of an uploaded JSON/CSV/Parquet file of smoke-test inputs
    smoke_samples: int = Field(20, ge=0, le=10_000)  # logged requests replayed as smoke tests
    judge: JudgePolicy = Field(default_factory=JudgePolicy)
    # canary
    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0])
    step_seconds: float = Field(60.0, ge=0.0)  # minimum duration of a step, and the judging interval
    key: str | None = None  # sticky routing key: a header name, or "field:NAME" for a request field
    # blue-green
    hold_seconds: float = Field(300.0, ge=0.0)  # the old slot stays warm this long after the switch
    # shadow
    sample: float = Field(1.0, gt=0.0, le=1.0)  # share of live requests copied to the candidate
    # A/B
    split: float = Field(50.0, gt=0.0, lt=100.0)  # candidate's share, percent
    metric: str = "reward"
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    max_samples: int = Field(10_000, ge=10)  # per variant: "no difference" beyond this
    higher_is_better: bool = True
    # rolling
    max_unavailable: int = Field(1, ge=0)
    max_surge: int = Field(0, ge=0)
    readiness_timeout_seconds: float = Field(120.0, gt=0.0)

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float]) -> list[float]:
        if not steps:
            raise ValueError("give at least one step, e.g. 5,25,50,100")
        if any(not 0 < s <= 100 for s in steps):
            raise ValueError("each step is a percentage of traffic in (0, 100]")
        if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError("steps must increase, e.g. 5,25,50,100")
        # The last step is the promotion itself: a 100% step would leave no baseline traffic to judge against.
        judged = [s for s in steps if s < 100]
        if not judged:
            raise ValueError("give at least one step below 100, e.g. 5,25,50")
        return judged

    @field_validator("key")
    @classmethod
    def _key(cls, key: str | None) -> str | None:
        if key is not None and (not key.strip() or key == "field:"):
            raise ValueError("key is a header name or 'field:NAME'")
        return key

    @classmethod
    def for_strategy(cls, strategy: str, options: dict[str, Any] | None) -> DeployOptions:
        options = dict(options or {})
        allowed = STRATEGY_OPTIONS[strategy] | COMMON_OPTIONS
        for name in options:
            if name not in allowed and name in cls.model_fields:
                raise InvalidInput(
                    f"option {name!r} does not apply to a {strategy} deployment "
                    f"(it takes {', '.join(sorted(allowed))})",
                    field=name,
                )
        try:
            parsed = cls.model_validate(options)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "options"
            raise InvalidInput(f"option {where}: {error['msg']}", field=where) from None
        if strategy == "rolling" and parsed.max_unavailable + parsed.max_surge < 1:
            raise InvalidInput("max_unavailable + max_surge must be at least 1", field="max_unavailable")
        if strategy == "ab" and parsed.key is None:
            parsed.key = "x-shipyard-key"
        if strategy == "shadow" and "auto" not in options:
            parsed.auto = False  # a shadow is reviewed, then promoted or discarded by a person
        return parsed

    @property
    def batch_size(self) -> int:
        """Rolling: replicas replaced at once."""
        return self.max_unavailable + self.max_surge
