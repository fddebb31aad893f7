"""Monitoring a served endpoint: real requests through the inference app in-process (a ServingRuntime
replica with the prediction log on), then monitors over what the log holds — drift on the shifted
feature, realised performance once labels arrive by prediction id, shadow answers left out, windows
of N predictions, and a reference made of a window of logged traffic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

from shipyard import Client
from shipyard.core.errors import InvalidInput
from shipyard.core.time import ms_to_iso, now_ms
from shipyard.serving.app import create_inference_app
from shipyard.serving.prediction_log import PredictionLog
from shipyard.serving.runtime import ServingRuntime
from tests.monitoring.cli_helpers import QUICK
from tests.monitoring.world import FEATURES, World, traffic, truth

MINUTE = 60_000


class Served:
    """Endpoint ``ep`` serving ``clf/1`` (and ``clf/2``, registered for a shadow) through one replica
    and the inference app, logging every prediction."""

    def __init__(self, client: Client):
        self.c = client
        self.world = World(client, rows=1000)
        x = traffic(self.world.rng, 300)
        other = LogisticRegression().fit(x[["x1", "x2"]], (x["x2"] > 1).astype(int))
        client.register_model(other, "clf", input_example=x[["x1", "x2"]].head(3))  # v2, the shadow
        client.ensure_endpoint("ep", "models:/clf/1")
        self.rt = ServingRuntime(client, ["ep"], poll_interval=0.1)
        self.log = PredictionLog.for_client(client, flush_interval=3600.0)
        self.app = create_inference_app(self.rt.start(background=False), prediction_log=self.log)
        self.http = TestClient(self.app)
        self.rng = np.random.default_rng(7)
        self.predicted: dict[str, Any] = {}

    def send(self, n: int, shift: float = 0.0) -> tuple[list[str], np.ndarray]:
        """``n`` one-row requests (x1 shifted by ``shift``); the ids the responses gave and the true labels.
        ``self.predicted`` keeps each answer by id."""
        frame = traffic(self.rng, n, shift)
        ids = []
        for record in frame[FEATURES].to_dict(orient="records"):
            response = self.http.post("/endpoints/ep/predict", json={"records": [record]})
            assert response.status_code == 200, response.text
            assert response.json()["id"] == response.headers["X-Prediction-Id"]
            assert response.headers["X-Model-Version"] == "clf/1"  # a shadow never answers
            ids.append(response.headers["X-Prediction-Id"])
            self.predicted[ids[-1]] = response.json()["predictions"][0]
        return ids, truth(frame, self.rng)

    def flush(self) -> None:
        assert self.app.state.shadows.drain()
        assert self.log.flush(timeout=10)

    def shadow(self) -> None:
        d = self.c.deploy("ep", "models:/clf/2", "shadow", sample=1.0, step_seconds=0.1)
        deadline = time.monotonic() + 15
        while self.c.get_deployment(d.id).status != "running":
            assert time.monotonic() < deadline, self.c.get_deployment(d.id)
            self.rt.step()
            time.sleep(0.02)
        self.rt.step()
        assert self.rt._endpoints["ep"].router.shadow is not None

    def close(self) -> None:
        self.http.close()
        self.rt.stop()
        self.log.close()


@pytest.fixture
def sdk(home: Path) -> Iterator[Client]:
    client = Client(home=home)
    yield client
    client.close()


@pytest.fixture
def served(sdk: Client) -> Iterator[Served]:
    s = Served(sdk)
    yield s
    s.close()


def logged_id(response_id: str) -> str:
    """The prediction log's id of row 0 of a request (docs/prediction-log.md: ``{request_id}-{i}``)."""
    return f"{response_id}-0"


def test_drift_then_realised_performance_on_a_served_endpoint(sdk: Client, served: Served) -> None:
    served.shadow()  # every request is also answered by clf/2 in the shadow, and logged as such
    calm_ids, calm_y = served.send(40)
    shifted_ids, shifted_y = served.send(80, shift=2.0)
    served.flush()
    assert served.log.stats["written_rows"] == 2 * 120  # the shadow's answers are in the log too

    monitor = sdk.create_monitor("ep-watch", endpoint="ep", window="1m", options=QUICK)
    assert monitor.endpoint == "ep" and monitor.model == "clf" and monitor.version is None
    assert monitor.reference["ref"] == served.world.dataset.ref and monitor.task == "classification"
    assert sdk.get_monitor("ep").name == "ep-watch"  # a monitor is also found by the endpoint it watches

    now = now_ms() + 2 * MINUTE
    run = sdk.run_monitor("ep-watch", now=now)
    windows = [w for w in run.windows if w.rows]
    assert sum(w.rows for w in windows) == 120  # only the served answers: shadow rows never count
    assert all(w.end - w.start == MINUTE and w.start % MINUTE == 0 for w in run.windows)
    merged = sdk.merged_window("ep-watch", run.windows[0].start, run.windows[-1].end)
    assert merged.rows == 120 and merged.labelled == 0
    assert merged.metrics["drift"]["drifted"] == ["x1"]
    assert "performance" not in merged.metrics
    for w in windows:
        assert w.metrics["health"]["latency_p99_ms"] is not None  # served rows carry their latency
        if w.rows >= 60:
            assert "x1" in w.metrics["drift"]["drifted"]

    # labels for two thirds of the predictions, by the ids the log holds
    pairs = list(zip(calm_ids + shifted_ids, map(int, [*calm_y, *shifted_y]), strict=True))
    chosen = pairs[::3] + pairs[1::3]
    receipt = sdk.record_labels({logged_id(i): y for i, y in chosen})
    assert receipt.accepted == 80 and receipt.unknown_count == 0

    again = sdk.run_monitor("ep-watch", now=now + 1000)
    assert again.relabelled == len(windows)
    stored = [w for w in sdk.monitor_windows("ep-watch") if w.rows]
    assert sum(w.rows for w in stored) == 120 and sum(w.labelled for w in stored) == 80
    for w in stored:
        performance = w.metrics["performance"]
        assert performance["n"] == w.labelled and 0 <= performance["accuracy"] <= 1
        assert w.coverage == pytest.approx(w.labelled / w.rows)
    merged = sdk.merged_window("ep-watch", run.windows[0].start, run.windows[-1].end)
    assert merged.labelled == 80 and merged.coverage == pytest.approx(80 / 120)
    assert merged.metrics["labels"]["coverage"] == pytest.approx(80 / 120)
    assert merged.metrics["performance"]["n"] == 80
    # the realised accuracy is the served answers' against the labels, on the labelled rows only
    expected = np.mean([served.predicted[i] == y for i, y in chosen])
    assert merged.metrics["performance"]["accuracy"] == pytest.approx(expected)


def test_labels_sent_by_the_response_id_are_matched(sdk: Client, served: Served) -> None:
    ids, y = served.send(30)
    served.flush()
    sdk.create_monitor("ep-watch", endpoint="ep", window="30p", options=QUICK)
    sdk.run_monitor("ep-watch", now=now_ms() + MINUTE)
    receipt = sdk.record_labels(dict(zip(ids, map(int, y), strict=True)))
    assert receipt.unknown_count == 0, receipt.unknown[:3]
    sdk.run_monitor("ep-watch", now=now_ms() + MINUTE)
    assert [w.labelled for w in sdk.monitor_windows("ep-watch")] == [30]


def test_count_windows_hold_exactly_n_predictions(sdk: Client, served: Served) -> None:
    started = now_ms()
    served.send(100)
    calm_until = now_ms() + 1
    time.sleep(0.005)
    served.send(100, shift=2.0)
    served.send(50, shift=2.0)
    served.flush()

    sdk.create_monitor("by-count", endpoint="ep", window="100p", options=QUICK)
    assert sdk.get_monitor("by-count").window == {"kind": "count", "rows": 100, "text": "100p"}
    run = sdk.run_monitor("by-count", now=now_ms() + MINUTE)
    assert [w.rows for w in run.windows] == [100, 100]  # the last 50 wait for 50 more
    first, second = run.windows
    assert first.start >= started and first.end <= calm_until and second.start >= first.end - 1
    assert first.metrics["drift"]["drifted"] == []
    assert second.metrics["drift"]["drifted"] == ["x1"]

    served.send(49, shift=2.0)
    served.flush()
    assert sdk.run_monitor("by-count", now=now_ms() + MINUTE).windows == []  # 99 rows: not a window yet
    served.send(1, shift=2.0)
    served.flush()
    third = sdk.run_monitor("by-count", now=now_ms() + MINUTE).windows
    assert [w.rows for w in third] == [100]
    assert [w.rows for w in sdk.monitor_windows("by-count")] == [100, 100, 100]

    # a reference made of logged traffic: the calm first hundred, against which the rest drifts
    with pytest.raises(InvalidInput, match="no rows") as exc:
        sdk.create_monitor("empty-ref", endpoint="ep", reference=f"window:{started - 10_000}..{started - 5000}")
    assert exc.value.field == "reference"
    with pytest.raises(InvalidInput, match="ends before it starts"):
        sdk.create_monitor("backwards", endpoint="ep", reference=f"window:{calm_until}..{started}")
    with pytest.raises(InvalidInput, match="window:START..END"):
        sdk.create_monitor("no-dots", endpoint="ep", reference=f"window:{started}")
    reference = f"window:{ms_to_iso(started)}..{ms_to_iso(calm_until)}"  # ISO times (epoch ms work too)
    logged = sdk.create_monitor("vs-calm", endpoint="ep", window="100p", reference=reference, options=QUICK)
    assert logged.reference["kind"] == "window" and logged.reference["rows"] == 100
    assert logged.reference["since"] == started and logged.reference["until"] == calm_until
    assert logged.columns == ["x1", "x2", "region"]
    runs = sdk.run_monitor("vs-calm", now=now_ms() + MINUTE).windows
    assert [w.rows for w in runs] == [100, 100, 100]
    assert runs[0].metrics["drift"]["drifted"] == []  # the reference itself
    assert all("x1" in w.metrics["drift"]["drifted"] for w in runs[1:])
    assert sdk.list_monitors()[-1].name == "vs-calm"  # nothing was left by the refused references
    assert [m.name for m in sdk.list_monitors()] == ["by-count", "vs-calm"]
