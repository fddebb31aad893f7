"""Fairness of a binary classifier across groups: per-group rates with confidence intervals and the
aggregate disparity measures, computed with Fairlearn (pure functions, no database).

Per group: selection rate, true and false positive rates and accuracy (Fairlearn's ``MetricFrame``),
each with a 95% Wilson score interval on the group's counts, and the group's size. Aggregates, over
the *judged* groups only — groups smaller than ``min_group_size`` are flagged ``small`` and left out,
since a rate on a handful of rows says more about noise than about the model:

* demographic parity difference and ratio, equalized odds difference (Fairlearn's functions);
* equal opportunity difference: the largest gap in true positive rate;
* the disparate-impact ratio of each group's selection rate to the reference group's (default: the
  largest group), and the four-fifths rule: every judged group's ratio is at least 0.8.

Undefined figures (a TPR in a group without positives, a ratio against a zero rate) are ``None``,
never NaN: results are stored as JSON.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from shipyard.core.errors import InvalidInput
from shipyard.governance.slices import ordered, slice_keys
from shipyard.monitoring.performance import normalize_label

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile
FOUR_FIFTHS = 0.8
MAX_GROUPS = 200  # more distinct groups than this is almost surely an id column, not a sensitive feature


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> list[float] | None:
    """The Wilson score interval of a binomial proportion; None when there are no trials.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and behaves at 0 and n successes,
    which matters for the small groups fairness is most often about.
    """
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..{trials}, not {successes}")
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    center = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # exact at the ends (the formula gives 0 and 1 there, up to float rounding) and never excluding p
    low = 0.0 if successes == 0 else min(p, max(0.0, center - half))
    high = 1.0 if successes == trials else max(p, min(1.0, center + half))
    return [low, high]


def disparate_impact(rates: dict[str, float | None], reference: str) -> dict[str, float | None]:
    """Each group's selection rate divided by the reference group's; None where undefined
    (a missing rate, or a reference rate of zero)."""
    base = rates.get(reference)
    return {
        group: (None if rate is None or base is None or base == 0 else float(rate) / float(base))
        for group, rate in rates.items()
    }


def binarize(values: pd.Series, positive: Any) -> np.ndarray:
    """1 where a value is the positive label (compared as normalised text: 1, 1.0 and "1" agree), else 0."""
    target = normalize_label(positive)
    return np.asarray([1 if normalize_label(v) == target else 0 for v in values], dtype=np.int64)


def choose_positive(labels: pd.Series, positive_label: Any, classes: list[str]) -> Any:
    """The positive label: the one given, else 1 / True when the labels are 0/1 or booleans, else the
    model's last class (scikit-learn's ``classes_[-1]``), else the larger of the two labels."""
    seen = sorted({normalize_label(v) for v in labels.dropna()})
    if len(seen) > 2:
        raise InvalidInput(
            f"fairness needs a binary label; the label column has {len(seen)} values ({', '.join(seen[:5])}…)",
            field="label_column",
        )
    if isinstance(positive_label, bool | np.bool_) and set(seen) <= {"0", "1"}:
        positive_label = int(positive_label)  # True means 1 for 0/1 labels
    if positive_label is not None:
        if seen and normalize_label(positive_label) not in seen:
            raise InvalidInput(
                f"positive_label {positive_label!r} is not a value of the label column ({', '.join(seen)})",
                field="positive_label",
            )
        return positive_label
    if set(seen) <= {"0", "1"} or set(seen) <= {"False", "True"}:
        return "True" if "True" in seen else "1"
    if len(classes) == 2 and (not seen or classes[-1] in seen):
        return classes[-1]
    if not seen:
        raise InvalidInput("the label column has no values", field="label_column")
    return seen[-1]


def group_labels(frame: pd.DataFrame, sensitive: list[str]) -> pd.Series:
    """One group name per row: the value for one sensitive feature, ``a=x, b=y`` for several. A
    numeric column with many values (an age) is cut into quantile bands, as evaluation slices are."""
    keys = {c: slice_keys(frame[c].reset_index(drop=True)).astype(str) for c in sensitive}
    if len(sensitive) == 1:
        return keys[sensitive[0]]
    combined = f"{sensitive[0]}=" + keys[sensitive[0]]
    for c in sensitive[1:]:
        combined = combined + f", {c}=" + keys[c]
    return combined


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fairness_report(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: pd.Series,
    *,
    reference_group: str | None = None,
    min_group_size: int = 30,
) -> dict[str, Any]:
    """The fairness result for binary ``y_true``/``y_pred`` (0/1) and one group name per row.

    Returns ``{"reference_group", "groups": [...], "metrics": {...}, "small_groups": [...],
    "judged_groups": [...]}`` (see the module docstring for each figure).
    """
    groups = groups.reset_index(drop=True).astype(str)
    names = ordered(sorted(groups.unique()))  # quantile bands in numeric order
    if not names:
        raise InvalidInput("the dataset has no rows to evaluate", field="dataset")
    if len(names) > MAX_GROUPS:
        raise InvalidInput(
            f"the sensitive features form {len(names)} groups (more than {MAX_GROUPS}); is this an identifier column?",
            field="sensitive_features",
        )
    with warnings.catch_warnings():
        # a group with no positives (or negatives) has an undefined TPR (FPR): None in the result
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
                "accuracy": accuracy_score,
                "count": count,
            },
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups.rename("group"),
        )
    by_group = frame.by_group
    # the counts behind each rate, for its confidence interval
    counts = pd.DataFrame({"group": groups, "t": y_true, "p": y_pred}).groupby("group")
    sizes = counts.size()
    positives = counts["t"].sum()
    selected = counts["p"].sum()
    true_pos = counts.apply(lambda g: int(((g["t"] == 1) & (g["p"] == 1)).sum()), include_groups=False)
    false_pos = counts.apply(lambda g: int(((g["t"] == 0) & (g["p"] == 1)).sum()), include_groups=False)
    correct = counts.apply(lambda g: int((g["t"] == g["p"]).sum()), include_groups=False)

    small = [g for g in names if int(sizes[g]) < min_group_size]
    judged = [g for g in names if g not in small]
    if reference_group is None:
        # the largest group (ties: the first by name), judged groups first
        pool = judged or names
        reference = max(pool, key=lambda g: (int(sizes[g]), -names.index(g)))
    else:
        reference = str(reference_group)
        if reference not in names:
            raise InvalidInput(
                f"reference_group {reference!r} is not a group of the data; groups: {', '.join(names[:20])}",
                field="reference_group",
            )
        if reference in small:
            raise InvalidInput(
                f"reference_group {reference!r} has {int(sizes[reference])} rows, fewer than "
                f"min_group_size {min_group_size}: too small to judge others against",
                field="reference_group",
            )
    rates = {g: _finite(by_group.loc[g, "selection_rate"]) for g in names}
    impact = disparate_impact(rates, reference)

    rows = []
    for g in names:
        n, pos = int(sizes[g]), int(positives[g])
        rows.append(
            {
                "group": g,
                "size": n,
                "selection_rate": rates[g],
                "selection_rate_ci": wilson_interval(int(selected[g]), n),
                "tpr": _finite(by_group.loc[g, "tpr"]) if pos else None,
                "tpr_ci": wilson_interval(int(true_pos[g]), pos),
                "fpr": _finite(by_group.loc[g, "fpr"]) if n - pos else None,
                "fpr_ci": wilson_interval(int(false_pos[g]), n - pos),
                "accuracy": _finite(by_group.loc[g, "accuracy"]),
                "accuracy_ci": wilson_interval(int(correct[g]), n),
                "positives": pos,
                "small": g in small,
                "disparate_impact_ratio": impact[g],
                "four_fifths_passed": None if g in small or impact[g] is None else impact[g] >= FOUR_FIFTHS,
            }
        )
    return {
        "reference_group": reference,
        "groups": rows,
        "metrics": _aggregates(y_true, y_pred, groups, judged, impact),
        "small_groups": small,
        "judged_groups": judged,
        "min_group_size": min_group_size,
    }


def _aggregates(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series, judged: list[str], impact: dict[str, float | None]
) -> dict[str, Any]:
    """Disparities among the judged groups (Fairlearn on their rows); None with fewer than two."""
    metrics: dict[str, Any] = dict.fromkeys(
        (
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equalized_odds_difference",
            "equal_opportunity_difference",
            "disparate_impact_ratio",
            "four_fifths_passed",
        )
    )
    if len(judged) < 2:
        return metrics
    keep = groups.isin(judged).to_numpy()
    yt, yp, gs = y_true[keep], y_pred[keep], groups[keep].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics["demographic_parity_difference"] = _finite(demographic_parity_difference(yt, yp, sensitive_features=gs))
        metrics["demographic_parity_ratio"] = _finite(demographic_parity_ratio(yt, yp, sensitive_features=gs))
        metrics["equalized_odds_difference"] = _finite(equalized_odds_difference(yt, yp, sensitive_features=gs))
        tpr = MetricFrame(metrics=true_positive_rate, y_true=yt, y_pred=yp, sensitive_features=gs)
        metrics["equal_opportunity_difference"] = _finite(tpr.difference())
    ratios = [impact[g] for g in judged]
    if all(r is not None for r in ratios):
        lowest = min(float(r) for r in ratios if r is not None)
        metrics["disparate_impact_ratio"] = lowest
        metrics["four_fifths_passed"] = lowest >= FOUR_FIFTHS
    return metrics
