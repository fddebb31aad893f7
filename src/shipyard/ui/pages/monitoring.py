"""Dashboard pages of monitoring: the monitors, one monitor's windows (drift per feature with the
reference-vs-current histograms, performance, prediction drift, system health, alerts) and the
alerts with their Acknowledge / Resolve actions.

Everything shown comes from what the monitoring service stores per window — the metrics, and the
window profiles merged into the report's histograms (``MonitoringService.window_histograms``) — so
a page never re-reads the prediction log and its cost does not grow with traffic.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.monitoring.entities import Alert, Monitor, WindowResult
from shipyard.monitoring.rules import metric_value
from shipyard.services import Services
from shipyard.ui import charts
from shipyard.ui.web import render, services_of

router = APIRouter()

WINDOWS_SHOWN = 168  # windows in the selector and the time-series charts: the newest (a week of hourly ones)
HISTOGRAMS_SHOWN = 12  # histograms drawn before "show all"
ALERTS_SHOWN = 200  # alerts on the alerts page (the most recent)
MONITOR_ALERTS_SHOWN = 50
ALERT_FILTERS = ("all", "open", "firing", "acknowledged", "resolved")
STATUS_ORDER = {"firing": 0, "acknowledged": 1, "resolved": 2}
TESTS = ("ks", "chi2")  # methods whose value is a p-value: smaller is worse
PREDICTION = "prediction"  # the name the monitored prediction column has in drift results


# ---------------------------------------------------------------------------------------- pages
# /monitoring/alerts is declared before /monitoring/{monitor}, which would otherwise take "alerts".


@router.get("/monitoring")
def monitors_page(request: Request) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    monitors = services.monitoring.list_monitors()
    open_alerts = services.monitoring.list_alerts(status="open", limit=1000)
    per_monitor = Counter(a.monitor for a in open_alerts)
    rows = [_monitor_summary(services, m, per_monitor[m.name]) for m in monitors]
    return render(
        request,
        "monitoring_list.html",
        rows=rows,
        open_alerts=len(open_alerts),
        firing=sum(1 for a in open_alerts if a.status == "firing"),
        schedule_text=schedule_text,
    )


@router.get("/monitoring/alerts")
def alerts_page(request: Request, status: str = "all", monitor: str | None = None) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    if status not in ALERT_FILTERS:
        raise InvalidInput(f"status is one of {', '.join(ALERT_FILTERS)}, not {status!r}", field="status")
    monitor = monitor or None
    if monitor is not None:  # NotFound for a monitor that does not exist; its name when given its endpoint
        monitor = services.monitoring.get_monitor(monitor).name
    alerts = services.monitoring.list_alerts(monitor, None if status == "all" else status, limit=ALERTS_SHOWN)
    counts = Counter(a.status for a in services.monitoring.list_alerts(monitor, limit=1000))
    return render(
        request,
        "monitoring_alerts.html",
        alerts=_alert_views(_by_status(alerts)),
        status=status,
        monitor=monitor,
        counts=counts,
        filters=ALERT_FILTERS,
        limit=ALERTS_SHOWN,
    )


@router.get("/monitoring/{monitor}")
def monitor_page(request: Request, monitor: str, window: str | None = None, histograms: str = "") -> HTMLResponse:
    services = services_of(request)
    try:
        found = services.monitoring.get_monitor(monitor)
    except NotFound:
        services.access.require("read")  # who may not read learns nothing about which monitors exist
        raise
    services.access.require("read", model=found.model)
    windows = services.monitoring.recent_windows(found.name, WINDOWS_SHOWN)
    selected = _selected_window(services, found, windows, window)
    alerts = services.monitoring.list_alerts(found.name, limit=MONITOR_ALERTS_SHOWN)
    context: dict[str, Any] = {
        "monitor": found,
        "windows": list(reversed(windows)),  # newest first in the selector
        "selected": selected,
        "alerts": _alert_views(_by_status(alerts)),
        "show_all": histograms == "all",
    }
    if selected is not None:
        context.update(_window_sections(services, found, selected, histograms == "all"))
        context.update(_neighbours(windows, selected))
    context["charts"] = _time_charts(found, windows, selected)
    context["errors"] = _error_rates(services, found)
    return render(request, "monitoring_monitor.html", schedule_text=schedule_text, **context)


# ---------------------------------------------------------------------------------------- monitors list


def _monitor_summary(services: Services, monitor: Monitor, open_alerts: int) -> dict[str, Any]:
    latest = services.monitoring.recent_windows(monitor.name, 1)
    window = latest[-1] if latest else None
    drift = (window.metrics.get("drift") or {}) if window is not None else {}
    return {
        "monitor": monitor,
        "window": window,
        "status": _window_status(window),
        "drifted": len(drift.get("drifted") or []),
        "features": len(monitor.columns),
        "open_alerts": open_alerts,
    }


def _window_status(window: WindowResult | None) -> str:
    if window is None:
        return "no windows yet"
    if window.status != "ok":
        return window.status
    drift = window.metrics.get("drift") or {}
    return "drift" if drift.get("drifted") or drift.get("prediction_drift") else "ok"


def schedule_text(seconds: float | None) -> str:
    """A monitor's schedule in words ("every 5m"; "on demand" without one)."""
    if seconds is None:
        return "on demand"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"every {int(seconds // size)}{unit}"
    return f"every {seconds:g}s"


# ---------------------------------------------------------------------------------------- one monitor


def _selected_window(
    services: Services, monitor: Monitor, windows: list[WindowResult], wanted: str | None
) -> WindowResult | None:
    """The window named by its start (``?window=<epoch ms>``), else the latest one."""
    if not wanted:
        return windows[-1] if windows else None
    try:
        start = int(wanted)
    except ValueError:
        message = f"window is a window's start in epoch milliseconds, not {wanted!r}"
        raise InvalidInput(message, field="window") from None
    for w in windows:
        if w.start == start:
            return w
    # an older window than the selector lists: look it up directly
    for w in services.monitoring.list_windows(monitor.name, "", since=start, until=start + 1, limit=10):
        if w.start == start:
            return w
    raise NotFound(f"monitor {monitor.name!r} has no window starting at {start}", field="window")


def _neighbours(windows: list[WindowResult], selected: WindowResult) -> dict[str, Any]:
    starts = [w.start for w in windows]
    if selected.start not in starts:
        return {"previous": None, "next": None}
    i = starts.index(selected.start)
    return {
        "previous": starts[i - 1] if i > 0 else None,
        "next": starts[i + 1] if i + 1 < len(starts) else None,
    }


def _window_sections(services: Services, monitor: Monitor, window: WindowResult, show_all: bool) -> dict[str, Any]:
    """The selected window's drift table, histograms, prediction drift and summary figures."""
    drift = window.metrics.get("drift") or {}
    columns: dict[str, Any] = drift.get("columns") or {}
    features = sorted(
        ({"name": name, **(info or {})} for name, info in columns.items() if name != PREDICTION),
        key=_drift_order,
    )
    histograms = services.monitoring.window_histograms(monitor.name, window.start, window.end) if columns else {}
    ordered = [f["name"] for f in features if f["name"] in histograms]
    shown = ordered if show_all else ordered[:HISTOGRAMS_SHOWN]
    figures = [
        {"column": name, "info": columns[name], "figure": _histogram_figure(histograms[name])}
        for name in shown
    ]
    prediction = columns.get(PREDICTION)
    prediction_figure = (
        _histogram_figure(histograms[PREDICTION])
        if prediction is not None and PREDICTION in histograms
        else None
    )
    return {
        "drift": drift,
        "features": features,
        "drifted_count": sum(1 for f in features if f.get("drifted")),
        "histograms": figures,
        "hidden_histograms": len(ordered) - len(shown),
        "prediction": prediction,
        "prediction_figure": prediction_figure,
        "performance": window.metrics.get("performance") or {},
        "estimate": window.metrics.get("estimate") or {},
        "health": window.metrics.get("health") or {},
        "multivariate": window.metrics.get("multivariate") or {},
        "concept": window.metrics.get("concept") or {},
    }


def _drift_order(info: dict[str, Any]) -> tuple[Any, ...]:
    """Drifted first; then the closest to its threshold; columns without data last."""
    no_data = info.get("status") == "no data"
    return (not info.get("drifted"), no_data, -_severity(info), info["name"])


def _severity(info: dict[str, Any]) -> float:
    """How far a column is towards its threshold (1 = on it): value / threshold for a distance,
    threshold / p-value for a test."""
    value, threshold = info.get("value"), info.get("threshold")
    if value is None or not threshold:
        return 0.0
    if info.get("method") in TESTS:
        return float(threshold) / max(float(value), 1e-12)
    return float(value) / float(threshold)


def _histogram_figure(histogram: dict[str, Any]) -> dict[str, Any]:
    """The report's reference-vs-current shares as grouped bars; buckets empty on both sides (no
    missing values, nothing out of range) are left out. The page writes the caption (column,
    verdict, statistic) above the chart, clear of plotly's toolbar."""
    keep = [
        i for i, (r, c) in enumerate(zip(histogram["reference"], histogram["current"], strict=True)) if r or c
    ]
    return charts.bar_figure(
        [histogram["buckets"][i] for i in keep],
        {
            "reference": [histogram["reference"][i] for i in keep],
            "current": [histogram["current"][i] for i in keep],
        },
        y_title="share of rows",
        height=270,
        xaxis={"type": "category", "tickangle": -40, "tickfont": {"size": 10}, "automargin": True},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        margin={"l": 50, "r": 10, "t": 30, "b": 40},
    )


def _iso(ms: int) -> str:
    """A window's time as plotly reads dates on an axis (UTC), to the millisecond: windows of N
    predictions may start within the same second."""
    return dt.datetime.fromtimestamp(ms / 1000.0, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _time_charts(monitor: Monitor, windows: list[WindowResult], selected: WindowResult | None) -> dict[str, Any]:
    """The metrics over the windows shown: performance with label coverage, drift, prediction
    drift, latency and throughput. A chart without any value is left out."""
    if not windows:
        return {}
    xs = [_iso(w.start) for w in windows]
    marker = _window_marker(selected)

    def values(path: str) -> list[float | None]:
        return [metric_value(w.metrics, path) for w in windows]

    out: dict[str, Any] = {}
    main = "performance.accuracy" if monitor.task == "classification" else "performance.rmse"
    perf_series = [{"name": main.split(".", 1)[1], "x": xs, "y": values(main)}]
    if monitor.task == "classification":
        perf_series.append({"name": "f1", "x": xs, "y": values("performance.f1")})
        perf_series.append({"name": "estimated accuracy (label-free)", "x": xs, "y": values("estimate.accuracy")})
    else:
        perf_series.append({"name": "mae", "x": xs, "y": values("performance.mae")})
    if any(v is not None for s in perf_series for v in s["y"]):
        figure = charts.line_figure(
            [s for s in perf_series if any(v is not None for v in s["y"])],
            title="Performance per window",
            y_title=main.split(".", 1)[1],
            yaxis2={"overlaying": "y", "side": "right", "range": [0, 1], "tickformat": ".0%", "dtick": 0.25,
                    "title": {"text": "label coverage"}, "showgrid": False},
            margin={"l": 50, "r": 60, "t": 36, "b": 40},
            shapes=marker,
        )
        # label coverage as faint bars on the second axis, as the HTML report draws it
        figure["data"].append({"type": "bar", "name": "label coverage", "x": xs, "y": [w.coverage for w in windows],
                               "yaxis": "y2", "opacity": 0.2, "marker": {"color": "#64748b"}})
        out["performance"] = figure
    drift_share = values("drift.share")
    if any(v is not None for v in drift_share):
        out["drift"] = charts.line_figure(
            [{"name": "share of features drifted", "x": xs, "y": drift_share},
             {"name": "domain classifier AUC", "x": xs, "y": values("multivariate.auc")}],
            title="Data drift per window",
            y_title="share / AUC",
            shapes=marker,
        )
    prediction = values("drift.columns.prediction.value")
    if any(v is not None for v in prediction):
        out["prediction"] = charts.line_figure(
            [{"name": "prediction drift", "x": xs, "y": prediction},
             {"name": "threshold", "x": xs, "y": values("drift.columns.prediction.threshold"), "mode": "lines"}],
            title="Prediction drift per window",
            y_title="statistic",
            shapes=marker,
        )
    latency = [
        {"name": name, "x": xs, "y": values(f"health.latency_{name}_ms")} for name in ("p50", "p95", "p99")
    ]
    if any(v is not None for s in latency for v in s["y"]):
        out["latency"] = charts.line_figure(latency, title="Latency per window", y_title="ms", shapes=marker)
    throughput = [_per_second(w) for w in windows]
    out["throughput"] = charts.line_figure(
        [{"name": "predictions / s", "x": xs, "y": throughput},
         {"name": "requests / s", "x": xs, "y": [_per_second(w, "requests") for w in windows]}],
        title="Throughput per window",
        y_title="per second",
        shapes=marker,
    )
    return out


def _per_second(window: WindowResult, what: str = "rows") -> float | None:
    """Predictions (or requests) per second over the window's span."""
    span_s = (window.end - window.start) / 1000.0
    count = window.rows if what == "rows" else (window.metrics.get("health") or {}).get("requests")
    if count is None or span_s <= 0:
        return None
    return count / span_s


def _window_marker(window: WindowResult | None) -> list[dict[str, Any]]:
    """A shaded band over the selected window on every time chart."""
    if window is None:
        return []
    half = (window.end - window.start) // 2  # points sit at window starts: centre the band on the point
    return [{"type": "rect", "xref": "x", "yref": "paper", "x0": _iso(window.start - half),
             "x1": _iso(window.start + half), "y0": 0, "y1": 1, "fillcolor": "rgba(37,99,235,0.10)",
             "line": {"width": 0}, "layer": "below"}]


def _error_rates(services: Services, monitor: Monitor) -> list[Any]:
    """Error rates as the serving replicas record them: per variant of the endpoint's current
    deployment step (the prediction log keeps answered predictions only, so windows carry none)."""
    if monitor.endpoint is None:
        return []
    try:
        status = services.deploy.deployment_status(monitor.endpoint)
    except NotFound:
        return []
    return list(status.variants)


# ---------------------------------------------------------------------------------------- alerts


def _by_status(alerts: list[Alert]) -> list[Alert]:
    """Firing first, then acknowledged, then resolved; the newest first within each."""
    return sorted(alerts, key=lambda a: (STATUS_ORDER.get(a.status, 3), -a.fired_at))


def _alert_views(alerts: list[Alert]) -> list[dict[str, Any]]:
    return [{"alert": a, "condition": _condition(a), "notifications": _outcomes(a)} for a in alerts]


def _condition(alert: Alert) -> str:
    t = alert.threshold or {}
    if "dynamic" in t:
        return f"outside mean ± {t['dynamic']:g}σ [{t.get('low', 0):.4g}, {t.get('high', 0):.4g}]"
    if "op" in t:
        return f"{t['op']} {t.get('value')}"
    return ""


def _outcomes(alert: Alert) -> list[dict[str, Any]]:
    """Notification outcomes with the channel's host only: a webhook URL's path may hold its secret."""
    out = []
    for outcome in alert.notifications:
        url = outcome.get("url")
        where = ""
        if url:
            parsed = urlparse(str(url))
            where = f"{parsed.scheme}://{parsed.netloc}/…" if parsed.netloc else "…"
        out.append({**outcome, "url": where})
    return out
