"""API operations of monitoring: monitors, windows and series, labels, alert rules and alerts."""

from __future__ import annotations

from shipyard.api.operation import Operation

MONITORING_OPERATIONS: tuple[Operation, ...] = (
    Operation("create_monitor", "monitoring", "POST", "/monitors", "Watch an endpoint or model against a reference"),
    Operation("list_monitors", "monitoring", "GET", "/monitors", "List monitors"),
    Operation("get_monitor", "monitoring", "GET", "/monitors/{name}", "Get a monitor"),
    Operation("delete_monitor", "monitoring", "DELETE", "/monitors/{name}", "Delete a monitor and its windows"),
    Operation("run_monitor", "monitoring", "POST", "/monitors/{name}/run", "Compute due windows and judge rules"),
    Operation("list_windows", "monitoring", "GET", "/monitors/{name}/windows", "Computed windows with metrics"),
    Operation("metric_series", "monitoring", "GET", "/monitors/{name}/series", "One metric as a time series"),
    Operation("merged_window", "monitoring", "GET", "/monitors/{name}/merged", "A longer window, merged"),
    Operation("monitor_report", "monitoring", "GET", "/monitors/{name}/report", "Report data for a period"),
    Operation("record_labels", "monitoring", "POST", "/labels", "Ground truth by prediction id"),
    Operation("list_unknown_labels", "monitoring", "GET", "/labels/unknown", "Labels matching no prediction"),
    Operation("create_alert_rule", "monitoring", "POST", "/alert-rules", "Create an alert rule"),
    Operation("list_alert_rules", "monitoring", "GET", "/alert-rules", "List alert rules"),
    Operation("get_alert_rule", "monitoring", "GET", "/alert-rules/{name}", "Get an alert rule"),
    Operation("delete_alert_rule", "monitoring", "DELETE", "/alert-rules/{name}", "Delete an alert rule"),
    Operation("list_alerts", "monitoring", "GET", "/alerts", "List alerts (status: open, firing, ...)"),
    Operation("get_alert", "monitoring", "GET", "/alerts/{alert_id}", "Get an alert"),
    Operation("acknowledge_alert", "monitoring", "POST", "/alerts/{alert_id}/acknowledge", "Acknowledge"),
    Operation("resolve_alert", "monitoring", "POST", "/alerts/{alert_id}/resolve", "Resolve by hand"),
    Operation("run_due_monitors", "monitoring", "POST", "/monitors-due/run", "Run monitors whose schedule is due"),
)
