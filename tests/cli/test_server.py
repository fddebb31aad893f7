"""End to end through real processes: the ``shipyard`` console script, and ``shipyard server`` serving clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shipyard import Client
from shipyard.core.settings import Settings
from shipyard.governance.bootstrap import issue_admin_token
from tests.conftest import free_port


def _shipyard() -> list[str]:
    script = Path(sys.executable).with_name("shipyard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shipyard.cli.main"]


def _env(token: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["PYTHONUNBUFFERED"] = "1"
    if token:
        env["SHIPYARD_TOKEN"] = token
    return env


def _run(*args: str, timeout: float = 60, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_shipyard(), *args], capture_output=True, text=True, env=_env(token), timeout=timeout)


def test_console_script_errors_and_json(home: Path) -> None:
    with Client(home=home) as client:
        run = client.create_run(name="only")
        client.log_metric(run.id, "score", float("inf"), synchronous=True)
    missing = _run("--home", str(home), "runs", "show", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: run 'nope' not found [field: run_id]"
    assert missing.stdout == ""
    bad = _run("--home", str(home), "runs", "search", "--filter", "metrics.x >")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: invalid filter at column 12") and len(bad.stderr.strip().splitlines()) == 1
    page = json.loads(_run("--home", str(home), "--json", "runs", "list").stdout)
    assert page["runs"][0]["metrics"] == {"score": "Infinity"}
    debug = _run("--home", str(home), "--debug", "runs", "show", "nope")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    usage = _run("--home", str(home), "runs", "frobnicate")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_server_smoke(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_home = tmp_path / "server-home"
    token = issue_admin_token(Settings.resolve(home=server_home, remote_uri=""))
    proc = subprocess.Popen(
        [*_shipyard(), "--home", str(server_home), "server", "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if httpx.get(url + "/health", timeout=1).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /health")
            time.sleep(0.1)
        denied = _run("--uri", url, "experiments", "list")  # authentication is on by default
        assert denied.returncode == 1 and denied.stderr.startswith("error: authentication required")
        with Client(uri=url, home=tmp_path / "client-home", token=token) as client:
            created = client.create_experiment("remote-exp")
        listed = _run("--uri", url, "--json", "experiments", "list", token=token)
        assert listed.returncode == 0, listed.stderr
        assert [e["id"] for e in json.loads(listed.stdout)] == [created.id]
        missing = _run("--uri", url, "runs", "show", "nope", token=token)  # a remote error is the same one line
        assert missing.returncode == 1 and missing.stderr.strip() == "error: run 'nope' not found [field: run_id]"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    # the server wrote into its own home, which an embedded client now reads
    with Client(home=server_home) as embedded:
        assert embedded.get_experiment("remote-exp").id == created.id


def test_server_runs_due_schedules(tmp_path: Path) -> None:
    from shipyard.core.time import now_ms

    server_home = tmp_path / "server-home"
    with Client(home=server_home) as client:
        # The occurrence of this minute is due at once and, being under 60 s old, on time for "skip".
        client.create_schedule("every-minute", "tests.reproduce.pipelines:repro", "* * * * *", {"rows": 40},
                               start_at=now_ms() - 60_000)  # fmt: skip
    token = issue_admin_token(Settings.resolve(home=server_home, remote_uri=""))
    port = free_port()
    env = _env() | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [*_shipyard(), "--home", str(server_home), "server", "--port", str(port), "--log-level", "warning",
         "--scheduler", "--scheduler-interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        with Client(uri=f"http://127.0.0.1:{port}", home=tmp_path / "client-home", token=token) as client:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
                try:
                    fired = client.get_schedule("every-minute").last_pipeline_run_id
                except Exception:  # not listening yet
                    fired = None
                if fired:
                    break
                if time.monotonic() > deadline:
                    pytest.fail("the server's scheduler did not run the due schedule")
                time.sleep(0.2)
            assert client.get_pipeline_run(fired).status == "SUCCEEDED"
    finally:
        proc.terminate()
        proc.wait(10)


def test_server_upkeep_signs_checkpoints_and_enforces_retention(tmp_path: Path) -> None:
    server_home = tmp_path / "server-home"
    with Client(home=server_home) as client:
        client.create_experiment("something-to-checkpoint")
        client.set_retention("feedback", 30)
    port = free_port()
    proc = subprocess.Popen(
        [*_shipyard(), "--home", str(server_home), "server", "--port", str(port), "--log-level", "warning",
         "--upkeep-interval", "0.2", "--no-monitors"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        with Client(home=server_home) as client:
            while not (client.export_checkpoints() and client.list_retention()[0].last_enforced_at):
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
                if time.monotonic() > deadline:
                    pytest.fail("the server's upkeep loop did not checkpoint the journal and enforce retention")
                time.sleep(0.2)
            first = client.export_checkpoints()
            assert first[-1].seq == client._backend.services.journal.last_seq()
            time.sleep(1.0)  # several rounds with nothing new: no further checkpoint of the same head
            assert len(client.export_checkpoints()) == len(first)
            assert client.verify_checkpoints()["ok"]
    finally:
        proc.terminate()
        proc.wait(10)
    assert "upkeep failed" not in (proc.stderr.read() if proc.stderr else "")
