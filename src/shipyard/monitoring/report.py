"""The monitoring report: a readable text summary and a self-contained HTML page with plots.

The HTML embeds plotly.js once (no network needed to open it) and draws: reference vs current
histograms of each drifted column (then the others), the headline metrics over time with label
coverage, and the alerts of the period.
"""

from __future__ import annotations

import html
from typing import Any

from shipyard.core.time import ms_to_iso
from shipyard.monitoring.entities import MonitorReport

PERCENT_METRICS = {"drift.share", "labels.coverage", "performance.accuracy", "performance.f1", "estimate.accuracy"}


def summary_lines(report: MonitorReport) -> list[str]:
    """The report as plain lines (the CLI prints them; the HTML shows them at the top)."""
    m, cur = report.monitor, report.current
    target = f"endpoint {m.endpoint}" if m.endpoint else f"model {m.model}"
    lines = [
        f"monitor {m.name} ({target}, {m.task}) — {ms_to_iso(report.since)} to {ms_to_iso(report.until)}",
        f"reference: {m.reference.get('ref')} ({m.reference.get('rows')} rows, {m.reference.get('source')})",
    ]
    if cur.rows == 0:
        lines.append("no data: no predictions were logged in this period")
        return lines
    metrics = cur.metrics
    lines.append(f"predictions: {cur.rows}   labelled: {cur.labelled} ({_pct(cur.coverage)} label coverage)")
    mismatched = (metrics.get("labels") or {}).get("mismatched")
    if mismatched:
        lines.append(
            f"labels of the wrong type: {mismatched['count']} ({mismatched['reason']}), e.g. "
            + ", ".join(mismatched["examples"])
        )
    drift = metrics.get("drift") or {}
    drifted = drift.get("drifted") or []
    features = [c for c in (drift.get("columns") or {}) if c != "prediction"]
    lines.append(
        f"data drift: {len(drifted)} of {len(features)} features drifted ({_pct(drift.get('share'))})"
        + (f": {', '.join(drifted)}" if drifted else "")
    )
    if drift.get("prediction_drift"):
        lines.append("prediction drift: the distribution of predictions moved from the reference")
    perf = metrics.get("performance") or {}
    estimate = metrics.get("estimate") or {}
    if m.task == "classification":
        realised = perf.get("accuracy")
        est = estimate.get("accuracy")
        lines.append(
            f"accuracy: {_num(realised) if realised is not None else 'no labels yet'}"
            + (f"   estimated (label-free): {_num(est)}" if est is not None else "")
        )
    elif perf:
        lines.append(f"rmse: {_num(perf.get('rmse'))}   mae: {_num(perf.get('mae'))}   r2: {_num(perf.get('r2'))}")
    health = metrics.get("health") or {}
    if health.get("latency_p99_ms") is not None:
        lines.append(
            f"latency p50/p95/p99: {_num(health.get('latency_p50_ms'))} / {_num(health.get('latency_p95_ms'))} / "
            f"{_num(health.get('latency_p99_ms'))} ms"
        )
    open_alerts = [a for a in report.alerts if a.status != "resolved"]
    lines.append(f"alerts: {len(report.alerts)} in the period, {len(open_alerts)} open")
    for alert in report.alerts[:10]:
        trigger = f" → pipeline run {alert.pipeline_run_id}" if alert.pipeline_run_id else ""
        lines.append(f"  [{alert.severity}] {alert.rule} {alert.status}: {alert.message}{trigger}")
    if report.unknown_labels:
        lines.append(f"labels for unknown prediction ids: {report.unknown_labels} (shipyard monitor labels --unknown)")
    return lines


def render_html(report: MonitorReport) -> str:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    figures: list[str] = []

    def add(fig: Any) -> None:
        fig.update_layout(
            height=340,
            margin={"l": 50, "r": 50, "t": 50, "b": 40},
            template="plotly_white",
            legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        )
        figures.append(fig.to_html(full_html=False, include_plotlyjs=False))

    # metrics over time, with label coverage
    for metric, points in report.series.items():
        xs = [ms_to_iso(p.start) for p in points]
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=xs, y=[p.value for p in points], mode="lines+markers", name=metric))
        if metric.startswith("performance."):
            est = report.series.get("estimate." + metric.split(".", 1)[1])
            if est:
                fig.add_trace(
                    go.Scatter(
                        x=[ms_to_iso(p.start) for p in est],
                        y=[p.value for p in est],
                        mode="lines",
                        line={"dash": "dot"},
                        name="estimate (label-free)",
                    )
                )
            fig.add_trace(
                go.Bar(
                    x=xs,
                    y=[p.labelled / p.rows if p.rows else None for p in points],
                    name="label coverage",
                    opacity=0.25,
                    yaxis="y2",
                )
            )
            fig.update_layout(
                yaxis2={
                    "overlaying": "y",
                    "side": "right",
                    "range": [0, 1],
                    "title": "label coverage",
                    "tickformat": ".0%",
                }
            )
        for alert in report.alerts:
            if alert.metric == metric:
                fig.add_vline(x=ms_to_iso(alert.window_start), line_dash="dash", line_color="red")
        fig.update_layout(title=f"{metric} per window")
        add(fig)

    # reference vs current histograms, drifted columns first
    drift = (report.current.metrics.get("drift") or {}).get("columns") or {}
    order = sorted(report.histograms, key=lambda c: (not (drift.get(c) or {}).get("drifted"), c))
    for column in order:
        h = report.histograms[column]
        info = drift.get(column) or {}
        fig = go.Figure()
        fig.add_trace(go.Bar(x=h["buckets"], y=h["reference"], name="reference"))
        fig.add_trace(go.Bar(x=h["buckets"], y=h["current"], name="current"))
        verdict = "DRIFTED" if info.get("drifted") else "ok"
        value = info.get("value")
        title = f"{column}: {verdict}"
        if value is not None:
            title += f" ({info.get('method')} {value:.3g}, threshold {info.get('threshold') or 0:.3g})"
        fig.update_layout(title=title, barmode="group", yaxis_title="share of rows")
        add(fig)

    rows = "".join(
        f"<tr><td>{html.escape(a.severity)}</td><td>{html.escape(a.rule)}</td><td>{html.escape(a.status)}</td>"
        f"<td>{html.escape(ms_to_iso(a.fired_at) or '')}</td><td>{html.escape(a.message)}</td>"
        f"<td>{html.escape(a.pipeline_run_id or '')}</td></tr>"
        for a in report.alerts
    )
    drift_rows = "".join(
        f"<tr class='{'bad' if (info or {}).get('drifted') else ''}'><td>{html.escape(c)}</td>"
        f"<td>{html.escape(str((info or {}).get('method')))}</td><td>{_num((info or {}).get('value'))}</td>"
        f"<td>{_num((info or {}).get('threshold'))}</td><td>{html.escape(str((info or {}).get('status')))}</td></tr>"
        for c, info in sorted(drift.items(), key=lambda kv: (not (kv[1] or {}).get("drifted"), kv[0]))
    )
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(report))
    title = f"Shipyard monitoring report — {html.escape(report.monitor.name)}"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ddd; padding: 4px 8px; }}
tr.bad td {{ background: #fde8e8; }} h2 {{ margin-top: 1.5em; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 8px; }}
</style></head><body>
<h1>{title}</h1>
<ul>{summary}</ul>
<h2>Alerts</h2>
<table><tr><th>severity</th><th>rule</th><th>status</th><th>fired</th><th>message</th><th>pipeline run</th></tr>
{rows or "<tr><td colspan=6>none</td></tr>"}</table>
<h2>Drift per column</h2>
<table><tr><th>column</th><th>method</th><th>value</th><th>threshold</th><th>status</th></tr>{drift_rows}</table>
<h2>Plots</h2>
<div class="grid">{"".join(f"<div>{f}</div>" for f in figures)}</div>
</body></html>
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
