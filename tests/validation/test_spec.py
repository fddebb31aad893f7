"""The contract document: canonical form, YAML round trip, and errors that name the bad path."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.core.errors import InvalidInput
from shipyard.data.validation.spec import dump_yaml, load_spec, load_yaml, parse_spec, spec_digest

EXAMPLE = """
description: people as the CRM exports them
columns:
  age: {type: int64, nullable: false, min: 0, max: 120}
  region: {type: string, allowed: [eu, us]}
  id: {unique: true}
  joined: {type: datetime, min: 2020-01-01}
rows: {min: 100, max: 1000000}
checks:
  - {name: margin, expr: "price >= cost"}
  - {name: recent, sql: "joined >= DATE '2020-01-01'"}
  - {name: custom, python: "pkg.mod:fn", args: {limit: 3}}
strict: true
"""


def test_example_parses_to_a_canonical_spec() -> None:
    spec = load_yaml(EXAMPLE)
    assert spec["columns"]["age"] == {"type": "int64", "nullable": False, "min": 0, "max": 120}
    assert spec["columns"]["joined"]["min"] == "2020-01-01"  # YAML dates become ISO text
    assert spec["rows"] == {"min": 100, "max": 1000000}
    assert [c["name"] for c in spec["checks"]] == ["margin", "recent", "custom"]
    assert spec["strict"] is True


def test_yaml_round_trip_keeps_content_and_digest() -> None:
    spec = load_yaml(EXAMPLE)
    text = dump_yaml(spec)
    again = load_yaml(text)
    assert again == spec
    assert spec_digest(again) == spec_digest(spec)
    assert "age:" in text and "region:" in text  # readable: one block per column


def test_defaults_and_key_order_do_not_change_the_digest() -> None:
    a = parse_spec({"columns": {"x": {"min": 1, "max": 2}}, "checks": [], "rows": None})
    b = parse_spec({"columns": {"x": {"max": 2.0, "min": 1}}})
    assert spec_digest(a) == spec_digest(b)


@pytest.mark.parametrize(
    ("doc", "path", "fragment"),
    [
        ({"columns": {"age": {"min": "abc"}}}, "columns.age.min", "expected a number"),
        ({"columns": {"age": {"min": [1]}}}, "columns.age.min", "expected a number"),
        ({"columns": {"age": {"min": 5, "max": 1}}}, "columns.age.min", "greater than max"),
        ({"columns": {"age": {"nullable": "no"}}}, "columns.age.nullable", "expected true or false"),
        ({"columns": {"age": {"type": "integr"}}}, "columns.age.type", "unknown type"),
        ({"columns": {"age": {"maximum": 3}}}, "columns.age.maximum", "unknown key"),
        ({"columns": {"age": 3}}, "columns.age", "expected a mapping"),
        ({"columns": {"r": {"allowed": []}}}, "columns.r.allowed", "non-empty list"),
        ({"columns": {"r": {"allowed": [{"a": 1}]}}}, "columns.r.allowed.0", "scalar"),
        ({"columns": {"r": {"pattern": "("}}}, "columns.r.pattern", "regular expression"),
        ({"columns": ["age"]}, "columns", "expected a mapping"),
        ({"rows": {"min": -1}}, "rows.min", "non-negative integer"),
        ({"rows": {"min": 10, "max": 5}}, "rows.min", "greater than max"),
        ({"rows": {"least": 1}}, "rows.least", "unknown key"),
        ({"checks": {"name": "x"}}, "checks", "expected a list"),
        ({"checks": [{"expr": "a > 1"}]}, "checks.0.name", "required"),
        ({"checks": [{"name": "a", "expr": "a > 1", "sql": "a > 1"}]}, "checks.0", "exactly one"),
        ({"checks": [{"name": "a", "expr": "x"}, {"name": "a", "expr": "y"}]}, "checks.1.name", "duplicate"),
        ({"checks": [{"name": "a", "expr": "x", "args": {}}]}, "checks.0.args", "only python"),
        ({"colums": {}}, "colums", "unknown key"),
        ({"strict": "yes"}, "strict", "expected true or false"),
    ],
)
def test_bad_specs_name_the_path(doc: dict, path: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_spec(doc)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    assert fragment in message
    assert info.value.field == f"spec.{path}"


def test_not_a_mapping_and_bad_yaml() -> None:
    with pytest.raises(InvalidInput, match="must be a mapping"):
        parse_spec(["columns"])
    with pytest.raises(InvalidInput, match=r"not valid YAML at line 2, column 13"):
        load_yaml("columns:\n  age: [a: b: c]\n")


def test_load_spec_from_dict_text_and_files(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(EXAMPLE)
    assert load_spec(path) == load_spec(str(path)) == load_spec(EXAMPLE) == load_spec(load_yaml(EXAMPLE))
    with pytest.raises(InvalidInput, match="cannot read contract file"):
        load_spec(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("columns: {age: {min: x}}")
    with pytest.raises(InvalidInput, match="columns.age.min"):
        load_spec(broken)


_scalar = st.one_of(st.integers(-(10**9), 10**9), st.floats(allow_nan=False, allow_infinity=False, width=32))
_column = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["int64", "float64", "string", "bool", "datetime"]),
        "nullable": st.booleans(),
        "unique": st.booleans(),
        "allowed": st.lists(st.one_of(st.text(max_size=5), st.integers(-5, 5)), min_size=1, max_size=4),
        "min": _scalar,
    },
)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), _column, max_size=4), st.integers(0, 10**6))
def test_any_valid_spec_round_trips_through_yaml(columns: dict, rows_min: int) -> None:
    spec = parse_spec({"columns": columns, "rows": {"min": rows_min}})
    assert load_yaml(dump_yaml(spec)) == spec
    assert parse_spec(spec) == spec  # canonical form is a fixed point
