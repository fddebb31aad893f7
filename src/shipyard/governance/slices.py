"""Evaluation metrics of predictions against labels, overall and per slice (pure functions).

The metrics themselves are the monitoring's (``monitoring/performance.py``), so an offline evaluation
and a monitor's realised performance mean the same thing. Only scalar figures go into ``metrics``
(what policies compare with thresholds); the confusion matrix is kept beside them.

A slice column with few distinct values is sliced by value; a numeric column with many is cut into
``NUMERIC_BINS`` quantile bins labelled ``[low, high]``. At most ``MAX_SLICE_VALUES`` values per column
are reported (the largest); missing values form the slice ``(missing)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from shipyard.monitoring.performance import classification_metrics, regression_metrics

NUMERIC_BINS = 4
MAX_DISTINCT_AS_VALUES = 12  # a numeric column with more distinct values is binned
MAX_SLICE_VALUES = 50
MISSING = "(missing)"

CLASSIFICATION_SCALARS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "precision_positive",
    "recall_positive",
    "f1_positive",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
)
REGRESSION_SCALARS = ("rmse", "mae", "r2", "mean_residual")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metrics_of(task: str, y_true: pd.Series, y_pred: Any, proba: np.ndarray | None, classes: list[str]) -> dict:
    """The scalar metrics (and, for classification, the confusion matrix under ``"confusion_matrix"``)."""
    if task == "classification":
        full = classification_metrics(y_true, y_pred, proba=proba, classes=classes or None)
        scalars = {k: _clean(full.get(k)) for k in CLASSIFICATION_SCALARS}
        return {**scalars, "positive_class": full.get("positive_class"), "confusion_matrix": full["confusion_matrix"]}
    full = regression_metrics(y_true, y_pred)
    return {k: _clean(full.get(k)) for k in REGRESSION_SCALARS}


def slice_keys(column: pd.Series) -> pd.Series:
    """The slice each row falls in, as text."""
    present = column.dropna()
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and present.nunique() > MAX_DISTINCT_AS_VALUES:
        # quantile edges computed here rather than by pd.qcut, which fails on subnormal floats
        values = present.to_numpy(dtype="float64")
        edges = np.unique(np.quantile(values, np.linspace(0, 1, NUMERIC_BINS + 1)))
        # bin i holds (edges[i], edges[i + 1]], the first one its lower edge too
        index = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, len(edges) - 2)
        names = [f"[{edges[i]:.4g}, {edges[i + 1]:.4g}]" for i in range(len(edges) - 1)]
        keys = pd.Series(MISSING, index=column.index, dtype=object)
        keys.loc[present.index] = [names[i] for i in index]
        return keys
    return column.map(lambda v: MISSING if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)) else _text(v))


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def ordered(values: list[str]) -> list[str]:
    """Quantile bins in numeric order (then missing); other values as given (largest first)."""
    bins = [v for v in values if v.startswith("[") and v.endswith("]")]
    if not bins or len(bins) < len(values) - (MISSING in values):
        return values

    def low(v: str) -> float:
        try:
            return float(v[1:].split(",")[0])
        except ValueError:
            return math.inf

    return sorted(bins, key=low) + [v for v in values if v not in bins]


def evaluate(
    task: str,
    y_true: pd.Series,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[str],
    slice_frame: pd.DataFrame,
) -> dict[str, Any]:
    """``{"task", "rows", "metrics", "confusion_matrix"?, "slices": {column: {value: {"count", ...}}}}``."""
    y_true = y_true.reset_index(drop=True)
    y_pred = np.asarray(y_pred)
    overall = metrics_of(task, y_true, y_pred, proba, classes)
    result: dict[str, Any] = {"task": task, "rows": len(y_true)}
    if task == "classification":
        result["positive_class"] = overall.pop("positive_class")
        result["confusion_matrix"] = overall.pop("confusion_matrix")
    result["metrics"] = overall
    slices: dict[str, dict[str, Any]] = {}
    for column in slice_frame.columns:
        keys = slice_keys(slice_frame[column].reset_index(drop=True))
        sizes = keys.value_counts()
        per_value: dict[str, Any] = {}
        for value in ordered(list(sizes.index)[:MAX_SLICE_VALUES]):
            mask = (keys == value).to_numpy()
            figures = metrics_of(task, y_true[mask], y_pred[mask], None if proba is None else proba[mask], classes)
            figures.pop("confusion_matrix", None)
            figures.pop("positive_class", None)
            per_value[str(value)] = {"count": int(mask.sum()), **figures}
        slices[str(column)] = per_value
    result["slices"] = slices
    return result
