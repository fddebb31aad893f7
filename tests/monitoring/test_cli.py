"""``shipyard monitor …`` and ``shipyard feedback --label`` through typer's CliRunner, on an embedded
SQLite home that an SDK client of the same home fills with batch-logged traffic (recent hours, so
``monitor run`` at the real clock cuts a few windows)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard import Client
from tests.monitoring.cli_helpers import Invoke, assert_one_line_error, make_cli, ok, parse, recent_world
from tests.monitoring.world import HOUR, World

OPTIONS = ("--option", 'multivariate="never"', "--option", "importance=false", "--option", "grace_ms=0")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_STORE_URI", "SHIPYARD_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # wide tables: cells are not wrapped or cut


@pytest.fixture
def sdk(home: Path) -> Iterator[Client]:
    client = Client(home=home)
    yield client
    client.close()


@pytest.fixture
def cli(home: Path) -> Invoke:
    return make_cli(home)


@pytest.fixture
def world(sdk: Client) -> tuple[World, dict[str, int]]:
    """Three complete recent hours of traffic for ``clf/1``: two calm, the third with x1 shifted; the
    true labels by prediction id (not sent yet)."""
    w = recent_world(sdk, hours_ago=3, rows=800)
    w.now = w.start + 3 * HOUR + 60_000  # runs judge "now" just after hour 2: no clock races in the test
    labels: dict[str, int] = {}
    for hour, shift in ((0, 0.0), (1, 0.0), (2, 2.0)):
        ids, y = w.log_hour(hour, n=200, shift=shift)
        labels.update(zip(ids, map(int, y), strict=True))
    return w, labels


def _create(cli: Invoke, name: str = "watch", *target: str) -> dict[str, Any]:
    target = target or ("--model", "clf", "--window", "1h", "--segment-by", "region")
    return parse(cli("monitor", "create", name, *target, *OPTIONS, json=True))


def test_create_show_list_run_windows_series(cli: Invoke, world: tuple[World, dict[str, int]]) -> None:
    w, _ = world
    created = _create(cli)
    assert created["name"] == "watch" and created["model"] == "clf" and created["version"] is None
    assert created["window"] == {"kind": "time", "ms": HOUR, "text": "1h"}
    assert created["segment_by"] == ["region"]
    assert created["options"]["multivariate"] == "never" and created["options"]["importance"] is False
    assert created["reference"]["ref"] == w.dataset.ref and created["reference"]["source"] == "lineage"
    assert created["columns"] == ["x1", "x2", "region"] and created["task"] == "classification"

    shown = ok(cli("monitor", "show", "watch"))
    for fragment in ("watch", "model clf", "classification", "train@1", "1h", "x1, x2, region", "region", "on demand"):
        assert fragment in shown, (fragment, shown)
    listed = parse(cli("monitor", "list", json=True))
    assert [m["name"] for m in listed] == ["watch"]
    assert "watch" in ok(cli("monitor", "list")) and "model clf" in ok(cli("monitor", "list"))

    ran = cli("monitor", "run", "--now", str(world[0].now), "watch")
    text = ok(ran)
    assert "running monitor watch" in ran.stderr
    assert "3 new window(s), 0 relabelled" in text
    lines = [line for line in text.splitlines() if "rows 200" in line]
    assert len(lines) == 3, text
    assert lines[0].endswith("no drift") and lines[1].endswith("no drift")
    assert "drifted: x1" in lines[2], lines[2]

    # a second run has nothing new (as JSON)
    again = parse(cli("monitor", "run", "--now", str(world[0].now), "watch", json=True))
    assert again["monitor"] == "watch" and again["windows"] == [] and "no complete window" in again["message"]
    # `monitor run` without a name runs every monitor and gives a list
    every = parse(cli("monitor", "run", "--now", str(world[0].now), json=True))
    assert isinstance(every, list) and [r["monitor"] for r in every] == ["watch"]

    windows = parse(cli("monitor", "windows", "watch", json=True))
    assert [x["rows"] for x in windows] == [200, 200, 200]
    assert [x["start"] for x in windows] == [w.start + h * HOUR for h in range(3)]
    assert [x["metrics"]["drift"]["drifted"] for x in windows] == [[], [], ["x1"]]
    assert all(x["segment"] == "" and x["labelled"] == 0 for x in windows)
    table = ok(cli("monitor", "windows", "watch", "--limit", "2"))
    assert table.count("200") == 2 and "x1" in table
    eu = parse(cli("monitor", "windows", "watch", "--segment", "region=eu", json=True))
    assert len(eu) == 3 and all(x["segment"] == "region=eu" and 0 < x["rows"] < 200 for x in eu)

    series = parse(cli("monitor", "series", "watch", "drift.share", json=True))
    assert series["metric"] == "drift.share" and series["segment"] == ""
    values = [p["value"] for p in series["points"]]
    assert values[:2] == [0.0, 0.0] and values[2] == pytest.approx(1 / 3)
    missing = parse(cli("monitor", "series", "watch", "performance.accuracy", json=True))
    assert [p["value"] for p in missing["points"]] == [None, None, None]  # no labels: no data, not zero
    assert "no data" in ok(cli("monitor", "series", "watch", "performance.accuracy"))

    # deleting removes it
    assert parse(cli("monitor", "delete", "watch", json=True)) == {"deleted": "watch"}
    assert parse(cli("monitor", "list", json=True)) == []
    assert_one_line_error(cli("monitor", "show", "watch"), "monitor 'watch' does not exist")


def test_rules_alerts_ack_resolve_and_delete_rule(cli: Invoke, world: tuple[World, dict[str, int]]) -> None:
    _create(cli)
    rule = parse(
        cli(
            "monitor", "rule", "x-drift", "--monitor", "watch", "--metric", "drift.share", "--when", "> 0.2",
            "--min-samples", "50", "--severity", "critical", "--owner", "ml-team", "--runbook", "https://wiki/x",
            "--resolve-after", "1", "--channel", "log", json=True,
        )
    )  # fmt: skip
    assert rule["condition"] == {"op": ">", "value": 0.2} and rule["severity"] == "critical"
    assert rule["channels"] == [{"type": "log"}] and rule["resolve_after"] == 1
    text = ok(cli("monitor", "rule", "slow", "-m", "watch", "--metric", "health.rows", "--when", "dynamic 3 over 10"))
    assert "created alert rule slow: health.rows outside mean ± 3σ of the last 10" in text
    rules = parse(cli("monitor", "rules", "--monitor", "watch", json=True))
    assert [r["name"] for r in rules] == ["slow", "x-drift"]
    assert "> 0.2" in ok(cli("monitor", "rules"))

    run = parse(cli("monitor", "run", "--now", str(world[0].now), "watch", json=True))
    assert len(run["alerts_fired"]) == 1
    alert_id = run["alerts_fired"][0]
    opened = parse(cli("monitor", "alerts", "--status", "open", json=True))
    assert [a["id"] for a in opened] == [alert_id]
    alert = opened[0]
    assert alert["rule"] == "x-drift" and alert["status"] == "firing" and alert["severity"] == "critical"
    assert "x1" in alert["message"] and alert["owner"] == "ml-team" and alert["runbook"] == "https://wiki/x"
    assert alert["notifications"] == [{"type": "log", "ok": True, "attempts": 1}]
    listing = ok(cli("monitor", "alerts", "--monitor", "watch"))
    assert alert_id in listing and "x-drift" in listing and "firing" in listing
    assert "firing" in ok(cli("monitor", "rules"))

    acked = parse(cli("monitor", "ack", alert_id, "--comment", "on it", json=True))
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"]
    assert_one_line_error(cli("monitor", "ack", alert_id), "only a firing alert can be acknowledged")
    shown = ok(cli("monitor", "resolve", alert_id, "-c", "fixed upstream"))
    assert "resolved" in shown and alert_id in shown
    assert parse(cli("monitor", "alerts", "--status", "open", json=True)) == []
    assert [a["id"] for a in parse(cli("monitor", "alerts", "--status", "resolved", json=True))] == [alert_id]
    assert_one_line_error(cli("monitor", "resolve", alert_id), "already resolved")
    assert_one_line_error(cli("monitor", "ack", "no-such-alert"), "alert 'no-such-alert' does not exist")

    assert parse(cli("monitor", "delete-rule", "x-drift", json=True)) == {"deleted": "x-drift"}
    assert "deleted alert rule slow" in ok(cli("monitor", "delete-rule", "slow"))
    assert parse(cli("monitor", "rules", json=True)) == []
    assert_one_line_error(cli("monitor", "delete-rule", "never-existed"), "alert rule 'never-existed' does not exist")


def test_deleting_a_deleted_rule_is_not_found(cli: Invoke, world: tuple[World, dict[str, int]]) -> None:
    _create(cli)
    ok(cli("monitor", "rule", "r", "-m", "watch", "--metric", "drift.share", "--when", "> 0.2"))
    ok(cli("monitor", "delete-rule", "r"))
    assert_one_line_error(cli("monitor", "delete-rule", "r"), "alert rule 'r' does not exist")


def test_a_deleted_rule_name_can_be_used_again_and_duplicates_are_named(
    cli: Invoke, world: tuple[World, dict[str, int]]
) -> None:
    _create(cli)
    rule = ("monitor", "rule", "r", "-m", "watch", "--metric", "drift.share", "--when", "> 0.2")
    ok(cli(*rule))
    assert_one_line_error(cli(*rule), "alert rule 'r' already exists")
    ok(cli("monitor", "delete-rule", "r"))
    again = parse(cli(*rule, json=True))
    assert again["name"] == "r" and again["state"] == {}


def test_feedback_labels_from_pairs_and_a_jsonl_file(
    cli: Invoke, world: tuple[World, dict[str, int]], tmp_path: Path
) -> None:
    _create(cli)
    ok(cli("monitor", "run", "--now", str(world[0].now), "watch"))
    _, labels = world
    ids = list(labels)
    # two labels on the command line (an integer and a class written as text)
    out = ok(cli("feedback", "--label", f"{ids[0]}={labels[ids[0]]}", f"{ids[1]}={labels[ids[1]]}"))
    assert "recorded 2 label(s) (0 replaced an earlier one)" in out
    # the rest from JSON Lines, one of them for an id no prediction has
    path = tmp_path / "labels.jsonl"
    lines = [json.dumps({"prediction_id": pid, "label": labels[pid]}) for pid in ids[1:]]
    lines.append(json.dumps({"prediction_id": "typo-id", "label": 1}))
    path.write_text("\n".join(lines) + "\n\n")
    receipt = parse(cli("feedback", "--label", "--file", str(path), json=True))
    assert receipt["accepted"] == len(ids) and receipt["replaced"] == 1
    assert receipt["unknown"] == ["typo-id"] and receipt["unknown_count"] == 1
    result = cli("feedback", "--label", "other-typo=cat")
    assert "recorded 1 label(s)" in ok(result)
    assert "1 id(s) match no logged prediction" in result.stderr and "other-typo" in result.stderr

    assert parse(cli("monitor", "labels", json=True)) == ["typo-id", "other-typo"]
    text = ok(cli("monitor", "labels", "--unknown"))
    assert "2 label(s) match no logged prediction" in text and "typo-id" in text

    # the next run recomputes the three windows with their labels
    run = parse(cli("monitor", "run", "--now", str(world[0].now), "watch", json=True))
    assert run["relabelled"] == 3
    windows = parse(cli("monitor", "windows", "watch", json=True))
    assert [x["labelled"] for x in windows] == [200, 200, 200]
    assert all(x["coverage"] == 1.0 for x in windows)
    accuracy = [x["metrics"]["performance"]["accuracy"] for x in windows]
    assert all(a > 0.75 for a in accuracy[:2]), accuracy
    assert "200 (100%)" in ok(cli("monitor", "windows", "watch"))


def test_report_writes_self_contained_html_and_prints_the_summary(
    cli: Invoke, world: tuple[World, dict[str, int]], tmp_path: Path, sdk: Client
) -> None:
    _create(cli)
    ok(cli("monitor", "rule", "x-drift", "-m", "watch", "--metric", "drift.share", "--when", "> 0.2"))
    _, labels = world
    half = dict(list(labels.items())[: len(labels) // 2])  # the first hour and a half is labelled
    sdk.record_labels(half)
    ok(cli("monitor", "run", "--now", str(world[0].now), "watch"))

    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    result = cli("monitor", "report", "watch", "--window", "1d", "--out", str(target))
    text = ok(result)
    assert "monitor watch (model clf, classification)" in text
    assert "predictions: 600   labelled: 300 (50% label coverage)" in text
    assert re.search(r"data drift: 1 of 3 features drifted \(\d+%\): x1", text), text
    assert "accuracy: " in text and "estimated (label-free)" in text
    assert "alerts: 1 in the period, 1 open" in text
    assert "[warning] x-drift firing" in text
    assert f"HTML report: {target}" in text

    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert "Plotly" in page and "plotly.js v" in page  # the library is inline
    assert not re.search(r"<script[^>]*\bsrc=", page), "the report must not load scripts from anywhere"
    # one histogram per monitored column, the drifted one marked, plus the series plots
    assert '"text":"x1: DRIFTED' in page
    for column in ("x2", "region", "prediction"):
        assert f'"text":"{column}: ' in page
    assert page.count("Plotly.newPlot") >= 4 + 1
    assert "drift.share per window" in page and "x-drift" in page

    # --json gives the report data and where the page went; the default name is monitor-NAME.html
    data = parse(cli("monitor", "report", "watch", "--out", str(tmp_path / "r.html"), json=True))
    assert data["html"] == str(tmp_path / "r.html")
    assert data["report"]["current"]["rows"] == 600 and data["report"]["current"]["labelled"] == 300
    assert data["report"]["current"]["metrics"]["drift"]["drifted"] == ["x1"]
    assert set(data["report"]["histograms"]) == {"x1", "x2", "region", "prediction"}
    assert [a["rule"] for a in data["report"]["alerts"]] == ["x-drift"]


def test_report_of_a_period_without_data_says_so(cli: Invoke, sdk: Client, tmp_path: Path) -> None:
    recent_world(sdk, rows=300)
    _create(cli)
    text = ok(cli("monitor", "report", "watch", "--out", str(tmp_path / "empty.html")))
    assert "no data: no predictions were logged in this period" in text
    assert (tmp_path / "empty.html").read_text().startswith("<!doctype html>")


def test_errors_are_one_line_without_a_traceback(cli: Invoke, sdk: Client, world: tuple[World, dict[str, int]]) -> None:
    assert_one_line_error(
        cli("monitor", "create", "bad", "--model", "clf", "--window", "soon"), "window", "[field: window]"
    )
    assert_one_line_error(cli("monitor", "create", "bad", "--window", "1h"), "endpoint or a model")
    assert_one_line_error(cli("monitor", "create", "bad", "--model", "no-such-model"), "no-such-model")
    assert_one_line_error(
        cli("monitor", "create", "bad", "--model", "clf", "--option", "multivariate=sometimes"),
        "multivariate",
    )
    assert parse(cli("monitor", "list", json=True)) == []  # nothing half-created

    for command in ("show", "windows", "delete", "report"):
        assert_one_line_error(cli("monitor", command, "ghost"), "monitor 'ghost' does not exist")
    # (`run` says which monitor it is running on stderr first, except with --json)
    ghost = cli("monitor", "run", "--now", str(world[0].now), "ghost", json=True)
    assert_one_line_error(ghost, "monitor 'ghost' does not exist")
    assert_one_line_error(cli("monitor", "series", "ghost", "drift.share"), "monitor 'ghost' does not exist")

    _create(cli)
    assert_one_line_error(
        cli("monitor", "rule", "r", "-m", "watch", "--metric", "drift.share", "--when", "bigger than 3"),
        "condition",
    )
    assert_one_line_error(
        cli("monitor", "rule", "r", "-m", "watch", "--metric", "drift.share", "--when", "dynamic -1"), "dynamic"
    )
    assert_one_line_error(
        cli("monitor", "rule", "r", "-m", "watch", "--metric", "drift.share", "--when", "> 1", "--channel", "ftp://x"),
        "url",
    )
    assert_one_line_error(
        cli("monitor", "rule", "r", "-m", "ghost", "--metric", "drift.share", "--when", "> 0.1"),
        "monitor 'ghost' does not exist",
    )
    assert_one_line_error(
        cli("monitor", "rule", "r", "-m", "watch", "--metric", "drift.share", "--when", "> 0.1", "--data-param", "d"),
        "--trigger",
    )
    assert parse(cli("monitor", "rules", json=True)) == []

    assert_one_line_error(cli("feedback", "--label", "no-equals-sign"), "PREDICTION_ID=", "no-equals-sign")
    assert_one_line_error(cli("feedback", "--label", "=1"), "PREDICTION_ID=")
    assert_one_line_error(cli("feedback", "--label", "--file", "/no/such/file.jsonl"), "does not exist")
    assert sdk.list_unknown_labels() == []  # nothing was recorded by the refused commands
