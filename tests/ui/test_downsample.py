"""Properties of the dashboard's chart downsampling (``shipyard.ui.charts.downsample``, M4 buckets)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.ui.charts import downsample

values = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def series(draw: st.DrawFn) -> tuple[list[float], list[float], int]:
    ys = draw(st.lists(values, min_size=1, max_size=1500))
    # sorted x with repeats allowed (several points may share a step)
    gaps = draw(st.lists(st.integers(min_value=0, max_value=3), min_size=len(ys), max_size=len(ys)))
    xs = np.cumsum(gaps).astype(float).tolist()
    points = draw(st.integers(min_value=4, max_value=400))
    return xs, ys, points


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _is_subsequence(xs: np.ndarray, ys: np.ndarray, in_x: list[float], in_y: list[float]) -> bool:
    i = 0
    for x, y in zip(xs, ys, strict=True):
        while i < len(in_x) and not (in_x[i] == x and _same(in_y[i], y)):
            i += 1
        if i == len(in_x):
            return False
        i += 1
    return True


@settings(max_examples=150, deadline=None)
@given(series())
def test_downsample_properties(data: tuple[list[float], list[float], int]) -> None:
    xs, ys, points = data
    out_x, out_y = downsample(xs, ys, points)
    assert len(out_x) == len(out_y) <= points
    # the first and the last point always survive
    assert out_x[0] == xs[0] and _same(out_y[0], ys[0])
    assert out_x[-1] == xs[-1] and _same(out_y[-1], ys[-1])
    # x stays monotone and every point is one of the input's, in order
    assert np.all(np.diff(out_x) >= 0)
    assert _is_subsequence(out_x, out_y, xs, ys)
    # the global extremes (NaN set aside; ±inf are values) survive
    real = [y for y in ys if not math.isnan(y)]
    if real:
        kept = [y for y in out_y.tolist() if not math.isnan(y)]
        assert min(real) in kept
        assert max(real) in kept


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=40),
    st.integers(min_value=40, max_value=100),
)
def test_short_series_come_back_unchanged(ys: list[float], points: int) -> None:
    out_x, out_y = downsample(list(range(len(ys))), ys, points)
    assert out_x.tolist() == list(range(len(ys)))
    assert out_y.tolist() == ys


def test_infinite_spikes_are_extremes_too() -> None:
    ys = [0.0] * 10_000
    ys[1234], ys[7777] = math.inf, -math.inf
    _, out_y = downsample(range(10_000), ys, 100)
    assert math.inf in out_y.tolist() and -math.inf in out_y.tolist()


def test_150k_points_cut_to_the_cap_quickly_keeping_spikes() -> None:
    rng = np.random.default_rng(7)
    ys = rng.normal(size=150_000)
    ys[98_765] = 50.0
    ys[12_345] = -50.0
    started = time.perf_counter()
    out_x, out_y = downsample(np.arange(150_000), ys, 2000)
    elapsed = time.perf_counter() - started
    assert len(out_x) <= 2000
    assert out_y.max() == 50.0 and out_y.min() == -50.0
    assert elapsed < 0.5


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        downsample([1, 2], [1.0], 10)
    with pytest.raises(ValueError):
        downsample([1, 2], [1.0, 2.0], 3)
