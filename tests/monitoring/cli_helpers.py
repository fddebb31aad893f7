"""Helpers for the monitoring tests that drive the CLI (typer's CliRunner, in-process) and the
inference app: an invoker bound to a home, output checks, and a World whose hours are recent (so a
command that runs a monitor at the real "now" cuts only a few windows)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from shipyard.cli.main import app
from shipyard.core.time import now_ms
from tests.monitoring.world import HOUR, World

Invoke = Callable[..., Result]
QUICK = {"multivariate": "never", "importance": False}


def make_cli(home: Path) -> Invoke:
    """``cli("monitor", "list")`` runs ``shipyard --home HOME monitor list``; ``json=True`` adds ``--json``."""
    runner = CliRunner()

    def invoke(*args: str, json: bool = False) -> Result:
        options = ["--home", str(home)] + (["--json"] if json else [])
        return runner.invoke(app, [*options, *args], catch_exceptions=False)

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result.stdout


def parse(result: Result) -> Any:
    return json.loads(ok(result))


def assert_one_line_error(result: Result, *fragments: str, code: int = 1) -> str:
    """Failed with ``code``: one ``error:`` line on stderr naming the problem, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def recent_world(client: Any, hours_ago: int = 3, **kwargs: Any) -> World:
    """A World whose hour 0 started ``hours_ago`` whole hours before the current hour began, so that
    hours ``0 .. hours_ago - 1`` are complete now and a monitor run at the real clock cuts just those."""
    world = World(client, **kwargs)
    world.start = (now_ms() // HOUR) * HOUR - hours_ago * HOUR
    return world
