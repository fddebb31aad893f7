"""Fixtures for the CLI tests: a temporary Shipyard home, an SDK client on it, and a CLI runner.

The CLI runs in-process through typer's CliRunner against the same embedded SQLite home the SDK
client writes to; stdout and stderr are captured separately.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from shipyard import Client
from shipyard.cli.main import app


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_STORE_URI", "SHIPYARD_ARTIFACT_URI", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sdk(home: Path) -> Iterator[Client]:
    client = Client(home=home)
    yield client
    client.close()


Invoke = Callable[..., Result]


@pytest.fixture
def cli(home: Path) -> Invoke:
    """``cli("runs", "list")`` runs ``shipyard --home HOME runs list``; ``json=True`` adds ``--json``."""
    runner = CliRunner()

    def invoke(*args: str, json: bool = False, debug: bool = False) -> Result:
        options = ["--home", str(home)] + (["--json"] if json else []) + (["--debug"] if debug else [])
        return runner.invoke(app, [*options, *args], catch_exceptions=False)

    return invoke


def parse(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)


def assert_one_line_error(result: Result, *fragments: str, code: int = 1) -> str:
    """The command failed with ``code``, one ``error:`` line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@dataclass
class Project:
    experiment: str
    runs: list[str]  # run ids in creation order: rf/0.1, rf/0.01, xgb/0.001 (accuracy NaN)


@pytest.fixture
def project(sdk: Client) -> Project:
    """One experiment with three finished runs: params model/lr, metrics accuracy/loss (one NaN)."""
    sdk.create_experiment("churn", description="churn models", tags={"team": "risk"})
    ids = []
    for name, model, lr, accuracy in (
        ("alpha", "rf", 0.1, 0.81),
        ("beta", "rf", 0.01, 0.93),
        ("gamma", "xgb", 0.001, math.nan),
    ):
        run = sdk.create_run("churn", name)
        sdk.log_params(run.id, {"model": model, "lr": lr})
        sdk.log_batch(run.id, metrics=[("loss", 1.0 / (step + 1), step) for step in range(5)])
        sdk.log_metric(run.id, "accuracy", accuracy, synchronous=True)
        sdk.end_run(run.id)
        ids.append(run.id)
    return Project(experiment="churn", runs=ids)
