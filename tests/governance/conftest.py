"""Fixtures of the governance CLI tests: the command line and an SDK client on one embedded home."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shipyard import Client
from shipyard.cli.main import app

Invoke = Callable[..., Result]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SHIPYARD_* location or terminal width leaks in from the caller's environment."""
    for name in ("SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_STORE_URI", "SHIPYARD_ARTIFACT_URI", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sdk(home: Path, clean_env: None) -> Iterator[Client]:
    client = Client(home=home)
    yield client
    client.close()


@pytest.fixture
def cli(home: Path, clean_env: None) -> Invoke:
    """``cli("review", "status", "m", "1", json=True)`` runs ``shipyard --home HOME [--json] …``."""
    runner = CliRunner()

    def invoke(*args: str, json: bool = False, input: str | None = None) -> Result:
        options = ["--home", str(home)] + (["--json"] if json else [])
        return runner.invoke(app, [*options, *args], catch_exceptions=False, input=input)

    return invoke
