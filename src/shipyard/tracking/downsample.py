"""Downsampling of long metric series for charts, computed inside the database.

The step range is cut into equal buckets; each bucket contributes its lowest point, its highest
point and its first NaN point, if any. A chart asking for ``max_points`` of a million-point series
gets at most that many points, every spike and dip survives (extremes, not averages), and only a
few hundred rows ever leave the database.
"""

from __future__ import annotations

import sqlalchemy as sa

Point = tuple[int, float | None, bool, int]  # step, value (None for NaN), is_nan, timestamp

# SQLite returns the other columns of the row that holds the MIN()/MAX() ("bare columns").
_SQLITE = """
SELECT step, {agg}(value), 0, timestamp FROM metrics
WHERE run_id = :run AND key = :key AND NOT is_nan GROUP BY (step - :lo) * :buckets / :span
UNION ALL
SELECT step, {agg2}(value), 0, timestamp FROM metrics
WHERE run_id = :run AND key = :key AND NOT is_nan GROUP BY (step - :lo) * :buckets / :span
UNION ALL
SELECT MIN(step), NULL, 1, timestamp FROM metrics
WHERE run_id = :run AND key = :key AND is_nan GROUP BY (step - :lo) * :buckets / :span
""".format(agg="MIN", agg2="MAX")

# PostgreSQL: DISTINCT ON keeps the first row of each bucket in the given order.
_POSTGRES = """
(SELECT DISTINCT ON (b) step, value, false, timestamp FROM (
   SELECT (step - :lo) * :buckets / :span AS b, step, value, timestamp FROM metrics
   WHERE run_id = :run AND key = :key AND NOT is_nan) s ORDER BY b, value ASC, step)
UNION ALL
(SELECT DISTINCT ON (b) step, value, false, timestamp FROM (
   SELECT (step - :lo) * :buckets / :span AS b, step, value, timestamp FROM metrics
   WHERE run_id = :run AND key = :key AND NOT is_nan) s ORDER BY b, value DESC, step)
UNION ALL
(SELECT DISTINCT ON (b) step, NULL, true, timestamp FROM (
   SELECT (step - :lo) * :buckets / :span AS b, step, timestamp FROM metrics
   WHERE run_id = :run AND key = :key AND is_nan) s ORDER BY b, step)
"""


def bucket_extremes(
    conn: sa.Connection, run_id: str, key: str, lo: int, hi: int, max_points: int, with_nan: bool
) -> list[Point]:
    """At most ``max_points`` points of the series, ordered by step, keeping each bucket's extremes."""
    buckets = max(1, max_points // (3 if with_nan else 2))
    span = hi - lo + 1
    sql = _SQLITE if conn.dialect.name == "sqlite" else _POSTGRES
    rows = conn.execute(
        sa.text(sql), {"run": run_id, "key": key, "lo": lo, "buckets": buckets, "span": span}
    ).fetchall()
    unique = sorted(
        {(int(r[0]), None if r[2] else float(r[1]), bool(r[2]), int(r[3])) for r in rows},
        key=lambda p: (p[0], p[2], p[1] if p[1] is not None else 0.0),
    )
    return unique[:max_points]
