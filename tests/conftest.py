"""Shared fixtures: real PostgreSQL databases, Shipyard homes, and in-process HTTP servers.

PostgreSQL runs on 127.0.0.1:5432 on every development and CI machine (trust auth). Each test
that needs it gets its own database, cloned from a migrated template made once per session, and
dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("SHIPYARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_url(database: str) -> str:
    return str(sa.make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False))


def create_pg_database(template: str | None = None) -> str:
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        clause = f" TEMPLATE {template}" if template else ""
        conn.exec_driver_sql(f"CREATE DATABASE {name}{clause}")
    engine.dispose()
    return name


def drop_pg_database(name: str) -> None:
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database to clone: CREATE DATABASE … TEMPLATE is much faster than migrating each time."""
    from shipyard.store import Database

    name = create_pg_database()
    db = Database(_pg_url(name))
    db.dispose()
    yield name
    drop_pg_database(name)


@pytest.fixture
def pg_uri(pg_template: str) -> Iterator[str]:
    name = create_pg_database(template=pg_template)
    yield _pg_url(name)
    drop_pg_database(name)


@pytest.fixture
def fresh_pg_uri() -> Iterator[str]:
    """An empty PostgreSQL database (not migrated)."""
    name = create_pg_database()
    yield _pg_url(name)
    drop_pg_database(name)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedServer:
    """``shipyard server`` in a thread of the test process, on a free loopback port."""

    def __init__(self, settings, require_auth: bool = True):
        import uvicorn

        from shipyard.api.app import create_app
        from shipyard.governance.bootstrap import issue_admin_token

        self.port = free_port()
        # Authentication is on, as in production: the test process acts as an admin through
        # SHIPYARD_TOKEN while the server runs, so every SDK client in the test uses it.
        self.token = issue_admin_token(settings, name="test-admin") if require_auth else None
        self.app = create_app(settings, require_auth=require_auth)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        """What a raw HTTP client sends to act as the test admin."""
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def __enter__(self) -> ThreadedServer:
        self._previous_token = os.environ.get("SHIPYARD_TOKEN")
        if self.token:
            os.environ["SHIPYARD_TOKEN"] = self.token
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.app.state.services.close()
        if self._previous_token is None:
            os.environ.pop("SHIPYARD_TOKEN", None)
        else:
            os.environ["SHIPYARD_TOKEN"] = self._previous_token


MODES = ["embedded-sqlite", "embedded-postgres", "remote-sqlite", "remote-postgres"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(mode: str, home: Path, request: pytest.FixtureRequest) -> Iterator:
    """The SDK under test, in each of the four ways it can be deployed."""
    from shipyard import Client
    from shipyard.core.settings import Settings

    store_uri = request.getfixturevalue("pg_uri") if mode.endswith("postgres") else None
    if mode.startswith("embedded"):
        c = Client(home=home, store_uri=store_uri)
        yield c
        c.close()
        return
    settings = Settings.resolve(home=home / "server", store_uri=store_uri, remote_uri="")
    with ThreadedServer(settings) as server:
        c = Client(uri=server.url, home=home)
        c.server_home = settings.home  # type: ignore[attr-defined]
        c.server_settings = settings  # type: ignore[attr-defined]
        yield c
        c.close()
