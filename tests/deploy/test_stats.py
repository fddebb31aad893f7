"""The statistical judge: verdicts on real-looking data, honesty with little data, and JSON-safe results."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from shipyard.deploy.stats import (
    CheckResult,
    Judgement,
    JudgePolicy,
    MetricSummary,
    SequentialResult,
    VariantSample,
    divergence_check,
    error_rate_check,
    judge,
    latency_check,
    metric_check,
    msprt,
)

POLICY = JudgePolicy()


def _json_safe(result: CheckResult) -> None:
    """No NaN/inf anywhere, and the result survives a JSON round trip unchanged."""
    text = result.model_dump_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in {text}"))
    assert CheckResult.model_validate_json(text) == result


def _summary(values: np.ndarray) -> MetricSummary:
    return MetricSummary(n=len(values), total=float(values.sum()), total_sq=float((values**2).sum()))


# ------------------------------------------------------------------------------------------- error rate


def test_zero_errors_on_both_sides_passes_with_enough_traffic() -> None:
    r = error_rate_check(0, 500, 0, 500, POLICY)
    assert r.verdict == "pass"
    assert r.estimate == 0.0 and r.p_value == 1.0
    assert r.ci_low is not None and r.ci_high is not None
    assert r.ci_low < 0.0 < r.ci_high <= POLICY.error_rate_margin
    assert "within the 1.00 pp margin" in r.message
    _json_safe(r)


def test_too_little_traffic_is_inconclusive_and_says_how_much_more() -> None:
    r = error_rate_check(0, 50, 0, 50, POLICY)
    assert r.verdict == "inconclusive"
    assert r.details["more_samples_needed"] == 50
    assert "needs 50 more candidate requests" in r.message
    # even a disastrous candidate is not failed on 50 requests: that would be deciding on noise
    assert error_rate_check(0, 500, 40, 50, POLICY).verdict == "inconclusive"


def test_clearly_worse_candidate_fails() -> None:
    r = error_rate_check(2, 1000, 60, 1000, POLICY)
    assert r.verdict == "fail"
    assert r.p_value is not None and r.p_value < 1e-6
    assert r.estimate == pytest.approx(0.058)
    assert r.ci_low is not None and r.ci_low > POLICY.error_rate_margin
    assert error_rate_check(0, 500, 50, 500, POLICY).verdict == "fail"


def test_error_rate_between_pass_and_fail_is_inconclusive() -> None:
    # +2.3 pp observed, but the CI reaches below 0: neither within the margin nor shown worse
    r = error_rate_check(3, 300, 10, 300, POLICY)
    assert r.verdict == "inconclusive"
    assert r.ci_low is not None and r.ci_high is not None
    assert r.ci_low < POLICY.error_rate_margin < r.ci_high


def test_better_candidate_passes() -> None:
    assert error_rate_check(30, 2000, 5, 2000, POLICY).verdict == "pass"


@pytest.mark.parametrize("args", [(-1, 10, 0, 10), (11, 10, 0, 10), (0, 10, 0, -5)])
def test_impossible_counts_are_rejected(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        error_rate_check(*args, POLICY)


@st.composite
def _counts(draw: st.DrawFn) -> tuple[int, int, int, int]:
    base_n = draw(st.integers(0, 10**6))
    cand_n = draw(st.integers(0, 10**6))
    return draw(st.integers(0, base_n)), base_n, draw(st.integers(0, cand_n)), cand_n


@settings(max_examples=200, deadline=None)
@given(_counts(), st.floats(0.001, 0.2), st.integers(1, 1000))
def test_error_rate_check_is_always_well_formed(
    counts: tuple[int, int, int, int], alpha: float, min_samples: int
) -> None:
    r = error_rate_check(*counts, JudgePolicy(alpha=alpha, min_samples=min_samples))
    assert r.verdict in ("pass", "fail", "inconclusive")
    if r.estimate is not None:
        assert r.ci_low is not None and r.ci_high is not None and r.p_value is not None
        assert -1.0 <= r.ci_low <= r.estimate <= r.ci_high <= 1.0
        assert 0.0 <= r.p_value <= 1.0
    if min(counts[1], counts[3]) < min_samples:
        assert r.verdict == "inconclusive"
    _json_safe(r)


# ---------------------------------------------------------------------------------------------- latency


def _latencies(n: int, median: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(math.log(median), 0.35, n)


def test_latency_shift_of_40_ms_fails() -> None:
    r = latency_check(_latencies(500, 50, 1), _latencies(500, 50, 2) + 40, POLICY)
    assert r.verdict == "fail"
    assert r.estimate == pytest.approx(40, abs=3)
    assert r.p_value is not None and r.p_value < 1e-9
    assert r.details["prob_candidate_slower"] > 0.8
    assert r.threshold == pytest.approx(10, rel=0.1)  # 20% of the ~50 ms baseline median beats the 5 ms floor


def test_same_latency_distribution_passes_with_enough_samples() -> None:
    r = latency_check(_latencies(2000, 50, 3), _latencies(2000, 50, 4), POLICY)
    assert r.verdict == "pass"
    assert r.ci_low is not None and r.ci_high is not None
    assert r.ci_low <= 0 <= r.ci_high <= r.threshold
    assert 0.4 < r.details["prob_candidate_slower"] < 0.6
    for key in ("baseline_median_ms", "candidate_median_ms", "baseline_p95_ms", "candidate_p95_ms"):
        assert key in r.details


def test_twenty_latency_samples_are_inconclusive() -> None:
    r = latency_check(_latencies(20, 50, 5), _latencies(20, 50, 6) + 100, POLICY)
    assert r.verdict == "inconclusive"
    assert r.details["more_samples_needed"] == 80


def test_identical_constant_latencies_pass_without_nan() -> None:
    r = latency_check([12.0] * 300, [12.0] * 300, POLICY)
    assert r.verdict == "pass"
    assert (r.estimate, r.ci_low, r.ci_high, r.p_value) == (0.0, 0.0, 0.0, 1.0)
    _json_safe(r)


def test_heavily_tied_latencies_and_non_finite_values() -> None:
    base = np.round(_latencies(1500, 20, 7)).tolist() + [float("nan"), float("inf")]
    cand = np.round(_latencies(1500, 20, 8)).tolist()
    r = latency_check(base, cand, POLICY)
    assert r.verdict == "pass"
    assert r.details["dropped_non_finite"] == 2
    assert r.estimate is not None and r.estimate == float(round(r.estimate))  # a shift of whole milliseconds
    _json_safe(r)


@pytest.mark.parametrize("seed", range(6))
def test_hodges_lehmann_shift_is_the_exact_median_of_pairwise_differences(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 30, 150) * 0.5 if seed % 2 else rng.gamma(2.0, 10.0, 150)
    cand = rng.integers(0, 30, 161) * 0.5 if seed % 2 else rng.gamma(2.0, 10.0, 161) + 3
    r = latency_check(base, cand, POLICY)
    diffs = np.subtract.outer(cand, base).ravel()
    assert r.estimate == pytest.approx(float(np.median(diffs)), abs=1e-12)
    # the Moses interval: order statistics of the differences, ranks from the Mann-Whitney null distribution
    diffs.sort()
    z = sps.norm.ppf(1 - POLICY.alpha)
    k = math.floor(diffs.size / 2 - z * math.sqrt(150 * 161 * (150 + 161 + 1) / 12))
    assert (r.ci_low, r.ci_high) == (pytest.approx(diffs[k - 1]), pytest.approx(diffs[diffs.size - k]))


def test_latency_check_never_builds_all_pairwise_differences() -> None:
    # 2000 x 2000 samples are 4 million pairs; the exact order statistics avoid materialising them. This
    # guards the complexity (a quadratic build takes seconds), not a speed figure: speed lives in bench/.
    base, cand = _latencies(2000, 50, 9), _latencies(2000, 52, 10)
    start = time.perf_counter()
    result = latency_check(base, cand, POLICY)
    assert time.perf_counter() - start < 3.0
    assert result.estimate is not None and result.ci_low <= result.estimate <= result.ci_high


# ------------------------------------------------------------------------------------------- divergence


def _classes(n: int, probs: list[float], seed: int) -> list[str]:
    return np.random.default_rng(seed).choice(["cat", "dog", "bird"], n, p=probs).tolist()


def test_same_class_distribution_passes() -> None:
    r = divergence_check(_classes(800, [0.7, 0.2, 0.1], 1), _classes(800, [0.7, 0.2, 0.1], 2), POLICY)
    assert r.verdict == "pass"
    assert r.details["kind"] == "categorical"
    assert r.estimate is not None and r.estimate < 0.05
    _json_safe(r)


def test_swapped_classes_fail() -> None:
    r = divergence_check(_classes(800, [0.7, 0.2, 0.1], 1), _classes(800, [0.2, 0.7, 0.1], 2), POLICY)
    assert r.verdict == "fail"
    assert r.estimate is not None and r.estimate > 0.3
    assert r.p_value is not None and r.p_value < 1e-20
    assert r.ci_low is not None and r.ci_low > POLICY.divergence_threshold


def test_numeric_predictions_are_binned_on_baseline_quantiles() -> None:
    rng = np.random.default_rng(3)
    same = divergence_check(rng.normal(0, 1, 3000).tolist(), rng.normal(0, 1, 3000).tolist(), POLICY)
    assert same.verdict == "pass" and same.details["kind"] == "numeric" and len(same.details["bins"]) == 10
    shifted = divergence_check(rng.normal(0, 1, 3000).tolist(), rng.normal(1, 1, 3000).tolist(), POLICY)
    assert shifted.verdict == "fail"


def test_constant_predictions_have_zero_distance() -> None:
    r = divergence_check([1] * 200, [1] * 200, POLICY)
    assert r.verdict == "pass" and r.estimate == 0.0 and r.p_value == 1.0
    _json_safe(r)


def test_divergence_needs_samples_and_does_not_fail_on_noise() -> None:
    assert divergence_check(["a"] * 50, ["b"] * 50, POLICY).verdict == "inconclusive"
    # 100 vs 100 over 10 bins: sampling noise alone gives a distance around 0.15, which is not a regression
    rng = np.random.default_rng(0)
    r = divergence_check(rng.normal(0, 1, 100).tolist(), rng.normal(0, 1, 100).tolist(), POLICY)
    assert r.verdict != "fail"


def test_mixed_prediction_types_are_categorical() -> None:
    base = [1, "1", None, True] * 50
    r = divergence_check(base, list(reversed(base)), POLICY)
    assert r.details["kind"] == "categorical" and r.verdict == "pass"
    _json_safe(r)


# --------------------------------------------------------------------------------------------- metrics


def test_metric_check_higher_is_better() -> None:
    rng = np.random.default_rng(4)
    base = _summary(rng.normal(10, 2, 1000))
    worse = metric_check("revenue", base, _summary(rng.normal(9, 2, 1000)), POLICY)
    assert worse.verdict == "fail" and worse.name == "metric:revenue"
    assert worse.estimate is not None and worse.estimate < 0
    better = metric_check("revenue", base, _summary(rng.normal(11, 2, 1000)), POLICY)
    assert better.verdict == "pass"
    tolerant = JudgePolicy(metric_margin=0.5)
    assert metric_check("revenue", base, _summary(rng.normal(10, 2, 1000)), tolerant).verdict == "pass"


def test_metric_check_lower_is_better_flips_the_direction() -> None:
    rng = np.random.default_rng(5)
    base = _summary(rng.normal(10, 2, 1000))
    policy = JudgePolicy(higher_is_better=False)
    assert metric_check("wait", base, _summary(rng.normal(11, 2, 1000)), policy).verdict == "fail"
    assert metric_check("wait", base, _summary(rng.normal(9, 2, 1000)), policy).verdict == "pass"


def test_metric_check_small_samples_and_zero_variance() -> None:
    few = metric_check("m", MetricSummary(n=10, total=10, total_sq=10), MetricSummary(n=10, total=0), POLICY)
    assert few.verdict == "inconclusive" and few.details["more_samples_needed"] == 20
    flat = MetricSummary(n=100, total=300.0, total_sq=900.0)
    same = metric_check("m", flat, flat, POLICY)
    assert same.verdict == "pass" and same.ci_low == same.ci_high == 0.0
    lower = metric_check("m", flat, MetricSummary(n=100, total=200.0, total_sq=400.0), POLICY)
    assert lower.verdict == "fail" and lower.p_value == 0.0
    _json_safe(lower)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=60),
    st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=60),
    st.booleans(),
)
def test_metric_check_is_always_well_formed(base: list[float], cand: list[float], higher_is_better: bool) -> None:
    policy = JudgePolicy(metric_min_samples=2, higher_is_better=higher_is_better)
    r = metric_check("m", _summary(np.array(base)), _summary(np.array(cand)), policy)
    if r.estimate is not None:
        assert r.ci_low is not None and r.ci_high is not None and r.p_value is not None
        assert r.ci_low <= r.estimate <= r.ci_high and 0.0 <= r.p_value <= 1.0
    _json_safe(r)


# ----------------------------------------------------------------------------------------------- judge


def _sample(errors: int, latency_median: float, probs: list[float], seed: int, n: int = 1000) -> VariantSample:
    rng = np.random.default_rng(seed)
    return VariantSample(
        requests=n,
        errors=errors,
        latencies_ms=_latencies(n, latency_median, seed).tolist(),
        predictions=_classes(n, probs, seed),
        metrics={"ctr": _summary((rng.random(n) < 0.1).astype(float))},
    )


def test_judge_passes_a_healthy_candidate() -> None:
    policy = JudgePolicy(metric_margin=0.05)
    j = judge(_sample(1, 50, [0.6, 0.3, 0.1], 1), _sample(0, 50, [0.6, 0.3, 0.1], 2), policy)
    assert [c.name for c in j.checks] == ["error_rate", "latency", "prediction_divergence", "metric:ctr"]
    assert j.verdict == "pass", j.summary
    assert j.summary.startswith("pass: all 4 checks passed")
    assert Judgement.model_validate_json(j.model_dump_json()) == j


def test_judge_fails_if_any_check_fails_and_names_it() -> None:
    policy = JudgePolicy(metric_margin=0.05)
    j = judge(_sample(1, 50, [0.6, 0.3, 0.1], 1), _sample(0, 90, [0.6, 0.3, 0.1], 2), policy)
    assert j.verdict == "fail"
    assert [c.name for c in j.checks if c.verdict == "fail"] == ["latency"]
    assert j.summary.startswith("fail: latency (candidate +")


def test_judge_is_inconclusive_when_nothing_fails_but_something_is_open() -> None:
    j = judge(_sample(1, 50, [0.6, 0.3, 0.1], 1), _sample(0, 50, [0.6, 0.3, 0.1], 2, n=60))
    assert j.verdict == "inconclusive"
    assert "error_rate (needs 40 more samples)" in j.summary


def test_judge_runs_only_the_checks_the_data_allows() -> None:
    j = judge(VariantSample(requests=500), VariantSample(requests=500))
    assert [c.name for c in j.checks] == ["error_rate"] and j.verdict == "pass"
    j = judge(VariantSample(), VariantSample())
    assert j.verdict == "inconclusive"


# ------------------------------------------------------------------------------------------------ mSPRT


def test_msprt_keeps_its_false_positive_rate_under_continuous_monitoring() -> None:
    """200 A/A tests, looked at every 50 observations up to 2000: mSPRT stays near alpha, a t-test does not."""
    rng = np.random.default_rng(2017)
    experiments, n_max, step, alpha = 200, 2000, 50, 0.05
    base, cand = rng.normal(0, 1, (experiments, n_max)), rng.normal(0, 1, (experiments, n_max))
    looks = np.arange(step, n_max + 1, step)
    sum_b, sum_c = np.cumsum(base, axis=1)[:, looks - 1], np.cumsum(cand, axis=1)[:, looks - 1]
    sq_b, sq_c = np.cumsum(base**2, axis=1)[:, looks - 1], np.cumsum(cand**2, axis=1)[:, looks - 1]

    msprt_rejected = 0
    for e in range(experiments):
        for i, n in enumerate(looks):
            r = msprt(
                MetricSummary(n=int(n), total=sum_b[e, i], total_sq=sq_b[e, i]),
                MetricSummary(n=int(n), total=sum_c[e, i], total_sq=sq_c[e, i]),
                alpha=alpha,
            )
            if r.decision != "continue":
                msprt_rejected += 1
                break
    assert msprt_rejected / experiments < 0.08  # 0.005 with this seed

    # the naive way: a t-test at every look, stopping at the first p < alpha
    mean_b, mean_c = sum_b / looks, sum_c / looks
    var_b = (sq_b - sum_b**2 / looks) / (looks - 1)
    var_c = (sq_c - sum_c**2 / looks) / (looks - 1)
    t = (mean_c - mean_b) / np.sqrt(var_b / looks + var_c / looks)
    p = 2 * sps.t.sf(np.abs(t), 2 * looks - 2)
    naive_rate = float((p < alpha).any(axis=1).mean())
    assert naive_rate > 0.15  # 0.285 with this seed: peeking inflates false positives


def test_msprt_detects_a_real_conversion_difference() -> None:
    rng = np.random.default_rng(7)
    base, cand = (rng.random(5000) < 0.1).astype(float), (rng.random(5000) < 0.2).astype(float)
    for n in range(100, 5001, 100):
        r = msprt(_summary(base[:n]), _summary(cand[:n]), alpha=0.05)
        if r.decision != "continue":
            break
    assert r.decision == "candidate_better" and r.p_value < 0.05
    assert r.ci_low <= 0.1 <= r.ci_high and r.ci_low > 0
    swapped = msprt(_summary(cand), _summary(base), alpha=0.05)
    assert swapped.decision == "baseline_better"


def test_msprt_edge_cases() -> None:
    early = msprt(MetricSummary(n=1, total=1.0, total_sq=1.0), MetricSummary(n=0))
    assert early.decision == "continue" and early.p_value == 1.0
    assert (early.ci_low, early.ci_high) == (-1e308, 1e308)
    assert SequentialResult.model_validate_json(early.model_dump_json()) == early

    flat = MetricSummary(n=100, total=50.0, total_sq=25.0)  # all values 0.5: no variance
    assert msprt(flat, flat).decision == "continue"
    assert msprt(flat, flat, max_samples=100).decision == "no_difference"

    rng = np.random.default_rng(8)
    same = _summary(rng.normal(0, 1, 3000))
    r = msprt(same, _summary(rng.normal(0, 1, 3000)), max_samples=3000)
    assert r.decision == "no_difference" and r.ci_low < 0 < r.ci_high


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_msprt_on_conversions_is_always_well_formed(n_b: int, k_b: int, n_c: int, k_c: int) -> None:
    k_b, k_c = min(k_b, n_b), min(k_c, n_c)
    r = msprt(MetricSummary(n=n_b, total=k_b, total_sq=k_b), MetricSummary(n=n_c, total=k_c, total_sq=k_c))
    assert 0.0 <= r.p_value <= 1.0
    assert r.ci_low <= r.estimate <= r.ci_high
    assert SequentialResult.model_validate_json(r.model_dump_json()) == r
