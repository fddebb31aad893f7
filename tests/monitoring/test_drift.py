"""Drift metrics against scipy, calibrated thresholds (no false alarms, real shifts caught), edge cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.drift import METRICS, compare, detect_drift
from shipyard.monitoring.profiles import Profile, fit_bins, profile_frame

CITIES = ["paris", "oslo", "rome", "lima", "kyiv"]
MIX = [0.4, 0.25, 0.15, 0.12, 0.08]


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0, scale: float = 1.0, mix=MIX) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, scale, n),
            "skewed": rng.lognormal(shift, 0.8 * scale, n),
            "count": rng.poisson(3 + shift, n).astype(float),
            "city": rng.choice(CITIES, n, p=mix),
            "flag": rng.random(n) < 0.3,
        }
    )


def _json(result) -> dict:
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


def test_metrics_match_scipy() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(0, 1, 50_000), rng.normal(0.3, 1.2, 20_000)
    c = detect_drift(pd.DataFrame({"v": a}), pd.DataFrame({"v": b}), tests=True).columns["v"]
    assert c.metrics["wasserstein"] == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), abs=2e-3)
    ks = stats.ks_2samp(a, b, method="asymp")
    assert c.metrics["ks"] == pytest.approx(ks.statistic, abs=5e-3)  # evaluated at ~200 fine edges
    assert c.p_value == pytest.approx(ks.pvalue, rel=0.5, abs=1e-12)

    ref = rng.choice(CITIES, 30_000, p=MIX)
    cur = rng.choice(CITIES + ["new"], 10_000, p=[0.3, 0.3, 0.2, 0.1, 0.05, 0.05])
    c = detect_drift(pd.DataFrame({"c": ref}), pd.DataFrame({"c": cur}), tests=True).columns["c"]
    labels = [*CITIES, "new"]
    rc = np.array([(ref == v).sum() for v in labels], dtype=float)
    cc = np.array([(cur == v).sum() for v in labels], dtype=float)
    p, q = rc / rc.sum(), cc / cc.sum()
    assert c.metrics["js"] == pytest.approx(jensenshannon(p, q), abs=1e-9)
    chi2, pv, dof, _ = stats.chi2_contingency(np.vstack([rc, cc]), correction=False)
    assert c.metrics["chi2"] == pytest.approx(chi2, rel=1e-9) and c.p_value == pytest.approx(pv, abs=1e-12)
    assert c.metrics["hellinger"] == pytest.approx(np.sqrt(1 - np.sum(np.sqrt(p * q))), abs=1e-9)
    pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    pf, qf = pf / pf.sum(), qf / qf.sum()
    assert c.metrics["kl"] == pytest.approx(stats.entropy(pf, qf), abs=1e-9)
    assert c.metrics["psi"] == pytest.approx(np.sum((qf - pf) * np.log(qf / pf)), abs=1e-9)
    assert c.unseen == (cur == "new").sum() and c.unseen_top[0]["value"] == "new"


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(-2, 2),
    scale=st.floats(0.3, 3),
    n=st.integers(200, 5_000),
    dist=st.sampled_from(["normal", "exponential", "uniform"]),
)
def test_binned_wasserstein_and_ks_track_the_exact_ones(seed, shift, scale, n, dist) -> None:
    rng = np.random.default_rng(seed)
    draw = getattr(rng, dist)
    a = draw(size=5_000)
    b = draw(size=n) * scale + shift
    c = detect_drift(pd.DataFrame({"v": a}), pd.DataFrame({"v": b})).columns["v"]
    exact = stats.wasserstein_distance(a, b) / np.std(a)
    # Exact per fine bin unless the CDFs cross inside it: a small absolute slack.
    assert c.metrics["wasserstein"] == pytest.approx(exact, rel=0.01, abs=0.01)
    assert c.metrics["wasserstein"] <= exact + 1e-9
    d = stats.ks_2samp(a, b).statistic
    # D is read at the fine edges: it may miss up to one fine bin's mass (≤ ~0.017 at scale 0.3).
    assert d - 0.025 <= c.metrics["ks"] <= d + 1e-9


def test_no_false_alarms_on_large_samples_from_the_same_distribution() -> None:
    alarms = 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        result = detect_drift(_frame(rng, 100_000), _frame(rng, 100_000), seed=seed)
        alarms += len(result.drifted)
        assert not result.dataset_drift
        for col in result.columns.values():
            assert col.status == "ok" and col.value < col.threshold
    assert alarms == 0


def test_calibrated_thresholds_hold_the_false_alarm_rate_on_small_samples() -> None:
    rng = np.random.default_rng(5)
    bins = fit_bins(_frame(rng, 20_000))
    ref = profile_frame(_frame(rng, 20_000), bins)
    alarms, judged = 0, 0
    for seed in range(30):
        result = compare(ref, profile_frame(_frame(rng, 60), bins), seed=seed, resamples=100)
        judged += len(result.columns)
        alarms += len(result.drifted)
        thresholds = [c.threshold for c in result.columns.values()]
        assert all(t >= 0.1 for t in thresholds) and max(thresholds) > 0.1  # noise decides at 60 rows
    assert alarms / judged <= 0.04


@pytest.mark.parametrize(
    ("change", "columns"),
    [
        ({"shift": 0.5}, {"normal", "skewed", "count"}),  # mean shift of 0.5 std
        ({"scale": 1.6}, {"normal", "skewed"}),
        ({"mix": [0.15, 0.25, 0.15, 0.25, 0.2]}, {"city"}),
    ],
)
def test_real_changes_are_flagged(change: dict, columns: set[str]) -> None:
    rng = np.random.default_rng(1)
    result = detect_drift(_frame(rng, 20_000), _frame(rng, 20_000, **change))
    assert columns <= set(result.drifted)
    assert "flag" not in result.drifted


def test_new_categories_are_flagged() -> None:
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"city": rng.choice(CITIES, 10_000, p=MIX)})
    cur = pd.DataFrame({"city": np.r_[rng.choice(CITIES, 8_000, p=MIX), ["atlantis"] * 2_000]})
    c = detect_drift(ref, cur).columns["city"]
    assert c.drifted and c.unseen == 2_000 and c.unseen_top == [{"value": "atlantis", "count": 2_000}]


def test_degenerate_columns_never_give_nan_or_spurious_alarms() -> None:
    n = 1_000
    ref = pd.DataFrame(
        {"const": 1.0, "allmiss": np.nan, "cat": ["a"] * n, "newcat": ["a", "b"] * (n // 2), "x": np.arange(n) * 1.0}
    )
    same = ref.sample(300, random_state=0)
    result = detect_drift(ref, same)
    assert result.drifted == [] and result.columns["allmiss"].status == "no data"
    assert result.columns["const"].value == 0.0 and result.columns["cat"].value == 0.0
    _json(result)

    cur = pd.DataFrame({"const": 1.5, "allmiss": np.nan, "cat": ["a"] * 300, "newcat": ["zz"] * 300, "x": np.nan})
    result = detect_drift(ref, cur)
    cols = result.columns
    assert cols["const"].drifted and cols["const"].out_of_range == 300
    assert cols["const"].metrics["wasserstein"] == pytest.approx(0.5)  # a constant moves by half its size
    assert cols["newcat"].drifted and cols["newcat"].unseen == 300
    assert cols["x"].status == "no data" and cols["x"].current_missing == 300 and not cols["x"].drifted
    assert cols["x"].value is None and cols["x"].metrics == dict.fromkeys(METRICS)
    assert result.share_drifted == pytest.approx(2 / 3) and result.dataset_drift
    _json(result)

    for current in (ref.iloc[[500]], ref.head(1), ref.head(0)):
        result = detect_drift(ref, current, tests=True)
        if current.index.tolist() != [0]:  # the first row is the reference's minimum: a 1-in-200 tail value
            assert result.drifted == []
        d = _json(result)
        if len(current) == 0:
            assert {c["status"] for c in d["columns"].values()} == {"no data"} and d["share_drifted"] == 0.0


def test_empty_profiles_compare_as_no_data() -> None:
    rng = np.random.default_rng(0)
    bins = fit_bins(_frame(rng, 1_000))
    result = compare(profile_frame(_frame(rng, 1_000), bins), Profile.empty(bins), tests=True)
    assert all(c.status == "no data" and c.value is None and c.p_value is None for c in result.columns.values())
    assert not result.dataset_drift


def test_tests_and_methods_on_request() -> None:
    rng = np.random.default_rng(4)
    ref, cur = _frame(rng, 100_000), _frame(rng, 100_000, shift=0.04)
    default = detect_drift(ref, cur, columns=["normal", "city"], tests=True)
    assert not default.columns["normal"].drifted  # 0.04 std: below the minimum effect
    assert default.columns["normal"].p_value < 0.05  # …yet a p-value fires at this sample size
    ks = detect_drift(ref, cur, columns=["normal", "city"], method="ks")
    normal = ks.columns["normal"]
    assert normal.method == "ks" and normal.drifted and normal.threshold == 0.05 and normal.value == normal.p_value
    assert ks.columns["city"].method == "js"  # ks has no meaning for categories: the default stays
    chosen = detect_drift(ref, cur, method={"city": "chi2", "normal": "psi"}, threshold={"normal": 0.001})
    assert chosen.columns["city"].method == "chi2" and chosen.columns["city"].p_value is not None
    assert chosen.columns["normal"].method == "psi" and chosen.columns["normal"].threshold == 0.001
    assert chosen.columns["normal"].drifted and chosen.columns["skewed"].method == "wasserstein"
    for bad in ({"method": "bogus"}, {"method": {"city": "ks"}}, {"method": {"nope": "psi"}}, {"threshold": -1}):
        with pytest.raises(InvalidInput):
            detect_drift(ref.head(100), cur.head(100), **bad)


def test_merged_windows_judge_like_one_window_and_results_are_deterministic() -> None:
    rng = np.random.default_rng(9)
    bins = fit_bins(_frame(rng, 10_000))
    ref = profile_frame(_frame(rng, 10_000), bins)
    parts = [_frame(rng, 700, shift=0.2) for _ in range(3)]
    merged = profile_frame(parts[0], bins) + profile_frame(parts[1], bins) + profile_frame(parts[2], bins)
    whole = profile_frame(pd.concat(parts, ignore_index=True), bins)
    expected = _json(compare(ref, whole, seed=3))
    stored = Profile.from_dict(json.loads(json.dumps(merged.to_dict())), bins)
    for profile in (merged, stored):
        got = _json(compare(ref, profile, seed=3))
        assert got["drifted"] == expected["drifted"] and got["drifted"]
        for name, col in got["columns"].items():
            want = expected["columns"][name]
            assert col["value"] == pytest.approx(want["value"], rel=1e-9)  # sums merge up to rounding
            assert col["threshold"] == pytest.approx(want["threshold"], rel=1e-9)
            for metric, value in col["metrics"].items():
                assert value == (None if value is None else pytest.approx(want["metrics"][metric], rel=1e-9))
    assert _json(compare(ref, whole, seed=3)) == expected
    with pytest.raises(InvalidInput):
        compare(ref, profile_frame(_frame(rng, 10), fit_bins(_frame(rng, 100))))


def test_dataset_drift_share() -> None:
    rng = np.random.default_rng(8)
    ref = _frame(rng, 5_000)
    cur = ref.assign(normal=ref["normal"] + 1, skewed=ref["skewed"] * 3)
    result = detect_drift(ref, cur)
    assert result.drifted == ["normal", "skewed"] and result.share_drifted == pytest.approx(0.4)
    assert not result.dataset_drift and detect_drift(ref, cur, drift_share=0.4).dataset_drift
