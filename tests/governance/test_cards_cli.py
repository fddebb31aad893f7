"""``shipyard card|fairness|explain …`` on an embedded home: evaluate with slices, fairness tables with
verdicts and small groups marked, explanations global and local, card sections, completeness exit
status, rendering to a file, ``--json`` everywhere, and one-line errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import Result

from shipyard import Client
from tests.governance.conftest import Invoke
from tests.governance.test_evaluate import register_credit


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_evaluate_fairness_and_explain_commands(cli: Invoke, sdk: Client) -> None:
    mv = register_credit(sdk)
    v = str(mv.version)

    out = ok(cli("card", "evaluate", "credit", v, "--data", "credit@1", "--label", "approved", "--slice", "region"))
    assert "accuracy" in out.stdout and "slices by region" in out.stdout and "north" in out.stdout
    stored = json.loads(ok(cli("card", "evaluate", "credit", v, "-d", "credit@1", "-l", "approved", json=True)).stdout)
    assert stored["kind"] == "evaluation" and stored["result"]["metrics"]["accuracy"] > 0.5

    out = ok(
        cli(
            "fairness",
            "evaluate",
            "credit",
            v,
            "--data",
            "credit@1",
            "--sensitive",
            "region",
            "--label",
            "approved",
            "--min-group-size",
            "100",
        )  # fmt: skip
    )
    assert "east (small)" in out.stdout  # ~80 rows: flagged, not judged
    assert "four-fifths rule" in out.stdout and "small groups (fewer than 100 rows, not judged): east" in out.stdout
    shown = json.loads(ok(cli("fairness", "show", "credit", v, json=True)).stdout)
    assert shown["result"]["small_groups"] == ["east"] and shown["result"]["reference_group"] == "north"
    assert set(shown["result"]["metrics"]) >= {"demographic_parity_difference", "four_fifths_passed"}
    out = ok(
        cli(
            "fairness",
            "evaluate",
            "credit",
            v,
            "-d",
            "credit@1",
            "--sensitive",
            "region",
            "-l",
            "approved",
            "--reference-group",
            "south",
        )  # fmt: skip
    )
    assert "reference group  south" in out.stdout

    out = ok(cli("explain", "global", "credit", v, "--data", "credit@1", "--label", "approved", "--repeats", "2"))
    assert "income" in out.stdout and "drop in accuracy against the label" in out.stdout
    out = ok(cli("explain", "predict", "credit", v, "--input", '{"income": 12, "age": 30}'))
    assert "probability of 1" in out.stdout and "income = 12 lowered the score by" in out.stdout
    local = json.loads(ok(cli("explain", "predict", "credit", v, "-i", '{"income": 12, "age": 30}', json=True)).stdout)
    assert local["contributions"][0]["feature"] == "income" and local["reasons"]

    one_line_error(cli("explain", "predict", "credit", v, "--input", "{not json"), "--input is not JSON")
    one_line_error(cli("explain", "predict", "credit", v, "--input", '{"income": 1}'), "age", "field: inputs")
    one_line_error(
        cli("fairness", "evaluate", "credit", v, "-d", "credit@1", "--sensitive", "gender", "-l", "approved"),
        "gender",
        "sensitive_features",
    )
    one_line_error(cli("card", "evaluate", "credit", v, "-d", "gone@1", "-l", "approved"), "gone", "field: dataset")
    one_line_error(cli("fairness", "show", "credit", "9"), "no version 9")


def test_card_sections_check_and_show(cli: Invoke, sdk: Client, tmp_path: Path) -> None:
    mv = register_credit(sdk)
    v = str(mv.version)

    result = cli("card", "check", "credit", v)
    assert result.exit_code == 1  # incomplete: the missing sections are listed
    assert "MISSING" in result.stdout and "missing intended_use, limitations, ethical_considerations" in result.stdout
    as_json = cli("card", "check", "credit", v, json=True)
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["missing"][0] == "intended_use"

    ok(cli("card", "set", "credit", "intended_use", "Screening loan applications."))
    notes = tmp_path / "limits.md"
    notes.write_text("Trained on 2024 data only.\n\nNot for mortgages.", encoding="utf-8")
    out = ok(cli("card", "set", "credit", "limitations", "--file", str(notes), "--version", v))
    assert f"set limitations of the card of credit/{v}" in out.stdout
    ok(cli("card", "set", "credit", "ethical_considerations", "--file", "-", input="Age is a protected attribute."))
    ok(cli("fairness", "evaluate", "credit", v, "-d", "credit@1", "--sensitive", "region", "-l", "approved"))
    assert "missing evaluation" in cli("card", "check", "credit", v).stdout  # no run metrics, no evaluation yet
    ok(cli("card", "evaluate", "credit", v, "-d", "credit@1", "-l", "approved"))
    out = ok(cli("card", "check", "credit", v))
    assert "complete (score 1.00)" in out.stdout

    markdown = ok(cli("card", "show", "credit", v)).stdout
    assert markdown.startswith("# Model card: credit version 1") and "Not for mortgages." in markdown
    target = tmp_path / "card.html"
    ok(cli("card", "show", "credit", v, "--format", "html", "-o", str(target)))
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    toolkit = json.loads(ok(cli("card", "show", "credit", v, "-f", "json")).stdout)
    assert toolkit["considerations"]["ethical_considerations"][0]["name"] == "Age is a protected attribute."
    card = json.loads(ok(cli("card", "show", "credit", v, json=True)).stdout)
    assert card["completeness"]["complete"] is True and card["model_details"]["name"] == "credit"

    one_line_error(cli("card", "set", "credit", "vibes", "x"), "unknown card section", "field: section")
    one_line_error(cli("card", "set", "credit", "caveats"), "--file", "field: text")
    one_line_error(cli("card", "show", "credit", v, "-f", "pdf"), "format", "field: format")
    one_line_error(cli("card", "check", "nobody", "1"), "nobody")
