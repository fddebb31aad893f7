"""Pipeline entities as returned by the service, the API and the SDK alike."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shipyard.core.errors import NotFound, ShipyardError

# Param values and step inputs are user JSON; NaN and ±inf travel as strings like metric values do.
_JSON_CONFIG = ConfigDict(ser_json_inf_nan="strings")


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CACHED = "CACHED"
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)

    @property
    def ok(self) -> bool:
        """The step's outputs exist (computed now or reused from the cache)."""
        return self in (StepStatus.SUCCEEDED, StepStatus.CACHED)


class PipelineStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class StepRun(BaseModel):
    """One step of one pipeline run.

    ``inputs`` maps each argument to ``{"kind": "output", "step", "output", "digest"}``,
    ``{"kind": "value", "value"}`` or ``{"kind": "dataset", "ref", "version_id"}``; ``outputs`` maps
    each output name to ``{"digest", "kind", "size"}``.
    """

    model_config = _JSON_CONFIG
    id: str
    pipeline_run_id: str
    name: str
    code_digest: str
    cache_key: str | None = None
    status: StepStatus
    cached_from: str | None = None
    run_id: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    logs_digest: str | None = None
    error: dict[str, Any] | None = None
    start_time: int | None = None
    end_time: int | None = None

    @property
    def duration_ms(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


class PipelineRun(BaseModel):
    model_config = _JSON_CONFIG
    id: str
    name: str
    definition_digest: str
    status: PipelineStatus
    params: dict[str, Any] = Field(default_factory=dict)
    executor: str
    run_id: str | None = None
    schedule_id: str | None = None
    error: dict[str, Any] | None = None
    created_by: str | None = None
    start_time: int
    end_time: int | None = None
    owner: str | None = None
    heartbeat_at: int | None = None
    steps: list[StepRun] = Field(default_factory=list)

    def step(self, name: str) -> StepRun:
        for step_run in self.steps:
            if step_run.name == name:
                return step_run
        known = ", ".join(s.name for s in self.steps)
        raise NotFound(f"pipeline run {self.id} has no step {name!r} (steps: {known})", field="step")


class PipelineDefinition(BaseModel):
    """A version of a pipeline: ``structure`` holds the target, steps, edges, outputs and code digests."""

    digest: str
    name: str
    structure: dict[str, Any]
    created_at: int


class StepLogs(BaseModel):
    pipeline_run_id: str
    step: str
    digest: str | None = None
    text: str = ""


class Change(BaseModel):
    model_config = _JSON_CONFIG
    a: Any = None
    b: Any = None


class StepDiff(BaseModel):
    """How one step differs between two runs; a field is None when it did not change."""

    model_config = _JSON_CONFIG
    name: str
    only_in: str | None = None  # "a" or "b" when the step exists in one run only
    status: Change | None = None
    code_digest: Change | None = None
    cache_key: Change | None = None
    inputs: dict[str, Change] = Field(default_factory=dict)
    outputs: dict[str, Change] = Field(default_factory=dict)
    duration_ms: Change = Field(default_factory=Change)

    @property
    def changed(self) -> bool:
        return bool(self.only_in or self.status or self.code_digest or self.cache_key or self.inputs or self.outputs)


class PipelineRunDiff(BaseModel):
    model_config = _JSON_CONFIG
    a: str
    b: str
    name: Change | None = None
    definition: Change | None = None
    status: Change | None = None
    params: dict[str, Change] = Field(default_factory=dict)
    steps: list[StepDiff] = Field(default_factory=list)
    duration_ms: Change = Field(default_factory=Change)


class PipelineFailed(ShipyardError):
    """A pipeline run ended FAILED; names the failed step and carries the pipeline run."""

    code = "pipeline_failed"
    status = 422

    def __init__(self, message: str, *, run: PipelineRun | None = None, step: str | None = None):
        super().__init__(
            message, details={"pipeline_run_id": run.id if run else None, "step": step}, field="step" if step else None
        )
        self.run = run
        self.step = step
        self.pipeline_run_id = run.id if run else None
