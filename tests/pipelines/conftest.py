"""Fixtures for the pipeline tests: an SDK client on embedded SQLite and PostgreSQL, and a clean fluent state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.client import fluent


@pytest.fixture(autouse=True)
def _no_fluent_leftovers() -> Iterator[None]:
    yield
    assert fluent.active_run() is None, "a step left its run on the fluent stack"
    fluent.set_client(None)


@pytest.fixture(params=["sqlite", "postgres"])
def embedded(request: pytest.FixtureRequest, home: Path) -> Iterator[Client]:
    """An embedded client on SQLite and on PostgreSQL (the runner and worker processes share the store)."""
    store_uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    client = Client(home=home, store_uri=store_uri)
    yield client
    client.close()


@pytest.fixture
def sqlite_client(home: Path) -> Iterator[Client]:
    client = Client(home=home)
    yield client
    client.close()
