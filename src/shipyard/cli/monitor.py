"""``shipyard monitor …``: monitors, their windows and reports, alert rules and alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.output import State, emit_json, import_from_cwd, key_values, number, parse_params, state, table, when
from shipyard.core.errors import InvalidInput
from shipyard.monitoring.entities import Alert, Monitor, MonitorRun

app = typer.Typer(no_args_is_help=True)
MonitorArg = Annotated[str, typer.Argument(help="Monitor name (or the endpoint it watches).")]


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Monitor name.")],
    endpoint: Annotated[str | None, typer.Option("--endpoint", "-e", help="Watch this endpoint.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Or watch a model: NAME, NAME/3 or models:/NAME@alias.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", "-r", help="DATASET@N or window:START..END (default: the training data)."),
    ] = None,
    window: Annotated[str, typer.Option("--window", "-w", help="Window: 15m, 1h, 1d, or 1000p predictions.")] = "1h",
    columns: Annotated[str | None, typer.Option("--columns", help="Input columns to watch (a,b,c).")] = None,
    segment_by: Annotated[str | None, typer.Option("--segment-by", help="Input columns to segment by.")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="The reference's label.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="classification or regression.")] = None,
    schedule: Annotated[
        float | None, typer.Option("--schedule", help="Run every N seconds inside `shipyard server`.")
    ] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Option k=JSON, e.g. tests=true.")] = None,
) -> None:
    """Watch an endpoint's (or a model's) predictions against a reference: drift, performance, health."""
    st = state(ctx)
    monitor = st.client.create_monitor(
        name,
        endpoint=endpoint,
        model=model,
        reference=reference,
        window=window,
        columns=_csv(columns),
        segment_by=_csv(segment_by),
        label_column=label_column,
        task=task,
        schedule_seconds=schedule,
        options=parse_params(option or []) or None,
    )
    _show_monitor(st, monitor)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Monitors and what they watch."""
    st = state(ctx)
    monitors = st.client.list_monitors()
    if st.json:
        emit_json(monitors)
        return
    grid = table("monitor", "watches", "task", "window", "reference", "last run")
    for m in monitors:
        watches = f"endpoint {m.endpoint}" if m.endpoint else f"model {m.model}"
        grid.add_row(m.name, watches, m.task, _window_text(m), str(m.reference.get("ref")), when(m.last_run_at))
    st.out.print(grid)


@app.command("show")
def show(ctx: typer.Context, name: MonitorArg) -> None:
    """A monitor's configuration."""
    st = state(ctx)
    _show_monitor(st, st.client.get_monitor(name))


@app.command("delete")
def delete(ctx: typer.Context, name: MonitorArg) -> None:
    """Delete a monitor with its windows, rules and alerts (the journal keeps the record)."""
    st = state(ctx)
    st.client.delete_monitor(name)
    if st.json:
        emit_json({"deleted": name})
    else:
        st.out.print(f"deleted monitor {name}")


@app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Monitor (default: every monitor).")] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Run as if it were this time (ISO or epoch ms): backfills, replays.")
    ] = None,
) -> None:
    """Compute the windows completed since the last run (and those whose labels arrived), then judge the rules."""
    from shipyard.core.time import parse_time

    st = state(ctx)
    at = None if now is None else parse_time(now)
    import_from_cwd()  # retraining pipelines may live in the current directory
    names = [name] if name else [m.name for m in st.client.list_monitors()]
    runs = []
    for monitor in names:
        if not st.json:
            st.err.print(f"running monitor {monitor} ...")
        runs.append(st.client.run_monitor(monitor, now=at))
    if st.json:
        emit_json(runs if name is None else runs[0])
        return
    for result in runs:
        _show_run(st, result)


@app.command("windows")
def windows(
    ctx: typer.Context,
    name: MonitorArg,
    segment: Annotated[str, typer.Option("--segment", help="A segment, e.g. region=eu (default: all rows).")] = "",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Most recent N windows.")] = 24,
) -> None:
    """The computed windows: rows, label coverage, drift, performance, estimate."""
    st = state(ctx)
    found = st.client.monitor_windows(name, segment=segment, limit=100_000)[-limit:]
    if st.json:
        emit_json(found)
        return
    grid = table("window start", "rows", "labelled", "drifted", "accuracy/rmse", "estimate", "p99 ms")
    for w in found:
        if w.rows == 0:
            grid.add_row(when(w.start), "0", "-", "no data", "", "", "")
            continue
        m = w.metrics
        perf = m.get("performance") or {}
        headline = perf.get("accuracy", perf.get("rmse"))
        grid.add_row(
            when(w.start),
            str(w.rows),
            f"{w.labelled} ({w.coverage:.0%})",
            ", ".join((m.get("drift") or {}).get("drifted") or []) or "-",
            number(headline),
            number((m.get("estimate") or {}).get("accuracy")),
            number((m.get("health") or {}).get("latency_p99_ms")),
        )
    st.out.print(grid)


@app.command("series")
def series(
    ctx: typer.Context,
    name: MonitorArg,
    metric: Annotated[str, typer.Argument(help="e.g. drift.share, performance.accuracy, drift.columns.x.value")],
    segment: Annotated[str, typer.Option("--segment", help="A segment, e.g. region=eu.")] = "",
) -> None:
    """One metric over the stored windows (no value = no data, never zero)."""
    st = state(ctx)
    result = st.client.metric_series(name, metric, segment=segment)
    if st.json:
        emit_json(result)
        return
    grid = table("window start", metric, "rows", "labelled")
    for p in result.points:
        grid.add_row(when(p.start), "no data" if p.value is None else number(p.value), str(p.rows), str(p.labelled))
    st.out.print(grid)


@app.command("report")
def report(
    ctx: typer.Context,
    name: MonitorArg,
    window: Annotated[str, typer.Option("--window", "-w", help="The period: 1h, 1d, 7d, ...")] = "1d",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file to write (default: monitor-NAME.html).")
    ] = None,
) -> None:
    """Print a summary of the period and write a self-contained HTML report with plots."""
    from shipyard.monitoring.report import render_html, summary_lines

    st = state(ctx)
    result = st.client.monitor_report(name, window)
    target = out or Path(f"monitor-{result.monitor.name}.html")
    target.write_text(render_html(result), encoding="utf-8")
    if st.json:
        emit_json({"report": result, "html": str(target)})
        return
    for line in summary_lines(result):
        st.out.print(line, soft_wrap=True, markup=False, highlight=False)
    st.out.print(f"HTML report: {target}")


@app.command("labels")
def labels(
    ctx: typer.Context,
    unknown: Annotated[bool, typer.Option("--unknown", help="List labels that match no logged prediction.")] = True,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 100,
) -> None:
    """Labels received for prediction ids the log does not hold (typos, or predictions not logged)."""
    st = state(ctx)
    ids = st.client.list_unknown_labels(limit)
    if st.json:
        emit_json(ids)
        return
    st.out.print(f"{len(ids)} label(s) match no logged prediction" + (":" if ids else ""))
    for pid in ids:
        st.out.print(f"  {pid}", markup=False, highlight=False)


# -- alert rules and alerts ---------------------------------------------------------------------


@app.command("rule")
def rule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Rule name.")],
    monitor: Annotated[str, typer.Option("--monitor", "-m", help="The monitor it watches.")],
    metric: Annotated[str, typer.Option("--metric", help="drift.share, performance.accuracy, ...")],
    when_: Annotated[str, typer.Option("--when", help="'> 0.3', '< 0.8', or 'dynamic 3' (mean ± 3σ).")],
    window: Annotated[str | None, typer.Option("--window", help="Judge over a longer merged window (1d).")] = None,
    min_samples: Annotated[
        int, typer.Option("--min-samples", min=0, help="Rows (labelled rows for performance).")
    ] = 100,
    severity: Annotated[str, typer.Option("--severity", help="info, warning or critical.")] = "warning",
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    runbook: Annotated[str | None, typer.Option("--runbook", help="A link for whoever is paged.")] = None,
    fire_after: Annotated[int, typer.Option("--fire-after", min=1, help="Breaching windows before firing.")] = 1,
    resolve_after: Annotated[int, typer.Option("--resolve-after", min=1, help="Clear windows to resolve.")] = 2,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", "-c", help="log, a webhook URL, or slack:URL (repeatable).")
    ] = None,
    trigger: Annotated[
        str | None, typer.Option("--trigger", help="Pipeline package.module:function to run when it fires.")
    ] = None,
    trigger_param: Annotated[list[str] | None, typer.Option("--trigger-param", help="k=v for the pipeline.")] = None,
    data_param: Annotated[
        str | None, typer.Option("--data-param", help="Pass the window's data (a dataset ref) as this parameter.")
    ] = None,
) -> None:
    """Create an alert rule on a monitor's metric (with an optional retraining trigger)."""
    st = state(ctx)
    trigger_spec: dict[str, Any] | None = None
    if trigger is not None:
        trigger_spec = {"pipeline": trigger, "params": parse_params(trigger_param or [])}
        if data_param:
            trigger_spec["data_param"] = data_param
    elif trigger_param or data_param:
        raise InvalidInput("--trigger-param and --data-param need --trigger", field="trigger")
    created = st.client.create_alert_rule(
        name,
        monitor,
        metric,
        when_,
        window=window,
        min_samples=min_samples,
        severity=severity,
        owner=owner,
        runbook=runbook,
        fire_after=fire_after,
        resolve_after=resolve_after,
        channels=channel,
        trigger=trigger_spec,
    )
    if st.json:
        emit_json(created)
        return
    st.out.print(f"created alert rule {created.name}: {created.metric} {_condition(created.condition)}")


@app.command("rules")
def rules_(ctx: typer.Context, monitor: Annotated[str | None, typer.Option("--monitor", "-m")] = None) -> None:
    """Alert rules."""
    st = state(ctx)
    found = st.client.list_alert_rules(monitor)
    if st.json:
        emit_json(found)
        return
    grid = table("rule", "monitor", "metric", "condition", "severity", "channels", "trigger", "active")
    for r in found:
        grid.add_row(
            r.name,
            r.monitor,
            r.metric,
            _condition(r.condition),
            r.severity,
            ", ".join(c["type"] for c in r.channels),
            (r.trigger or {}).get("pipeline", ""),
            "firing" if r.state.get("active") else "",
        )
    st.out.print(grid)


@app.command("delete-rule")
def delete_rule(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Rule name.")]) -> None:
    """Delete an alert rule (its open alerts are resolved)."""
    st = state(ctx)
    st.client.delete_alert_rule(name)
    if st.json:
        emit_json({"deleted": name})
    else:
        st.out.print(f"deleted alert rule {name}")


@app.command("alerts")
def alerts(
    ctx: typer.Context,
    monitor: Annotated[str | None, typer.Option("--monitor", "-m")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="open, firing, acknowledged or resolved (default: all).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
) -> None:
    """Alerts, newest first."""
    st = state(ctx)
    found = st.client.list_alerts(monitor, status, limit)
    if st.json:
        emit_json(found)
        return
    grid = table("alert", "rule", "severity", "status", "fired", "message", "pipeline run")
    for a in found:
        grid.add_row(a.id, a.rule, a.severity, a.status, when(a.fired_at), a.message, a.pipeline_run_id or "")
    st.out.print(grid)


@app.command("ack")
def ack(
    ctx: typer.Context,
    alert_id: Annotated[str, typer.Argument(help="Alert id.")],
    comment: Annotated[str | None, typer.Option("--comment", "-c")] = None,
) -> None:
    """Acknowledge a firing alert."""
    st = state(ctx)
    _show_alert(st, st.client.acknowledge_alert(alert_id, comment))


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    alert_id: Annotated[str, typer.Argument(help="Alert id.")],
    comment: Annotated[str | None, typer.Option("--comment", "-c")] = None,
) -> None:
    """Resolve an alert by hand."""
    st = state(ctx)
    _show_alert(st, st.client.resolve_alert(alert_id, comment))


# -- rendering ----------------------------------------------------------------------------------


def _window_text(m: Monitor) -> str:
    return str(m.window.get("text") or m.window)


def _condition(condition: dict[str, Any]) -> str:
    if "dynamic" in condition:
        return f"outside mean ± {condition['dynamic']:g}σ of the last {condition['history']}"
    return f"{condition['op']} {condition['value']:g}"


def _show_monitor(st: State, m: Monitor) -> None:
    if st.json:
        emit_json(m)
        return
    key_values(
        st,
        [
            ("monitor", m.name),
            ("watches", f"endpoint {m.endpoint}" if m.endpoint else f"model {m.model}"),
            ("model", f"{m.model}" + (f"/{m.version}" if m.version else " (every version)")),
            ("task", m.task),
            ("reference", f"{m.reference.get('ref')} ({m.reference.get('rows')} rows, {m.reference.get('source')})"),
            ("window", _window_text(m)),
            ("columns", ", ".join(m.columns)),
            ("segments", ", ".join(m.segment_by)),
            ("schedule", f"every {m.schedule_seconds:g}s" if m.schedule_seconds else "on demand"),
            ("last run", when(m.last_run_at)),
        ],
    )


def _show_run(st: State, result: MonitorRun) -> None:
    st.out.print(f"monitor {result.monitor}: {result.message}")
    for w in result.windows:
        if w.segment or w.rows == 0:
            continue
        drift = (w.metrics.get("drift") or {}).get("drifted") or []
        perf = (w.metrics.get("performance") or {}).get("accuracy")
        st.out.print(
            f"  {when(w.start)}  rows {w.rows}  labelled {w.labelled}"
            + (f"  accuracy {number(perf)}" if perf is not None else "")
            + (f"  drifted: {', '.join(drift)}" if drift else "  no drift"),
            markup=False,
            highlight=False,
        )
    for alert_id in result.alerts_fired:
        st.out.print(f"  alert fired: {alert_id}")
    for rule_name in result.alerts_resolved:
        st.out.print(f"  alert resolved: {rule_name}")


def _show_alert(st: State, a: Alert) -> None:
    if st.json:
        emit_json(a)
        return
    key_values(
        st,
        [
            ("alert", a.id),
            ("rule", a.rule),
            ("status", a.status),
            ("severity", a.severity),
            ("message", a.message),
            ("fired", when(a.fired_at)),
            ("acknowledged", f"{when(a.acknowledged_at)} by {a.acknowledged_by}" if a.acknowledged_at else ""),
            ("resolved", when(a.resolved_at)),
            ("pipeline run", a.pipeline_run_id or ""),
        ],
    )
