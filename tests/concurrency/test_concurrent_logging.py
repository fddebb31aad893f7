"""Eight processes logging at once: no "database is locked", no lost points — SQLite, PostgreSQL, server."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shipyard.core.settings import Settings
from shipyard.governance.bootstrap import issue_admin_token
from tests.conftest import free_port

WORKERS = 8
STEPS = 300
KEYS = ("loss", "acc")


def _worker(target: dict, shared_run: str, barrier, queue) -> None:
    from shipyard import Client

    try:
        client = Client(target.get("uri"), home=target["home"], store_uri=target.get("store_uri"))
        experiment = client.get_or_create_experiment("concurrent")
        run = client.create_run(experiment.id, f"worker-{os.getpid()}", capture_environment=False)
        barrier.wait(60)
        for step in range(STEPS):
            for key in KEYS:
                client.log_metric(run.id, key, step * 0.5, step)  # queued, background batches
            client.log_metric(shared_run, f"shared-{os.getpid()}", float(step), step)
            if step % 50 == 0:
                client.log_params(run.id, {f"p{step}": step})  # journaled writes interleave with telemetry
                client.log_batch(run.id, metrics=[("batched", float(step), step)])
        client.end_run(run.id)
        client.flush()
        client.close()
        queue.put(("ok", run.id))
    except BaseException as exc:  # report, don't hang the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def _run_workers(target: dict) -> None:
    from shipyard import Client

    parent = Client(target.get("uri"), home=target["home"], store_uri=target.get("store_uri"))
    shared = parent.create_run(name="shared", capture_environment=False)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(target, shared.id, barrier, queue)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(60)
    errors = [r[1] for r in results if r[0] != "ok"]
    assert not errors, errors
    run_ids = [r[1] for r in results]
    for run_id in run_ids:
        run = parent.get_run(run_id)
        assert run.status == "FINISHED"
        for key in KEYS:
            history = parent.get_metric_history(run_id, key)
            assert history.total_points == STEPS, (run_id, key)
            assert history.steps == list(range(STEPS))
        assert parent.get_metric_history(run_id, "batched").total_points == STEPS // 50
        assert len(run.params) == STEPS // 50
    shared_run = parent.get_run(shared.id)
    assert len(shared_run.metrics) == WORKERS
    for key in shared_run.metrics:
        assert parent.get_metric_history(shared.id, key).total_points == STEPS
    parent.close()


def test_eight_processes_on_embedded_sqlite(tmp_path: Path) -> None:
    _run_workers({"home": str(tmp_path / "home")})


def test_eight_processes_on_postgres(tmp_path: Path, pg_uri: str) -> None:
    _run_workers({"home": str(tmp_path / "home"), "store_uri": pg_uri})


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_eight_clients_against_one_server(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "server")}
    if backend == "postgres":
        env["SHIPYARD_STORE_URI"] = request.getfixturevalue("pg_uri")
    settings = Settings.resolve(home=env["SHIPYARD_HOME"], store_uri=env.get("SHIPYARD_STORE_URI"), remote_uri="")
    monkeypatch.setenv("SHIPYARD_TOKEN", issue_admin_token(settings))  # the worker processes inherit it
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "shipyard.api.app:create_app",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        _run_workers({"home": str(tmp_path / "client"), "uri": url})
    finally:
        server.terminate()
        server.wait(30)
