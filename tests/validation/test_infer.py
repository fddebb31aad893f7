"""Inference from a stored schema and profile: what is constrained, and what is deliberately left open."""

from __future__ import annotations

import pytest

from shipyard.core.errors import InvalidInput
from shipyard.data.validation.infer import contract_type, infer_spec

SCHEMA = [
    {"name": "id", "type": "int64", "nullable": True},
    {"name": "age", "type": "double", "nullable": True},
    {"name": "region", "type": "large_string", "nullable": True},
    {"name": "city", "type": "string", "nullable": True},
    {"name": "joined", "type": "timestamp[us, tz=UTC]", "nullable": True},
    {"name": "ok", "type": "bool", "nullable": True},
    {"name": "amount", "type": "decimal128(10, 2)", "nullable": True},
]
PROFILE = {
    "columns": {
        "id": {
            "kind": "numeric",
            "type": "int64",
            "count": 100,
            "missing": 0,
            "min": 1,
            "max": 100,
            "distinct": 100,
            "top": [{"value": 1, "count": 1}, {"value": 2, "count": 1}],
        },
        "age": {"kind": "numeric", "type": "double", "count": 100, "missing": 3, "min": 18.5, "max": 80.0},
        "region": {
            "kind": "categorical",
            "count": 100,
            "missing": 10,
            "distinct": 2,
            "top": [{"value": "eu", "count": 60}, {"value": "us", "count": 30}],
        },
        "city": {  # more values than top covers: no allowed list, whatever "distinct" says
            "kind": "categorical",
            "count": 100,
            "missing": 0,
            "distinct": 2,
            "top": [{"value": "Paris", "count": 50}, {"value": "Oslo", "count": 40}],
        },
        "joined": {"kind": "datetime", "count": 100, "missing": 0, "min": "2020-01-01", "max": "2024-01-01"},
        "ok": {"kind": "boolean", "count": 100, "missing": 0},
        "amount": {"kind": "other", "count": 100, "missing": 0},
    }
}


def test_inference_from_schema_and_profile() -> None:
    spec = infer_spec(SCHEMA, PROFILE, 100)
    cols = spec["columns"]
    assert cols["id"] == {"type": "int64", "nullable": False, "min": 1, "max": 100, "unique": True}
    assert cols["age"] == {"type": "float64", "min": 18.5, "max": 80}  # missing values: nullable stays open
    assert cols["region"] == {"type": "string", "allowed": ["eu", "us"]}
    assert cols["city"] == {"type": "string", "nullable": False}
    assert cols["joined"] == {"type": "datetime", "nullable": False}  # no range: new data is newer
    assert cols["ok"] == {"type": "bool", "nullable": False}
    assert cols["amount"] == {"nullable": False}  # no type rather than a wrong one
    assert spec["rows"] == {"min": 50, "max": 200}
    assert list(cols) == [f["name"] for f in SCHEMA]


def test_a_distinct_estimate_alone_does_not_make_a_column_unique() -> None:
    profile = {"columns": {"k": {"kind": "numeric", "count": 50, "missing": 0, "min": 0, "max": 9, "distinct": 50}}}
    assert "unique" not in infer_spec([{"name": "k", "type": "int64"}], profile, 50)["columns"]["k"]
    profile["columns"]["k"]["distinct_exact"] = True
    assert infer_spec([{"name": "k", "type": "int64"}], profile, 50)["columns"]["k"]["unique"] is True


def test_tolerance_widens_ranges_without_crossing_zero() -> None:
    spec = infer_spec(SCHEMA, PROFILE, 100, tolerance=0.1)
    assert spec["columns"]["id"]["min"] == 0  # 1 - 9.9 would be negative; ids never were
    assert spec["columns"]["id"]["max"] == 110  # 100 + 9.9, rounded outwards for integers
    assert spec["columns"]["age"]["min"] == pytest.approx(12.35)
    assert spec["columns"]["age"]["max"] == pytest.approx(86.15)
    negative = {"columns": {"t": {"kind": "numeric", "count": 2, "missing": 0, "min": -10, "max": 10}}}
    assert infer_spec([{"name": "t", "type": "int32"}], negative, 2, tolerance=0.5)["columns"]["t"]["min"] == -20


def test_max_categories_limits_allowed_lists() -> None:
    spec = infer_spec(SCHEMA, PROFILE, 100, max_categories=1)
    assert "allowed" not in spec["columns"]["region"]


def test_profile_only_and_bad_tolerance() -> None:
    spec = infer_spec(None, PROFILE, None)
    assert set(spec["columns"]) == set(PROFILE["columns"]) and "rows" not in spec
    with pytest.raises(InvalidInput, match="tolerance"):
        infer_spec(SCHEMA, PROFILE, 100, tolerance=-1)


@pytest.mark.parametrize(
    ("arrow", "expected"),
    [
        ("int32", "int32"),
        ("double", "float64"),
        ("string", "string"),
        ("large_string", "string"),
        ("bool", "bool"),
        ("timestamp[ns]", "datetime"),
        ("date32[day]", "date"),
        ("dictionary<values=string, indices=int32, ordered=0>", "string"),
        ("list<item: int64>", None),
        (None, None),
    ],
)
def test_contract_types_from_arrow(arrow: str | None, expected: str | None) -> None:
    assert contract_type(arrow) == expected


def test_identifiers_are_unique_not_categories() -> None:
    profile = {
        "columns": {
            "code": {
                "kind": "categorical",
                "count": 3,
                "missing": 0,
                "top": [{"value": "x1", "count": 1}, {"value": "x2", "count": 1}, {"value": "x3", "count": 1}],
            }
        }
    }
    assert infer_spec([{"name": "code", "type": "string"}], profile, 3)["columns"]["code"] == {
        "type": "string",
        "nullable": False,
        "unique": True,
    }
