"""``shipyard runs`` and ``metrics``: list, search, show, compare, end/delete/restore, metric history."""

from __future__ import annotations

import math

from shipyard.tracking.entities import RunStatus
from tests.cli.conftest import assert_one_line_error, parse


def test_list_table(cli, project) -> None:
    result = cli("runs", "list")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for run_id, name in zip(project.runs, ("alpha", "beta", "gamma"), strict=True):
        assert run_id[:8] in out and run_id not in out
        assert name in out
    header = out.splitlines()[0]
    for column in ("id", "name", "status", "start time", "duration", "metrics.accuracy", "metrics.loss", "params.lr"):
        assert column in header
    assert "FINISHED" in out and "NaN" in out and "0.93" in out
    lines = [line for line in out.splitlines() if "FINISHED" in line]
    assert [line.split()[1] for line in lines] == ["gamma", "beta", "alpha"]  # newest first


def test_list_json_parses_with_nan_as_string(cli, project) -> None:
    page = parse(cli("runs", "list", "--experiment", "churn", json=True))
    assert page["next_page_token"] is None
    by_name = {r["name"]: r for r in page["runs"]}
    assert by_name["gamma"]["metrics"]["accuracy"] == "NaN"
    assert by_name["beta"]["metrics"]["accuracy"] == 0.93
    assert by_name["alpha"]["params"] == {"model": "rf", "lr": "0.1"}
    assert by_name["alpha"]["id"] == project.runs[0]  # full ids in JSON


def test_list_pages(cli, project) -> None:
    first = cli("runs", "list", "--max", "2", "--order-by", "name")
    assert "alpha" in first.stdout and "beta" in first.stdout and "gamma" not in first.stdout
    assert "--page-token" in first.stderr
    page = parse(cli("runs", "list", "--max", "2", "--order-by", "name", json=True))
    token = page["next_page_token"]
    assert token
    rest = parse(cli("runs", "list", "--max", "2", "--order-by", "name", "--page-token", token, json=True))
    assert [r["name"] for r in rest["runs"]] == ["gamma"] and rest["next_page_token"] is None


def test_search(cli, project) -> None:
    result = cli("runs", "search", "--filter", "metrics.accuracy > 0.9 or params.model = 'xgb'", "-o", "name DESC")
    assert result.exit_code == 0, result.stderr
    names = [line.split()[1] for line in result.stdout.splitlines()[2:] if line.strip()]
    assert names == ["gamma", "beta"]
    page = parse(cli("runs", "search", "-f", "params.lr < 0.05", "-o", "metrics.accuracy DESC", json=True))
    assert [r["name"] for r in page["runs"]] == ["beta", "gamma"]  # NaN sorts last
    # the same query through `runs list --filter`
    listed = parse(cli("runs", "list", "-f", "params.lr < 0.05", "-o", "metrics.accuracy DESC", json=True))
    assert listed == page


def test_search_requires_filter(cli, project) -> None:
    result = cli("runs", "search")
    assert result.exit_code == 2 and "--filter" in result.stderr


def test_malformed_filter_says_where(cli, project) -> None:
    line = assert_one_line_error(cli("runs", "search", "--filter", "metrics.x >"), "invalid filter")
    assert "column 12" in line and "after '>'" in line and "[field: filter]" in line
    assert_one_line_error(cli("runs", "list", "--filter", "bogus = 1"), "unknown attribute 'bogus'")


def test_show(cli, project, sdk) -> None:
    run_id = project.runs[1]
    result = cli("runs", "show", run_id)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    run = sdk.get_run(run_id)
    assert run_id in out and run.experiment_id in out  # full ids
    assert "beta" in out and "FINISHED" in out
    assert "lr" in out and "0.01" in out and "accuracy" in out and "0.93" in out
    env = run.environment
    assert f"python    CPython {env['python']['version']}" in out
    assert env["host"]["hostname"] in out
    git = env["git"]
    if git["commit"]:
        assert git["commit"] in out and ("dirty" if git["dirty"] else "clean") in out
    else:
        assert "not a git checkout" in out
    data = parse(cli("runs", "show", project.runs[2], json=True))
    assert data["id"] == project.runs[2] and data["metrics"]["accuracy"] == "NaN"
    assert data["environment"]["python"]["version"] == env["python"]["version"]


def test_compare_marks_differences(cli, project) -> None:
    result = cli("runs", "compare", *project.runs)
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.split()[:1] in (["≠"],)}
    # run durations depend on how busy the machine was while the fixture ran, so they may differ too
    assert set(rows) - {"duration"} == {"params.lr", "params.model", "metrics.accuracy"}
    same = [line for line in result.stdout.splitlines() if "metrics.loss" in line or "status" in line]
    assert same and all(not line.startswith("≠") for line in same)
    header = result.stdout.splitlines()[0]
    assert all(run_id[:8] in header for run_id in project.runs)

    data = parse(cli("runs", "compare", project.runs[0], project.runs[1], json=True))
    assert data["differing"] == {"params": ["lr"], "metrics": ["accuracy"]}
    assert data["params"]["model"] == ["rf", "rf"]
    assert [r["id"] for r in data["runs"]] == project.runs[:2]


def test_compare_needs_two_runs(cli, project) -> None:
    result = cli("runs", "compare", project.runs[0])
    assert result.exit_code == 2 and "at least two" in result.stderr


def test_end_delete_restore(cli, sdk) -> None:
    run = sdk.create_run(name="live")
    ended = parse(cli("runs", "end", run.id, "--status", "failed", json=True))
    assert ended["status"] == "FAILED" and ended["end_time"] is not None
    assert sdk.get_run(run.id).status == RunStatus.FAILED
    assert cli("runs", "delete", run.id).stdout.startswith("deleted run live")
    assert sdk.get_run(run.id).lifecycle == "deleted"
    assert "live" not in cli("runs", "list").stdout
    assert "live" in cli("runs", "list", "--all").stdout
    assert parse(cli("runs", "restore", run.id, json=True))["lifecycle"] == "active"


def test_unknown_run(cli, home) -> None:
    assert_one_line_error(cli("runs", "show", "nope"), "run 'nope' not found", "[field: run_id]")


def test_debug_shows_traceback(cli, home) -> None:
    result = cli("runs", "show", "nope", debug=True)
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: run 'nope' not found")


def test_unexpected_exception_is_one_line(cli, home, monkeypatch) -> None:
    from shipyard.client import Client

    def boom(self, run_id):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(Client, "get_run", boom)
    assert_one_line_error(cli("runs", "show", "x"), "error: RuntimeError: disk on fire")
    assert "Traceback" in cli("runs", "show", "x", debug=True).stderr


def test_global_flags_after_the_command(cli, project) -> None:
    result = cli("runs", "show", project.runs[0], "--json")
    assert parse(result)["name"] == "alpha"


def test_metric_history(cli, project) -> None:
    run_id = project.runs[0]
    result = cli("metrics", "history", run_id, "loss")
    assert result.exit_code == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1]) for r in rows] == [("0", "1"), ("1", "0.5"), ("2", "0.333333"), ("3", "0.25"), ("4", "0.2")]
    assert all(r[2].endswith("Z") for r in rows)  # ISO times

    history = parse(cli("metrics", "history", run_id, "loss", json=True))
    assert history["steps"] == [0, 1, 2, 3, 4] and history["total_points"] == 5
    assert math.isclose(history["values"][2], 1 / 3)
    nan = parse(cli("metrics", "history", project.runs[2], "accuracy", json=True))
    assert nan["values"] == ["NaN"]
    small = parse(cli("metrics", "history", run_id, "loss", "--max-points", "4", json=True))
    assert small["total_points"] == 5 and small["downsampled"] and len(small["steps"]) <= 4
    assert 1.0 in small["values"] and 0.2 in small["values"]  # the extremes survive


def test_metric_history_unknown_run(cli, home) -> None:
    assert_one_line_error(cli("metrics", "history", "nope", "loss"), "not found")
