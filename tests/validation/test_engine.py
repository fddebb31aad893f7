"""The validation engine on in-memory frames: each check kind passes and fails with the right rows."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard import Client
from shipyard.core.errors import InvalidInput, ShipyardError
from shipyard.data.validation import ValidationFailed, check, register_check, validate_frame
from shipyard.data.validation.entities import ValidationReport


def _by_name(report: ValidationReport) -> dict:
    return {c.name: c for c in report.checks}


def _rows(report: ValidationReport, name: str) -> list[int]:
    return [r["_row"] for r in _by_name(report)[name].failing_rows]


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 3, 5, 6],
            "age": [30, -1, 45, 130, None, 50],
            "region": ["eu", "us", "mars", "eu", None, "us"],
            "price": [10.0, 5.0, 7.0, 1.0, 3.0, 9.0],
            "cost": [4.0, 6.0, 2.0, 2.0, 1.0, 1.0],
        }
    )


def test_a_clean_frame_passes_every_check(people: pd.DataFrame) -> None:
    clean = people.iloc[[0, 5]]
    spec = {
        "columns": {
            "id": {"type": "int64", "unique": True, "nullable": False},
            "age": {"type": "int64", "min": 0, "max": 120, "nullable": False},
            "region": {"type": "string", "allowed": ["eu", "us"]},
        },
        "rows": {"min": 1, "max": 10},
        "checks": [{"name": "margin", "expr": "price >= cost"}],
    }
    report = validate_frame(clean, spec)
    assert report.passed, report.summary()
    assert report.row_count == 2
    assert all(c.failing_count == 0 and c.failing_rows == [] for c in report.checks)
    assert {"id.unique", "age.min", "age.max", "region.allowed", "rows", "checks.margin"} <= set(_by_name(report))


def test_range_checks_count_and_show_the_offending_rows(people: pd.DataFrame) -> None:
    report = validate_frame(people, {"columns": {"age": {"min": 0, "max": 120}}})
    checks = _by_name(report)
    assert not report.passed
    assert (checks["age.min"].failing_count, _rows(report, "age.min")) == (1, [1])
    assert (checks["age.max"].failing_count, _rows(report, "age.max")) == (1, [3])
    row = checks["age.max"].failing_rows[0]
    assert row["age"] == 130 and row["region"] == "eu"  # the whole row, checked column included
    assert list(row)[:2] == ["_row", "age"]  # the checked column comes first


def test_nulls_fail_only_the_nullability_check(people: pd.DataFrame) -> None:
    report = validate_frame(people, {"columns": {"age": {"nullable": False, "min": 0}, "region": {"allowed": ["eu"]}}})
    checks = _by_name(report)
    assert _rows(report, "age.nullable") == [4]
    assert checks["age.nullable"].failing_rows[0]["age"] is None  # NaN becomes JSON null
    assert _rows(report, "age.min") == [1]  # the missing age is not also out of range
    assert _rows(report, "region.allowed") == [1, 2, 5]  # None is not a disallowed category


def test_allowed_categories(people: pd.DataFrame) -> None:
    report = validate_frame(people, {"columns": {"region": {"allowed": ["eu", "us"]}}})
    assert _by_name(report)["region.allowed"].failing_count == 1
    assert _by_name(report)["region.allowed"].failing_rows[0]["region"] == "mars"


def test_uniqueness_reports_every_duplicate_but_not_missing_values() -> None:
    df = pd.DataFrame({"id": [1, 2, 2, None, None, 3, 2]})
    report = validate_frame(df, {"columns": {"id": {"unique": True}}})
    check_ = _by_name(report)["id.unique"]
    assert check_.failing_count == 3
    assert _rows(report, "id.unique") == [1, 2, 6]


def test_row_count_bounds() -> None:
    df = pd.DataFrame({"x": range(5)})
    assert validate_frame(df, {"rows": {"min": 5, "max": 5}}).passed
    low = _by_name(validate_frame(df, {"rows": {"min": 6}}))["rows"]
    assert not low.passed and "5 rows, expected at least 6" in (low.message or "")
    high = _by_name(validate_frame(df, {"rows": {"max": 4}}))["rows"]
    assert not high.passed and "at most 4" in (high.message or "")


def test_custom_pandas_and_duckdb_expressions(people: pd.DataFrame) -> None:
    spec = {"checks": [{"name": "margin", "expr": "price >= cost"}, {"name": "margin_sql", "sql": "price >= cost"}]}
    report = validate_frame(people, spec)
    assert _rows(report, "checks.margin") == [1, 3]
    assert _rows(report, "checks.margin_sql") == [1, 3]
    assert _by_name(report)["checks.margin_sql"].failing_rows[0]["price"] == 5.0


def test_sql_null_results_fail_the_row() -> None:
    df = pd.DataFrame({"a": [1.0, None, 3.0]})
    report = validate_frame(df, {"checks": [{"name": "pos", "sql": "a > 0"}]})
    assert _rows(report, "checks.pos") == [1]


def test_registered_and_imported_python_checks(people: pd.DataFrame) -> None:
    @register_check("cheap_enough")
    def cheap_enough(df: pd.DataFrame, limit: float) -> pd.Series:
        return df["price"] <= limit

    spec = {"checks": [{"name": "cheap", "python": "cheap_enough", "args": {"limit": 8}}]}
    assert _rows(validate_frame(people, spec), "checks.cheap") == [0, 5]
    imported = {"checks": [{"name": "finite", "python": "tests.validation.helpers:no_infinity"}]}
    assert validate_frame(people, imported).passed
    people.loc[2, "price"] = math.inf
    assert _rows(validate_frame(people, imported), "checks.finite") == [2]


def test_a_check_that_cannot_run_fails_with_the_reason(people: pd.DataFrame) -> None:
    report = validate_frame(people, {"checks": [{"name": "typo", "expr": "prise > 0"}]})
    typo = _by_name(report)["checks.typo"]
    assert not typo.passed and "could not evaluate" in (typo.message or "") and "prise" in typo.message
    unknown = validate_frame(people, {"checks": [{"name": "x", "python": "no_such_check"}]})
    assert "no_such_check" in (_by_name(unknown)["checks.x"].message or "")


def test_types_are_checked_by_family() -> None:
    df = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "i_with_gap": [1.0, None, 3.0],  # what pandas makes of an integer column with a missing value
            "f": [1.5, 2.0, 3.0],
            "s": ["a", "b", "c"],
            "mixed": ["a", 1, "c"],
            "b": [True, False, True],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
        }
    )
    spec = {
        "columns": {
            "i": {"type": "int32"},
            "i_with_gap": {"type": "int64"},
            "f": {"type": "float64"},
            "s": {"type": "string"},
            "mixed": {"type": "string"},
            "b": {"type": "bool"},
            "t": {"type": "datetime"},
        }
    }
    report = validate_frame(df, spec)
    failed = {c.name: c for c in report.failed}
    assert list(failed) == ["mixed.type"]
    assert _rows(report, "mixed.type") == [1]
    wrong = validate_frame(df, {"columns": {"f": {"type": "int64"}, "s": {"type": "float64"}}})
    assert _rows(wrong, "f.type") == [0]  # 2.0 and 3.0 are integral, 1.5 is not
    assert _by_name(wrong)["s.type"].failing_count == 3


def test_missing_required_columns_and_strict_extra_columns(people: pd.DataFrame) -> None:
    spec = {"columns": {"id": {}, "email": {"pattern": ".+@.+"}, "note": {"required": False}}, "strict": True}
    report = validate_frame(people, spec)
    checks = _by_name(report)
    assert not checks["email.present"].passed and "email" in (checks["email.present"].message or "")
    assert "email.pattern" not in checks  # a missing column is reported once
    assert checks["note.present"].passed
    assert not checks["strict"].passed and checks["strict"].failing_count == 4
    assert "age" in (checks["strict"].message or "")


def test_pattern_must_match_the_whole_value() -> None:
    df = pd.DataFrame({"code": ["AB-12", "AB-123", "ab-12", None]})
    report = validate_frame(df, {"columns": {"code": {"pattern": "[A-Z]{2}-[0-9]{2}"}}})
    assert _rows(report, "code.pattern") == [1, 2]


def test_datetime_bounds_from_iso_strings() -> None:
    df = pd.DataFrame({"ts": pd.to_datetime(["2023-12-31", "2024-06-01", "2025-01-02"], utc=True)})
    report = validate_frame(df, {"columns": {"ts": {"min": "2024-01-01", "max": "2024-12-31"}}})
    assert _rows(report, "ts.min") == [0]
    assert _rows(report, "ts.max") == [2]
    assert _by_name(report)["ts.min"].failing_rows[0]["ts"].startswith("2023-12-31")


def test_offending_rows_are_capped_and_json_safe() -> None:
    df = pd.DataFrame(
        {"x": [-1.0] * 50 + [math.inf], "when": pd.Timestamp("2024-01-01"), "blob": b"\x00\x01", "n": np.int64(7)}
    )
    report = validate_frame(df, {"columns": {"x": {"min": 0}}, "checks": [{"name": "finite", "expr": "x < 1e308"}]})
    x_min = _by_name(report)["x.min"]
    assert x_min.failing_count == 50 and len(x_min.failing_rows) == 5
    assert _by_name(report)["checks.finite"].failing_rows[0]["x"] == "Infinity"
    json.dumps(report.model_dump(mode="json"), allow_nan=False)  # storable in a JSON column anywhere


def test_row_positions_ignore_the_frame_index_and_arrow_tables_work() -> None:
    df = pd.DataFrame({"v": [5, -5, 5]}, index=["a", "b", "c"])
    assert _rows(validate_frame(df, {"columns": {"v": {"min": 0}}}), "v.min") == [1]
    table = pa.table({"v": [1, -2, 3, -4]})
    assert _rows(validate_frame(table, {"columns": {"v": {"min": 0}}}), "v.min") == [1, 3]
    with pytest.raises(InvalidInput, match="DataFrame"):
        validate_frame([1, 2, 3], {"columns": {}})


def test_report_digest_identifies_the_contract() -> None:
    df = pd.DataFrame({"v": [1]})
    a = validate_frame(df, {"columns": {"v": {"min": 0}}})
    b = validate_frame(df, {"columns": {"v": {"min": 0.0}}, "checks": []})
    c = validate_frame(df, {"columns": {"v": {"min": 1}}})
    assert a.contract_digest.startswith("sha256:")
    assert a.contract_digest == b.contract_digest != c.contract_digest


def test_gate_returns_the_report_or_raises_validation_failed(people: pd.DataFrame, tmp_path: Path) -> None:
    client = Client(home=tmp_path)
    ok = check(people, contract={"columns": {"id": {"nullable": False}}}, client=client)
    assert ok.passed and ok.id is None  # in-memory data: nothing stored
    with pytest.raises(ValidationFailed) as info:
        check(people, contract={"columns": {"age": {"max": 120}, "id": {"unique": True}}}, client=client)
    exc = info.value
    assert isinstance(exc, ShipyardError) and exc.code == "validation_failed" and exc.status == 422
    assert "age.max" in str(exc) and "id.unique" in str(exc)
    assert exc.report.failed[0].name == "age.max"
    assert exc.to_dict()["details"]["report"]["passed"] is False
    json.dumps(exc.to_dict(), allow_nan=False)
    with pytest.raises(InvalidInput, match="needs a contract"):
        check(people, client=client)
    client.close()
    clone = pickle.loads(pickle.dumps(exc))  # executors ship exceptions between processes
    assert isinstance(clone, ValidationFailed) and clone.report == exc.report and str(clone) == str(exc)
