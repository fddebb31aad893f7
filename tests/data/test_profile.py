"""Profile statistics: properties that hold for any data, and agreement with pandas."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.core.errors import InvalidInput
from shipyard.data.formats import detect_format, read_table, write_frame
from shipyard.data.profile import QUANTILES, profile_files


def _profile(df: pd.DataFrame):
    with tempfile.TemporaryDirectory() as tmp:
        return profile_files([write_frame(df, tmp)], "parquet")


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(min_value=-1e12, max_value=1e12) | st.just(math.nan), max_size=200))
def test_numeric_profile_invariants(values: list[float]) -> None:
    df = pd.DataFrame({"v": pd.Series(values, dtype="float64")})
    result = _profile(df)
    col = result.profile["columns"]["v"]
    present = df.v.dropna()
    assert result.row_count == len(values)
    assert col["count"] == len(present) and col["count"] + col["missing"] == len(values)
    json.dumps(result.profile, allow_nan=False)
    if not len(present):
        assert "min" not in col and "histogram" not in col
        return
    assert col["min"] == present.min() and col["max"] == present.max()
    assert sum(col["histogram"]["counts"]) == col["count"]
    edges = col["histogram"]["edges"]
    assert edges[0] == col["min"] and edges[-1] == col["max"] and edges == sorted(edges)
    qs = [col["quantiles"][str(q)] for q in QUANTILES]
    tolerance = 1e-9 * max(1.0, abs(col["min"]), abs(col["max"]))
    assert col["min"] - tolerance <= qs[0] and qs[-1] <= col["max"] + tolerance
    assert all(a <= b + tolerance for a, b in zip(qs, qs[1:], strict=False))
    assert col["min"] - tolerance <= col["mean"] <= col["max"] + tolerance
    assert col["mean"] == pytest.approx(present.mean(), rel=1e-9, abs=1e-6)
    if len(present) > 1:
        # Inputs only a few ulps apart carry no more precision than that, whatever the algorithm.
        noise = 64 * math.ulp(max(abs(col["min"]), abs(col["max"])))
        assert col["std"] == pytest.approx(present.std(), rel=1e-6, abs=1e-6 + noise)
    else:
        assert "std" not in col


def test_std_keeps_its_digits_when_the_mean_is_large() -> None:
    values = [733007751631.0, 733007751634.0, 733007751624.0]  # a one-pass variance gets 5.13158
    col = _profile(pd.DataFrame({"v": values})).profile["columns"]["v"]
    assert col["std"] == pytest.approx(pd.Series(values).std(), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.one_of(st.sampled_from(["a", "b", "c", "é", "with space"]), st.none()), max_size=100))
def test_categorical_top_values_count_exactly(values: list[str | None]) -> None:
    df = pd.DataFrame({"c": pd.Series(values, dtype="object")})
    col = _profile(df).profile["columns"]["c"]
    counts = pd.Series([v for v in values if v is not None]).value_counts()
    assert col["count"] == int(counts.sum()) and col["missing"] == values.count(None)
    if col["count"]:
        assert {t["value"]: t["count"] for t in col["top"]} == counts.to_dict()
        assert [t["count"] for t in col["top"]] == sorted((t["count"] for t in col["top"]), reverse=True)


def test_integer_columns_keep_integer_extremes_and_exact_pandas_quantiles() -> None:
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"n": rng.integers(-1000, 1000, 1001), "u": rng.uniform(0, 1, 1001)})
    cols = _profile(df).profile["columns"]
    assert cols["n"]["min"] == int(df.n.min()) and type(cols["n"]["min"]) is int
    for name in ("n", "u"):
        for q, v in cols[name]["quantiles"].items():
            assert v == pytest.approx(df[name].quantile(float(q)))


def test_top_values_are_capped_at_twenty() -> None:
    df = pd.DataFrame({"c": [f"v{i % 30}" for i in range(300)]})
    col = _profile(df).profile["columns"]["c"]
    assert len(col["top"]) == 20 and col["distinct"] == pytest.approx(30, abs=2)


def test_constant_column_has_one_bin() -> None:
    col = _profile(pd.DataFrame({"k": [5.0] * 7})).profile["columns"]["k"]
    assert col["histogram"] == {"edges": [5.0, 5.0], "counts": [7]}


def test_format_detection() -> None:
    assert detect_format(["a.parquet", "b/c.parquet", "_SUCCESS", ".part.crc"]) == "parquet"
    assert detect_format(["x.CSV"]) == "csv"
    assert detect_format(["x.jsonl", "y.ndjson"]) == "jsonl"
    assert detect_format(["a.parquet", "b.csv"]) == "files"
    assert detect_format(["README", "a.csv"]) == "files"
    assert detect_format([]) == "files"


def test_jsonl_profile_and_unreadable_csv(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1, "b": "x"}\n{"a": 3, "b": null}\n')
    result = profile_files([str(path)], "jsonl")
    assert result.row_count == 2 and result.profile["columns"]["a"]["mean"] == 2.0
    assert result.profile["columns"]["b"]["missing"] == 1
    assert read_table([str(path)], "jsonl").num_rows == 2
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 nope")
    with pytest.raises(InvalidInput, match="cannot read the parquet data"):
        profile_files([str(bad)], "parquet")
