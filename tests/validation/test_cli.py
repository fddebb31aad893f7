"""``shipyard contracts …`` on an embedded home: YAML out, exit codes, --json, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from shipyard import Client
from tests.cli.conftest import Invoke, assert_one_line_error, parse


@pytest.fixture
def people(sdk: Client) -> Iterator[Client]:
    good = pd.DataFrame({"id": range(1, 31), "age": [20 + i for i in range(30)], "region": ["eu", "us"] * 15})
    sdk.log_dataset(good, name="people")
    bad = good.copy()
    bad.loc[4, "age"] = 999
    sdk.log_dataset(bad, name="people")
    yield sdk


def test_infer_prints_yaml_and_saves(cli: Invoke, people: Client, tmp_path: Path) -> None:
    result = cli("contracts", "infer", "people@1")
    assert result.exit_code == 0, result.stderr
    spec = yaml.safe_load(result.stdout)
    assert spec["columns"]["age"]["max"] == 49 and spec["columns"]["region"]["allowed"] == ["eu", "us"]

    target = tmp_path / "people.yaml"
    result = cli("contracts", "infer", "people@1", "-o", str(target), "--save")
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(target.read_text()) == spec
    assert "saved contract v1" in result.stderr
    assert people.get_contract("people").spec == spec


def test_set_show_and_list(cli: Invoke, people: Client, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("columns:\n  age: {type: int64, min: 0, max: 120}\nrows: {min: 1}\n")
    result = cli("contracts", "set", "people", str(path))
    assert result.exit_code == 0 and "contract v1 for people" in result.stdout
    path.write_text("columns:\n  age: {type: int64, min: 0, max: 100}\n")
    assert parse(cli("contracts", "set", "people", str(path), json=True))["version"] == 2

    shown = cli("contracts", "show", "people", "--version", "1")
    assert shown.exit_code == 0
    expected = {"columns": {"age": {"type": "int64", "min": 0, "max": 120}}, "rows": {"min": 1}}
    assert yaml.safe_load(shown.stdout) == expected
    assert shown.stdout.startswith("# people contract v1 sha256:")
    latest = parse(cli("contracts", "show", "people", json=True))
    assert latest["version"] == 2 and latest["spec"]["columns"]["age"]["max"] == 100
    assert [c["version"] for c in parse(cli("contracts", "list", "people", json=True))] == [1, 2]
    assert "sha256:" in cli("contracts", "list", "people").stdout


def test_validate_exit_codes_and_reports(cli: Invoke, people: Client, tmp_path: Path) -> None:
    people.set_contract("people", {"columns": {"age": {"min": 0, "max": 120}, "region": {"allowed": ["eu", "us"]}}})
    ok = cli("contracts", "validate", "people@1")
    assert ok.exit_code == 0, ok.stderr
    assert "passed" in ok.stdout and "age.max" in ok.stdout

    bad = cli("contracts", "validate", "people@2")
    assert bad.exit_code == 1
    assert "FAILED" in bad.stdout and "row 4: 999" in bad.stdout

    report = json.loads(cli("contracts", "validate", "people@2", json=True).stdout)
    assert report["passed"] is False and report["ref"] == "people@2"
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["age.max"]

    loose = tmp_path / "loose.yaml"
    loose.write_text("columns: {age: {max: 1000}}\n")
    assert cli("contracts", "validate", "people@2", "--contract", str(loose)).exit_code == 0

    listed = parse(cli("contracts", "reports", "people@2", json=True))
    assert [r["passed"] for r in listed] == [True, False, False]
    table = cli("contracts", "reports", "people@2")
    assert table.exit_code == 0 and "FAILED" in table.stdout and "age.max" in table.stdout
    one = cli("contracts", "report", listed[1]["id"])
    assert one.exit_code == 0 and "age.max" in one.stdout
    assert parse(cli("contracts", "report", listed[1]["id"], json=True))["id"] == listed[1]["id"]


def test_one_line_errors(cli: Invoke, people: Client, tmp_path: Path) -> None:
    assert_one_line_error(cli("contracts", "show", "people"), "has no contract")
    assert_one_line_error(cli("contracts", "show", "ghost"), "ghost", "not found")
    broken = tmp_path / "broken.yaml"
    broken.write_text("columns:\n  age: {min: old}\n")
    assert_one_line_error(cli("contracts", "set", "people", str(broken)), "columns.age.min: expected a number")
    assert_one_line_error(cli("contracts", "set", "people", str(tmp_path / "none.yaml")), "cannot read contract file")
    assert_one_line_error(cli("contracts", "validate", "people@2"), "has no contract")
    assert_one_line_error(cli("contracts", "validate", "people@9"), "no version 9")
    assert_one_line_error(cli("contracts", "infer", "people@x"), "version must be a positive integer")
