"""``shipyard data …`` end to end: human output, ``--json`` output, and one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from shipyard import Client
from tests.cli.conftest import assert_one_line_error, parse

PAST_NS = 1_600_000_000 * 10**9


def _csv_dir(root: Path, rows: int = 5) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.csv").write_text("id,score,city\n" + "".join(f"{i},{i / 2},c{i % 2}\n" for i in range(rows)))
    for p in root.iterdir():
        os.utime(p, ns=(PAST_NS, PAST_NS))
    return root


def test_add_log_show_list(cli, tmp_path: Path) -> None:
    src = _csv_dir(tmp_path / "src")
    added = parse(cli("data", "add", str(src), "--name", "scores", "--tag", "team=risk", "-d", "raw", json=True))
    assert added["ref"] == "scores@1" and added["format"] == "csv" and added["row_count"] == 5
    assert added["tags"] == {"team": "risk"} and added["snapshot"]["hashed_files"] == 1
    again = parse(cli("data", "add", str(src), "--name", "scores", json=True))
    assert again["ref"] == "scores@1" and again["snapshot"]["hashed_files"] == 0

    result = cli("data", "add", str(_csv_dir(tmp_path / "src", rows=9)), "--name", "scores", "--parent", "scores@1")
    assert result.exit_code == 0 and "scores@2" in result.stdout and "9 rows" in result.stdout

    log = parse(cli("data", "log", "scores", json=True))
    assert [v["ref"] for v in log] == ["scores@2", "scores@1"] and log[0]["parents"] == ["scores@1"]
    human = cli("data", "log", "scores").stdout
    assert "scores@2" in human and added["digest"] in human

    shown = parse(cli("data", "show", "scores@1", json=True))
    assert shown["profile"]["columns"]["score"]["max"] == 2.0 and shown["schema"][0]["name"] == "id"
    text = cli("data", "show", "scores").stdout
    assert "scores@2" in text and "score" in text and "numeric" in text

    listed = parse(cli("data", "list", json=True))
    assert [(d["name"], d["latest_version"], d["version_count"]) for d in listed] == [("scores", 2, 2)]
    assert "scores" in cli("data", "list").stdout


def test_diff_get_as_of_lineage(cli, sdk: Client, tmp_path: Path) -> None:
    src = _csv_dir(tmp_path / "src")
    run = sdk.create_run(name="etl", capture_environment=False)
    parse(cli("data", "add", str(src), "--name", "d", "--run", run.id, json=True))
    (src / "b.csv").write_text("id,score,city\n100,50,c9\n")
    v2 = parse(cli("data", "add", str(src), "--name", "d", "--parent", "d@1", json=True))

    diff = parse(cli("data", "diff", "d@1", "d@2", json=True))
    assert [(f["path"], f["change"]) for f in diff["files"]] == [("b.csv", "added")]
    assert {c["name"] for c in diff["columns"]} >= {"id", "score"}
    human = cli("data", "diff", "d@1", "d@2").stdout
    assert "b.csv" in human and "added" in human and "rows 5 → 6" in human
    assert "identical" in cli("data", "diff", "d@2", "d").stdout

    got = parse(cli("data", "get", "d@2", str(tmp_path / "out"), "--copy", json=True))
    assert got["files"] == 2 and (tmp_path / "out" / "b.csv").read_text().startswith("id,score")
    assert cli("data", "get", "d@1", str(tmp_path / "linked")).exit_code == 0
    assert sorted(os.listdir(tmp_path / "linked")) == ["a.csv"]

    at = parse(cli("data", "as-of", "d", str(v2["created_at"] - 1), json=True))
    assert at["ref"] == "d@1"
    assert "d@2" in cli("data", "as-of", "d", "2999-01-01T00:00").stdout

    lineage = parse(cli("data", "lineage", "d@1", json=True))
    assert [(n["type"], n["name"], n["role"]) for n in lineage["produced_by"]] == [("run", "etl", "output")]
    assert [n["name"] for n in lineage["children"]] == ["d@2"]
    human = cli("data", "lineage", "d@1").stdout
    assert "produced by" in human and "etl" in human and "d@2" in human


def test_dataframe_logged_by_sdk_is_visible_to_cli(cli, sdk: Client) -> None:
    sdk.log_dataset(pd.DataFrame({"a": [1, 2, 3]}), name="frame")
    shown = parse(cli("data", "show", "frame@1", json=True))
    assert shown["format"] == "parquet" and shown["row_count"] == 3
    json.dumps(shown, allow_nan=False)


def test_errors_are_one_line(cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("data", "show", "ghost@1"), "dataset 'ghost' not found")
    assert_one_line_error(cli("data", "show", "ghost@zero"), "version must be a positive integer")
    assert_one_line_error(cli("data", "add", str(tmp_path / "missing"), "--name", "x"), "no such file or directory")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"garbage")
    assert_one_line_error(cli("data", "add", str(bad), "--name", "bad"), "cannot read the parquet data")
    assert_one_line_error(cli("data", "log", "bad"), "dataset 'bad' not found")
    parse(cli("data", "add", str(_csv_dir(tmp_path / "ok")), "--name", "ok", json=True))
    assert_one_line_error(cli("data", "as-of", "ok", "not-a-time"), "not a timestamp")
    assert_one_line_error(cli("data", "as-of", "ok", "1999-01-01"), "no version at or before")
    assert_one_line_error(cli("data", "diff", "ok@1", "ok@4"), "has no version 4")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("occupied")
    assert_one_line_error(cli("data", "get", "ok@1", str(tmp_path / "full")), "not an empty directory")


def test_tag_and_early_validation(cli, tmp_path: Path) -> None:
    src = _csv_dir(tmp_path / "src")
    parse(cli("data", "add", str(src), "--name", "t", json=True))
    tagged = parse(cli("data", "tag", "t@1", "stage=gold", "owner=ml", json=True))
    assert tagged["tags"] == {"stage": "gold", "owner": "ml"}
    assert "stage=gold" in cli("data", "tag", "t", "stage=gold").stdout
    assert_one_line_error(cli("data", "add", str(src), "--name", "t", "--parent", "t@zero"), "positive integer")
    assert_one_line_error(cli("data", "add", str(src), "--name", "t", "--tag", "bad key!=1"), "tag key")
    assert parse(cli("data", "log", "t", json=True))[0]["version"] == 1
