"""Points queued when a script simply exits are written at process exit (embedded and remote)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.core.settings import Settings
from tests.conftest import ThreadedServer

SCRIPT = textwrap.dedent(
    """
    import shipyard
    shipyard.start_run(name="exits-without-ending")
    for step in range(5000):
        shipyard.log_metric("loss", 1.0 / (step + 1), step=step)
    print(shipyard.active_run().id)
    # no end_run, no flush: the interpreter exits here
    """
)


@pytest.mark.parametrize("remote", [False, True])
def test_queued_points_are_flushed_at_exit(tmp_path: Path, remote: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(tmp_path / "home")
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    if remote:
        with ThreadedServer(settings) as server:
            env["SHIPYARD_URI"] = server.url
            env["SHIPYARD_TOKEN"] = server.token
            env["SHIPYARD_HOME"] = str(tmp_path / "client")
            out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
            client = Client(uri=server.url, home=tmp_path / "client")
            _check(client, out.stdout.strip())
    else:
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
        _check(Client(home=tmp_path / "home"), out.stdout.strip())


def _check(client: Client, run_id: str) -> None:
    run = client.get_run(run_id)
    assert run.status == "FINISHED"  # a script that exits normally finishes its open runs
    history = client.get_metric_history(run_id, "loss")
    assert history.total_points == 5000
    client.close()
