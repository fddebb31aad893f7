"""``shipyard pipeline run / runs / show / diff / logs`` against an embedded SQLite home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shipyard.cli.main import app
from tests.cli.conftest import assert_one_line_error, parse

TARGET = "tests.pipelines.sample_pipelines:training"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_STORE_URI", "SHIPYARD_ARTIFACT_URI", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(home: Path):
    runner = CliRunner()

    def invoke(*args: str, json: bool = False) -> Result:
        return runner.invoke(app, ["--home", str(home), *(["--json"] if json else []), *args], catch_exceptions=False)

    return invoke


def test_run_prints_progress_with_cache_hits_and_the_run(cli) -> None:
    first = cli("pipeline", "run", TARGET, "--param", "rows=30", "-p", "c=0.5")
    assert first.exit_code == 0, first.stderr
    assert "SUCCEEDED make_frame" in first.stderr
    assert first.stdout.startswith("pipeline run ") and "SUCCEEDED (5 steps, 0 cached" in first.stdout

    second = cli("pipeline", "run", TARGET, "--param", "rows=30", "-p", "c=0.5")
    assert second.stderr.count("CACHED") == 5 and "(from step run " in second.stderr
    assert "5 cached" in second.stdout

    forced = parse(cli("pipeline", "run", TARGET, "--param", "rows=30", "-p", "c=0.5", "--no-cache", json=True))
    assert [s["status"] for s in forced["steps"]] == ["SUCCEEDED"] * 5
    assert forced["params"] == {"rows": 30, "c": 0.5, "register_as": None}


def test_runs_show_diff_and_logs(cli) -> None:
    a = parse(cli("pipeline", "run", TARGET, "-p", "rows=20", json=True))
    b = parse(cli("pipeline", "run", TARGET, "-p", "rows=20", "-p", "c=2", json=True))

    listed = parse(cli("pipeline", "runs", "--name", "training", json=True))
    assert [r["id"] for r in listed] == [b["id"], a["id"]]
    table = cli("pipeline", "runs")
    assert a["id"] in table.stdout and "5 cached" not in table.stdout and "3 cached" in table.stdout

    shown = cli("pipeline", "show", b["id"])
    assert shown.exit_code == 0
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip()}
    assert "CACHED" in lines["make_frame"] and a["steps"][0]["id"][:8] in lines["make_frame"]
    assert "SUCCEEDED" in lines["train"] and "split" in lines["train"]
    assert "tests.pipelines.sample_pipelines:training" in shown.stdout
    shown_json = parse(cli("pipeline", "show", b["id"], json=True))
    assert shown_json["definition"]["target"] == TARGET

    diff = parse(cli("pipeline", "diff", a["id"], b["id"], json=True))
    assert diff["params"] == {"c": {"a": 1.0, "b": 2}}
    steps = {s["name"]: s for s in diff["steps"]}
    assert steps["train"]["inputs"]["c"] == {"a": 1.0, "b": 2}
    text = cli("pipeline", "diff", a["id"], b["id"])
    assert "input c" in text.stdout and "SUCCEEDED" in text.stdout

    logs = cli("pipeline", "logs", a["id"], "make_frame")
    assert "making 20 rows" in logs.stdout
    assert json.loads(cli("pipeline", "logs", a["id"], "make_frame", json=True).stdout)["step"] == "make_frame"


def test_errors_are_one_line(cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("pipeline", "run", "nowhere:pipe"), "cannot import module 'nowhere'")
    assert_one_line_error(cli("pipeline", "run", TARGET, "-p", "rowz=3"), "pipeline 'training' has no parameter 'rowz'")
    assert_one_line_error(cli("pipeline", "run", TARGET, "--executor", "threads"), "unknown executor 'threads'")
    assert_one_line_error(cli("pipeline", "show", "nope"), "pipeline run 'nope' not found")
    assert_one_line_error(cli("pipeline", "diff", "nope", "nada"), "pipeline run 'nope' not found")

    failed = cli("pipeline", "run", "tests.pipelines.sample_pipelines:gated", "-p", "rows=3", "-p", "min_rows=10")
    assert failed.exit_code == 1 and failed.stdout == ""
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: pipeline 'gated' failed at step 'gate': ValidationFailed: 3 rows < 10")
    assert "FAILED" in failed.stderr and "SKIPPED" in failed.stderr
    run_id = last.split("pipeline run ")[1].split(")")[0]
    assert_one_line_error(cli("pipeline", "logs", run_id, "nostep"), "has no step 'nostep'")
    shown = cli("pipeline", "show", run_id)
    assert "gate: ValidationFailed: 3 rows < 10" in shown.stdout
