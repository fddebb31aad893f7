"""Fixtures of the event tests: a recording webhook receiver and a Redis key prefix per test."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Receiver:
    """A loopback HTTP server answering POSTs with ``statuses`` in turn (then ``then``), recording
    each request's raw body and headers."""

    def __init__(self, statuses: list[int], then: int = 204):
        self.statuses = list(statuses)
        self.then = then
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers.items()), raw))
                status = outer.statuses.pop(0) if outer.statuses else outer.then
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, raw in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None, then: int = 204) -> Receiver:
        made.append(Receiver(statuses or [], then))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.automation import webhooks

    monkeypatch.setattr(webhooks, "BACKOFF_S", 0.01)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix on the Redis of every development and CI machine; its keys are removed after."""
    from shipyard.automation.redis_streams import connect

    prefix = f"shipyard-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    r = connect()
    keys = list(r.scan_iter(match=prefix + "*"))
    if keys:
        r.delete(*keys)
    r.close()
