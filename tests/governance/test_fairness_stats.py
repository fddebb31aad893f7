"""Property tests of the fairness statistics: the Wilson interval (against SciPy's), the disparate-impact
ratio, and the whole report against Fairlearn on random groups, labels and predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from shipyard.governance.fairness import FOUR_FIFTHS, disparate_impact, fairness_report, wilson_interval


@st.composite
def counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, 5000))
    return draw(st.integers(0, n)), n


@given(counts())
def test_wilson_matches_scipy(kn: tuple[int, int]) -> None:
    k, n = kn
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)


@given(counts())
def test_wilson_contains_the_rate_and_mirrors(kn: tuple[int, int]) -> None:
    k, n = kn
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    mirror_low, mirror_high = wilson_interval(n - k, n)
    assert low == pytest.approx(1 - mirror_high, abs=1e-12)
    assert high == pytest.approx(1 - mirror_low, abs=1e-12)


@given(st.integers(1, 50), st.integers(0, 50))
def test_wilson_narrows_with_more_data(k: int, extra: int) -> None:
    n = k + extra
    small, large = wilson_interval(k, n), wilson_interval(10 * k, 10 * n)
    assert large[1] - large[0] < small[1] - small[0]


def test_wilson_without_trials() -> None:
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


# rates are counts over sizes: zero or at least 1/size, never subnormal
rates = st.dictionaries(st.sampled_from("abcdef"), st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=1)


@given(rates, st.floats(0.01, 1.0))
def test_disparate_impact(found: dict[str, float], scale: float) -> None:
    reference = sorted(found)[0]
    ratios = disparate_impact(found, reference)
    if found[reference] == 0:
        assert all(r is None for r in ratios.values())  # undefined against a zero rate
        return
    assert ratios[reference] == pytest.approx(1.0)
    for group, rate in found.items():
        assert ratios[group] * found[reference] == pytest.approx(rate)
    # a ratio: scaling every rate leaves it unchanged
    scaled = disparate_impact({g: r * scale for g, r in found.items()}, reference)
    for group in found:
        assert scaled[group] == pytest.approx(ratios[group], rel=1e-9, abs=1e-12)


@st.composite
def populations(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, pd.Series, int]:
    n_groups = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, 80)) for _ in range(n_groups)]
    groups = pd.Series([f"g{i}" for i, size in enumerate(sizes) for _ in range(size)])
    n = len(groups)
    y_true = np.asarray(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    y_pred = np.asarray(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    return y_true, y_pred, groups, draw(st.integers(1, 40))


@settings(max_examples=60, deadline=None)
@given(populations())
def test_report_agrees_with_fairlearn(population: tuple[np.ndarray, np.ndarray, pd.Series, int]) -> None:
    y_true, y_pred, groups, min_size = population
    report = fairness_report(y_true, y_pred, groups, min_group_size=min_size)
    sizes = groups.value_counts()
    assert report["small_groups"] == sorted(g for g in sizes.index if sizes[g] < min_size)
    judged = report["judged_groups"]
    for row in report["groups"]:
        rows = (groups == row["group"]).to_numpy()
        assert row["size"] == rows.sum()
        assert row["selection_rate"] == pytest.approx(y_pred[rows].mean())
        for key in ("selection_rate", "tpr", "fpr", "accuracy"):
            if row[key] is not None:
                low, high = row[f"{key}_ci"]
                assert low - 1e-12 <= row[key] <= high + 1e-12
    metrics = report["metrics"]
    if len(judged) < 2:
        assert all(v is None for v in metrics.values())
        return
    keep = groups.isin(judged).to_numpy()
    args = (y_true[keep], y_pred[keep])
    same = {"sensitive_features": groups[keep].to_numpy()}
    assert metrics["demographic_parity_difference"] == pytest.approx(demographic_parity_difference(*args, **same))
    ratio = demographic_parity_ratio(*args, **same)
    if math.isfinite(ratio):
        assert metrics["demographic_parity_ratio"] == pytest.approx(ratio)
    expected_eo = equalized_odds_difference(*args, **same)
    if math.isfinite(expected_eo):
        assert metrics["equalized_odds_difference"] == pytest.approx(expected_eo)
    ratios = {g["group"]: g["disparate_impact_ratio"] for g in report["groups"]}
    if all(ratios[g] is not None for g in judged):
        assert metrics["disparate_impact_ratio"] == pytest.approx(min(ratios[g] for g in judged))
        assert metrics["four_fifths_passed"] == all(ratios[g] >= FOUR_FIFTHS for g in judged)
        assert ratios[report["reference_group"]] == pytest.approx(1.0)
    else:
        assert metrics["four_fifths_passed"] is None
