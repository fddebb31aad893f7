"""The demo's monitoring chapter: a day of production traffic that drifts, caught and acted on.

Twelve simulated hours of the champion's batch-scored predictions are logged with their timestamps;
from hour 8 a recalibrated scanner reports the size features 25% larger. Labels (the biopsy results)
arrive late: for the first ten hours only. The monitor — reference: the training data in the
champion's lineage, found with no configuration — cuts hourly windows, finds the drift, the accuracy
drop on the labelled hours, and the label-free estimate on the others. The drift alert fires, and
the closed loop installed beforehand (:mod:`shipyard.demo.loop`) takes it from there; the report is
written as HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

HOUR = 3_600_000
HOURS = 12
DRIFT_FROM = 8
LABELLED_HOURS = 10
ROWS_PER_HOUR = 300
SCALE = 1.25
MONITOR = "breast-cancer-batch"


def run_monitoring(client: Any, data: pd.DataFrame, target: str, console: Console) -> dict[str, Any]:
    from shipyard.core.time import now_ms
    from shipyard.demo.loop import install_loop
    from shipyard.demo.pipeline import MODEL_NAME
    from shipyard.monitoring.report import render_html, summary_lines

    console.print("\n[bold]Monitoring: a day of production traffic[/bold]")
    champion = client.get_version_by_alias(MODEL_NAME, "champion")
    model = client.load_model(champion.uri)
    if any(m.name == MONITOR for m in client.list_monitors()):
        client.delete_monitor(MONITOR)  # a previous demo run's monitor: start the story afresh
    monitor = client.create_monitor(MONITOR, model=champion.uri, window="1h", options={"importance": False})
    console.print(
        f"  monitor {MONITOR}: {MODEL_NAME}/{champion.version}, hourly windows, reference "
        f"{monitor.reference['ref']} (from the version's lineage), {len(monitor.columns)} columns"
    )
    client.create_alert_rule(
        f"{MONITOR}-drift",
        MONITOR,
        "drift.share",
        "> 0.1",
        min_samples=100,
        severity="critical",
        runbook="docs/monitoring.md#when-an-alert-fires",
    )
    # What happens when it fires is the closed loop's job (shipyard.demo.loop): installed before it can.
    install_loop(client, base=champion.data_refs[0], dataset=champion.data_refs[0], target=target)
    client.create_alert_rule(f"{MONITOR}-accuracy", MONITOR, "performance.accuracy", "< 0.95", min_samples=100)

    X = data.drop(columns=[target])  # production looks like the data the model was built from
    size_columns = [c for c in X.columns if c.split()[-1] in ("radius", "perimeter", "area")]
    rng = np.random.default_rng(7)
    end = (now_ms() // HOUR) * HOUR
    start = end - HOURS * HOUR
    labels: dict[str, int] = {}
    for hour in range(HOURS):
        picked = rng.integers(0, len(X), ROWS_PER_HOUR)
        frame = X.iloc[picked].reset_index(drop=True)
        if hour >= DRIFT_FROM:
            frame[size_columns] = frame[size_columns] * SCALE
        frame["prediction"] = np.asarray(model.predict(frame))
        frame["ts"] = start + hour * HOUR + np.sort(rng.integers(0, HOUR, ROWS_PER_HOUR))
        ids = client.log_predictions(frame, champion.uri, timestamp_column="ts")
        if hour < LABELLED_HOURS:
            labels.update(zip(ids, data[target].iloc[picked].astype(int).tolist(), strict=True))
    receipt = client.record_labels(labels)
    console.print(
        f"  logged {HOURS * ROWS_PER_HOUR} predictions over {HOURS} hours; size features x{SCALE} "
        f"from hour {DRIFT_FROM} ({', '.join(size_columns[:3])}, ...); {receipt.accepted} labels arrived "
        f"(hours 0-{LABELLED_HOURS - 1})"
    )

    run = client.run_monitor(MONITOR, now=end + 60_000)
    table = Table("hour", "rows", "labelled", "drifted", "accuracy", "estimate", box=None)
    for w in run.windows:
        if w.segment or not w.rows:
            continue
        m = w.metrics
        accuracy = (m.get("performance") or {}).get("accuracy")
        estimate = (m.get("estimate") or {}).get("accuracy")
        drifted = (m.get("drift") or {}).get("drifted") or []
        table.add_row(
            f"{(w.start - start) // HOUR:>2}",
            str(w.rows),
            f"{w.coverage:.0%}",
            f"{len(drifted)} of {len(monitor.columns)}",
            "no labels" if accuracy is None else f"{accuracy:.3f}",
            "" if estimate is None else f"{estimate:.3f}",
        )
    console.print(table)
    alerts = client.list_alerts(MONITOR)
    for alert in sorted(alerts, key=lambda a: a.fired_at):
        console.print(f"  [red]alert[/red] [{alert.severity}] {alert.rule}: {alert.message}", soft_wrap=True)
        if alert.pipeline_run_id:
            pipeline_run = client.get_pipeline_run(alert.pipeline_run_id)
            result = (
                client.load_step_output(pipeline_run.id, "refit") if pipeline_run.status.value == "SUCCEEDED" else None
            )
            console.print(
                f"    → retraining pipeline run {pipeline_run.id} {pipeline_run.status.value}"
                + (f": {MODEL_NAME}/{result['version']} (accuracy {result['accuracy']:.3f})" if result else "")
            )
        elif alert.trigger_error:
            console.print(f"    → the retraining pipeline failed: {alert.trigger_error}")

    report = client.monitor_report(MONITOR, "1d", until=end)
    path = Path(client.settings.home) / "monitor-report.html"
    path.write_text(render_html(report), encoding="utf-8")
    console.print("  report:")
    for line in summary_lines(report)[2:]:
        console.print(f"    {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"  HTML report with plots: {path}")
    return {
        "alerts": sorted(a.rule for a in alerts),
        "drifted": (report.current.metrics.get("drift") or {}).get("drifted") or [],
        "report": str(path),
    }
