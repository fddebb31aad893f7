"""Validate a pandas DataFrame against a contract: compile the spec to a pandera schema, run it, build the report.

Every constraint becomes one named pandera ``Check`` (``age.max``, ``region.allowed``, ``checks.margin``…).
Each check function records its row-level outcome (a boolean per row position) as it runs, so the report
counts failing rows exactly and shows the first few of them, whatever shape pandera gives its failure
cases; pandera's own failure cases are used for the structural checks (a required column is missing,
an extra column under ``strict``).
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from shipyard.core.errors import InvalidInput
from shipyard.data.validation.entities import MAX_FAILING_ROWS, CheckResult, ValidationReport
from shipyard.data.validation.spec import parse_spec, spec_digest, type_family

MAX_ROW_COLUMNS = 20  # offending rows show at most this many columns (the checked column first)
ROW_KEY = "_row"

# Python checks registered in this process by name (``@register_check("no_gaps")``).
_REGISTERED: dict[str, Callable[..., Any]] = {}


def register_check(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(df, **args) -> bool | Series[bool]`` for contracts to use as ``{python: name}``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTERED[name] = fn
        return fn

    return decorate


@dataclass
class _Planned:
    name: str
    kind: str
    column: str | None
    expected: Any
    mask: np.ndarray | None = None  # True where the row passes; set when the check ran
    table_ok: bool | None = None  # for table-level checks (rows)
    message: str | None = None


@dataclass
class _Run:
    df: pd.DataFrame
    planned: dict[str, _Planned] = field(default_factory=dict)

    def add(self, name: str, kind: str, column: str | None, expected: Any) -> _Planned:
        plan = _Planned(name, kind, column, expected)
        self.planned[name] = plan
        return plan


# --------------------------------------------------------------------------------------------------
# Row-level predicates: each returns a numpy bool array (True = row passes). Nulls pass every check
# except nullability, so each constraint is reported once.


def _type_ok(series: pd.Series, family: str) -> np.ndarray:
    notna = series.notna().to_numpy()
    dtype = series.dtype
    if family == "any":
        return np.ones(len(series), dtype=bool)
    if isinstance(dtype, pd.CategoricalDtype):
        return _type_ok(series.astype(object), family)
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa_

        at = dtype.pyarrow_dtype
        if not (family == "integer" and pa_.types.is_floating(at)):  # integral floats are checked below
            whole = {
                "integer": pa_.types.is_integer(at),
                "float": pa_.types.is_integer(at) or pa_.types.is_floating(at) or pa_.types.is_decimal(at),
                "string": pa_.types.is_string(at) or pa_.types.is_large_string(at),
                "boolean": pa_.types.is_boolean(at),
                "datetime": pa_.types.is_timestamp(at) or pa_.types.is_date(at),
            }[family]
            return np.full(len(series), whole) | ~notna
    if pd.api.types.is_object_dtype(dtype):
        return np.fromiter((_value_ok(v, family) for v in series.to_numpy()), dtype=bool, count=len(series))
    if family == "integer":
        if pd.api.types.is_bool_dtype(dtype):
            return ~notna
        if pd.api.types.is_integer_dtype(dtype):
            return np.ones(len(series), dtype=bool)
        if pd.api.types.is_float_dtype(dtype):
            # pandas turns integer columns with missing values into floats: integral floats are integers
            values = series.to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                return ~notna | (np.isfinite(values) & (values == np.round(values)))
        return ~notna
    if family == "float":
        ok = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        return np.full(len(series), ok) | ~notna
    if family == "string":
        return np.full(len(series), pd.api.types.is_string_dtype(dtype)) | ~notna
    if family == "boolean":
        return np.full(len(series), pd.api.types.is_bool_dtype(dtype)) | ~notna
    if family == "datetime":
        return np.full(len(series), pd.api.types.is_datetime64_any_dtype(dtype)) | ~notna
    return np.ones(len(series), dtype=bool)  # pragma: no cover - families are closed


def _value_ok(value: Any, family: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return True
    if family == "integer":
        if isinstance(value, (bool, np.bool_)):
            return False
        return isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())
    if family == "float":
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if family == "string":
        return isinstance(value, str)
    if family == "boolean":
        return isinstance(value, (bool, np.bool_))
    if family == "datetime":
        return isinstance(value, (dt.date, np.datetime64))
    return True


def _bound_value(bound: Any, series: pd.Series) -> Any:
    """Bounds written as ISO strings compare as timestamps (in the column's time zone when it has one)."""
    if not isinstance(bound, str):
        return bound
    stamp = pd.Timestamp(bound)
    tz = getattr(getattr(series, "dt", None), "tz", None) if pd.api.types.is_datetime64_any_dtype(series) else None
    if tz is not None and stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz)
    if series.dtype == object:
        sample = series.dropna()
        if len(sample) and isinstance(sample.iloc[0], dt.date) and not isinstance(sample.iloc[0], dt.datetime):
            return stamp.date()
    return stamp


def _compare(series: pd.Series, bound: Any, op: str) -> np.ndarray:
    notna = series.notna().to_numpy()
    value = _bound_value(bound, series)
    result = series >= value if op == "min" else series <= value
    return ~notna | result.fillna(False).to_numpy(dtype=bool)


def _as_mask(result: Any, n: int, what: str) -> np.ndarray:
    """A check's output as one bool per row: a scalar applies to every row; missing results fail."""
    if isinstance(result, (bool, np.bool_)):
        return np.full(n, bool(result))
    if isinstance(result, pd.DataFrame):
        result = result.all(axis=1)
    if isinstance(result, pd.Series):
        if len(result) != n:
            raise ValueError(f"{what} returned {len(result)} values for {n} rows")
        return result.astype("boolean").fillna(False).to_numpy(dtype=bool)
    array = np.asarray(result)
    if array.shape != (n,):
        raise ValueError(f"{what} must return a bool or one bool per row, got shape {array.shape}")
    return array.astype(bool)


def _eval_expr(df: pd.DataFrame, expr: str) -> Any:
    return df.eval(expr)


def _eval_sql(df: pd.DataFrame, expr: str) -> np.ndarray:
    import duckdb

    # Row positions travel with the data, so the result does not depend on DuckDB's scan order.
    framed = df.assign(__shipyard_row=np.arange(len(df)))
    con = duckdb.connect()
    try:
        con.register("data", framed)
        failing = con.execute(
            f"SELECT __shipyard_row FROM data WHERE NOT coalesce(({expr}), false)"  # noqa: S608 - the contract's own expression
        ).fetchnumpy()["__shipyard_row"]
    finally:
        con.close()
    mask = np.ones(len(df), dtype=bool)
    mask[np.asarray(failing, dtype=np.int64)] = False
    return mask


def resolve_python_check(target: str) -> Callable[..., Any]:
    """A registered check by name, or ``package.module:function``."""
    if target in _REGISTERED:
        return _REGISTERED[target]
    module_name, sep, attr = target.partition(":")
    if not sep:
        known = ", ".join(sorted(_REGISTERED)) or "none registered"
        raise InvalidInput(f"unknown python check {target!r} (registered: {known})", field="spec.checks")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot import python check {target!r}: {exc}", field="spec.checks") from None
    if not callable(fn):
        raise InvalidInput(f"python check {target!r} is not callable", field="spec.checks")
    return fn


# --------------------------------------------------------------------------------------------------
# Compiling a spec


def _recording(run: _Run, plan: _Planned, fn: Callable[[Any], np.ndarray]) -> pa.Check:
    """A pandera Check that runs ``fn``, records its per-row outcome, and reports a failure on exception."""

    def check(obj: Any) -> Any:
        try:
            mask = fn(obj)
        except Exception as exc:  # a contract that cannot be evaluated on this data fails, with the reason
            text = str(exc).strip()
            plan.message = f"could not evaluate: {type(exc).__name__}" + (f": {text.splitlines()[0]}" if text else "")
            plan.mask = None
            return False
        plan.mask = mask
        return pd.Series(mask, index=obj.index)

    # pandera formats every failure case into its error message unless capped: 25 s instead of 1.6 s for
    # a million failing rows. The report counts failures from the recorded mask, not from pandera's cases.
    return pa.Check(check, name=plan.name, ignore_na=False, n_failure_cases=MAX_FAILING_ROWS)


def _column_checks(run: _Run, name: str, constraints: dict[str, Any]) -> list[pa.Check]:
    checks: list[pa.Check] = []

    def add(kind: str, expected: Any, fn: Callable[[pd.Series], np.ndarray]) -> None:
        checks.append(_recording(run, run.add(f"{name}.{kind}", kind, name, expected), fn))

    if "type" in constraints:
        family = type_family(constraints["type"]) or "any"
        if family != "any":
            add("type", constraints["type"], lambda s, f=family: _type_ok(s, f))
    if constraints.get("nullable") is False:
        add("nullable", False, lambda s: s.notna().to_numpy())
    if "min" in constraints:
        add("min", constraints["min"], lambda s, b=constraints["min"]: _compare(s, b, "min"))
    if "max" in constraints:
        add("max", constraints["max"], lambda s, b=constraints["max"]: _compare(s, b, "max"))
    if "allowed" in constraints:
        allowed = constraints["allowed"]
        add("allowed", allowed, lambda s, a=allowed: ~s.notna().to_numpy() | s.isin(a).to_numpy(dtype=bool))
    if "pattern" in constraints:
        regex = re.compile(constraints["pattern"])
        add(
            "pattern",
            constraints["pattern"],
            lambda s, r=regex: np.fromiter(
                (
                    v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or bool(r.fullmatch(str(v)))
                    for v in s.to_numpy(dtype=object)
                ),
                dtype=bool,
                count=len(s),
            ),
        )
    if constraints.get("unique"):
        # SQL semantics: missing values are not duplicates of each other
        add("unique", True, lambda s: ~s.notna().to_numpy() | ~s.duplicated(keep=False).to_numpy(dtype=bool))
    return checks


def compile_schema(spec: dict[str, Any], run: _Run | None = None) -> pa.DataFrameSchema:
    """The pandera schema of a canonical spec; with ``run`` each check records its outcome into it."""
    run = run if run is not None else _Run(pd.DataFrame())
    columns: dict[str, pa.Column] = {}
    for name, constraints in spec.get("columns", {}).items():
        required = constraints.get("required", True)
        run.add(f"{name}.present", "present", name, True if required else "optional")
        columns[name] = pa.Column(None, checks=_column_checks(run, name, constraints), nullable=True, required=required)

    table_checks: list[pa.Check] = []
    rows = spec.get("rows")
    if rows:
        plan = run.add("rows", "rows", None, rows)

        def rows_ok(df: pd.DataFrame, plan: _Planned = plan, rows: dict[str, int] = rows) -> bool:
            ok = rows.get("min", 0) <= len(df) <= rows.get("max", len(df))
            plan.table_ok = ok
            if not ok:
                plan.message = f"{len(df)} rows, expected " + " and ".join(
                    f"{'at least' if k == 'min' else 'at most'} {v}" for k, v in rows.items()
                )
            return ok

        table_checks.append(pa.Check(rows_ok, name="rows"))
    for custom in spec.get("checks", []):
        kind = next(k for k in ("expr", "sql", "python") if k in custom)
        plan = run.add(f"checks.{custom['name']}", kind, None, custom[kind])
        if kind == "expr":
            fn: Callable[[pd.DataFrame], np.ndarray] = lambda df, e=custom["expr"]: _as_mask(  # noqa: E731
                _eval_expr(df, e), len(df), "expr"
            )
        elif kind == "sql":
            fn = lambda df, e=custom["sql"]: _eval_sql(df, e)  # noqa: E731
        else:
            target, args = custom["python"], custom.get("args") or {}
            fn = lambda df, t=target, a=args: _as_mask(resolve_python_check(t)(df, **a), len(df), t)  # noqa: E731
        table_checks.append(_recording(run, plan, fn))
    if spec.get("strict"):
        run.add("strict", "strict", None, sorted(spec.get("columns", {})))
    return pa.DataFrameSchema(columns, checks=table_checks, strict=bool(spec.get("strict")))


# --------------------------------------------------------------------------------------------------
# Running and reporting


def validate_frame(
    data: Any, spec: dict[str, Any], *, contract_version: int | None = None, dataset: str | None = None
) -> ValidationReport:
    """Validate a DataFrame (or anything with ``to_pandas()``) against a spec; nothing is stored."""
    spec = parse_spec(spec)
    df = _frame(data)
    run = _Run(df)
    schema = compile_schema(spec, run)
    structural: dict[str, list[str]] = {"column_in_dataframe": [], "column_in_schema": []}
    try:
        schema.validate(df, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        for check_name in structural:
            hits = cases[cases["check"] == check_name]["failure_case"]
            structural[check_name] = [str(v) for v in hits]
    except pa.errors.SchemaError as exc:  # pragma: no cover - lazy mode collects errors instead
        raise InvalidInput(f"contract could not be applied: {exc}") from None
    missing = set(structural["column_in_dataframe"])
    results: list[CheckResult] = []
    for plan in run.planned.values():
        if plan.column is not None and plan.column in missing and plan.kind != "present":
            continue  # only the missing column itself is reported
        results.append(_result(df, plan, missing, structural["column_in_schema"]))
    return ValidationReport(
        passed=all(r.passed for r in results),
        row_count=len(df),
        contract_digest=spec_digest(spec),
        contract_version=contract_version,
        dataset=dataset,
        checks=results,
    )


def _frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        df = data
    elif hasattr(data, "to_pandas"):
        df = data.to_pandas()
    else:
        raise InvalidInput(f"expected a pandas DataFrame or an Arrow table, got {type(data).__name__}", field="data")
    if any(not isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)
    return df.reset_index(drop=True)  # row positions are what a report names


def _result(df: pd.DataFrame, plan: _Planned, missing: set[str], extra: list[str]) -> CheckResult:
    base = {"name": plan.name, "kind": plan.kind, "column": plan.column, "expected": _jsonable(plan.expected)}
    if plan.kind == "present":
        ok = plan.column not in missing
        message = None if ok else f"column {plan.column!r} is missing"
        return CheckResult(**base, passed=ok, failing_count=0 if ok else 1, message=message)
    if plan.kind == "strict":
        ok = not extra
        message = None if ok else "columns not in the contract: " + ", ".join(sorted(extra))
        return CheckResult(**base, passed=ok, failing_count=len(extra), message=message)
    if plan.kind == "rows":
        ok = bool(plan.table_ok)
        return CheckResult(**base, passed=ok, failing_count=0 if ok else 1, message=plan.message)
    if plan.mask is None:
        return CheckResult(**base, passed=False, failing_count=0, message=plan.message or "not evaluated")
    failing = np.flatnonzero(~plan.mask)
    return CheckResult(
        **base,
        passed=len(failing) == 0,
        failing_count=int(len(failing)),
        failing_rows=_rows(df, failing[:MAX_FAILING_ROWS], plan.column),
    )


def _rows(df: pd.DataFrame, positions: np.ndarray, column: str | None) -> list[dict[str, Any]]:
    columns = list(df.columns)
    if column is not None and column in columns:
        columns.remove(column)
        columns.insert(0, column)
    columns = columns[:MAX_ROW_COLUMNS]
    out = []
    for pos in positions:
        row = df.iloc[int(pos)]
        record: dict[str, Any] = {ROW_KEY: int(pos)}
        for name in columns:
            record[name] = _jsonable(row[name])
        out.append(record)
    return out


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars unwrapped, NaN/NA as null, ±inf as strings, times as ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (dt.date, dt.datetime, dt.time, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, dt.timedelta)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 64 else value[:64].hex() + "…"
    return str(value)
