"""Downsampling of long metric series for charts: per bucket keep the minimum and the maximum point.

A chart asking for ``max_points`` of a long series gets at most that many points, and every spike
and dip survives because each bucket contributes its extremes, not an average.
"""

from __future__ import annotations

import numpy as np


def minmax_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices (ascending) of the points to keep; ``values`` is ordered by step and may hold NaN."""
    n = len(values)
    if max_points <= 0 or n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    finite_low = np.where(np.isnan(values), np.inf, values)
    finite_high = np.where(np.isnan(values), -np.inf, values)
    keep: list[int] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        low = lo + int(np.argmin(finite_low[lo:hi]))
        high = lo + int(np.argmax(finite_high[lo:hi]))
        # An all-NaN bucket yields its first point once (argmin and argmax both land on it).
        keep.extend(sorted({low, high}))
    return np.asarray(keep[:max_points], dtype=np.int64)
