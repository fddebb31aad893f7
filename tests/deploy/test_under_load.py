"""Rollouts on a real inference server (uvicorn, its runtime thread) under concurrent load.

Eight client threads send requests without pause while versions are swapped; every response is
kept. A swap must never fail a request: the only failures allowed are a faulty candidate's own
500s, and those stop once the judge rolls it back.
"""

from __future__ import annotations

import shutil
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from shipyard import Client
from shipyard.cli.serve import build_app
from tests.conftest import free_port
from tests.deploy import models

X, _ = models.iris()
# Wide latency margin: these tests check the mechanics, and a shared CI machine makes latency noisy.
JUDGE = {"min_samples": 30, "error_rate_margin": 0.05, "latency_margin_ms": 50.0, "divergence_threshold": 0.5}
ROWS = [{"records": [dict(zip(models.COLUMNS, X.iloc[i].tolist(), strict=True))]} for i in range(len(X))]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("load") / "home"
    client = Client(home=home)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        client.register_model(models.good(), "iris", input_example=X.head(3))  # v1
        client.register_model(models.good("tree"), "iris", input_example=X.head(3))  # v2
        client.register_model(models.fitted(models.Flaky), "iris", input_example=X.head(3))  # v3
    client.ensure_endpoint("iris", "models:/iris/1")
    client.close()
    return home


class Server:
    def __init__(self, client: Client):
        config = {
            "endpoints": ["iris"],
            "max_body_bytes": 1 << 20,
            "log": False,
            "poll_interval": 0.1,
            "flush_interval": 0.2,
        }
        self.app = build_app(client, config)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


class Load:
    """Threads posting predictions back to back; ``results`` holds (status, version) or the exception."""

    def __init__(self, url: str, threads: int = 8):
        self.url = url
        self.results: list[tuple[int, str] | str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, seed: int) -> None:
        i = seed
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    r = http.post("/endpoints/iris/predict", json=ROWS[i % len(ROWS)])
                    outcome: tuple[int, str] | str = (r.status_code, r.headers.get("x-model-version", ""))
                except httpx.HTTPError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    self.results.append(outcome)
                i += 7

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def mark(self) -> int:
        with self.lock:
            return len(self.results)

    def summary(self, start: int = 0, end: int | None = None) -> Counter[Any]:
        with self.lock:
            return Counter(self.results[start:end])


@pytest.fixture
def sdk(template: Path, tmp_path: Path) -> Iterator[Client]:
    shutil.copytree(template, tmp_path / "home")
    client = Client(home=tmp_path / "home")
    yield client
    client.close()


def wait_for(sdk: Client, deployment_id: str, statuses: tuple[str, ...], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        d = sdk.get_deployment(deployment_id)
        if d.status in statuses:
            return d
        assert time.monotonic() < deadline, f"stuck in {d.status}: {d.phase}"
        time.sleep(0.05)


def settle(sdk: Client, timeout: float = 20.0) -> None:
    """Wait until the replica runs the endpoint's current revision."""
    deadline = time.monotonic() + timeout
    while True:
        status = sdk.deployment_status("iris")
        live = [r for r in status.replicas if r.live]
        if live and all(r.revision == status.endpoint.revision for r in live):
            return
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)


def test_canary_promotion_under_load_fails_no_request(sdk: Client) -> None:
    with Server(sdk) as server, Load(f"http://127.0.0.1:{server.port}") as load:
        time.sleep(0.3)
        d = sdk.deploy("iris", "models:/iris/2", "canary", steps=[30, 60], step_seconds=0.5, judge=JUDGE)
        d = wait_for(sdk, d.id, ("promoted", "rolled_back", "failed", "aborted"))
        settle(sdk)
        after = load.mark()
        time.sleep(0.5)
    seen = load.summary()
    assert d.status == "promoted", d.outcome
    assert set(seen) == {(200, "iris/1"), (200, "iris/2")}, seen  # every request answered, by both versions
    assert set(load.summary(after)) == {(200, "iris/2")}


def test_blue_green_switch_and_instant_rollback_under_load_fail_no_request(sdk: Client) -> None:
    with Server(sdk) as server, Load(f"http://127.0.0.1:{server.port}") as load:
        time.sleep(0.3)
        d = sdk.deploy("iris", "models:/iris/2", "bluegreen", hold_seconds=600)
        wait_for(sdk, d.id, ("running",))
        settle(sdk)
        switched = load.mark()
        time.sleep(0.5)
        sdk.rollback_deployment("iris", "test")
        settle(sdk)
        back = load.mark()
        time.sleep(0.5)
    assert set(load.summary()) <= {(200, "iris/1"), (200, "iris/2")}, load.summary()
    assert set(load.summary(switched, back)) >= {(200, "iris/2")}
    assert set(load.summary(back)) == {(200, "iris/1")}


def test_faulty_canary_is_rolled_back_under_load_and_only_it_failed(sdk: Client) -> None:
    with Server(sdk) as server, Load(f"http://127.0.0.1:{server.port}") as load:
        time.sleep(0.3)
        d = sdk.deploy("iris", "models:/iris/3", "canary", steps=[20], step_seconds=0.5, judge=JUDGE)
        d = wait_for(sdk, d.id, ("promoted", "rolled_back", "failed", "aborted"))
        settle(sdk)
        after = load.mark()
        time.sleep(0.5)
    seen = load.summary()
    assert d.status == "rolled_back" and d.outcome.startswith("judge failed"), d.outcome
    assert seen[(500, "iris/3")] > 0 and seen[(500, "iris/1")] == 0
    assert not [r for r in seen if isinstance(r, str)], seen  # no connection errors at all
    assert set(load.summary(after)) == {(200, "iris/1")}
