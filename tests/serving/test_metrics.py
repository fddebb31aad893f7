"""System health at /metrics (Prometheus text) and /metrics.json: counts, latency histograms, errors,
in-flight requests, queue lengths and process figures, in one process and summed over `--workers 2`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

from shipyard import Client
from shipyard.serving.app import create_inference_app
from shipyard.serving.batching import MicroBatcher
from shipyard.serving.endpoints import Endpoint, EndpointTable, ServedVersion
from shipyard.serving.metrics import BUCKETS, histogram_quantile
from shipyard.serving.router import Router, Variant
from tests.conftest import free_port
from tests.serving.test_app import BOOM_EXAMPLE, Boom

X, Y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["sl", "sw", "pl", "pw"]
RECORDS = {"records": X.head(2).to_dict("records")}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    client = Client(home=tmp_path_factory.mktemp("metrics") / "home")
    client.register_model(LogisticRegression(max_iter=300).fit(X, Y), "iris", input_example=X.head(3))
    client.set_alias("iris", "champion", 1)
    client.register_model(Boom(), "boom", input_example=BOOM_EXAMPLE)
    yield client
    client.close()


@pytest.fixture(scope="module")
def table(registry: Client) -> EndpointTable:
    return EndpointTable.from_uris(registry, [(None, "models:/iris/1"), (None, "models:/boom/1")])


def scrape(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name, parsed the way Prometheus' client library parses the text format."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items()))


def buckets_of(samples: dict[str, list[tuple[dict[str, str], float]]], **labels: str) -> list[tuple[float, float]]:
    """``(upper bound, cumulative count)`` of the latency histogram of one label set."""
    found = samples["shipyard_request_duration_seconds_bucket"]
    return sorted((float(got["le"]), v) for got, v in found if got.items() >= labels.items())


def series(body: dict[str, Any], **labels: str) -> dict[str, Any]:
    found = [s for s in body["series"] if all(s[k] == v for k, v in labels.items())]
    assert len(found) == 1, (labels, body["series"])
    return found[0]


# ----------------------------------------------------------------------------------------------
# one process


def test_requests_latency_and_errors_are_counted_with_their_labels(table: EndpointTable) -> None:
    with TestClient(create_inference_app(table)) as api:
        before = scrape(api.get("/metrics").text)
        assert value(before, "shipyard_requests_total") == 0
        for _ in range(5):
            assert api.post("/endpoints/iris/predict", json=RECORDS).status_code == 200
        assert api.post("/v2/models/iris/versions/1/infer", json={"inputs": []}).status_code == 400
        assert api.post("/endpoints/iris/predict", json={"records": [{"sl": "x"}]}).status_code == 422
        assert api.post("/endpoints/boom/predict", json={"records": [{"count": 1, "income": -1.0}]}).status_code == 500
        assert api.post("/endpoints/nope/predict", json=RECORDS).status_code == 404
        assert api.post("/v2/models/iris/versions/9/infer", json=RECORDS).status_code == 404
        response = api.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        m = scrape(response.text)

    iris = {"endpoint": "iris", "model": "iris", "version": "1"}
    assert value(m, "shipyard_requests_total", **iris, variant="stable", status="200") == 5
    assert value(m, "shipyard_requests_total", **iris, variant="stable", status="422") == 1
    assert value(m, "shipyard_requests_total", **iris, variant="pinned", status="400") == 1
    assert value(m, "shipyard_requests_total", endpoint="boom", model="boom", version="1", status="500") == 1
    # unknown endpoints and versions: counted, never labelled with what the caller asked for
    assert value(m, "shipyard_requests_total", endpoint="", model="", status="404") == 1
    assert value(m, "shipyard_requests_total", endpoint="iris", model="", version="", status="404") == 1
    assert not any("nope" in str(labels) or labels.get("version") == "9" for labels, _ in m["shipyard_requests_total"])
    assert value(m, "shipyard_requests_total") == 10
    # model failures are prediction errors; bad requests are not
    assert value(m, "shipyard_prediction_errors_total", endpoint="boom", version="1", variant="stable") == 1
    assert value(m, "shipyard_prediction_errors_total", endpoint="iris") == 0
    # the histogram: one observation per request, cumulative buckets up to +Inf, a plausible sum
    stable = {**iris, "variant": "stable"}
    assert value(m, "shipyard_request_duration_seconds_count", **stable) == 6
    buckets = buckets_of(m, **stable)
    assert [b for b, _ in buckets] == [*BUCKETS, float("inf")]
    assert buckets[-1][1] == 6 and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:], strict=False))
    assert 0 < value(m, "shipyard_request_duration_seconds_sum", **stable) < 6 * 10
    assert value(m, "shipyard_requests_in_flight", endpoint="iris") == 0
    assert value(m, "shipyard_queue_length", endpoint="iris", queue="batch") == 0
    assert value(m, "shipyard_queue_length", endpoint="iris", queue="shadow") == 0
    if sys.platform.startswith("linux"):
        assert value(m, "process_cpu_seconds_total") > 0
        assert value(m, "process_resident_memory_bytes") > 10 * 2**20


def test_metrics_json_matches_the_histogram(table: EndpointTable) -> None:
    with TestClient(create_inference_app(table)) as api:
        for i in range(30):
            api.post("/endpoints/iris/predict", json={"records": X.iloc[: 1 + i % 5].to_dict("records")})
        api.post("/endpoints/boom/predict", json={"records": [{"count": 1, "income": -1.0}]})
        m = scrape(api.get("/metrics").text)
        body = api.get("/metrics.json").json()
    iris = series(body, endpoint="iris", model="iris", version="1", variant="stable")
    assert iris["requests"] == 30 and iris["errors"] == 0 and iris["status"] == {"200": 30}
    boom = series(body, endpoint="boom", variant="stable")
    assert boom["requests"] == 1 and boom["errors"] == 1 and boom["prediction_errors"] == 1
    latency = iris["latency_seconds"]
    labels = {"endpoint": "iris", "model": "iris", "version": "1", "variant": "stable"}
    buckets = buckets_of(m, **labels)
    assert [(float(b["le"]), b["count"]) for b in latency["buckets"]] == buckets
    assert latency["count"] == 30 and latency["sum"] == pytest.approx(
        value(m, "shipyard_request_duration_seconds_sum", **labels)
    )
    for q in (0.5, 0.95, 0.99):
        p = latency[f"p{round(q * 100)}"]
        assert p == pytest.approx(histogram_quantile(q, buckets))
        # the estimate lies inside the bucket holding the q-th observation
        upper = next(b for b, count in buckets if count >= q * 30)
        lower = max([b for b, count in buckets if count < q * 30], default=0.0)
        assert lower <= p <= upper
    assert latency["p50"] <= latency["p95"] <= latency["p99"]
    assert body["in_flight"] == {"iris": 0, "boom": 0}
    assert body["queue_length"]["iris"] == {"batch": 0, "shadow": 0}
    assert body["multiprocess"] is False and str(os.getpid()) in body["process"]["workers"]
    if sys.platform.startswith("linux"):
        assert body["process"]["rss_bytes"] > 10 * 2**20 and body["process"]["cpu_seconds"] > 0


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    inf = float("inf")
    buckets = [(0.001, 10.0), (0.002, 30.0), (0.005, 40.0), (inf, 40.0)]
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.001)  # rank 10: top of the first bucket
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.0015)  # rank 20: half-way through (1 ms, 2 ms]
    assert histogram_quantile(0.1, buckets) == pytest.approx(0.0004)  # the first bucket starts at 0
    assert histogram_quantile(0.99, [(0.001, 1.0), (inf, 100.0)]) == 0.001  # in +Inf: the highest finite bound
    assert histogram_quantile(0.5, [(0.001, 0.0), (inf, 0.0)]) is None


# ----------------------------------------------------------------------------------------------
# in flight and queues, over real HTTP


class Gate:
    """A stand-in loaded model whose predict waits until released (no signature: input unchecked)."""

    signature = None
    flavor = "test"
    input_example = None

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def unchecked(self, name: str) -> Any:
        return self.predict

    def predict(self, data: Any) -> Any:
        self.entered.release()
        assert self.release.wait(20), "never released"
        return np.zeros(len(data))


class Server:
    """The app under uvicorn in a thread, on a free loopback port (lifespan on)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        return scrape(httpx.get(self.url + "/metrics", timeout=10).text)


def wait_for(check: Any, timeout: float = 30.0) -> None:  # a loaded CI machine is slow
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_in_flight_requests_are_visible_while_they_run() -> None:
    gate = Gate()
    app = create_inference_app([Endpoint("slow", (ServedVersion("slow", 3, "d" * 64, gate),))])  # type: ignore[arg-type]
    with Server(app) as server, ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(httpx.post, server.url + "/endpoints/slow/predict", json={"records": [{"a": i}]}, timeout=30)
            for i in range(3)
        ]
        for _ in range(3):
            assert gate.entered.acquire(timeout=10)
        m = server.metrics()
        assert value(m, "shipyard_requests_in_flight", endpoint="slow") == 3
        assert value(m, "shipyard_requests_total", endpoint="slow") == 0  # counted when answered
        assert httpx.get(server.url + "/metrics.json", timeout=10).json()["in_flight"] == {"slow": 3}
        gate.release.set()
        assert [f.result().status_code for f in futures] == [200, 200, 200]
        m = server.metrics()
        assert value(m, "shipyard_requests_in_flight", endpoint="slow") == 0
        assert value(m, "shipyard_requests_total", endpoint="slow", model="slow", version="3", status="200") == 3
        # they took at least as long as they were held: none in the sub-millisecond buckets
        assert value(m, "shipyard_request_duration_seconds_bucket", endpoint="slow", le="0.001") == 0


def test_queue_lengths_of_the_micro_batcher_and_the_shadow() -> None:
    primary_gate, shadow_gate = Gate(), Gate()
    primary = ServedVersion("m", 1, "a" * 64, primary_gate)  # type: ignore[arg-type]
    # one batch at a time of at most 2 rows: the 1st request runs, the next 2 fill the waiting batch, the rest queue
    primary.batcher = MicroBatcher(primary_gate.predict, max_batch_size=2, max_concurrency=1)
    shadow = ServedVersion("m", 2, "b" * 64, shadow_gate)  # type: ignore[arg-type]
    router = Router(
        (Variant("baseline", primary, 1.0),), deployment_id="dep", strategy="shadow", shadow=shadow, shadow_sample=1.0
    )
    app = create_inference_app([Endpoint("ep", router=router)])
    with Server(app) as server, ThreadPoolExecutor(8) as pool:
        url = server.url + "/endpoints/ep/predict"
        futures = [pool.submit(httpx.post, url, json={"records": [{"a": float(i)}]}, timeout=30) for i in range(8)]
        assert primary_gate.entered.acquire(timeout=10)
        wait_for(lambda: value(server.metrics(), "shipyard_queue_length", endpoint="ep", queue="batch") == 5)
        assert value(server.metrics(), "shipyard_requests_in_flight", endpoint="ep") == 8
        body = httpx.get(server.url + "/metrics.json", timeout=10).json()
        assert body["queue_length"] == {"ep": {"batch": 5, "shadow": 0}}
        primary_gate.release.set()
        assert all(f.result().status_code == 200 for f in futures)
        # every answer sent a copy to the shadow, which holds them: one running, seven waiting
        assert shadow_gate.entered.acquire(timeout=10)
        wait_for(lambda: value(server.metrics(), "shipyard_queue_length", endpoint="ep", queue="shadow") == 8)
        m = server.metrics()
        assert value(m, "shipyard_queue_length", endpoint="ep", queue="batch") == 0
        assert value(m, "shipyard_requests_total", endpoint="ep", variant="baseline", status="200") == 8
        shadow_gate.release.set()
        wait_for(lambda: value(server.metrics(), "shipyard_queue_length", endpoint="ep", queue="shadow") == 0)
        # shadow predictions are timed under variant="shadow" (they are not requests)
        m = server.metrics()
        assert value(m, "shipyard_request_duration_seconds_count", endpoint="ep", version="2", variant="shadow") == 8
        assert value(m, "shipyard_requests_total", variant="shadow") == 0


# ----------------------------------------------------------------------------------------------
# `shipyard serve --workers 2`


def pids_of(m: dict[str, list[tuple[dict[str, str], float]]]) -> set[str]:
    return {labels["pid"] for labels, _ in m.get("process_resident_memory_bytes", [])}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process figures and /proc are Linux's")
def test_every_worker_is_counted(registry: Client) -> None:
    from shipyard.cli.main import app as cli

    port = free_port()
    registered = any(c.name == "serve" for c in cli.registered_commands)
    command = ["-m", "shipyard.cli.main", "serve"] if registered else ["-m", "shipyard.cli.serve"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "PROMETHEUS_"))}
    env["SHIPYARD_HOME"] = str(registry.settings.home)
    proc = subprocess.Popen(
        [sys.executable, *command, "models:/iris@champion", "--workers", "2", "--port", str(port), "--no-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parent,
    )
    url = f"http://127.0.0.1:{port}"

    def metrics() -> dict[str, list[tuple[dict[str, str], float]]]:
        # a fresh connection each time: any worker may answer, and each must report all of them
        return scrape(httpx.get(url + "/metrics", timeout=10, headers={"Connection": "close"}).text)

    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "shipyard serve did not start"
            time.sleep(0.1)
        wait_for(lambda: len(pids_of(metrics())) == 2, timeout=60)  # both workers up and sampling
        sent = 40

        def send(i: int) -> int:
            r = httpx.post(url + "/endpoints/iris/predict", json=RECORDS, headers={"Connection": "close"}, timeout=20)
            return r.status_code

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(send, range(sent))) == [200] * sent
        assert httpx.post(url + "/endpoints/nope/predict", json=RECORDS, timeout=10).status_code == 404
        for _ in range(6):  # whichever worker answers, the sums are over both
            m = metrics()
            assert value(m, "shipyard_requests_total", endpoint="iris", model="iris", version="1", status="200") == sent
            assert value(m, "shipyard_request_duration_seconds_count", endpoint="iris") == sent
            assert value(m, "shipyard_requests_total", endpoint="", status="404") == 1
            assert value(m, "shipyard_requests_in_flight", endpoint="iris") == 0
            assert len(pids_of(m)) == 2
            assert all(v > 0 for _, v in m["process_cpu_seconds_total"])
        body = httpx.get(url + "/metrics.json", timeout=10).json()
        assert body["multiprocess"] is True
        assert series(body, endpoint="iris", variant="stable")["requests"] == sent
        assert len(body["process"]["workers"]) == 2 and body["process"]["rss_bytes"] > 2 * 10 * 2**20

        # a worker that dies without shutting down: its counts stay, its live gauges go
        workers = sorted(pids_of(metrics()), key=int)
        directory = Path(
            dict(v.split("=", 1) for v in Path(f"/proc/{workers[0]}/environ").read_text().split("\0") if "=" in v)[
                "PROMETHEUS_MULTIPROC_DIR"
            ]
        )
        assert directory.is_dir() and directory.name.startswith("shipyard-metrics-")
        os.kill(int(workers[0]), signal.SIGKILL)
        wait_for(lambda: workers[0] not in pids_of(metrics()), timeout=30)
        assert value(metrics(), "shipyard_requests_total", endpoint="iris", status="200") == sent
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    assert not directory.exists()  # removed when the server exits
