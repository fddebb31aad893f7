"""``shipyard privacy …`` and ``shipyard retention …`` in-process (typer's CliRunner): JSON and text
output, one-line errors with exit code 1, and the erased value in no output and no log record."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli.main import app
from shipyard.core.time import now_ms
from tests.governance.privacy_helpers import SUBJECT_EMAIL, customers


def _cli(home: Path):
    runner = CliRunner()

    def invoke(*args: str, json_output: bool = False):
        options = ["--home", str(home)] + (["--json"] if json_output else [])
        return runner.invoke(app, [*options, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def world(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    client = Client(home=home)
    frame = customers()
    dataset = client.log_dataset(frame, "customers")
    model = LogisticRegression().fit(frame[["x", "z"]], frame["y"])
    client.register_model(model, "churn", data_refs=[dataset.ref])
    scored = frame[["user_id", "email", "x"]].copy()
    scored["prediction"] = model.predict(frame[["x", "z"]])
    client.log_predictions(scored, "churn/1")
    client.close()
    return home


def test_erase_from_the_command_line(world: Path, caplog: pytest.LogCaptureFixture) -> None:
    cli = _cli(world)
    caplog.set_level(logging.DEBUG)
    dry = cli("privacy", "erase", "--subject", "user_id=7", "--subject", f"email={SUBJECT_EMAIL}", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing was changed" in dry.stdout and "churn/1" in dry.stdout

    result = cli("privacy", "erase", "-s", "user_id=7", "-s", f"email={SUBJECT_EMAIL}", json_output=True)
    assert result.exit_code == 0, result.output
    erasure = json.loads(result.stdout)
    assert erasure["status"] == "complete" and erasure["predictions"] == 1
    assert erasure["datasets"][0]["new_version"] == "customers@2"
    assert erasure["model_versions"][0]["model"] == "churn"

    listed = cli("privacy", "list", json_output=True)
    assert [e["id"] for e in json.loads(listed.stdout)] == [erasure["id"]]
    shown = cli("privacy", "show", erasure["id"])
    assert shown.exit_code == 0 and erasure["id"] in shown.stdout and "customers@2" in shown.stdout
    text = cli("privacy", "list")
    assert erasure["id"] in text.stdout

    for output in (dry.output, result.output, listed.output, shown.output, text.output, caplog.text):
        assert SUBJECT_EMAIL not in output


def test_bad_subjects_are_one_line_errors(world: Path) -> None:
    cli = _cli(world)
    secret = "nobody@example.org"
    for args in (["-s", f"{secret}"], ["-s", f"=  {secret}"], ["-s", f"no_such_column={secret}"]):
        result = cli("privacy", "erase", *args)
        assert result.exit_code == 1
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
        assert secret not in result.output and "Traceback" not in result.output
    assert "no_such_column" in result.stderr


def test_retention_from_the_command_line(world: Path) -> None:
    cli = _cli(world)
    assert "retention of predictions: 30 days" in cli("retention", "set", "predictions", "--days", "30").stdout
    listed = json.loads(cli("retention", "list", json_output=True).stdout)
    assert [(p["target"], p["max_age_days"]) for p in listed] == [("predictions", 30.0)]
    run = cli("retention", "enforce", "--now", str(now_ms() + 60 * 86_400_000), json_output=True)
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["predictions"] == 40  # 60 days on, every prediction logged today is too old
    assert "cutoff predictions" in cli("retention", "enforce").stdout
    bad = cli("retention", "set", "metrics", "--days", "3")
    assert bad.exit_code == 1 and "target must be one of predictions, feedback, labels" in bad.stderr
    assert "removed the retention policy of predictions" in cli("retention", "remove", "predictions").stdout
    assert "no retention policies" in cli("retention", "enforce").stdout
