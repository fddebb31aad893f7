"""Data drift: compare a current profile with a reference profile, column by column, on the reference's bins.

Every metric is computed from the profiles of ``shipyard.monitoring.profiles`` (never from raw rows),
so a window of any length costs the same. Missing values are left out of every distribution (their
rate is reported as ``current_missing``: it is a data-quality signal, not a distribution change);
a column with no non-missing value in the reference or the current window has status ``"no data"``
— no value, no threshold, never drift.

Metrics (``METRICS``; ``p`` is the reference and ``q`` the current distribution):

* ``wasserstein`` — normalised Wasserstein-1: W1(p, q) / reference standard deviation (ddof=0, as
  Evidently's ``np.std``). Numeric only. Computed bin by bin from the ~200 fine quantile bins' counts
  and value sums: exact (tails included) except inside a bin where the two CDFs cross, so it matches
  ``scipy.stats.wasserstein_distance`` to well under 1 % of the reference std. If the reference
  is constant its std is 0, so W1 is divided by the reference's |mean| (or by 1 when that is 0 too):
  a constant that moves by 10 % of its size is an effect of 0.1.
* ``ks`` — the Kolmogorov–Smirnov statistic D = max |P(X<x) − Q(X<x)| at the fine edges (numeric
  only; at most one fine bin's mass below the raw-data statistic).
* ``js`` — Jensen–Shannon distance (square root of the divergence, natural logarithm, so in
  [0, sqrt(ln 2) ≈ 0.833]: ``scipy.spatial.distance.jensenshannon`` and Evidently's convention).
* ``psi`` — population stability index Σ (q − p) ln(q / p).
* ``kl`` — Kullback–Leibler divergence KL(p ‖ q) = Σ p ln(p / q) (Evidently's direction).
* ``hellinger`` — Hellinger distance sqrt(1 − Σ sqrt(p q)), in [0, 1].
* ``chi2`` — Pearson's chi-squared statistic of the 2 × k table of reference and current bucket counts.

``js``, ``psi``, ``kl``, ``hellinger`` and ``chi2`` use the coarse buckets (reference bins plus
below/above for numbers; kept categories plus other/unseen for categories), dropping buckets empty in
both. ``psi`` and ``kl`` floor empty buckets at ``EPS`` (1e-4, Evidently's value) and renormalise, so
they stay finite when a category is new or disappears.

**Decisions.** A column is judged by one method: the ``method`` argument (one name for all columns,
or a mapping column → name), else the default for its kind:

* numeric → ``wasserstein``, categorical → ``js`` (Evidently's defaults for large data, so results
  are comparable). Both are effect sizes: how far the distribution moved, in units that do not grow
  with the sample size.
* The threshold for a distance is ``max(MIN_EFFECT[metric], the NULL_QUANTILE (0.99) quantile of the
  metric under no drift)``. The null spread is learned from the reference itself: ``resamples``
  (default 200) times, a reference of the reference's size and a current sample of the current's
  size are both drawn (multinomially) from the reference's bucket probabilities, and the metric is
  computed between them. On large windows the null spread is tiny and the minimum effect decides (a
  p-value test would flag any trivial shift there); on small windows sampling noise alone can exceed
  the minimum effect, and the calibrated quantile keeps false alarms near 1 % per column.
* ``MIN_EFFECT`` is 0.1 for every distance: Evidently's defaults for Wasserstein (0.1 std), JS, KL,
  PSI (0.1 is also the customary "some change" PSI level; 0.25 is "major") and Hellinger. A mean
  shift of 0.1 std gives Wasserstein 0.1 and the JS distance of a 5-point mix change is ≈0.05–0.1.
* ``ks`` and ``chi2`` as methods are hypothesis tests, available on request: ``value`` is the
  p-value, the threshold is the significance level ``ALPHA`` (0.05) and the column drifts when
  p < alpha. The p-values use the asymptotic two-sample KS distribution (``scipy.stats.kstwo`` at
  n·m/(n+m)) and chi-squared with k − 1 degrees of freedom. They fire on any real difference once
  samples are large, which is why they are not the default. ``tests=True`` adds the KS (numeric) or
  chi-squared (categorical) p-value to every column without changing the decision.
* A given ``threshold`` (a number, or a mapping column → number) replaces the calibrated one (or the
  alpha, for tests). A distance drifts when value > threshold.

``DriftResult.share_drifted`` is the share of columns with data that drifted; ``dataset_drift`` is
``share_drifted >= drift_share`` (default 0.5, as Evidently) with at least one drifted column.
Everything serialises to plain JSON, with None for anything undefined.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.profiles import (
    CATEGORICAL,
    NUMERIC,
    ColumnProfile,
    Profile,
    fit_bins,
    profile_frame,
)

METRICS = ("psi", "ks", "chi2", "js", "kl", "wasserstein", "hellinger")
TESTS = ("ks", "chi2")  # methods judged by a p-value
DISTANCES = tuple(m for m in METRICS if m not in TESTS)
APPLIES = {NUMERIC: frozenset(METRICS), CATEGORICAL: frozenset(m for m in METRICS if m not in ("ks", "wasserstein"))}
DEFAULT_METHOD = {NUMERIC: "wasserstein", CATEGORICAL: "js"}
DEFAULT_TEST = {NUMERIC: "ks", CATEGORICAL: "chi2"}
MIN_EFFECT = {"wasserstein": 0.1, "js": 0.1, "psi": 0.1, "kl": 0.1, "hellinger": 0.1}
ALPHA = 0.05
NULL_QUANTILE = 0.99
EPS = 1e-4
DRIFT_SHARE = 0.5


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class ColumnDrift:
    column: str
    kind: str
    method: str
    value: float | None
    threshold: float | None
    drifted: bool
    status: str  # "ok" | "drift" | "no data"
    p_value: float | None
    metrics: dict[str, float | None]
    reference_count: int
    current_count: int
    current_missing: int
    unseen: int
    out_of_range: int
    unseen_top: list[dict[str, Any]] = field(default_factory=list)  # most frequent unseen categories

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "value": _num(self.value),
            "threshold": _num(self.threshold),
            "drifted": bool(self.drifted),
            "status": self.status,
            "p_value": _num(self.p_value),
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "reference_count": int(self.reference_count),
            "current_count": int(self.current_count),
            "current_missing": int(self.current_missing),
            "unseen": int(self.unseen),
            "out_of_range": int(self.out_of_range),
            "unseen_top": [dict(u) for u in self.unseen_top],
        }


@dataclass
class DriftResult:
    columns: dict[str, ColumnDrift]
    drifted: list[str]
    share_drifted: float
    dataset_drift: bool
    drift_share: float = DRIFT_SHARE

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": {n: c.to_dict() for n, c in self.columns.items()},
            "drifted": list(self.drifted),
            "share_drifted": _num(self.share_drifted),
            "dataset_drift": bool(self.dataset_drift),
            "drift_share": _num(self.drift_share),
        }


# ---- metrics on count vectors (the last axis is the bucket; leading axes are resamples)


def _props(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True)
    return counts / np.where(total > 0, total, 1)


def _floored(p: np.ndarray) -> np.ndarray:
    p = np.maximum(p, EPS)
    return p / p.sum(axis=-1, keepdims=True)


def psi(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    p, q = _floored(_props(ref)), _floored(_props(cur))
    return np.maximum(((q - p) * np.log(q / p)).sum(axis=-1), 0.0)


def kl(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    p, q = _floored(_props(ref)), _floored(_props(cur))
    return np.maximum((p * np.log(p / q)).sum(axis=-1), 0.0)


def js(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    p, q = _props(ref), _props(cur)
    m = (p + q) / 2
    div = 0.5 * (special.rel_entr(p, m).sum(axis=-1) + special.rel_entr(q, m).sum(axis=-1))
    return np.sqrt(np.maximum(div, 0.0))


def hellinger(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    p, q = _props(ref), _props(cur)
    return np.sqrt(np.maximum(1.0 - np.sqrt(p * q).sum(axis=-1), 0.0))


def chi2_statistic(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    cols = ref + cur
    rows_r = ref.sum(axis=-1, keepdims=True)
    rows_c = cur.sum(axis=-1, keepdims=True)
    total = rows_r + rows_c
    e_r = cols * rows_r / total
    e_c = cols * rows_c / total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(e_r > 0, (ref - e_r) ** 2 / e_r, 0.0) + np.where(e_c > 0, (cur - e_c) ** 2 / e_c, 0.0)
    return terms.sum(axis=-1)


_COARSE = {"psi": psi, "kl": kl, "js": js, "hellinger": hellinger, "chi2": chi2_statistic}


def _cdf_at_edges(fine: np.ndarray) -> np.ndarray:
    """P(X < e_j) for every fine edge (j = 0…f), from counts [below, bins…, above]."""
    n = fine.sum(axis=-1, keepdims=True)
    cum = np.cumsum(fine[..., :-1], axis=-1)  # below, below+bin0, …, below+all bins
    return cum / np.where(n > 0, n, 1)


def _areas(edges: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """∫F over each fine bin, then ∫F below e_0 and ∫(1 − F) above e_f — all exact from counts and sums.

    For a bin [a, b): ∫_a^b F = (b − a)·P(X < a) + E[(b − X)·1{a ≤ X < b}], and the second term is
    (b·count − sum)/n; below the range ∫F = E[(e_0 − X)+], above it ∫(1 − F) = E[(X − e_f)+].
    """
    n = counts.sum(axis=-1, keepdims=True)
    n = np.where(n > 0, n, 1)
    a, b = edges[:-1], edges[1:]
    inner = (b - a) * _cdf_at_edges(counts)[..., :-1] + (b * counts[..., 1:-1] - sums[..., 1:-1]) / n
    lo = (counts[..., :1] * edges[0] - sums[..., :1]) / n
    hi = (sums[..., -1:] - counts[..., -1:] * edges[-1]) / n
    return np.concatenate([inner, lo, hi], axis=-1)


def _w1(edges: np.ndarray, ref: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """W1 = ∫|F_r − F_c| summed bin by bin as |∫_bin (F_r − F_c)|.

    Exact wherever the two CDFs do not cross inside a bin (a bin where they cross, or a tail where
    both have mass, contributes a lower bound), so the error is confined to one ~0.5 % bin.
    """
    if not len(edges):
        return np.zeros(ref[0].shape[:-1])
    return np.abs(_areas(edges, *ref) - _areas(edges, *cur)).sum(axis=-1)


def _ks(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    return np.abs(_cdf_at_edges(ref) - _cdf_at_edges(cur)).max(axis=-1, initial=0.0)


def _ks_p(d: float, n: int, m: int) -> float:
    en = max(1, round(n * m / (n + m)))
    return float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))


def _chi2_p(stat: float, buckets: int) -> float:
    dof = buckets - 1
    if dof < 1:
        return 1.0
    return float(np.clip(stats.chi2.sf(stat, dof), 0.0, 1.0))


class _Column:
    """The distributions of one column in both profiles, and every metric between them."""

    def __init__(self, ref: ColumnProfile, cur: ColumnProfile):
        self.ref, self.cur = ref, cur
        self.kind = ref.kind
        ref_coarse, cur_coarse = ref.counts[:-1], cur.counts[:-1]  # without the missing bucket
        keep = (ref_coarse + cur_coarse) > 0
        self.ref_coarse, self.cur_coarse = ref_coarse[keep], cur_coarse[keep]
        if self.kind == NUMERIC:
            self.edges = np.asarray(ref.bins.fine_edges, dtype=np.float64)
            self.ref_fine, self.cur_fine = ref.fine_counts, cur.fine_counts
            scale = ref.population_std or 0.0
            if scale <= 0:
                scale = abs(ref.mean or 0.0) or 1.0
            self.scale = scale

    def metric(self, name: str) -> float | None:
        if name not in APPLIES[self.kind]:
            return None
        if name == "wasserstein":
            ref = (self.ref_fine, self.ref.fine_sums)
            cur = (self.cur_fine, self.cur.fine_sums)
            return _num(_w1(self.edges, ref, cur) / self.scale)
        if name == "ks":
            return _num(_ks(self.ref_fine, self.cur_fine))
        return _num(_COARSE[name](self.ref_coarse, self.cur_coarse))

    def p_value(self, test: str, metrics: dict[str, float | None]) -> float | None:
        if test == "ks":
            d = metrics.get("ks")
            return None if d is None else _ks_p(d, self.ref.count, self.cur.count)
        stat = metrics.get("chi2")
        return None if stat is None else _chi2_p(stat, len(self.ref_coarse))

    def null(self, name: str, resamples: int, rng: np.random.Generator) -> np.ndarray:
        """The metric between reference-sized and current-sized samples drawn from the reference."""
        n_ref, n_cur = self.ref.count, self.cur.count
        if name in ("wasserstein", "ks"):
            p = self.ref_fine / self.ref_fine.sum()
            ref_draw = rng.multinomial(n_ref, p, size=resamples)
            cur_draw = rng.multinomial(n_cur, p, size=resamples)
            if name == "ks":
                return _ks(ref_draw, cur_draw)
            # A drawn value sits at its bin's reference mean: the null is the sampling noise of the
            # bin counts, which is what separates two samples of one distribution at this size.
            means = self.ref.fine_sums / np.where(self.ref_fine > 0, self.ref_fine, 1)
            ref = (ref_draw, ref_draw * means)
            cur = (cur_draw, cur_draw * means)
            return _w1(self.edges, ref, cur) / self.scale
        p = self.ref_coarse / self.ref_coarse.sum()
        ref_draw = rng.multinomial(n_ref, p, size=resamples)
        cur_draw = rng.multinomial(n_cur, p, size=resamples)
        return _COARSE[name](ref_draw, cur_draw)

    def calibrated_threshold(self, name: str, resamples: int, rng: np.random.Generator) -> float:
        floor = MIN_EFFECT[name]
        if resamples <= 0:
            return floor
        spread = self.null(name, resamples, rng)
        spread = spread[np.isfinite(spread)]
        if not len(spread):
            return floor
        return max(floor, float(np.quantile(spread, NULL_QUANTILE)))


def _per_column(arg: Any, columns: Sequence[str], what: str) -> dict[str, Any]:
    if arg is None:
        return {}
    if isinstance(arg, Mapping):
        unknown = [c for c in arg if c not in columns]
        if unknown:
            raise InvalidInput(f"{what} names unknown column(s): {', '.join(map(repr, unknown))}", field=what)
        return dict(arg)
    return dict.fromkeys(columns, arg)


def compare(
    reference: Profile,
    current: Profile,
    method: str | dict[str, str] | None = None,
    threshold: float | dict[str, float] | None = None,
    tests: bool = False,
    resamples: int = 200,
    seed: int = 0,
    *,
    drift_share: float = DRIFT_SHARE,
) -> DriftResult:
    """Judge drift column by column between two profiles on the same bins (see the module docstring).

    ``method`` given as one name applies to every column it is defined for (``ks`` and
    ``wasserstein`` are numeric only; categorical columns then keep their default); named per
    column, it must fit the column. Deterministic for a given ``seed``.
    """
    if not isinstance(reference, Profile) or not isinstance(current, Profile):
        raise InvalidInput("compare takes two Profile objects", field="reference")
    if reference.bins is not current.bins and reference.bins != current.bins:
        raise InvalidInput("the reference and current profiles were counted on different bins", field="bins")
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 0:
        raise InvalidInput(f"resamples must be a non-negative integer, got {resamples!r}", field="resamples")
    try:
        drift_share = float(drift_share)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"drift_share must be a number in (0, 1], got {drift_share!r}", field="drift_share") from exc
    if not 0.0 < drift_share <= 1.0:
        raise InvalidInput(f"drift_share must be in (0, 1], got {drift_share!r}", field="drift_share")
    names = list(reference.bins.columns)
    single_method = isinstance(method, str)
    methods = _per_column(method, names, "method")
    for col, m in methods.items():
        if m not in METRICS:
            raise InvalidInput(f"unknown drift method {m!r}; choose one of {', '.join(METRICS)}", field="method")
        kind = reference.bins.columns[col].kind
        if not single_method and m not in APPLIES[kind]:
            raise InvalidInput(f"method {m!r} does not apply to {kind} column {col!r}", field="method")
    thresholds = _per_column(threshold, names, "threshold")
    for col, t in thresholds.items():
        value = _num(t) if isinstance(t, int | float) and not isinstance(t, bool) else None
        if value is None or value < 0:
            raise InvalidInput(f"threshold for {col!r} must be a non-negative number, got {t!r}", field="threshold")
        thresholds[col] = value

    out: dict[str, ColumnDrift] = {}
    for i, name in enumerate(names):
        ref_col, cur_col = reference.columns[name], current.columns[name]
        kind = ref_col.kind
        chosen = methods.get(name)
        m = chosen if chosen is not None and chosen in APPLIES[kind] else DEFAULT_METHOD[kind]
        common = {
            "column": name,
            "kind": kind,
            "method": m,
            "reference_count": ref_col.count,
            "current_count": cur_col.count,
            "current_missing": cur_col.missing,
            "unseen": cur_col.unseen,
            "out_of_range": cur_col.below + cur_col.above,
            "unseen_top": [{"value": v, "count": c} for v, c in cur_col.unseen_top()],
        }
        if ref_col.count == 0 or cur_col.count == 0:
            out[name] = ColumnDrift(
                value=None,
                threshold=None,
                drifted=False,
                status="no data",
                p_value=None,
                metrics=dict.fromkeys(METRICS),
                **common,
            )
            continue
        col = _Column(ref_col, cur_col)
        metrics = {metric: col.metric(metric) for metric in METRICS}
        p_value = None
        if m in TESTS:
            p_value = col.p_value(m, metrics)
            value = p_value
            limit = thresholds.get(name, ALPHA)
            drifted = value is not None and value < limit
        else:
            value = metrics[m]
            if name in thresholds:
                limit = thresholds[name]
            else:
                rng = np.random.default_rng([int(seed), i])
                limit = col.calibrated_threshold(m, int(resamples), rng)
            drifted = value is not None and value > limit
        if tests and p_value is None:
            p_value = col.p_value(DEFAULT_TEST[kind], metrics)
        out[name] = ColumnDrift(
            value=_num(value),
            threshold=_num(limit),
            drifted=bool(drifted),
            status="drift" if drifted else "ok",
            p_value=_num(p_value),
            metrics=metrics,
            **common,
        )

    judged = [c for c in out.values() if c.status != "no data"]
    drifted_names = [c.column for c in judged if c.drifted]
    share = len(drifted_names) / len(judged) if judged else 0.0
    return DriftResult(
        columns=out,
        drifted=drifted_names,
        share_drifted=share,
        dataset_drift=bool(drifted_names) and share >= drift_share,
        drift_share=drift_share,
    )


_FIT_OPTIONS = ("n_bins", "max_categories", "categorical")


def detect_drift(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None = None, **options: Any
) -> DriftResult:
    """Fit bins on ``reference``, profile both frames and ``compare`` them.

    ``options`` are ``fit_bins``'s ``n_bins``, ``max_categories`` and ``categorical``, and
    ``compare``'s keyword arguments.
    """
    fit = {k: options.pop(k) for k in _FIT_OPTIONS if k in options}
    if not isinstance(current, pd.DataFrame):
        raise InvalidInput("the current data must be a pandas DataFrame", field="current")
    bins = fit_bins(reference, columns, **fit)
    return compare(profile_frame(reference, bins), profile_frame(current, bins), **options)
