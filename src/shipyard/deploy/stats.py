"""The statistical judge of progressive deployments (canary, A/B, shadow).

Pure functions over numpy/scipy that compare a CANDIDATE model version against the BASELINE on live
traffic and return JSON-safe pydantic results:

* :func:`error_rate_check` - difference of error proportions with a Newcombe hybrid-score (Wilson) CI and
  Fisher's exact test;
* :func:`latency_check` - Hodges-Lehmann shift with its distribution-free (Moses) CI and the Mann-Whitney U test;
* :func:`divergence_check` - Jensen-Shannon distance between the two prediction distributions, chi-squared test;
* :func:`metric_check` - Welch difference of means of a business metric, from sufficient statistics;
* :func:`judge` - the checks above over two :class:`VariantSample` s, combined into one :class:`Judgement`;
* :func:`msprt` - the mixture sequential probability ratio test, for A/B tests that are looked at continuously.

Conventions:

* ``alpha`` is a one-sided level. Each decision (pass or fail) is a one-sided test at ``alpha``, and the reported
  confidence intervals are the matching two-sided ``1 - 2*alpha`` intervals (95% for the default 0.025), so "the CI
  upper bound is within the margin" *is* the one-sided non-inferiority test at ``alpha``.
* A check never passes or fails for lack of data: below the minimum sample size it is ``inconclusive`` and says
  (in ``details["more_samples_needed"]``) how many more samples it needs.
* No result carries NaN or infinity (they are not JSON); undefined figures are ``None``.
* Randomised parts (bootstrap, subsampling) use a fixed seed, so the same data always gets the same verdict.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

Verdict = Literal["pass", "fail", "inconclusive"]

_SEED = 20170707  # fixed, so a verdict is a function of the data alone
_BOOTSTRAP_RESAMPLES = 200
_MAX_LATENCY_SAMPLES = 5000  # per variant for the shift estimate; keeps it ~10 ms at the cap
_MAX_CATEGORIES = 20  # categorical predictions beyond this are lumped into "(other)"
_NUMERIC_BINS = 10
_SMOOTHING = 1e-10
_HUGE = 1e308  # stands in for infinity in JSON-bound results


# --------------------------------------------------------------------------------------------- models


class CheckResult(BaseModel):
    """The outcome of one check, with the numbers behind it."""

    name: str
    verdict: Verdict
    message: str
    n_baseline: int
    n_candidate: int
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = {}


class Judgement(BaseModel):
    """All checks of one comparison: fail if any fails, pass if all pass, inconclusive otherwise."""

    verdict: Verdict
    checks: list[CheckResult]
    summary: str


class JudgePolicy(BaseModel):
    """Thresholds of the judge. ``alpha`` is one-sided; reported CIs are two-sided ``1 - 2*alpha``."""

    alpha: float = Field(default=0.025, gt=0.0, lt=0.5)
    min_samples: int = Field(default=100, ge=1)
    error_rate_margin: float = Field(default=0.01, ge=0.0)
    latency_margin_ms: float = Field(default=5.0, ge=0.0)
    latency_margin_ratio: float = Field(default=0.2, ge=0.0)
    divergence_threshold: float = Field(default=0.1, ge=0.0, le=1.0)
    metric_min_samples: int = Field(default=30, ge=2)
    metric_margin: float = Field(default=0.0, ge=0.0)
    higher_is_better: bool = True


class MetricSummary(BaseModel):
    """Sufficient statistics of a business metric reported through feedback."""

    n: int = Field(default=0, ge=0)
    total: float = 0.0
    total_sq: float = 0.0


class VariantSample(BaseModel):
    """What the router collected for one variant during a step."""

    requests: int = Field(default=0, ge=0)
    errors: int = Field(default=0, ge=0)
    latencies_ms: list[float] = []
    predictions: list[Any] = []
    metrics: dict[str, MetricSummary] = {}


class SequentialResult(BaseModel):
    """One look of the mixture SPRT. ``ci_low``/``ci_high`` are +-1e308 when there is not yet any information."""

    decision: Literal["candidate_better", "baseline_better", "no_difference", "continue"]
    p_value: float
    estimate: float
    ci_low: float
    ci_high: float
    n_baseline: int
    n_candidate: int
    message: str


# -------------------------------------------------------------------------------------------- helpers


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def _clip_p(p: Any) -> float:
    # scipy can return NaN for degenerate inputs; no evidence means p = 1, not a crash or a NaN in JSON
    value = float(p)
    if not math.isfinite(value):
        return 1.0
    return min(1.0, max(0.0, value))


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "p=n/a"
    if p == 0.0:
        return "p<1e-300"
    return f"p={p:.1g}" if p < 0.001 else f"p={p:.3g}"


def _level(alpha: float) -> str:
    return f"{100.0 * (1.0 - 2.0 * alpha):.4g}%"


def _z(alpha: float) -> float:
    return float(sps.norm.ppf(1.0 - alpha))


def _needs(name: str, n_baseline: int, n_candidate: int, need: int, unit: str) -> tuple[int, str]:
    """How many more samples the larger shortfall is, and a sentence saying so."""
    short_base, short_cand = max(need - n_baseline, 0), max(need - n_candidate, 0)
    more = max(short_base, short_cand)
    which = [f"{s} more {v} {unit}" for v, s in (("candidate", short_cand), ("baseline", short_base)) if s > 0]
    text = (
        f"{name}: not enough data yet ({n_candidate} candidate vs {n_baseline} baseline {unit}, "
        f"{need} needed per variant): needs {' and '.join(which)}"
    )
    return more, text


# --------------------------------------------------------------------------------------- error rate


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _newcombe(k_c: int, n_c: int, k_b: int, n_b: int, z: float) -> tuple[float, float, float]:
    """Difference p_c - p_b with Newcombe's hybrid score interval (method 10); sane at 0 and 100%."""
    p_c, p_b = k_c / n_c, k_b / n_b
    l_c, u_c = _wilson(k_c, n_c, z)
    l_b, u_b = _wilson(k_b, n_b, z)
    d = p_c - p_b
    low = d - math.sqrt((p_c - l_c) ** 2 + (u_b - p_b) ** 2)
    high = d + math.sqrt((u_c - p_c) ** 2 + (p_b - l_b) ** 2)
    return d, max(-1.0, low), min(1.0, high)


def error_rate_check(base_errors: int, base_n: int, cand_errors: int, cand_n: int, policy: JudgePolicy) -> CheckResult:
    """Is the candidate's error rate at most ``error_rate_margin`` (absolute) worse than the baseline's?

    Estimate, CI and threshold are proportions (0.01 = 1 percentage point). The p-value is Fisher's exact test
    that the candidate errs more often (one-sided), exact and fine with zero errors.
    """
    for label, errors, n in (("baseline", base_errors, base_n), ("candidate", cand_errors, cand_n)):
        if n < 0 or errors < 0 or errors > n:
            raise ValueError(f"{label}: need 0 <= errors <= requests, got {errors} errors of {n} requests")
    margin = policy.error_rate_margin
    details: dict[str, Any] = {
        "baseline_rate": base_errors / base_n if base_n else None,
        "candidate_rate": cand_errors / cand_n if cand_n else None,
        "baseline_errors": base_errors,
        "candidate_errors": cand_errors,
        "ci_level": 1.0 - 2.0 * policy.alpha,
    }
    common = {"name": "error_rate", "n_baseline": base_n, "n_candidate": cand_n, "threshold": margin}
    if base_n < policy.min_samples or cand_n < policy.min_samples:
        more, text = _needs("error_rate", base_n, cand_n, policy.min_samples, "requests")
        details["more_samples_needed"] = more
        return CheckResult(verdict="inconclusive", message=text, details=details, **common)

    d, low, high = _newcombe(cand_errors, cand_n, base_errors, base_n, _z(policy.alpha))
    table = [[cand_errors, cand_n - cand_errors], [base_errors, base_n - base_errors]]
    p = _clip_p(sps.fisher_exact(table, alternative="greater").pvalue)
    if low > margin or (p < policy.alpha and d > margin):
        verdict: Verdict = "fail"
        tail = f"worse than the baseline beyond the {100 * margin:.2f} pp margin ({_fmt_p(p)})"
    elif high <= margin:
        verdict = "pass"
        tail = f"within the {100 * margin:.2f} pp margin"
    else:
        verdict = "inconclusive"
        tail = f"not yet shown to be within the {100 * margin:.2f} pp margin ({_fmt_p(p)})"
    message = (
        f"candidate error rate {cand_errors / cand_n:.2%} ({cand_errors}/{cand_n}) vs baseline "
        f"{base_errors / base_n:.2%} ({base_errors}/{base_n}): difference {100 * d:+.2f} pp, "
        f"{_level(policy.alpha)} CI [{100 * low:.2f}, {100 * high:.2f}] pp, {tail}"
    )
    return CheckResult(
        verdict=verdict, message=message, estimate=d, ci_low=low, ci_high=high, p_value=p, details=details, **common
    )


# ------------------------------------------------------------------------------------------ latency


def _finite_array(values: Sequence[float]) -> tuple[np.ndarray, int]:
    arr = np.asarray(list(values), dtype=float).ravel()
    keep = np.isfinite(arr)
    return arr[keep], int((~keep).sum())


def _first_at_or_below(c: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Per c_i, the first j with fl(c_i - b_j) <= t (b sorted, so those j are a suffix).

    ``searchsorted(b, c - t)`` alone can be off at the boundary because ``c - t`` is rounded differently from
    ``c - b_j``; one fix-up step per side (moving a whole block of tied b values) makes the count agree exactly
    with the differences themselves, which the final snap relies on.
    """
    n_b = b.size
    j = np.searchsorted(b, c - t, side="left")
    prev = b[np.clip(j - 1, 0, n_b - 1)]
    j = np.where((j > 0) & (c - prev <= t), np.searchsorted(b, prev, side="left"), j)
    cur = b[np.clip(j, 0, n_b - 1)]
    return np.where((j < n_b) & (c - cur > t), np.searchsorted(b, cur, side="right"), j)


def _kth_difference(c: np.ndarray, b: np.ndarray, k: int) -> float:
    """The k-th smallest (1-based) of the pairwise differences c_i - b_j, both arrays sorted.

    Bisection on the value with an O(n log n) count per step instead of materialising n*m differences
    (4 million for 2000 vs 2000); once few differences are left in the bracket they are listed and sorted.
    """
    total = c.size * b.size

    def count_le(t: float) -> int:
        return int(total - _first_at_or_below(c, b, t).sum())

    lo, hi = float(c[0] - b[-1]), float(c[-1] - b[0])
    count_lo, count_hi = count_le(lo), total
    if k <= 1 or count_lo >= k:
        return lo
    # invariant: count_lo = count_le(lo) < k <= count_le(hi) = count_hi
    while count_hi - count_lo > 1024:
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:  # adjacent floats (cannot normally happen: ties are caught below)
            return hi
        count_mid = count_le(mid)
        stalled = count_mid in (count_lo, count_hi)
        if count_mid >= k:
            hi, count_hi = mid, count_mid
        else:
            lo, count_lo = mid, count_mid
        if stalled:
            # halving the bracket moved no difference out of it: a block of ties (integer milliseconds, say).
            # Jump to the smallest difference above lo; if it reaches rank k it is the answer.
            j = _first_at_or_below(c, b, lo) - 1
            valid = j >= 0
            nxt = float((c[valid] - b[j[valid]]).min())
            count_nxt = count_le(nxt)
            if count_nxt >= k:
                return nxt
            lo, count_lo = nxt, count_nxt
    # list the differences in (lo, hi]: row i contributes j in [first_at_or_below(hi), first_at_or_below(lo))
    start, stop = _first_at_or_below(c, b, hi), _first_at_or_below(c, b, lo)
    lengths = stop - start
    rows = np.repeat(np.arange(c.size), lengths)
    offsets = np.cumsum(lengths) - lengths
    cols = start[rows] + (np.arange(rows.size) - offsets[rows])
    window = np.sort(c[rows] - b[cols])
    return float(window[k - count_lo - 1])


def _hodges_lehmann(c: np.ndarray, b: np.ndarray, z: float) -> tuple[float, float, float]:
    """Hodges-Lehmann shift (median of c_i - b_j) and its Moses CI (the Mann-Whitney test inverted)."""
    c, b = np.sort(c), np.sort(b)
    total = c.size * b.size
    estimate = _kth_difference(c, b, (total + 1) // 2)
    if total % 2 == 0:
        estimate = (estimate + _kth_difference(c, b, total // 2 + 1)) / 2.0
    k = math.floor(total / 2.0 - z * math.sqrt(c.size * b.size * (c.size + b.size + 1) / 12.0))
    k = max(k, 1)
    low, high = _kth_difference(c, b, k), _kth_difference(c, b, total + 1 - k)
    return estimate, min(low, estimate), max(high, estimate)


def latency_check(base_ms: Sequence[float], cand_ms: Sequence[float], policy: JudgePolicy) -> CheckResult:
    """Is the candidate no slower than the baseline by more than the latency margin?

    The effect is the Hodges-Lehmann shift (ms; robust to the long tail), its CI the distribution-free Moses
    interval; the p-value is the one-sided Mann-Whitney U test (candidate slower). The margin is
    ``max(latency_margin_ms, latency_margin_ratio * baseline median)``. Non-finite values are dropped.
    """
    b, dropped_b = _finite_array(base_ms)
    c, dropped_c = _finite_array(cand_ms)
    details: dict[str, Any] = {"dropped_non_finite": dropped_b + dropped_c, "ci_level": 1.0 - 2.0 * policy.alpha}
    if b.size:
        details.update(baseline_median_ms=float(np.median(b)), baseline_p95_ms=float(np.percentile(b, 95)))
    if c.size:
        details.update(candidate_median_ms=float(np.median(c)), candidate_p95_ms=float(np.percentile(c, 95)))
    base_median = float(np.median(b)) if b.size else 0.0
    margin = max(policy.latency_margin_ms, policy.latency_margin_ratio * base_median)
    common = {"name": "latency", "n_baseline": int(b.size), "n_candidate": int(c.size), "threshold": margin}
    if b.size < policy.min_samples or c.size < policy.min_samples:
        more, text = _needs("latency", int(b.size), int(c.size), policy.min_samples, "latency samples")
        details["more_samples_needed"] = more
        return CheckResult(verdict="inconclusive", message=text, details=details, **common)

    test = sps.mannwhitneyu(c, b, alternative="greater")
    p = _clip_p(test.pvalue)
    # U counts pairs where the candidate is slower (+1/2 per tie): the common-language effect size
    details["prob_candidate_slower"] = _finite(float(test.statistic) / (c.size * b.size))
    rng = np.random.default_rng(_SEED)
    c_sub = c if c.size <= _MAX_LATENCY_SAMPLES else rng.choice(c, _MAX_LATENCY_SAMPLES, replace=False)
    b_sub = b if b.size <= _MAX_LATENCY_SAMPLES else rng.choice(b, _MAX_LATENCY_SAMPLES, replace=False)
    shift, low, high = _hodges_lehmann(c_sub, b_sub, _z(policy.alpha))
    details["median_difference_ms"] = details["candidate_median_ms"] - details["baseline_median_ms"]

    if low > margin or (p < policy.alpha and shift > margin):
        verdict: Verdict = "fail"
        tail = f"slower than the baseline beyond the {margin:.1f} ms margin"
    elif high <= margin:
        verdict = "pass"
        tail = f"within the {margin:.1f} ms margin"
    else:
        verdict = "inconclusive"
        tail = f"not yet shown to be within the {margin:.1f} ms margin"
    message = (
        f"candidate latency shift {shift:+.1f} ms (median {details['candidate_median_ms']:.1f} vs "
        f"{details['baseline_median_ms']:.1f} ms, p95 {details['candidate_p95_ms']:.1f} vs "
        f"{details['baseline_p95_ms']:.1f} ms), {_level(policy.alpha)} CI [{low:.1f}, {high:.1f}] ms, "
        f"{_fmt_p(p)}: {tail}"
    )
    return CheckResult(
        verdict=verdict,
        message=message,
        estimate=shift,
        ci_low=low,
        ci_high=high,
        p_value=p,
        details=details,
        **common,
    )


# --------------------------------------------------------------------------------------- divergence


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _histograms(base: Sequence[Any], cand: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, str, list[str], int]:
    """Counts of both variants over shared bins, the kind, the bin labels and how many values were dropped."""
    if base and cand and all(_is_number(v) for v in base) and all(_is_number(v) for v in cand):
        b, dropped_b = _finite_array(base)
        c, dropped_c = _finite_array(cand)
        if b.size and c.size:
            # quantile bins of the baseline: equally full under "no change", open-ended at both ends
            edges = np.unique(np.quantile(b, np.linspace(0.0, 1.0, _NUMERIC_BINS + 1)[1:-1]))
            n_bins = edges.size + 1
            counts_b = np.bincount(np.searchsorted(edges, b, side="left"), minlength=n_bins)
            counts_c = np.bincount(np.searchsorted(edges, c, side="left"), minlength=n_bins)
            bounds = [-math.inf, *edges.tolist(), math.inf]
            labels = [f"({bounds[i]:.4g}, {bounds[i + 1]:.4g}]" for i in range(n_bins)]
            return counts_b, counts_c, "numeric", labels, dropped_b + dropped_c
    counter_b = Counter(str(v) for v in base)
    counter_c = Counter(str(v) for v in cand)
    pooled = counter_b + counter_c
    keep = [k for k, _ in sorted(pooled.items(), key=lambda kv: (-kv[1], kv[0]))[:_MAX_CATEGORIES]]
    labels = sorted(keep)
    counts_b = np.array([counter_b.get(k, 0) for k in labels], dtype=np.int64)
    counts_c = np.array([counter_c.get(k, 0) for k in labels], dtype=np.int64)
    if len(pooled) > len(keep):
        # rare categories are lumped: a chi-squared test over hundreds of sparse cells says nothing
        labels.append("(other)")
        counts_b = np.append(counts_b, len(base) - counts_b.sum())
        counts_c = np.append(counts_c, len(cand) - counts_c.sum())
    return counts_b, counts_c, "categorical", labels, 0


def _js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2, in [0, 1]) along the last axis of count or proportion arrays."""
    p = p / p.sum(axis=-1, keepdims=True) + _SMOOTHING
    q = q / q.sum(axis=-1, keepdims=True) + _SMOOTHING
    d = np.asarray(jensenshannon(p, q, base=2, axis=-1), dtype=float)
    # rounding can make the divergence a hair negative, and sqrt of that is NaN
    return np.clip(np.nan_to_num(d, nan=0.0), 0.0, 1.0)


def divergence_check(
    base_predictions: Sequence[Any], cand_predictions: Sequence[Any], policy: JudgePolicy
) -> CheckResult:
    """Do the candidate's predictions follow the baseline's distribution (Jensen-Shannon distance <= threshold)?

    Numbers are binned into up to 10 quantile bins of the baseline; anything else is categorical (``str(value)``).
    The p-value is the chi-squared test of homogeneity; the CI is a fixed-seed bootstrap of the distance. A
    distance above the threshold fails only when the chi-squared test also rejects at ``alpha``: with few samples
    per bin, sampling noise alone gives distances above 0.1, and that is "not enough data", not a failure.
    """
    counts_b, counts_c, kind, labels, dropped = _histograms(base_predictions, cand_predictions)
    n_b, n_c = int(counts_b.sum()), int(counts_c.sum())
    threshold = policy.divergence_threshold
    details: dict[str, Any] = {"kind": kind, "bins": labels, "dropped_non_finite": dropped}
    common = {"name": "prediction_divergence", "n_baseline": n_b, "n_candidate": n_c, "threshold": threshold}
    if n_b < policy.min_samples or n_c < policy.min_samples:
        more, text = _needs("prediction_divergence", n_b, n_c, policy.min_samples, "predictions")
        details["more_samples_needed"] = more
        return CheckResult(verdict="inconclusive", message=text, details=details, **common)

    details["baseline_shares"] = (counts_b / n_b).round(4).tolist()
    details["candidate_shares"] = (counts_c / n_c).round(4).tolist()
    distance = float(_js_distance(counts_b.astype(float), counts_c.astype(float)))

    table = np.vstack([counts_b, counts_c])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        p, statistic = 1.0, 0.0  # one category only: nothing can differ
    else:
        chi2 = sps.chi2_contingency(table)
        p, statistic = _clip_p(chi2.pvalue), float(chi2.statistic)
    details["chi2_statistic"] = _finite(statistic)

    rng = np.random.default_rng(_SEED)
    boot_b = rng.multinomial(n_b, counts_b / n_b, size=_BOOTSTRAP_RESAMPLES).astype(float)
    boot_c = rng.multinomial(n_c, counts_c / n_c, size=_BOOTSTRAP_RESAMPLES).astype(float)
    boot = _js_distance(boot_b, boot_c)
    low, high = np.quantile(boot, [policy.alpha, 1.0 - policy.alpha]).tolist()
    # the distance is biased upwards by noise, so the percentile interval can sit above the estimate
    low, high = min(low, distance), max(high, distance)

    if distance > threshold and p < policy.alpha:
        verdict: Verdict = "fail"
        tail = f"above the {threshold:g} threshold"
    elif distance <= threshold:
        verdict = "pass"
        tail = f"within the {threshold:g} threshold"
    else:
        verdict = "inconclusive"
        tail = f"above the {threshold:g} threshold but not distinguishable from sampling noise yet"
    message = (
        f"prediction distributions ({kind}, {len(labels)} bins) differ by Jensen-Shannon distance {distance:.3f}, "
        f"{_level(policy.alpha)} CI [{low:.3f}, {high:.3f}], chi-squared {_fmt_p(p)}: {tail}"
    )
    return CheckResult(
        verdict=verdict,
        message=message,
        estimate=distance,
        ci_low=low,
        ci_high=high,
        p_value=p,
        details=details,
        **common,
    )


# ------------------------------------------------------------------------------------------ metrics


def _mean_var(summary: MetricSummary) -> tuple[float, float]:
    n = summary.n
    mean = summary.total / n
    var = (summary.total_sq - summary.total * summary.total / n) / (n - 1) if n > 1 else 0.0
    return mean, max(var, 0.0)  # rounding in total_sq can make a zero variance slightly negative


def metric_check(name: str, base: MetricSummary, cand: MetricSummary, policy: JudgePolicy) -> CheckResult:
    """Is the candidate's mean of a business metric no worse than the baseline's by more than ``metric_margin``?

    Estimate and CI are ``candidate mean - baseline mean`` in the metric's unit (Welch t interval); the p-value is
    the one-sided Welch test that the candidate is worse, where "worse" is lower when ``higher_is_better``.
    """
    margin = policy.metric_margin
    common = {"name": f"metric:{name}", "n_baseline": base.n, "n_candidate": cand.n, "threshold": margin}
    details: dict[str, Any] = {"higher_is_better": policy.higher_is_better, "ci_level": 1.0 - 2.0 * policy.alpha}
    if base.n < policy.metric_min_samples or cand.n < policy.metric_min_samples:
        more, text = _needs(f"metric:{name}", base.n, cand.n, policy.metric_min_samples, "observations")
        details["more_samples_needed"] = more
        return CheckResult(verdict="inconclusive", message=text, details=details, **common)
    sums = (base.total, base.total_sq, cand.total, cand.total_sq)
    if not all(math.isfinite(x) for x in sums):
        return CheckResult(
            verdict="inconclusive", message=f"metric:{name}: non-finite sums reported", details=details, **common
        )

    mean_b, var_b = _mean_var(base)
    mean_c, var_c = _mean_var(cand)
    details.update(baseline_mean=mean_b, candidate_mean=mean_c, baseline_sd=math.sqrt(var_b))
    details["candidate_sd"] = math.sqrt(var_c)
    d = mean_c - mean_b
    se_b2, se_c2 = var_b / base.n, var_c / cand.n
    se = math.sqrt(se_b2 + se_c2)
    pooled_sd = math.sqrt((var_b + var_c) / 2.0)
    details["cohens_d"] = d / pooled_sd if pooled_sd > 0 else None
    worse = -d if policy.higher_is_better else d  # > 0 means the candidate is worse
    if se > 0 and math.isfinite(se):
        df = (se_b2 + se_c2) ** 2 / (se_b2**2 / (base.n - 1) + se_c2**2 / (cand.n - 1))
        half = float(sps.t.ppf(1.0 - policy.alpha, df)) * se
        p = _clip_p(sps.t.sf(worse / se, df))
        details["welch_df"] = _finite(df)
    else:
        half = 0.0  # no spread at all: the observed difference is the difference
        p = 0.0 if worse > 0 else 1.0
    low, high = d - half, d + half
    worst = high if not policy.higher_is_better else -low  # how much worse the candidate can plausibly be
    best = low if not policy.higher_is_better else -high  # how much worse it is at least
    if best > margin or (p < policy.alpha and worse > margin):
        verdict: Verdict = "fail"
        tail = f"worse than the baseline beyond the {margin:g} margin"
    elif worst <= margin:
        verdict = "pass"
        tail = "not worse than the baseline" + (f" by more than the {margin:g} margin" if margin else "")
    else:
        verdict = "inconclusive"
        tail = "not yet shown to be no worse than the baseline" + (f" within the {margin:g} margin" if margin else "")
    direction = "higher" if policy.higher_is_better else "lower"
    message = (
        f"metric {name} ({direction} is better): candidate mean {mean_c:.4g} (n={cand.n}) vs baseline {mean_b:.4g} "
        f"(n={base.n}): difference {d:+.4g}, {_level(policy.alpha)} CI [{low:.4g}, {high:.4g}], {_fmt_p(p)}: {tail}"
    )
    return CheckResult(
        verdict=verdict,
        message=message,
        estimate=d,
        ci_low=low,
        ci_high=high,
        p_value=p,
        details=details,
        **common,
    )


# -------------------------------------------------------------------------------------------- judge


def _brief(check: CheckResult) -> str:
    """A few words for the summary line."""
    if "more_samples_needed" in check.details:
        return f"{check.name} (needs {check.details['more_samples_needed']} more samples)"
    if check.estimate is None:
        return check.name
    if check.name == "error_rate":
        figure = f"candidate {100 * check.estimate:+.2f} pp"
    elif check.name == "latency":
        figure = f"candidate {check.estimate:+.1f} ms median shift"
    elif check.name == "prediction_divergence":
        figure = f"JS distance {check.estimate:.3f}"
    else:
        figure = f"candidate {check.estimate:+.4g}"
    return f"{check.name} ({figure}, {_fmt_p(check.p_value)})"


def judge(baseline: VariantSample, candidate: VariantSample, policy: JudgePolicy | None = None) -> Judgement:
    """Run every check the samples allow and combine them: any fail -> fail, all pass -> pass, else inconclusive.

    Error rate always; latency if both have latencies; divergence if both have predictions; one metric check per
    metric reported by both.
    """
    policy = policy or JudgePolicy()
    checks = [error_rate_check(baseline.errors, baseline.requests, candidate.errors, candidate.requests, policy)]
    if baseline.latencies_ms and candidate.latencies_ms:
        checks.append(latency_check(baseline.latencies_ms, candidate.latencies_ms, policy))
    if baseline.predictions and candidate.predictions:
        checks.append(divergence_check(baseline.predictions, candidate.predictions, policy))
    for name in sorted(set(baseline.metrics) & set(candidate.metrics)):
        checks.append(metric_check(name, baseline.metrics[name], candidate.metrics[name], policy))

    failed = [c for c in checks if c.verdict == "fail"]
    open_ = [c for c in checks if c.verdict == "inconclusive"]
    if failed:
        verdict: Verdict = "fail"
        summary = "fail: " + "; ".join(_brief(c) for c in failed)
    elif open_:
        verdict = "inconclusive"
        passed = len(checks) - len(open_)
        summary = f"inconclusive: {'; '.join(_brief(c) for c in open_)} ({passed} of {len(checks)} checks passed)"
    else:
        verdict = "pass"
        summary = f"pass: all {len(checks)} checks passed ({', '.join(c.name for c in checks)})"
    return Judgement(verdict=verdict, checks=checks, summary=summary)


# ------------------------------------------------------------------------------------- mixture SPRT


def msprt(
    base: MetricSummary,
    cand: MetricSummary,
    *,
    alpha: float = 0.05,
    tau: float | None = None,
    max_samples: int | None = None,
) -> SequentialResult:
    """One look of the two-sample mixture SPRT (Johari, Pekelis & Walsh 2017, "Always valid inference").

    With d the difference of means (candidate - baseline), s^2 the pooled variance and V = s^2 (1/n_b + 1/n_c),
    the likelihood ratio against "no difference", mixed over a N(0, tau^2) prior on the effect, is
    ``Lambda = sqrt(V/(V+tau^2)) * exp(tau^2 d^2 / (2 V (V+tau^2)))`` and ``p = min(1, 1/Lambda)``. Unlike a
    t-test's, this p-value stays valid however often one looks (the caller keeps its running minimum across looks);
    ``ci_low``/``ci_high`` are the matching anytime-valid (1 - alpha) confidence sequence. ``tau`` defaults to the
    pooled standard deviation (1.0 if that is zero). Works for 0/1 conversion metrics (``total_sq == total``).

    With fewer than 2 observations in an arm there is no variance yet: decision "continue", p = 1, and the CI is
    (-1e308, 1e308) (finite stand-ins for infinity, which JSON cannot carry); the estimate is the difference of
    means when both arms have at least one observation, else 0.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n_b, n_c = base.n, cand.n
    sums = (base.total, base.total_sq, cand.total, cand.total_sq)
    if n_b < 2 or n_c < 2 or not all(math.isfinite(x) for x in sums):
        estimate = cand.total / n_c - base.total / n_b if n_b and n_c else 0.0
        return SequentialResult(
            decision="continue",
            p_value=1.0,
            estimate=_finite(estimate) or 0.0,
            ci_low=-_HUGE,
            ci_high=_HUGE,
            n_baseline=n_b,
            n_candidate=n_c,
            message=f"not enough data yet ({n_c} candidate vs {n_b} baseline observations, 2 needed per arm)",
        )
    mean_b, var_b = _mean_var(base)
    mean_c, var_c = _mean_var(cand)
    d = mean_c - mean_b
    pooled = ((n_b - 1) * var_b + (n_c - 1) * var_c) / (n_b + n_c - 2)
    tau2 = (tau * tau) if tau is not None else (pooled if pooled > 0 else 1.0)
    v = pooled * (1.0 / n_b + 1.0 / n_c)
    if not (math.isfinite(v) and math.isfinite(tau2) and math.isfinite(d)):
        # sums so large that squaring them overflowed: report "no information" rather than NaN
        p, low, high = 1.0, -_HUGE, _HUGE
    elif v <= 0.0 or tau2 <= 0.0:
        # no spread: any difference is certain, no difference is certain too
        p = 0.0 if d != 0.0 else 1.0
        low = high = d
    else:
        # in logs: exp() of the quadratic term overflows long before the p-value stops being meaningful
        log_lambda = 0.5 * math.log(v / (v + tau2)) + tau2 * d * d / (2.0 * v * (v + tau2))
        p = _clip_p(math.exp(-log_lambda)) if log_lambda < 700 else 0.0
        half = math.sqrt(v * (v + tau2) / tau2 * (math.log((v + tau2) / v) + 2.0 * math.log(1.0 / alpha)))
        low, high = d - half, d + half
    if p < alpha:
        decision: Literal["candidate_better", "baseline_better", "no_difference", "continue"] = (
            "candidate_better" if d > 0 else "baseline_better"
        )
        what = f"the {'candidate' if d > 0 else 'baseline'} has the higher mean"
    elif max_samples is not None and n_b >= max_samples and n_c >= max_samples:
        decision = "no_difference"
        what = f"no difference detected within {max_samples} observations per arm"
    else:
        decision = "continue"
        what = "keep collecting"
    message = (
        f"candidate mean {mean_c:.4g} (n={n_c}) vs baseline {mean_b:.4g} (n={n_b}): difference {d:+.4g}, "
        f"always-valid {100 * (1 - alpha):.4g}% CI [{low:.4g}, {high:.4g}], always-valid {_fmt_p(p)}: {what}"
    )
    return SequentialResult(
        decision=decision,
        p_value=p,
        estimate=d,
        ci_low=max(low, -_HUGE),
        ci_high=min(high, _HUGE),
        n_baseline=n_b,
        n_candidate=n_c,
        message=message,
    )
