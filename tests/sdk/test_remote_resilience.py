"""Remote metric logging survives the server going away: points queue up and are written when it is back."""

from __future__ import annotations

import time
from pathlib import Path

from shipyard import Client
from shipyard.core.settings import Settings
from tests.conftest import ThreadedServer, free_port


class _FixedPortServer(ThreadedServer):
    def __init__(self, settings: Settings, port: int):
        super().__init__(settings)
        import uvicorn

        self.port = port
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        import threading

        self.thread = threading.Thread(target=self.server.run, daemon=True)


def test_points_logged_while_the_server_is_down_are_not_lost(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "server", remote_uri="")
    port = free_port()
    with _FixedPortServer(settings, port) as server:
        client = Client(uri=server.url, home=tmp_path / "client")
        run = client.create_run(capture_environment=False)
        for step in range(100):
            client.log_metric(run.id, "loss", 1.0 / (step + 1), step)
        client.flush()
    # The server is gone: logging must neither block nor fail.
    started = time.perf_counter()
    for step in range(100, 1100):
        client.log_metric(run.id, "loss", 1.0 / (step + 1), step)
    assert time.perf_counter() - started < 1.0
    time.sleep(1.0)  # the background writer hits the dead server and keeps the points
    with _FixedPortServer(settings, port):
        client.flush()
        history = client.get_metric_history(run.id, "loss")
        assert history.total_points == 1100
        assert history.steps == list(range(1100))
        client.end_run(run.id)
        client.close()
