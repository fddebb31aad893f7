"""The CLI (``shipyard webhooks …``, ``shipyard events …``), a subscriber process killed mid-stream,
and the webhook loop inside ``shipyard server``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard import Client
from shipyard.automation import webhooks
from shipyard.cli.main import app
from tests.conftest import free_port

SECRET = "cli-secret-cli-secret"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_STORE_URI", "SHIPYARD_ARTIFACT_URI", "SHIPYARD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _cli(home: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--home", str(home), *args], catch_exceptions=False)


def test_webhooks_cli(home: Path, receivers: Any) -> None:
    flaky = receivers([], then=500)
    added = _cli(home, "webhooks", "add", "ci", flaky.url, "-a", "experiment.", "--secret", SECRET, "--attempts", "2")
    assert added.exit_code == 0 and SECRET in added.stdout
    assert "ci" in _cli(home, "webhooks", "list").stdout
    with Client(home=home) as client:
        client.create_experiment("cli-exp")
    ran = _cli(home, "events", "run", "--once")
    assert ran.exit_code == 0 and "FAILED after 2 attempt(s)" in ran.stderr
    [letter] = json.loads(_cli(home, "--json", "webhooks", "dead-letters").stdout)
    assert letter["subscriber"] == "ci" and letter["event"]["action"] == "experiment.created"
    assert _cli(home, "webhooks", "replay").exit_code == 1  # still failing: kept
    flaky.then = 204
    replayed = _cli(home, "webhooks", "replay", "ci")
    assert replayed.exit_code == 0 and "replayed 1 of 1" in replayed.stdout
    assert webhooks.verify(SECRET, *flaky.requests[-1])
    assert json.loads(_cli(home, "--json", "webhooks", "dead-letters").stdout) == []
    subs = json.loads(_cli(home, "--json", "events", "subscribers").stdout)
    assert [s["name"] for s in subs] == ["ci"] and subs[0]["cursor"] >= letter["seq"]
    assert _cli(home, "events", "run", "--once", "--transport", "nope").exit_code == 1
    assert _cli(home, "webhooks", "remove", "ci").exit_code == 0
    assert json.loads(_cli(home, "--json", "webhooks", "list").stdout) == []


def test_events_run_over_redis(home: Path, receivers: Any, redis_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_REDIS_PREFIX", redis_prefix)
    receiver = receivers()
    with Client(home=home) as client:
        client.create_webhook("r", receiver.url, actions=["model.created"])
        client.create_model("over-redis")
    assert _cli(home, "events", "run", "--once", "--transport", "redis").exit_code == 0
    assert [e["entity_type"] for e in receiver.events] == ["model"]


_WORKER = textwrap.dedent(
    """
    import os, sys, time
    from shipyard import Client

    home, store_uri, out = sys.argv[1], sys.argv[2] or None, sys.argv[3]
    client = Client(home=home, store_uri=store_uri)

    def handler(event):
        with open(out, "a") as f:
            f.write(f"{event.seq}\\n")
            f.flush()
            os.fsync(f.fileno())
        time.sleep(0.3)  # the kill lands here: handled, not yet acknowledged

    client.subscribe("worker", handler, interval=0.05).run_forever()
    """
)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_killed_subscriber_process_resumes_without_losing_events(
    backend: str, home: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store_uri = request.getfixturevalue("pg_uri") if backend == "postgres" else None
    out = tmp_path / "handled.txt"
    with Client(home=home, store_uri=store_uri) as client:
        client.create_subscriber("worker", actions=["experiment.created"])
        for i in range(8):
            client.create_experiment(f"k{i}")
        expected = [e.seq for e in client.read_events(after=0, limit=100, actions=["experiment.created"])]
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    proc = subprocess.Popen([sys.executable, str(script), str(home), store_uri or "", str(out)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and len(out.read_text().split()) >= 3):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    before_kill = [int(s) for s in out.read_text().split()]
    with Client(home=home, store_uri=store_uri) as client:
        cursor = client.get_subscriber("worker").cursor
        assert cursor < before_kill[-1]  # the last one handled was never acknowledged
        resumed: list[int] = []
        while client.subscribe("worker", lambda e: resumed.append(e.seq)).run_once():
            pass
    assert resumed[0] == before_kill[-1]  # delivered again
    assert sorted(set(before_kill) | set(resumed)) == expected  # none lost


def test_the_server_delivers_webhooks(tmp_path: Path, receivers: Any) -> None:
    receiver = receivers()
    server_home = tmp_path / "server-home"
    with Client(home=server_home) as client:
        client.create_webhook("srv", receiver.url, actions=["experiment.created"], secret=SECRET)
    script = Path(sys.executable).with_name("shipyard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "shipyard.cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    proc = subprocess.Popen(
        [*command, "--home", str(server_home), "server", "--port", str(free_port()), "--log-level", "warning",
         "--no-monitors", "--events-interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        with Client(home=server_home) as client:
            exp = client.create_experiment("served")
        deadline = time.monotonic() + 60
        while not receiver.requests:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
            assert time.monotonic() < deadline, "the server did not deliver the webhook"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    assert receiver.events[0]["entity_id"] == exp.id
    assert webhooks.verify(SECRET, *receiver.requests[0])


def test_a_viewer_reads_events_and_dead_letters_but_an_admin_manages_webhooks(tmp_path: Path) -> None:
    from shipyard.core.errors import PermissionDenied
    from shipyard.core.settings import Settings
    from tests.conftest import ThreadedServer

    settings = Settings.resolve(home=tmp_path / "server", remote_uri="")
    with Client(home=settings.home) as seed:
        seed.create_principal("vera")
        seed.grant_role("vera", "viewer")
        token = seed.create_token("vera").token
        seed.create_subscriber("sub", after=0)
    with ThreadedServer(settings) as server:
        with Client(uri=server.url, token=token) as viewer:
            assert viewer.read_events(after=0, actions=["subscriber."])[0].entity_id == "sub"
            assert viewer.poll_events("sub").events
            assert viewer.list_dead_letters() == []
            for call in (
                lambda: viewer.create_webhook("w", "http://127.0.0.1:9/x"),
                lambda: viewer.list_webhooks(),
                lambda: viewer.ack_events("sub", 1),
                lambda: viewer.replay_dead_letters(),
                lambda: viewer.delete_subscriber("sub"),
            ):
                with pytest.raises(PermissionDenied):
                    call()
        with Client(uri=server.url) as admin:  # SHIPYARD_TOKEN: the test admin
            assert admin.create_webhook("w", "http://127.0.0.1:9/x").secret
