"""The end of ``shipyard demo``: the demo's store served with the dashboard, and the loop left running.

Everything ``shipyard server`` runs in the background runs here too — the automation engine (so the
closed loop acts on every new drift alert), scheduled monitors, webhooks, governance upkeep — beside
a real inference server for the demo endpoint (so a canary the loop starts is judged on live
predictions) and a trickle of traffic from the held-out rows. It prints the dashboard's address and
a token to log in with, and runs until interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from shipyard.demo.rollout import ENDPOINT, _Traffic, inference_server

LIVE_MONITOR = "breast-cancer-live"
DEFAULT_PORT = 8080
ADMIN = "demo-admin"


def _port(preferred: int) -> int:
    """``preferred`` if it is free on the loopback, otherwise any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def serve_demo(
    home: str | os.PathLike[str] | None = None,
    port: int = DEFAULT_PORT,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the demo's home until ``stop`` is set or Ctrl-C; needs a home that ``run_demo`` filled."""
    import uvicorn
    from sklearn.datasets import load_breast_cancer

    from shipyard import Client
    from shipyard.api.app import create_app
    from shipyard.cli.server import start_loops
    from shipyard.core.settings import Settings
    from shipyard.demo.pipeline import TARGET
    from shipyard.governance.bootstrap import issue_admin_token

    console = console or Console()
    settings = Settings.resolve(home=home, remote_uri="")
    client = Client("", home=settings.home)
    if not any(m.name == LIVE_MONITOR for m in client.list_monitors()):
        # the endpoint's own predictions, cut into 5-minute windows by the server every minute
        client.create_monitor(LIVE_MONITOR, endpoint=ENDPOINT, window="5m", schedule_seconds=60,
                              options={"importance": False})  # fmt: skip
    token = issue_admin_token(settings, name=ADMIN, token_name=f"demo-{int(time.time())}")
    rows = load_breast_cancer(as_frame=True).frame.drop(columns=[TARGET]).to_dict(orient="records")
    port = _port(port)
    start_loops(settings, monitor_interval=10.0, events_interval=1.0, upkeep_interval=300.0)
    app = create_app(settings, require_auth=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="shipyard-dashboard", daemon=True)
    stop = stop or threading.Event()
    try:
        with inference_server(client) as inference, _Traffic(inference, rows, threads=1, pause=0.2):
            thread.start()
            while not server.started:
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port}/"
            console.print("\n[bold]The dashboard[/bold]: the closed loop keeps running unattended")
            console.print(f"  open {url} and log in as {ADMIN} with the token", soft_wrap=True)
            console.print(f"  {token}", markup=False, soft_wrap=True)
            console.print(
                f"  live traffic goes to endpoint {ENDPOINT!r} at {inference}; monitor {LIVE_MONITOR} watches it; "
                "the automations act on every new drift alert. Ctrl-C stops.",
                soft_wrap=True,
            )
            _write_address(settings.home, url, token)
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        console.print("  stopped.")
    finally:
        server.should_exit = True
        thread.join(15)
        app.state.services.close()
        client.close()


def _write_address(home: Any, url: str, token: str) -> None:
    """Where the dashboard is, for scripts (and the tests): ``<home>/dashboard.txt``, owner-only."""
    path = Path(home) / "dashboard.txt"
    path.write_text(f"{url}\n{token}\n", encoding="utf-8")
    path.chmod(0o600)
