"""Fixtures of the monitoring tests: webhook receivers on loopback ports."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Hook:
    """A loopback HTTP server answering POSTs with ``statuses`` in turn (then ``then``), recording bodies."""

    def __init__(self, statuses: list[int], then: int = 204):
        self.statuses = list(statuses)
        self.then = then
        self.bodies: list[Any] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status = outer.statuses.pop(0) if outer.statuses else outer.then
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Any]:
    made: list[Hook] = []

    def make(statuses: list[int], then: int = 204) -> Hook:
        made.append(Hook(statuses, then))
        return made[-1]

    yield make
    for hook in made:
        hook.close()
