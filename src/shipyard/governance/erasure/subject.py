"""Who the subject is and which stored rows are theirs.

A subject is a non-empty mapping of column name to value, compared as text: ``user_id=42`` matches
the integer 42, the float 42.0 and the string "42". The masks here find the subject's rows in Arrow
tables and columns, in a prediction log's JSON ``inputs``, in a validation report's failing rows and
in a model version's stored input example. Nothing here reads or writes the store.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInput
from shipyard.core.names import MAX_KEY


def parse_subject(subject: Any) -> dict[str, str]:
    """Validate a subject: a non-empty mapping of column name to value (values compared as text)."""
    if not isinstance(subject, dict) or not subject:
        raise InvalidInput(
            "subject must be a non-empty mapping of column to value, e.g. {'user_id': '42'}", field="subject"
        )
    parsed: dict[str, str] = {}
    for key, value in subject.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
            raise InvalidInput(f"subject key must be a column name of 1 to {MAX_KEY} characters", field="subject")
        if value is None or isinstance(value, dict | list):
            # the message names the key, never the value
            raise InvalidInput(f"subject.{key} must be a string or a number", field=f"subject.{key}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if not text:
            raise InvalidInput(f"subject.{key} must not be empty", field=f"subject.{key}")
        parsed[key] = text
    return parsed


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def value_matches(value: Any, wanted: str) -> bool:
    """Whether one JSON value equals the wanted text (numbers compared as numbers)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return wanted.strip().lower() in (("true", "1") if value else ("false", "0"))
    if isinstance(value, int | float):
        number = _number(wanted)
        return number is not None and value == number
    return str(value) == wanted


def text_matches(text: str, wanted: str) -> bool:
    """Whether a value written as text (``"42.0"``) equals the wanted text (``"42"``)."""
    if text == wanted:
        return True
    a, b = _number(text), _number(wanted)
    return a is not None and b is not None and a == b


def column_mask(column: Any, wanted: str) -> np.ndarray:
    """Which values of an Arrow column equal ``wanted`` (a bool array; nulls never match)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    typ = column.type
    none = np.zeros(len(column), dtype=bool)
    if pa.types.is_null(typ):
        return none
    if pa.types.is_boolean(typ):
        w = wanted.strip().lower()
        if w not in ("true", "1", "false", "0"):
            return none
        result = pc.equal(column, w in ("true", "1"))
    elif pa.types.is_integer(typ):
        number = _number(wanted)
        if number is None or float(number) != int(number):
            return none
        try:
            result = pc.equal(column, pa.scalar(int(number), pa.int64()))
        except (pa.ArrowException, OverflowError):
            return none
    elif pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        number = _number(wanted)
        if number is None:
            return none
        result = pc.equal(column.cast(pa.float64()), float(number))
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        result = pc.equal(column, wanted)
    else:
        try:
            result = pc.equal(column.cast(pa.string()), wanted)
        except (pa.ArrowException, NotImplementedError):
            return none
    return np.asarray(result.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def table_mask(table: Any, subject: dict[str, str], prefix: str = "") -> np.ndarray | None:
    """The subject's rows of a table whose columns are ``prefix + KEY``; None when a key is missing."""
    names = set(table.column_names)
    if not all(prefix + key in names for key in subject):
        return None
    mask = np.ones(table.num_rows, dtype=bool)
    for key, wanted in subject.items():
        mask &= column_mask(table.column(prefix + key), wanted)
    return mask


def _json_mask(texts: Any, subject: dict[str, str], keys: list[str], seen: set[str]) -> np.ndarray:
    """Rows whose JSON ``inputs`` hold every key in ``keys`` with the wanted value (segments where a
    key was not flattened into an ``in.`` column, e.g. because its values had mixed types)."""
    import pyarrow.compute as pc

    candidates = np.ones(len(texts), dtype=bool)
    for key in keys:  # a cheap substring test before parsing any JSON
        candidates &= np.asarray(pc.match_substring(texts, json.dumps(key)).fill_null(False).to_numpy(), dtype=bool)
    mask = np.zeros(len(texts), dtype=bool)
    for i in np.flatnonzero(candidates):
        try:
            row = json.loads(texts[int(i)].as_py())
        except (TypeError, ValueError):
            continue
        if not isinstance(row, dict):
            continue
        seen.update(k for k in keys if k in row)
        mask[i] = all(value_matches(row.get(k), subject[k]) for k in keys)
    return mask


# -- stored rows: validation reports and input examples --------------------------------------------


def _scrub_report(report: Any, subject: dict[str, str], positions: set[int]) -> tuple[Any, int]:
    """The report without the subject's failing rows, and how many were dropped."""
    if not isinstance(report, dict) or not isinstance(report.get("checks"), list):
        return report, 0
    dropped = 0
    checks = []
    for check in report["checks"]:
        rows = check.get("failing_rows") if isinstance(check, dict) else None
        if not rows:
            checks.append(check)
            continue
        kept = [
            row
            for row in rows
            if not (
                isinstance(row, dict)
                and (
                    row.get("_row") in positions
                    or all(k in row and value_matches(row[k], w) for k, w in subject.items())
                )
            )
        ]
        dropped += len(rows) - len(kept)
        checks.append({**check, "failing_rows": kept})
    return {**report, "checks": checks}, dropped


def _example_mask(example: Any, subject: dict[str, str]) -> list[int] | None:
    """Rows of a stored ``dataframe`` input example that are the subject's (None: none are)."""
    if not isinstance(example, dict) or example.get("type") != "dataframe":
        return None
    columns = [str(c) for c in example.get("columns", [])]
    if not all(k in columns for k in subject):
        return None
    index = {k: columns.index(k) for k in subject}
    hits = [
        i
        for i, row in enumerate(example.get("data", []))
        if isinstance(row, list) and all(value_matches(row[index[k]], w) for k, w in subject.items())
    ]
    return hits or None


def _without_subject(example: dict[str, Any], subject: dict[str, str]) -> dict[str, Any] | None:
    hits = set(_example_mask(example, subject) or [])
    data = [row for i, row in enumerate(example.get("data", [])) if i not in hits]
    return {**example, "data": data} if data else None
