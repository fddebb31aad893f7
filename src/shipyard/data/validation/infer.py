"""Infer a contract from a dataset version's stored schema and profile, without reading the data.

What is inferred, and why it is safe to validate the profiled data itself against the result:

- ``type``: from the Arrow type (``int64``, ``float64``, ``string``, ``bool``, ``datetime``, ``date``).
- ``nullable: false`` when the profile counted no missing value.
- ``min``/``max`` for numeric columns: the observed range, widened by ``tolerance`` × its span
  (never below 0 for a column that had no negative value; rounded outwards for integers).
  Datetime columns get no range: new data is usually newer.
- ``allowed`` for categorical columns whose ``top`` values cover every non-missing value and number at
  most ``max_categories`` (then the list is exact, whatever the distinct estimate says), unless every
  value is different (an identifier is not a category).
- ``unique: true`` only on evidence that is exact: the most frequent value occurs once (``top``), or the
  profile marks its distinct count exact (``distinct_exact``) and it equals the non-missing count.
  A distinct *estimate* equal to the count proves nothing, so it is not used.
- ``rows``: between half and twice the profiled row count (edit to taste).
"""

from __future__ import annotations

import math
import re
from typing import Any

from shipyard.data.validation.spec import parse_spec

DEFAULT_MAX_CATEGORIES = 20

_ARROW_TYPES = {
    "double": "float64",
    "float": "float32",
    "halffloat": "float16",
    "large_string": "string",
    "utf8": "string",
    "large_utf8": "string",
    "str": "string",
    "boolean": "bool",
}
_KEEP = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"}
_KEEP |= {"string", "bool"}


def contract_type(arrow_type: str | None) -> str | None:
    """The contract type for an Arrow type string, or None when the contract should not constrain it."""
    if not arrow_type:
        return None
    name = arrow_type.strip().lower()
    if name in _ARROW_TYPES:
        return _ARROW_TYPES[name]
    if name in _KEEP:
        return name
    base = re.split(r"[\[(<]", name, maxsplit=1)[0]
    if base in ("timestamp", "datetime64", "date64"):
        return "datetime"
    if base == "date32":
        return "date"
    if base == "dictionary" and "string" in name:
        return "string"
    return None  # decimals, lists, structs, binary…: no type constraint rather than a wrong one


def infer_spec(
    schema: list[dict[str, Any]] | None,
    profile: dict[str, Any] | None,
    row_count: int | None,
    *,
    tolerance: float = 0.0,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    description: str | None = None,
) -> dict[str, Any]:
    """A canonical contract spec from a schema (``[{name, type, nullable}]``) and a profile."""
    if tolerance < 0 or not math.isfinite(tolerance):
        from shipyard.core.errors import InvalidInput

        raise InvalidInput(f"tolerance must be a non-negative number, got {tolerance!r}", field="tolerance")
    profiled: dict[str, Any] = ((profile or {}).get("columns") or {}) if isinstance(profile, dict) else {}
    names = [f["name"] for f in schema or [] if isinstance(f, dict) and "name" in f] or list(profiled)
    types = {f["name"]: f for f in schema or [] if isinstance(f, dict) and "name" in f}
    columns: dict[str, Any] = {}
    for name in names:
        field = types.get(name, {})
        stats = profiled.get(name) or {}
        columns[name] = _column(field, stats, row_count, tolerance, max_categories)
    spec: dict[str, Any] = {"columns": columns}
    if description:
        spec["description"] = description
    if row_count is not None:
        spec["rows"] = {"min": row_count // 2, "max": max(row_count * 2, 1)}
    return parse_spec(spec)


def _column(
    field: dict[str, Any], stats: dict[str, Any], row_count: int | None, tolerance: float, max_categories: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    type_name = contract_type(field.get("type") or stats.get("type"))
    if type_name:
        out["type"] = type_name
    missing = _int(stats.get("missing"))
    total = row_count if row_count is not None else _int(stats.get("count"))
    if field.get("nullable") is False or (missing == 0 and total):
        out["nullable"] = False
    non_missing = total - missing if total is not None and missing is not None else None
    kind = stats.get("kind")
    if kind == "numeric" and type_name != "bool":
        low, high = _number(stats.get("min")), _number(stats.get("max"))
        if low is not None and high is not None:
            out.update(_widen(low, high, tolerance, integer=(type_name or "").startswith(("int", "uint"))))
    top = [t for t in stats.get("top") or [] if isinstance(t, dict) and "value" in t and "count" in t]
    unique = False
    if non_missing and non_missing > 1:
        counts = [_int(t["count"]) for t in top]
        # top is the most frequent values first: if the most frequent occurs once, every value is unique
        unique_by_top = bool(counts) and max(c or 0 for c in counts) == 1
        exact_distinct = stats.get("distinct_exact") is True and _int(stats.get("distinct")) == non_missing
        unique = unique_by_top or exact_distinct
    # an identifier (every value different) is not a category: listing its values would reject new rows
    if kind == "categorical" and top and len(top) <= max_categories and non_missing is not None and not unique:
        covered = sum(_int(t["count"]) or 0 for t in top)
        if covered == non_missing and all(t["value"] is not None for t in top):
            out["allowed"] = sorted((t["value"] for t in top), key=str)
    if unique:
        out["unique"] = True
    return out


def _widen(low: float, high: float, tolerance: float, integer: bool) -> dict[str, Any]:
    span = high - low if high > low else abs(high)
    new_low, new_high = low - tolerance * span, high + tolerance * span
    if low >= 0:
        new_low = max(new_low, 0.0)
    if integer:
        return {"min": int(math.floor(new_low)), "max": int(math.ceil(new_high))}
    return {"min": _tidy(new_low), "max": _tidy(new_high)}


def _tidy(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
