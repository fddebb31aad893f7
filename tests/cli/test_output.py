"""The CLI's shared rendering: JSON with NaN/inf as strings, error lines, formatting helpers, ``demo``."""

from __future__ import annotations

import json
import math
import sys
import types

import pytest
import typer

from shipyard.cli.main import main
from shipyard.cli.output import clip, dumps, duration, error_line, number, parse_pairs, short_digest
from shipyard.core.errors import FilterSyntaxError, NotFound
from shipyard.registry.entities import AliasMove
from shipyard.tracking.entities import MetricHistory, Run, RunStatus


def test_json_keeps_nan_and_inf_as_strings() -> None:
    run = Run(
        id="r",
        experiment_id="e",
        name="n",
        status=RunStatus.RUNNING,
        user="u",
        start_time=1,
        metrics={"a": math.nan, "b": math.inf, "c": -math.inf, "d": 0.5},
        environment={"nested": [math.nan]},  # an Any-typed field of a model too
    )
    history = MetricHistory(
        run_id="r", key="a", total_points=1, downsampled=False, steps=[0], values=[math.nan], timestamps=[1]
    )
    data = json.loads(dumps({"run": run, "history": history, "moves": [AliasMove(seq=1, ts=2, actor="x", alias="p")]}))
    assert data["run"]["metrics"] == {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": 0.5}
    assert data["run"]["status"] == "RUNNING"
    assert data["run"]["environment"] == {"nested": ["NaN"]}
    assert data["history"]["values"] == ["NaN"]
    assert data["moves"][0]["to_version"] is None


def test_error_lines() -> None:
    assert error_line(NotFound("run 'x' not found", field="run_id")) == "error: run 'x' not found [field: run_id]"
    assert error_line(NotFound("gone")) == "error: gone"
    multi = FilterSyntaxError("invalid filter at column 3: oops\n  a >\n    ^", field="filter")
    assert error_line(multi) == "error: invalid filter at column 3: oops [field: filter]"
    assert error_line(ValueError("bad\nworse")) == "error: ValueError: bad"
    assert error_line(KeyError()) == "error: KeyError"


def test_formatting_helpers() -> None:
    assert number(math.nan) == "NaN" and number(-math.inf) == "-inf" and number(3.0) == "3"
    assert number(1 / 3) == "0.333333"
    assert duration(0, 1500) == "1.5s" and duration(0, 125_000) == "2m05s" and duration(0, 3_720_000) == "1h02m"
    assert duration(0, None) == "-"
    assert clip("a" * 50, 10) == "a" * 9 + "…"
    assert short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert parse_pairs(["a=1", "b=c=d", "e="]) == {"a": "1", "b": "c=d", "e": ""}
    with pytest.raises(typer.BadParameter):
        parse_pairs(["=x"])


def test_main_exit_codes(home, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--home", str(home), "models", "show", "nope"])
    assert exc.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == "error: registered model 'nope' not found [field: model]\n"
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("shipyard ")


def test_demo_calls_run_demo_with_home(cli, home, monkeypatch) -> None:
    calls = []

    def run_demo(home=None, console=None):
        calls.append((home, console))
        return {"experiments": 2, "runs": 7}

    served = []

    def serve_demo(home=None, port=8080, console=None):
        served.append((home, port))

    monkeypatch.setitem(sys.modules, "shipyard.demo", types.SimpleNamespace(run_demo=run_demo))
    monkeypatch.setitem(sys.modules, "shipyard.demo.serve", types.SimpleNamespace(serve_demo=serve_demo))
    assert json.loads(cli("demo", "--no-serve", json=True).stdout) == {"experiments": 2, "runs": 7}
    assert calls[0][0] == str(home) and calls[0][1] is not None
    human = cli("demo", "--no-serve")
    assert "experiments" in human.stdout and "7" in human.stdout
    assert served == []
    cli("demo", "--port", "8123")  # by default the demo ends by serving its dashboard
    assert served == [(str(home), 8123)]
