"""A regression model's monitor (RMSE/MAE/R² on late labels, labels of the wrong type flagged), and
monitors that run on a schedule: claimed once even when two schedulers look at the same time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from shipyard import Client
from shipyard.pipelines.scheduler import Scheduler
from tests.monitoring.world import HOUR, World

QUICK = {"multivariate": "never", "importance": False}


@pytest.fixture
def client(tmp_path: Path) -> Client:
    c = Client(home=tmp_path / "home")
    yield c
    c.close()


def test_regression_monitor_measures_error_on_late_labels_and_flags_wrong_labels(client: Client) -> None:
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"size": rng.uniform(50, 200, 1500), "rooms": rng.integers(1, 6, 1500).astype(float)})
    train["price"] = 3.0 * train["size"] + 20 * train["rooms"] + rng.normal(0, 10, 1500)
    data = client.log_dataset(train, "houses")
    model = LinearRegression().fit(train[["size", "rooms"]], train["price"])
    client.register_model(model, "price", data_refs=[data.ref], input_example=train[["size", "rooms"]].head(3))
    monitor = client.create_monitor("price-watch", model="price/1", window="1h", options=QUICK)
    assert monitor.task == "regression" and monitor.reference["label_column"] == "price"

    start = (1_700_000_000_000 // HOUR) * HOUR
    labels: dict[str, object] = {}
    for hour, noise in enumerate([10, 10, 60]):  # the third hour's prices are far noisier
        batch = pd.DataFrame({"size": rng.uniform(50, 200, 300), "rooms": rng.integers(1, 6, 300).astype(float)})
        batch["prediction"] = model.predict(batch[["size", "rooms"]])
        batch["ts"] = start + hour * HOUR + np.arange(300)
        truth = 3.0 * batch["size"] + 20 * batch["rooms"] + rng.normal(0, noise, 300)
        ids = client.log_predictions(batch, "price/1", timestamp_column="ts")
        labels.update(zip(ids, truth.round(2).tolist(), strict=True))
    wrong_ids = list(labels)[:3]
    for pid in wrong_ids:
        labels[pid] = "expensive"  # a feed sending the wrong field
    client.record_labels(labels)
    run = client.run_monitor("price-watch", now=start + 3 * HOUR + 60_000)
    rmse = [w.metrics["performance"]["rmse"] for w in run.windows]
    assert 8 < rmse[0] < 12 and 8 < rmse[1] < 12 and 50 < rmse[2] < 70
    assert all(w.metrics["performance"]["r2"] > 0.5 for w in run.windows)
    assert run.windows[0].metrics["performance"]["n"] == 297  # the three text labels are left out ...
    mismatched = run.windows[0].metrics["labels"]["mismatched"]
    assert mismatched["count"] == 3 and mismatched["examples"] == ["expensive"]  # ... and shown
    report = client.monitor_report("price-watch", "1d", until=start + 3 * HOUR)
    assert report.current.metrics["labels"]["mismatched"]["count"] == 3
    from shipyard.monitoring.report import summary_lines

    assert any("wrong type" in line for line in summary_lines(report))


def test_scheduled_monitors_run_once_when_due(client: Client, tmp_path: Path) -> None:
    world = World(client, rows=500)
    client.create_monitor("on-schedule", model="clf/1", window="1h", schedule_seconds=60, options=QUICK)
    client.create_monitor("by-hand", model="clf/1", window="1h", options=QUICK)
    world.log_hour(0, n=100)
    now = world.end_of(0)
    other = Client(home=tmp_path / "home")  # a second scheduler sharing the store
    try:
        first = Scheduler(client, schedules=False, monitors=True)
        second = Scheduler(other, schedules=False, monitors=True)
        first.tick(now)
        second.tick(now)  # the same moment: the monitor was already claimed
        assert len(client.monitor_windows("on-schedule")) == 1
        assert client.monitor_windows("by-hand") == []  # no schedule: runs only when asked
        journal = [e for e in client.read_journal(limit=1000) if e.action == "monitor.ran"]
        assert len(journal) == 1
        second.tick(now + 30_000)  # not due again yet
        assert len([e for e in client.read_journal(limit=1000) if e.action == "monitor.ran"]) == 1
        world.log_hour(1, n=100)
        second.tick(world.end_of(1))
        assert len(client.monitor_windows("on-schedule")) == 2
    finally:
        other.close()


def test_segments_by_the_log_s_own_version_column(client: Client) -> None:
    world = World(client, rows=500)
    client.register_model(world.model, "clf")  # v2: the same model, registered again
    client.create_monitor("both", model="clf", window="1h", segment_by=["version", "region"], options=QUICK)
    world.log_hour(0, n=120)  # logged as clf/1
    # v2's traffic, shifted, logged by hand
    batch = pd.DataFrame({"x1": np.full(80, 3.0), "x2": np.ones(80), "region": ["eu"] * 80})
    batch["prediction"] = world.model.predict(batch)
    batch["ts"] = world.start + np.arange(80)
    client.log_predictions(batch, "clf/2", timestamp_column="ts")
    run = client.run_monitor("both", now=world.end_of(0))
    by_segment = {w.segment: w for w in run.windows}
    assert by_segment[""].rows == 200
    assert by_segment["version=1"].rows == 120 and by_segment["version=2"].rows == 80
    assert "x1" in by_segment["version=2"].metrics["drift"]["drifted"]
    assert "x1" not in by_segment["version=1"].metrics["drift"]["drifted"]
    assert {s for s in by_segment if s.startswith("region=")} <= {"region=eu", "region=us", "region=apac"}
