"""Property tests: range and nullability checks count exactly the rows a direct computation finds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.data.validation import validate_frame
from shipyard.data.validation.infer import infer_spec

values = st.lists(
    st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)), min_size=0, max_size=60
)
bound = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(values, bound, bound)
def test_range_check_fails_exactly_the_rows_outside(xs: list[float | None], a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    df = pd.DataFrame({"x": pd.Series(xs, dtype="float64")})
    report = validate_frame(df, {"columns": {"x": {"min": low, "max": high}}})
    checks = {c.name: c for c in report.checks}
    below = [i for i, v in enumerate(xs) if v is not None and v < low]
    above = [i for i, v in enumerate(xs) if v is not None and v > high]
    assert checks["x.min"].failing_count == len(below)
    assert checks["x.max"].failing_count == len(above)
    assert [r["_row"] for r in checks["x.min"].failing_rows] == below[:5]
    assert [r["_row"] for r in checks["x.max"].failing_rows] == above[:5]
    assert report.passed == (not below and not above)


@settings(max_examples=150, deadline=None)
@given(values)
def test_nullability_fails_exactly_the_missing_rows(xs: list[float | None]) -> None:
    df = pd.DataFrame({"x": pd.Series(xs, dtype="float64"), "y": pd.Series(xs, dtype=object)})
    report = validate_frame(df, {"columns": {"x": {"nullable": False}, "y": {"nullable": False}}})
    missing = [i for i, v in enumerate(xs) if v is None]
    for name in ("x.nullable", "y.nullable"):
        check = next(c for c in report.checks if c.name == name)
        assert check.failing_count == len(missing)
        assert [r["_row"] for r in check.failing_rows] == missing[:5]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=50),
    st.floats(min_value=0, max_value=1),
)
def test_a_contract_inferred_from_a_profile_accepts_the_profiled_data(xs: list[int], tolerance: float) -> None:
    """Inference must never produce a contract that the very data it describes breaks."""
    series = pd.Series(xs, dtype="int64")
    counts = series.value_counts()
    profile = {
        "columns": {
            "x": {
                "kind": "numeric",
                "type": "int64",
                "count": len(xs),
                "missing": 0,
                "min": int(series.min()),
                "max": int(series.max()),
                "top": [{"value": int(v), "count": int(c)} for v, c in counts.head(10).items()],
                "distinct": int(series.nunique()),
            }
        }
    }
    spec = infer_spec([{"name": "x", "type": "int64", "nullable": True}], profile, len(xs), tolerance=tolerance)
    report = validate_frame(pd.DataFrame({"x": series}), spec)
    assert report.passed, report.summary()
    assert spec["columns"]["x"]["min"] <= min(xs) and spec["columns"]["x"]["max"] >= max(xs)
    assert spec["columns"]["x"].get("unique", False) == (series.nunique() == len(xs) and len(xs) > 1)
    if tolerance == 0:
        assert (spec["columns"]["x"]["min"], spec["columns"]["x"]["max"]) == (min(xs), max(xs))
    assert math.isfinite(spec["rows"]["max"]) and spec["rows"]["min"] <= len(xs) <= spec["rows"]["max"]
    assert np.all(np.asarray(xs) >= spec["columns"]["x"]["min"])
