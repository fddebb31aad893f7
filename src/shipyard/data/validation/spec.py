"""The contract document: parse and check Shipyard's YAML/JSON contract spec, naming the bad path on error.

A contract is a small readable document::

    description: orders as the billing team expects them
    columns:
      age: {type: int64, nullable: false, min: 0, max: 120}
      region: {type: string, allowed: [eu, us]}
      id: {unique: true}
    rows: {min: 100, max: 1000000}
    checks:
      - {name: margin, expr: "price >= cost"}          # pandas expression, one bool per row
      - {name: recent, sql: "ts >= DATE '2024-01-01'"} # DuckDB boolean expression per row
      - {name: custom, python: "my_pkg.checks:no_gaps", args: {col: ts}}

:func:`parse_spec` returns the canonical form (known keys only, defaults left out, stable order), whose
canonical JSON digest identifies the contract.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from shipyard.core.errors import InvalidInput
from shipyard.core.hashing import canonical_json, hash_bytes

# Types are checked by family (see engine.py): the exact width is documentation, because pandas
# widens or narrows integer and float types depending on how the data was read.
TYPE_FAMILIES: dict[str, str] = {
    **{name: "integer" for name in ("int", "integer", "int8", "int16", "int32", "int64")},
    **{name: "integer" for name in ("uint8", "uint16", "uint32", "uint64")},
    **{name: "float" for name in ("float", "double", "float16", "float32", "float64", "halffloat", "number")},
    **{name: "string" for name in ("string", "str", "utf8", "large_string", "large_utf8", "category")},
    **{name: "boolean" for name in ("bool", "boolean")},
    **{name: "datetime" for name in ("datetime", "timestamp", "date", "date32", "date64")},
    "any": "any",
}
COLUMN_KEYS = ("type", "nullable", "required", "min", "max", "allowed", "unique", "pattern", "description")
TOP_KEYS = ("description", "columns", "rows", "checks", "strict")
CHECK_KINDS = ("expr", "sql", "python")
CHECK_KEYS = ("name", *CHECK_KINDS, "args", "description")
_CHECK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")
MAX_ALLOWED = 10_000


def type_family(type_name: str) -> str | None:
    """The family of a contract type name, or None if unknown (``timestamp[ns, tz=UTC]`` → datetime)."""
    name = type_name.strip().lower()
    if name in TYPE_FAMILIES:
        return TYPE_FAMILIES[name]
    base = re.split(r"[\[(<]", name, maxsplit=1)[0]
    if base in ("timestamp", "datetime64", "date32", "date64"):
        return "datetime"
    if base in ("dictionary",):
        return "string"
    return None


def _fail(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}", field=f"spec.{path}" if path else "spec")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _bound(value: Any, path: str) -> Any:
    """A min/max bound: a number, or an ISO date/time string (for datetime columns)."""
    if _is_number(value):
        if not math.isfinite(value):
            raise _fail(path, f"expected a finite number, got {value!r}")
        # 0.0 and 0 are the same bound: one canonical form, one digest
        return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, str):
        import pandas as pd

        try:
            pd.Timestamp(value)
        except (ValueError, TypeError):
            raise _fail(path, f"expected a number or an ISO date/time, got {value!r}") from None
        return value
    if hasattr(value, "isoformat"):  # YAML turns 2024-01-01 into a date
        return value.isoformat()
    raise _fail(path, f"expected a number, got {type(value).__name__} {value!r}")


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"expected true or false, got {value!r}")
    return value


def _text(value: Any, path: str, max_len: int = 5000) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"expected a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise _fail(path, f"longer than {max_len} characters")
    return value


def _unknown(mapping: dict[str, Any], known: tuple[str, ...], path: str) -> None:
    for key in mapping:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            raise _fail(where, f"unknown key (expected one of: {', '.join(known)})")


def _column(name: str, raw: Any) -> dict[str, Any]:
    path = f"columns.{name}"
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(path, f"expected a mapping of constraints, got {type(raw).__name__}")
    _unknown(raw, COLUMN_KEYS, path)
    out: dict[str, Any] = {}
    if "type" in raw:
        type_name = _text(raw["type"], f"{path}.type", 100)
        if type_family(type_name) is None:
            known = sorted({"int64", "float64", "string", "bool", "datetime", "date", "any"})
            raise _fail(f"{path}.type", f"unknown type {type_name!r} (e.g. {', '.join(known)})")
        out["type"] = type_name
    for key in ("nullable", "required", "unique"):
        if key in raw:
            out[key] = _bool(raw[key], f"{path}.{key}")
    for key in ("min", "max"):
        if key in raw and raw[key] is not None:
            out[key] = _bound(raw[key], f"{path}.{key}")
    if "min" in out and "max" in out:
        low, high = out["min"], out["max"]
        if isinstance(low, str) != isinstance(high, str):
            raise _fail(f"{path}.max", "min and max must both be numbers or both be dates")
        if isinstance(low, str):
            import pandas as pd

            low, high = pd.Timestamp(low), pd.Timestamp(high)
            if (low.tzinfo is None) != (high.tzinfo is None):
                raise _fail(f"{path}.max", "min and max must both have a time zone or both have none")
        if low > high:
            raise _fail(f"{path}.min", f"min {out['min']!r} is greater than max {out['max']!r}")
    if "allowed" in raw:
        allowed = raw["allowed"]
        if not isinstance(allowed, list) or not allowed:
            raise _fail(f"{path}.allowed", "expected a non-empty list of values")
        if len(allowed) > MAX_ALLOWED:
            raise _fail(f"{path}.allowed", f"more than {MAX_ALLOWED} values")
        for i, value in enumerate(allowed):
            if not (value is None or isinstance(value, (str, int, float, bool))):
                raise _fail(f"{path}.allowed.{i}", f"expected a scalar value, got {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value):
                raise _fail(f"{path}.allowed.{i}", "NaN and infinity cannot be listed (use nullable for missing)")
        out["allowed"] = list(allowed)
    if "pattern" in raw:
        pattern = _text(raw["pattern"], f"{path}.pattern", 1000)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _fail(f"{path}.pattern", f"not a valid regular expression: {exc}") from None
        out["pattern"] = pattern
    if "description" in raw:
        out["description"] = _text(raw["description"], f"{path}.description")
    return out


def _rows(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise _fail("rows", f"expected a mapping with min and/or max, got {type(raw).__name__}")
    _unknown(raw, ("min", "max"), "rows")
    out: dict[str, int] = {}
    for key in ("min", "max"):
        if key in raw and raw[key] is not None:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _fail(f"rows.{key}", f"expected a non-negative integer, got {value!r}")
            out[key] = value
    if "min" in out and "max" in out and out["min"] > out["max"]:
        raise _fail("rows.min", f"min {out['min']} is greater than max {out['max']}")
    return out


def _check(i: int, raw: Any, seen: set[str]) -> dict[str, Any]:
    path = f"checks.{i}"
    if not isinstance(raw, dict):
        raise _fail(path, f"expected a mapping with name and one of expr/sql/python, got {type(raw).__name__}")
    _unknown(raw, CHECK_KEYS, path)
    if "name" not in raw:
        raise _fail(f"{path}.name", "required")
    name = _text(raw["name"], f"{path}.name", 100)
    if not _CHECK_NAME.match(name):
        raise _fail(f"{path}.name", f"{name!r} may only contain letters, digits, '_', '.', '-'")
    if name in seen:
        raise _fail(f"{path}.name", f"duplicate check name {name!r}")
    seen.add(name)
    kinds = [k for k in CHECK_KINDS if k in raw]
    if len(kinds) != 1:
        raise _fail(path, f"expected exactly one of expr, sql, python (got {', '.join(kinds) or 'none'})")
    kind = kinds[0]
    out: dict[str, Any] = {"name": name, kind: _text(raw[kind], f"{path}.{kind}")}
    if kind == "python" and ":" not in out["python"] and not re.match(r"^[\w.\-]+$", out["python"]):
        raise _fail(f"{path}.python", "expected a registered check name or 'package.module:function'")
    if "args" in raw:
        if kind != "python":
            raise _fail(f"{path}.args", "only python checks take args")
        if not isinstance(raw["args"], dict):
            raise _fail(f"{path}.args", "expected a mapping of keyword arguments")
        out["args"] = raw["args"]
    if "description" in raw:
        out["description"] = _text(raw["description"], f"{path}.description")
    return out


def parse_spec(doc: Any) -> dict[str, Any]:
    """Check a contract document and return its canonical form; raise InvalidInput naming the bad path."""
    if not isinstance(doc, dict):
        raise _fail("", f"a contract must be a mapping, got {type(doc).__name__}")
    _unknown(doc, TOP_KEYS, "")
    out: dict[str, Any] = {}
    if "description" in doc and doc["description"] is not None:
        out["description"] = _text(doc["description"], "description")
    columns = doc.get("columns") or {}
    if not isinstance(columns, dict):
        raise _fail("columns", f"expected a mapping of column name to constraints, got {type(columns).__name__}")
    out["columns"] = {}
    for name, raw in columns.items():
        if not isinstance(name, str) or not name:
            raise _fail(f"columns.{name}", "column names must be non-empty strings")
        out["columns"][name] = _column(name, raw)
    if doc.get("rows") is not None:
        rows = _rows(doc["rows"])
        if rows:
            out["rows"] = rows
    checks = doc.get("checks") or []
    if not isinstance(checks, list):
        raise _fail("checks", f"expected a list, got {type(checks).__name__}")
    seen: set[str] = set()
    parsed = [_check(i, raw, seen) for i, raw in enumerate(checks)]
    if parsed:
        out["checks"] = parsed
    if "strict" in doc and _bool(doc["strict"], "strict"):
        out["strict"] = True
    return out


def spec_digest(spec: dict[str, Any]) -> str:
    """The identity of a (canonical) contract: SHA-256 of its canonical JSON."""
    return hash_bytes(canonical_json(spec))


# --------------------------------------------------------------------------------------------------
# YAML


def load_yaml(text: str, source: str = "contract") -> dict[str, Any]:
    """Parse YAML text into a checked, canonical spec."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInput(f"{source}: not valid YAML{where}: {problem}", field="spec") from None
    return parse_spec(doc if doc is not None else {})


def dump_yaml(spec: dict[str, Any]) -> str:
    """The readable YAML form of a spec: keys in document order, one column per block."""
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
    if yaml.safe_load(text) != spec:
        # PyYAML writes some characters (NEL, line/paragraph separators) raw that it then reads as line
        # breaks; escaped ASCII output always reads back the same
        text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=False, default_flow_style=None, width=100)
    return text


def load_spec(value: Any) -> dict[str, Any]:
    """A spec from a dict, YAML text, or a path to a YAML/JSON file."""
    if isinstance(value, dict):
        return parse_spec(value)
    if isinstance(value, Path):
        return _read_file(value)
    if isinstance(value, str):
        if "\n" not in value and (value.endswith((".yaml", ".yml", ".json")) or Path(value).is_file()):
            return _read_file(Path(value))
        return load_yaml(value)
    raise InvalidInput(f"expected a contract spec (dict, YAML text or file path), got {type(value).__name__}")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read contract file {str(path)!r}: {exc.strerror or exc}", field="spec") from None
    return load_yaml(text, source=str(path))  # JSON is YAML
