"""Tracking entities as returned by the service, the API and the SDK alike."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# NaN and ±inf are legitimate metric values; JSON has no literal for them, so they travel as strings.
FLOAT_CONFIG = ConfigDict(ser_json_inf_nan="strings")


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class Experiment(BaseModel):
    id: str
    name: str
    description: str | None = None
    lifecycle: str = "active"
    created_by: str | None = None
    created_at: int
    updated_at: int
    tags: dict[str, str] = Field(default_factory=dict)


class MetricPoint(BaseModel):
    model_config = FLOAT_CONFIG
    key: str
    value: float
    step: int = 0
    timestamp: int | None = None


class Metric(BaseModel):
    """The latest value of one metric of a run."""

    model_config = FLOAT_CONFIG
    key: str
    value: float
    step: int
    timestamp: int


class Artifact(BaseModel):
    path: str
    digest: str
    size: int
    is_tree: bool
    created_at: int


class Run(BaseModel):
    model_config = FLOAT_CONFIG
    id: str
    experiment_id: str
    parent_run_id: str | None = None
    name: str
    description: str | None = None
    status: RunStatus
    user: str
    start_time: int
    end_time: int | None = None
    lifecycle: str = "active"
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    environment: dict[str, Any] | None = None

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


class RunPage(BaseModel):
    model_config = FLOAT_CONFIG
    runs: list[Run]
    next_page_token: str | None = None


class MetricHistory(BaseModel):
    """A metric series, possibly downsampled: ``steps``/``values``/``timestamps`` are parallel arrays."""

    model_config = FLOAT_CONFIG
    run_id: str
    key: str
    total_points: int
    downsampled: bool
    steps: list[int]
    values: list[float]
    timestamps: list[int]
