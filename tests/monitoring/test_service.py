"""Monitoring end to end through the SDK, in the four ways Shipyard runs (embedded/remote x
SQLite/PostgreSQL): batch-logged predictions, late labels, drift, alerts with hysteresis,
notifications to a real local webhook, and a retraining pipeline triggered by an alert."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.core.errors import Conflict, InvalidInput, NotFound
from tests.monitoring.world import HOUR, World

QUICK = {"multivariate": "never", "importance": False}


def test_drift_alert_lifecycle_with_late_labels(client: Any, hooks: Any) -> None:
    receiver = hooks([])
    world = World(client)
    monitor = client.create_monitor("clf-watch", model="clf/1", window="1h", segment_by=["region"], options=QUICK)
    # the reference is the training data from the model's lineage, with no configuration
    assert monitor.reference["ref"] == world.dataset.ref and monitor.reference["source"] == "lineage"
    assert monitor.columns == ["x1", "x2", "region"] and monitor.task == "classification"
    assert monitor.reference["label_column"] == "target"

    client.create_alert_rule(
        "x-drift", "clf-watch", "drift.share", "> 0.2", min_samples=100, resolve_after=2, channels=[receiver.url]
    )
    client.create_alert_rule("accuracy", "clf-watch", "performance.accuracy", "< 0.75", min_samples=100)

    labels: dict[str, int] = {}
    for hour in range(3):  # calm
        ids, y = world.log_hour(hour)
        labels.update(zip(ids, map(int, y), strict=True))
    for hour in range(3, 5):  # x1 shifts by 1.5 sd, and the labelling rule moves with it
        ids, y = world.log_hour(hour, shift=1.5, cut=2.5)
        labels.update(zip(ids, map(int, y), strict=True))

    run = client.run_monitor("clf-watch", now=world.end_of(4))
    overall = [w for w in run.windows if w.segment == ""]
    assert [w.rows for w in overall] == [400] * 5
    assert all(w.labelled == 0 and w.coverage == 0 for w in overall)  # labels have not arrived
    assert [bool(w.metrics["drift"]["drifted"]) for w in overall] == [False, False, False, True, True]
    assert overall[3].metrics["drift"]["drifted"] == ["x1"]
    assert "performance" not in overall[0].metrics  # no labels: no realised performance, never zeros
    assert overall[0].metrics["estimate"]["estimate"] is True  # the label-free estimate is marked as such
    segments = {w.segment for w in run.windows if w.segment}
    assert segments == {"region=eu", "region=us", "region=apac"}
    assert len(run.alerts_fired) == 1
    alert = client.get_alert(run.alerts_fired[0])
    assert alert.rule == "x-drift" and alert.status == "firing" and "x1" in alert.message
    assert alert.window_start == world.start + 3 * HOUR
    assert receiver.bodies and receiver.bodies[0]["status"] == "firing"
    assert receiver.bodies[0]["rule"] == "x-drift"
    assert alert.notifications[0]["ok"] is True

    # labels arrive days later: the windows they belong to are recomputed and judged
    receipt = client.record_labels(labels | {"no-such-prediction": 1})
    assert receipt.accepted == len(labels) + 1
    assert receipt.unknown == ["no-such-prediction"] and receipt.unknown_count == 1
    assert client.list_unknown_labels() == ["no-such-prediction"]
    again = client.record_labels({next(iter(labels)): labels[next(iter(labels))]})
    assert again.replaced == 1  # idempotent per prediction id

    run2 = client.run_monitor("clf-watch", now=world.end_of(4) + 1000)
    assert run2.relabelled == 5
    accuracy = client.metric_series("clf-watch", "performance.accuracy")
    values = [p.value for p in accuracy.points]
    assert all(v > 0.8 for v in values[:3]) and all(v < 0.75 for v in values[3:])
    assert [p.labelled for p in accuracy.points] == [400] * 5
    fired = {a.rule for a in client.list_alerts("clf-watch")}
    assert fired == {"x-drift", "accuracy"}

    # acknowledge, then calm traffic resolves the drift alert after two clear windows (hysteresis)
    acked = client.acknowledge_alert(alert.id, comment="looking")
    assert acked.status == "acknowledged" and acked.acknowledged_by
    with pytest.raises(Conflict):
        client.acknowledge_alert(alert.id)
    world.log_hour(5)
    client.run_monitor("clf-watch", now=world.end_of(5))
    assert client.get_alert(alert.id).status == "acknowledged"  # one clear window is not enough
    world.log_hour(6)
    run3 = client.run_monitor("clf-watch", now=world.end_of(6))
    assert "x-drift" in run3.alerts_resolved
    assert client.get_alert(alert.id).status == "resolved"
    assert receiver.bodies[-1]["status"] == "resolved"

    # a longer window merges the stored windows' profiles
    merged = client.merged_window("clf-watch", world.start, world.start + 7 * HOUR)
    assert merged.rows == 7 * 400 and merged.labelled == 5 * 400
    assert merged.metrics["drift"]["drifted"] == ["x1"]  # two drifted hours out of seven still show

    # every state change is journaled
    actions = [e.action for e in client.read_journal(limit=1000)] if hasattr(client, "read_journal") else None
    if actions is not None:
        assert {"monitor.created", "alert.fired", "alert.acknowledged", "alert.resolved"} <= set(actions)


def test_empty_windows_report_no_data_and_bad_input_is_refused(client: Any) -> None:
    world = World(client, rows=500)
    client.create_monitor("m", model="clf", window="1h", options=QUICK)
    world.log_hour(0, n=50)
    world.log_hour(3, n=50)  # hours 1 and 2 see no traffic
    run = client.run_monitor("m", now=world.end_of(3))
    assert [w.rows for w in run.windows] == [50, 0, 0, 50]
    empty = run.windows[1]
    assert empty.status == "no data" and empty.coverage is None and "drift" not in empty.metrics
    series = client.metric_series("m", "drift.share")
    assert series.points[1].value is None  # "no data", never zero

    nothing = client.run_monitor("m", now=world.end_of(3) + 1000)
    assert nothing.windows == [] and "no complete window" in nothing.message

    with pytest.raises(InvalidInput, match="window"):
        client.create_monitor("bad", model="clf", window="soon")
    with pytest.raises(InvalidInput, match="endpoint or a model"):
        client.create_monitor("bad", window="1h")
    with pytest.raises(NotFound):
        client.create_monitor("bad", model="missing-model")
    with pytest.raises(InvalidInput, match="monitored column"):
        client.create_monitor("bad", model="clf", columns=["no_such_column"])
    with pytest.raises(InvalidInput, match="condition"):
        client.create_alert_rule("r", "m", "drift.share", "bigger than 3")
    with pytest.raises(InvalidInput, match="severity"):
        client.create_alert_rule("r", "m", "drift.share", "> 0.1", severity="apocalyptic")
    with pytest.raises(InvalidInput, match="url"):
        client.create_alert_rule("r", "m", "drift.share", "> 0.1", channels=[{"type": "webhook"}])
    with pytest.raises(InvalidInput, match="prediction_id"):
        client.record_labels([{"label": 1}])
    with pytest.raises(InvalidInput, match="label"):
        client.record_labels([{"prediction_id": "p-1", "label": {"nested": 1}}])
    with pytest.raises(NotFound):
        client.run_monitor("missing")
    assert client.list_alert_rules("m") == []  # nothing half-written


def test_an_alert_triggers_the_retraining_pipeline_with_the_current_data(client: Any) -> None:
    world = World(client, rows=800)
    client.create_monitor("m", model="clf/1", window="1h", options=QUICK)
    client.create_alert_rule(
        "retrain-on-drift",
        "m",
        "drift.share",
        "> 0.2",
        min_samples=50,
        trigger={
            "pipeline": "tests.monitoring.retrain:retrain",
            "params": {"reason": "drift"},
            "data_param": "data",
            "labelled_only": False,
        },
    )
    world.log_hour(0, n=200)
    world.log_hour(1, n=200, shift=2.0)
    run = client.run_monitor("m", now=world.end_of(1))
    assert len(run.alerts_fired) == 1
    alert = client.get_alert(run.alerts_fired[0])
    assert alert.trigger_error is None, alert.trigger_error
    assert alert.pipeline_run_id
    pipeline_run = client.get_pipeline_run(alert.pipeline_run_id)
    assert pipeline_run.status == "SUCCEEDED"
    assert pipeline_run.params["reason"] == "drift"
    data_ref = pipeline_run.params["data"]
    assert data_ref.startswith("monitor-m-current@")
    current = client.load_dataset(data_ref)
    assert len(current) == 200 and current["x1"].mean() > 1.0  # the drifted window's rows


def test_dynamic_threshold_fires_only_outside_the_metric_own_history(client: Any) -> None:
    world = World(client, rows=600)
    client.create_monitor("m", model="clf/1", window="1h", options=QUICK)
    client.create_alert_rule("volume", "m", "health.rows", "dynamic 3 over 24", min_samples=0)
    for hour in range(8):
        world.log_hour(hour, n=200 + (hour % 3) * 5)
    quiet = client.run_monitor("m", now=world.end_of(7))
    assert quiet.alerts_fired == []  # volumes wobble within their own spread
    world.log_hour(8, n=600)  # a burst three times the usual volume
    loud = client.run_monitor("m", now=world.end_of(8))
    assert len(loud.alerts_fired) == 1
    alert = client.get_alert(loud.alerts_fired[0])
    assert alert.value == 600 and "dynamic" in alert.threshold and alert.threshold["high"] < 600
