"""The SDK's monitoring calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.entities import (
    Alert,
    AlertRule,
    LabelReceipt,
    MetricSeries,
    Monitor,
    MonitorReport,
    MonitorRun,
    WindowResult,
)
from shipyard.registry.entities import ModelVersion

ROW_GROUP = 100_000


class MonitoringMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    @property
    def artifacts(self) -> Any:  # provided by Client
        raise NotImplementedError

    # -- logging predictions scored offline

    def log_predictions(
        self,
        df: Any,
        model: str,
        *,
        endpoint: str | None = None,
        prediction_column: str = "prediction",
        id_column: str | None = None,
        timestamp_column: str | None = None,
        proba_columns: Sequence[str] | None = None,
    ) -> list[str]:
        """Log predictions scored offline (``model`` is ``NAME/VERSION`` or a ``models:/`` URI): every
        other column is an input. Returns the prediction ids, to send labels against later."""
        import pyarrow.parquet as pq

        from shipyard.monitoring.batch_log import BATCH_ENDPOINT, prediction_table

        uri = model if model.startswith("models:/") else f"models:/{model}"
        resolved = self._call("registry", "resolve_tree", uri=uri)["version"]
        if resolved is None:
            raise InvalidInput(f"{model!r} names no registered model version", field="model")
        version = ModelVersion.model_validate(resolved)
        table, ids = prediction_table(
            df,
            endpoint=endpoint or BATCH_ENDPOINT,
            model=version.model_name,
            version=version.version,
            prediction_column=prediction_column,
            id_column=id_column,
            timestamp_column=timestamp_column,
            proba_columns=proba_columns,
        )
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd", row_group_size=ROW_GROUP)  # readers stream by row group
        digest, _ = self.artifacts.put_bytes(buf.getvalue())
        ts = table.column("ts").to_pylist()
        self._call(
            "predictions",
            "record_segment",
            endpoint=endpoint or BATCH_ENDPOINT,
            model_name=version.model_name,
            model_version=version.version,
            digest=digest,
            rows=table.num_rows,
            first_ts=min(ts),
            last_ts=max(ts),
        )
        return ids

    def record_labels(self, labels: dict[str, Any] | list[dict[str, Any]]) -> LabelReceipt:
        """Ground truth by prediction id: ``{id: label}`` or ``[{"prediction_id", "label"}]``."""
        if isinstance(labels, dict):
            labels = [{"prediction_id": k, "label": v} for k, v in labels.items()]
        return self._call("monitoring", "record_labels", items=labels)

    def list_unknown_labels(self, limit: int = 100) -> list[str]:
        return self._call("monitoring", "list_unknown_labels", limit=limit)

    # -- monitors

    def create_monitor(self, name: str, **options: Any) -> Monitor:
        """Watch ``endpoint=`` or ``model=``; see MonitoringService.create_monitor for the options."""
        return self._call("monitoring", "create_monitor", name=name, **options)

    def get_monitor(self, name: str) -> Monitor:
        return self._call("monitoring", "get_monitor", name=name)

    def list_monitors(self) -> list[Monitor]:
        return self._call("monitoring", "list_monitors")

    def delete_monitor(self, name: str) -> None:
        self._call("monitoring", "delete_monitor", name=name)

    def run_monitor(self, name: str, now: int | None = None) -> MonitorRun:
        return self._call("monitoring", "run_monitor", name=name, now=now)

    def run_due_monitors(self, now: int | None = None) -> list[MonitorRun]:
        """Run every monitor whose schedule is due (what the server's and the scheduler's loops call)."""
        return self._call("monitoring", "run_due_monitors", now=now)

    def monitor_windows(
        self, name: str, segment: str | None = "", since: int | None = None, until: int | None = None, limit: int = 1000
    ) -> list[WindowResult]:
        return self._call(
            "monitoring", "list_windows", name=name, segment=segment, since=since, until=until, limit=limit
        )

    def metric_series(
        self, name: str, metric: str, segment: str = "", since: int | None = None, until: int | None = None
    ) -> MetricSeries:
        return self._call(
            "monitoring", "metric_series", name=name, metric=metric, segment=segment, since=since, until=until
        )

    def merged_window(self, name: str, since: int, until: int, segment: str = "") -> WindowResult:
        return self._call("monitoring", "merged_window", name=name, since=since, until=until, segment=segment)

    def monitor_report(self, name: str, window: str = "1d", until: int | None = None) -> MonitorReport:
        return self._call("monitoring", "monitor_report", name=name, window=window, until=until)

    # -- alerts

    def create_alert_rule(self, name: str, monitor: str, metric: str, condition: Any, **options: Any) -> AlertRule:
        return self._call(
            "monitoring", "create_alert_rule", name=name, monitor=monitor, metric=metric, condition=condition, **options
        )

    def list_alert_rules(self, monitor: str | None = None) -> list[AlertRule]:
        return self._call("monitoring", "list_alert_rules", monitor=monitor)

    def delete_alert_rule(self, name: str) -> None:
        self._call("monitoring", "delete_alert_rule", name=name)

    def list_alerts(self, monitor: str | None = None, status: str | None = None, limit: int = 100) -> list[Alert]:
        return self._call("monitoring", "list_alerts", monitor=monitor, status=status, limit=limit)

    def get_alert(self, alert_id: str) -> Alert:
        return self._call("monitoring", "get_alert", alert_id=alert_id)

    def acknowledge_alert(self, alert_id: str, comment: str | None = None) -> Alert:
        return self._call("monitoring", "acknowledge_alert", alert_id=alert_id, comment=comment)

    def resolve_alert(self, alert_id: str, comment: str | None = None) -> Alert:
        return self._call("monitoring", "resolve_alert", alert_id=alert_id, comment=comment)
