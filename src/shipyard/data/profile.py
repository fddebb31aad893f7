"""Profile table data with DuckDB: row count, schema and per-column statistics, in bounded memory.

The profile shape (relied on by contracts/validation and monitoring)::

    {"columns": {name: {"kind": "numeric"|"categorical"|"boolean"|"datetime"|"other",
                        "type": arrow type string, "count": non-missing, "missing": int,
                        "min", "max", "mean", "std", "quantiles": {"0.01": .., …, "0.99": ..},
                        "histogram": {"edges": [...], "counts": [...]},
                        "top": [{"value": v, "count": n}, …], "distinct": approximate int}}}

Keys that do not apply to a kind are omitted. Missing means null — and, for floating-point
columns, NaN or ±inf, which are excluded from every statistic. ``std`` is the sample standard
deviation (ddof=1, as pandas). Quantiles are exact (linear interpolation, as pandas) up to
``EXACT_QUANTILE_ROWS`` rows and approximate (t-digest) beyond. The result is plain JSON: no NaN.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.core.errors import InvalidInput

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
TOP_VALUES = 20
EXACT_QUANTILE_ROWS = 5_000_000
MEMORY_LIMIT = "1GB"  # DuckDB spills to disk beyond this


@dataclass(frozen=True)
class TableProfile:
    row_count: int
    schema: list[dict[str, Any]]
    profile: dict[str, Any]


def kind_of(arrow_type: Any) -> str:
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", bool)(t):
        return "categorical"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    return "other"


def json_value(value: Any) -> Any:
    """A JSON-safe scalar: NaN/inf → None, decimals → float, dates/times → ISO strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return json_value(float(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _connect() -> Any:
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET threads = 2")
    return con


def _relation(con: Any, paths: Sequence[str], fmt: str) -> Any:
    files = list(paths)
    if fmt == "parquet":
        return con.read_parquet(files, union_by_name=True)
    if fmt == "csv":
        return con.read_csv(files, union_by_name=True)
    if fmt == "jsonl":
        return con.read_json(files, format="newline_delimited")
    raise InvalidInput(f"cannot profile format {fmt!r}", field="format")


def _arrow_schema(con: Any, paths: Sequence[str], fmt: str) -> Any:
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        # The files' own schema keeps exact types and nullability (DuckDB would widen some).
        schemas = [pq.read_schema(p) for p in paths]
        return pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
    return con.sql("SELECT * FROM t LIMIT 0").to_arrow_table().schema


def profile_files(paths: Sequence[str], fmt: str) -> TableProfile:
    """Profile the table stored in ``paths`` (local files of one format, read as one table)."""
    import duckdb
    import pyarrow as pa

    if not paths:
        return TableProfile(row_count=0, schema=[], profile={"columns": {}})
    con = _connect()
    try:
        try:
            _relation(con, paths, fmt).create_view("t")
            schema = _arrow_schema(con, paths, fmt)
            return _profile(con, schema)
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInput(f"cannot read the {fmt} data: {first}", field="path") from None
    finally:
        con.close()


def _value_expr(name: str, arrow_type: Any) -> str:
    """SQL for the column's usable values: non-finite floats become NULL, so they count as missing."""
    import pyarrow as pa

    col = _q(name)
    if pa.types.is_floating(arrow_type):
        return f"CASE WHEN isfinite({col}::DOUBLE) THEN {col}::DOUBLE END"
    return col


def _profile(con: Any, schema: Any) -> TableProfile:
    import pyarrow as pa

    fields = [f for f in schema if f.name in _view_columns(con)]
    kinds = {f.name: kind_of(f.type) for f in fields}
    selects = ["count(*)"]
    slots: dict[str, dict[str, int]] = {}

    def slot(name: str, stat: str, expr: str) -> None:
        slots.setdefault(name, {})[stat] = len(selects)
        selects.append(expr)

    for f in fields:
        kind = kinds[f.name]
        v = _value_expr(f.name, f.type)
        slot(f.name, "count", f"count({v})")
        if kind == "numeric":
            num = v if pa.types.is_floating(f.type) else f"{_q(f.name)}::DOUBLE"
            exact = not pa.types.is_decimal(f.type)
            slot(f.name, "min", f"min({v if exact else num})")
            slot(f.name, "max", f"max({v if exact else num})")
            slot(f.name, "mean", f"avg({num})")
            slot(f.name, "std", f"stddev_samp({num})")  # refined in the histogram scan
            slot(f.name, "quantiles", f"{{qfn}}({num}, {list(QUANTILES)})")
        elif kind == "datetime":
            slot(f.name, "min", f"min({v})")
            slot(f.name, "max", f"max({v})")
        if kind in ("numeric", "categorical", "boolean", "datetime"):
            slot(f.name, "distinct", f"approx_count_distinct({v})")

    total = con.execute("SELECT count(*) FROM t").fetchone()[0]
    qfn = "quantile_cont" if total <= EXACT_QUANTILE_ROWS else "approx_quantile"
    row = con.execute("SELECT " + ", ".join(s.replace("{qfn}", qfn) for s in selects) + " FROM t").fetchone()
    row_count = int(row[0])

    columns: dict[str, dict[str, Any]] = {}
    for f in fields:
        kind = kinds[f.name]
        got = {stat: row[i] for stat, i in slots[f.name].items()}
        count = int(got["count"])
        info: dict[str, Any] = {"kind": kind, "type": str(f.type), "count": count, "missing": row_count - count}
        if count:
            for stat in ("min", "max", "mean", "std"):
                if stat in got and got[stat] is not None:
                    info[stat] = json_value(got[stat])
            if info.get("std") is None:
                info.pop("std", None)  # one value has no sample deviation
            if got.get("quantiles") is not None:
                info["quantiles"] = {str(q): json_value(x) for q, x in zip(QUANTILES, got["quantiles"], strict=True)}
            if "distinct" in got:
                info["distinct"] = int(got["distinct"])
            if kind == "numeric":
                histogram, std = _histogram_and_std(
                    con, f, float(info["min"]), float(info["max"]), float(info["mean"]), count
                )
                info["histogram"] = histogram
                if std is not None:
                    info["std"] = std
            elif kind in ("categorical", "boolean"):
                info["top"] = _top(con, f)
        columns[f.name] = info
    schema_out = [{"name": f.name, "type": str(f.type), "nullable": bool(f.nullable)} for f in fields]
    return TableProfile(row_count=row_count, schema=schema_out, profile={"columns": columns})


def _view_columns(con: Any) -> set[str]:
    return {row[0] for row in con.execute("DESCRIBE t").fetchall()}


def _histogram_and_std(
    con: Any, f: Any, lo: float, hi: float, mean: float, count: int
) -> tuple[dict[str, list[Any]], float | None]:
    """Counts on ``HISTOGRAM_BINS`` equal-width bins between min and max (the last bin includes max),
    and the sample standard deviation from the same scan.

    The deviation is the corrected two-pass formula around the mean of the first pass (as numpy):
    a one-pass variance loses most of its digits when the mean is large next to the spread.
    """
    import pyarrow as pa

    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(mean)):
        return {"edges": [], "counts": []}, None
    bins = HISTOGRAM_BINS if hi > lo else 1
    width = (hi - lo) / bins
    num = _value_expr(f.name, f.type) if pa.types.is_floating(f.type) else f"{_q(f.name)}::DOUBLE"
    bucket = f"least(greatest(floor(({num} - {lo!r}) / {width!r}), 0), {bins - 1})::BIGINT" if bins > 1 else "0"
    rows = con.execute(
        f"SELECT {bucket}, count(*), sum({num} - {mean!r}), sum(({num} - {mean!r}) * ({num} - {mean!r})) "
        f"FROM t WHERE {num} IS NOT NULL GROUP BY 1"
    ).fetchall()
    counts = [0] * bins
    for b, n, _, _ in rows:
        counts[int(b)] += int(n)
    std = None
    if count > 1:
        s1 = math.fsum(float(r[2]) for r in rows)
        s2 = math.fsum(float(r[3]) for r in rows)
        variance = max((s2 - s1 * s1 / count) / (count - 1), 0.0)
        std = math.sqrt(variance) if math.isfinite(variance) else None
    edges = [lo + i * width for i in range(bins)] + [hi] if bins > 1 else [lo, hi]
    return {"edges": edges, "counts": counts}, std


def _top(con: Any, f: Any) -> list[dict[str, Any]]:
    col = _q(f.name)
    rows = con.execute(
        f"SELECT {col}, count(*) FROM t WHERE {col} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_VALUES}"
    ).fetchall()
    return [{"value": json_value(v), "count": int(n)} for v, n in rows]
