"""What the monitoring service returns: monitors, computed windows, labels, alert rules and alerts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

Task = Literal["classification", "regression"]
AlertStatus = Literal["firing", "acknowledged", "resolved"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


class Monitor(BaseModel):
    id: str
    name: str
    endpoint: str | None  # None: a model's batch-logged predictions
    model: str
    version: int | None
    task: Task
    reference: dict[
        str, Any
    ]  # {"kind": "dataset", "ref": "iris@1", "rows": n, "source": "lineage"|"given"} or a window
    window: dict[str, Any]  # {"kind": "time", "ms": 3600000, "text": "1h"} | {"kind": "count", "rows": 1000}
    columns: list[str]  # the monitored input columns; the prediction is monitored as "prediction"
    segment_by: list[str]
    options: dict[str, Any]
    schedule_seconds: float | None
    cursor: dict[str, Any]
    last_run_at: int | None
    created_by: str | None
    created_at: int
    updated_at: int


class WindowResult(BaseModel):
    """One computed window (for all rows, or one segment): its size, label coverage and every metric."""

    monitor: str
    segment: str  # "" for all rows, else "column=value"
    start: int
    end: int
    rows: int
    labelled: int
    coverage: float | None  # labelled / rows; None for an empty window
    status: Literal["ok", "no data"]
    metrics: dict[str, Any]  # drift, performance, estimate, health, concept (see docs/monitoring.md)
    computed_at: int


class MonitorRun(BaseModel):
    """What one ``run_monitor`` call did."""

    monitor: str
    windows: list[WindowResult]  # new or recomputed (late labels) windows, all segments
    relabelled: int  # earlier windows recomputed because labels arrived
    alerts_fired: list[str]
    alerts_resolved: list[str]
    message: str


class LabelReceipt(BaseModel):
    """Ground truth accepted by prediction id. ``unknown`` lists ids no logged prediction has (yet):
    they are stored anyway, counted, and matched if the prediction shows up later."""

    accepted: int
    replaced: int
    unknown: list[str]
    unknown_count: int


class SeriesPoint(BaseModel):
    start: int
    end: int
    value: float | None
    rows: int
    labelled: int


class MetricSeries(BaseModel):
    monitor: str
    metric: str
    segment: str
    points: list[SeriesPoint]


class AlertRule(BaseModel):
    id: str
    name: str
    monitor: str
    metric: str  # a dotted path into a window's metrics, e.g. "drift.share" or "performance.accuracy"
    condition: dict[str, Any]  # {"op": ">", "value": 0.3} | {"dynamic": 3.0, "history": 24}
    window: str | None  # a longer window than the monitor's, merged from stored windows ("1d")
    min_samples: int
    severity: str
    owner: str | None
    runbook: str | None
    fire_after: int
    resolve_after: int
    channels: list[dict[str, Any]]
    trigger: dict[str, Any] | None
    state: dict[str, Any]
    enabled: bool
    created_by: str | None
    created_at: int
    updated_at: int


class Alert(BaseModel):
    id: str
    rule: str
    monitor: str
    status: AlertStatus
    severity: str
    metric: str
    value: float | None
    threshold: dict[str, Any]
    window_start: int
    window_end: int
    message: str
    evidence: dict[str, Any]
    notifications: list[dict[str, Any]]
    pipeline_run_id: str | None
    trigger_error: str | None
    owner: str | None = None
    runbook: str | None = None
    fired_at: int
    acknowledged_at: int | None
    acknowledged_by: str | None
    resolved_at: int | None


class MonitorReport(BaseModel):
    """The summary behind ``shipyard monitor report``: the latest merged window against the reference,
    the series of every headline metric, and the alerts of the period."""

    monitor: Monitor
    since: int
    until: int
    current: WindowResult
    series: dict[str, list[SeriesPoint]]
    alerts: list[Alert]
    histograms: dict[str, dict[str, Any]]  # column -> {"buckets", "reference", "current"} (shares)
    unknown_labels: int
