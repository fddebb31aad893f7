"""Model performance from predictions: realised metrics when labels have arrived, estimates when they have not.

Pure functions over numpy/scikit-learn, no database:

* :func:`classification_metrics` - accuracy, macro precision/recall/F1 (and the positive class's for binary
  problems), ROC AUC, PR AUC, log loss, Brier score and expected calibration error, the confusion matrix and
  per-class figures;
* :func:`regression_metrics` - RMSE, MAE, R², mean residual and residual quantiles;
* :func:`estimate_classification` - a label-free estimate of accuracy (and ROC AUC for binary problems) from the
  model's own confidence, calibrated on labelled reference data when there is some (the idea of NannyML's CBPE).

Conventions:

* Labels are compared as strings. Ground truth often arrives by another road than the prediction (feedback
  ``"1"`` from a JSON form against a predicted ``1``, or ``1.0`` from a pandas column that had missing values), so
  every label goes through :func:`normalize_label`: integral numbers become ``"1"``, everything else ``str()``.
  Labels in results (confusion matrix, ``per_class`` keys) are these strings.
* Probability columns follow ``classes``; without ``classes`` they are taken to follow the sorted labels (numeric
  order when every label is a number), which is the order of scikit-learn's ``classes_``.
* No result carries NaN or infinity (they are not JSON); undefined figures are ``None`` - ROC AUC with one class
  present, R² of a constant truth, anything of an empty input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from shipyard.core.errors import InvalidInput

ECE_BINS = 10
RESIDUAL_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_PROBA_TOLERANCE = 1e-6  # probabilities a hair outside [0, 1] are float noise, not bad input
_EPS = float(np.finfo(np.float64).eps)  # log-loss clipping, as scikit-learn does


# --------------------------------------------------------------------------------------------- labels


def normalize_label(value: Any, field: str = "label") -> str:
    """The comparable form of one label: integral numbers as ``"1"``, booleans and the rest as ``str()``."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        raise InvalidInput("labels must not be missing; drop rows without a label first", field=field)
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInput(f"label {number} is not a finite number", field=field)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def normalize_labels(values: Iterable[Any] | None, field: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str | bytes):
        raise InvalidInput("expected a sequence of labels, got a single string", field=field)
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise InvalidInput("expected one column of labels", field=field)
        values = values.iloc[:, 0]
    array = values.tolist() if isinstance(values, pd.Series | np.ndarray) else list(values)
    return [normalize_label(v, field) for v in array]


def _sort_labels(labels: Iterable[str]) -> list[str]:
    """Numeric order when every label is a number (so "10" follows "9"), string order otherwise."""
    unique = set(labels)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


def _classes(classes: Sequence | None, field: str = "classes") -> list[str] | None:
    if classes is None:
        return None
    normalized = normalize_labels(classes, field)
    if len(set(normalized)) != len(normalized):
        raise InvalidInput(f"classes must be distinct after normalisation, got {normalized}", field=field)
    return normalized


def _float(value: Any) -> float | None:
    """A JSON-safe float: None for NaN and infinities."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------- probabilities


def _proba_matrix(proba: Any, n: int | None, classes: list[str], field: str = "proba") -> np.ndarray:
    """An n x k matrix of probabilities in ``classes`` order; a 1-d input is the positive (last) class's."""
    try:
        array = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be numeric: {exc}", field=field) from exc
    if array.ndim == 1:
        if len(classes) != 2:
            raise InvalidInput(
                f"a 1-d {field} is the positive class's probability and needs exactly 2 classes, got {classes}; "
                "pass classes=[negative, positive]",
                field=field,
            )
        array = np.column_stack([1.0 - array, array])
    elif array.ndim != 2:
        raise InvalidInput(f"{field} must be 1-d or 2-d, got {array.ndim} dimensions", field=field)
    if n is not None and array.shape[0] != n:
        raise InvalidInput(f"{field} has {array.shape[0]} rows for {n} labels", field=field)
    if array.shape[1] != len(classes):
        raise InvalidInput(
            f"{field} has {array.shape[1]} columns but there are {len(classes)} classes {classes}; "
            "pass classes in the order of the probability columns",
            field=field,
        )
    if array.size and not np.isfinite(array).all():
        raise InvalidInput(f"{field} contains NaN or infinite values", field=field)
    if array.size and (array.min() < -_PROBA_TOLERANCE or array.max() > 1 + _PROBA_TOLERANCE):
        raise InvalidInput(f"{field} values must lie in [0, 1]", field=field)
    return np.clip(array, 0.0, 1.0)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """ECE over equal-width confidence bins: sum over bins of |bin| / n * |accuracy(bin) - confidence(bin)|."""
    if confidence.size == 0:
        return None
    # the last bin is closed so a confidence of exactly 1.0 lands in it
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def _proba_metrics(y_true: list[str], proba: np.ndarray, pclasses: list[str], labels: list[str]) -> dict[str, Any]:
    n = len(y_true)
    # a true label the model has no column for got probability 0: that is what the model said about it
    extra = [label for label in labels if label not in pclasses]
    columns = pclasses + extra
    matrix = np.hstack([proba, np.zeros((n, len(extra)))]) if extra else proba
    position = {label: i for i, label in enumerate(columns)}
    true_index = np.array([position[y] for y in y_true])
    onehot = np.zeros_like(matrix)
    onehot[np.arange(n), true_index] = 1.0

    binary = len(pclasses) == 2 and not extra
    if binary:
        positive = onehot[:, 1].astype(bool)
        score = matrix[:, 1]
        has_both = 0 < positive.sum() < n
        roc_auc = roc_auc_score(positive, score) if has_both else None
        pr_auc = average_precision_score(positive, score) if positive.any() else None
        brier = float(np.mean((score - positive) ** 2))
    else:
        aucs, aps = [], []
        for k in range(len(columns)):
            positives = int(onehot[:, k].sum())
            if 0 < positives < n:
                aucs.append(roc_auc_score(onehot[:, k], matrix[:, k]))
            if positives > 0:
                aps.append(average_precision_score(onehot[:, k], matrix[:, k]))
        roc_auc = float(np.mean(aucs)) if aucs else None
        pr_auc = float(np.mean(aps)) if aps else None
        brier = float(np.mean(np.sum((matrix - onehot) ** 2, axis=1)))
    p_true = np.clip(matrix[np.arange(n), true_index], _EPS, 1.0)
    log_loss = float(-np.mean(np.log(p_true)))

    # calibration of the model's own top choice, as the model would have predicted from these probabilities
    confidence = proba.max(axis=1)
    predicted = np.asarray(pclasses, dtype=object)[proba.argmax(axis=1)]
    correct = (predicted == np.asarray(y_true, dtype=object)).astype(float)
    return {
        "roc_auc": _float(roc_auc),
        "pr_auc": _float(pr_auc),
        "log_loss": _float(log_loss),
        "brier": _float(brier),
        "ece": _float(expected_calibration_error(confidence, correct)),
    }


# --------------------------------------------------------------------------------------------- classification


def classification_metrics(y_true: Any, y_pred: Any, proba: Any = None, classes: Sequence | None = None) -> dict:
    """Realised classification metrics of predictions against ground truth.

    ``precision``/``recall``/``f1`` are macro averages over the labels seen in ``y_true`` or ``y_pred`` (as
    scikit-learn does), with 0 where a ratio has no denominator. When there are exactly two labels (``classes``,
    else the labels seen) the positive class is the last one and ``precision_positive``/``recall_positive``/
    ``f1_positive`` report it; otherwise those are None. The probability-based figures (``roc_auc``, ``pr_auc``,
    ``log_loss``, ``brier``, ``ece``) need ``proba``: an n x k array with columns in ``classes`` order, or for a
    binary problem the positive class's probability as a 1-d array. ROC and PR AUC are one-vs-rest macro averages
    over the classes for which they are defined; the Brier score is the binary one (positive class) for two
    classes and the multi-class sum over classes otherwise. A true label outside ``classes`` counts as a class the
    model gave probability 0.
    """
    yt = normalize_labels(y_true, "y_true")
    yp = normalize_labels(y_pred, "y_pred")
    if len(yt) != len(yp):
        raise InvalidInput(f"y_true has {len(yt)} labels and y_pred {len(yp)}", field="y_pred")
    declared = _classes(classes)
    observed = _sort_labels(yt + yp)
    labels = declared + [label for label in observed if label not in declared] if declared else observed
    pclasses = declared if declared is not None else observed
    positive = labels[-1] if len(labels) == 2 else None
    n = len(yt)

    if proba is not None:
        proba_array = _proba_matrix(proba, n, pclasses)

    result: dict[str, Any] = {
        "n": n,
        "accuracy": None,
        "precision": None,
        "recall": None,
        "f1": None,
        "positive_class": positive,
        "precision_positive": None,
        "recall_positive": None,
        "f1_positive": None,
        "roc_auc": None,
        "pr_auc": None,
        "log_loss": None,
        "brier": None,
        "ece": None,
        "confusion_matrix": {"labels": labels, "matrix": [[0] * len(labels) for _ in labels]},
        "per_class": {label: {"precision": None, "recall": None, "f1": None, "support": 0} for label in labels},
    }
    if n == 0:
        return result

    true_array = np.asarray(yt, dtype=object)
    pred_array = np.asarray(yp, dtype=object)
    result["accuracy"] = float(np.mean(true_array == pred_array))
    precision, recall, f1, support = precision_recall_fscore_support(
        yt, yp, labels=observed, average=None, zero_division=0.0
    )
    result["precision"] = float(np.mean(precision))
    result["recall"] = float(np.mean(recall))
    result["f1"] = float(np.mean(f1))
    for i, label in enumerate(observed):
        result["per_class"][label] = {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
    if positive is not None and positive in observed:
        figures = result["per_class"][positive]
        result["precision_positive"] = figures["precision"]
        result["recall_positive"] = figures["recall"]
        result["f1_positive"] = figures["f1"]
    elif positive is not None:
        # the positive class never occurs: nothing predicted positive, nothing to recall
        result["precision_positive"] = result["recall_positive"] = result["f1_positive"] = 0.0
    # counted directly: scikit-learn's confusion_matrix warns about a single label even when given the labels
    position = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([position[y] for y in yt], [position[y] for y in yp]), 1)
    result["confusion_matrix"]["matrix"] = matrix.tolist()

    if proba is not None:
        result.update(_proba_metrics(yt, proba_array, pclasses, labels))
    return result


# --------------------------------------------------------------------------------------------- regression


def _numbers(values: Any, field: str) -> np.ndarray:
    try:
        array = np.asarray(values if values is not None else [], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be numeric: {exc}", field=field) from exc
    if array.ndim != 1:
        raise InvalidInput(f"{field} must be 1-d, got shape {array.shape}", field=field)
    if not np.isfinite(array).all():
        raise InvalidInput(f"{field} contains NaN or infinite values; drop those rows first", field=field)
    return array


def regression_metrics(y_true: Any, y_pred: Any) -> dict:
    """Realised regression metrics. Residuals are ``y_true - y_pred`` (positive: the model under-predicts)."""
    truth = _numbers(y_true, "y_true")
    predicted = _numbers(y_pred, "y_pred")
    if truth.shape != predicted.shape:
        raise InvalidInput(f"y_true has {truth.size} values and y_pred {predicted.size}", field="y_pred")
    n = int(truth.size)
    keys = [str(q) for q in RESIDUAL_QUANTILES]
    if n == 0:
        return {
            "n": 0,
            "rmse": None,
            "mae": None,
            "r2": None,
            "mean_residual": None,
            "residual_quantiles": dict.fromkeys(keys),
        }
    residual = truth - predicted
    total = float(np.sum((truth - truth.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if n >= 2 and total > 0 else None
    quantiles = np.quantile(residual, RESIDUAL_QUANTILES)
    return {
        "n": n,
        "rmse": _float(math.sqrt(float(np.mean(residual**2)))),
        "mae": _float(np.mean(np.abs(residual))),
        "r2": _float(r2),
        "mean_residual": _float(np.mean(residual)),
        "residual_quantiles": {key: _float(q) for key, q in zip(keys, quantiles, strict=True)},
    }


# --------------------------------------------------------------------------------------------- estimation


def _isotonic(x: np.ndarray, y: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(x, y)


def _expected_auc(score: np.ndarray, p_positive: np.ndarray) -> float | None:
    """Expected ROC AUC when row i is positive with probability ``p_positive[i]`` and ranked by ``score``.

    The ratio of the expected Mann-Whitney count (pairs ranked right, ties half) to the expected number of
    positive-negative pairs; a row cannot pair with itself. Exact in expectation of numerator and denominator,
    so close to the expected AUC for all but tiny samples.
    """
    order = np.argsort(score, kind="mergesort")
    s, q = score[order], p_positive[order]
    w = 1.0 - q
    pairs = q.sum() * w.sum() - float(np.sum(q * w))
    if pairs <= 1e-12:
        return None
    # tie groups of equal score
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group_q = np.add.reduceat(q, starts)
    group_w = np.add.reduceat(w, starts)
    group_self = np.add.reduceat(q * w, starts)
    negatives_below = np.cumsum(group_w) - group_w
    ranked_right = float(np.sum(group_q * negatives_below + 0.5 * (group_q * group_w - group_self)))
    return ranked_right / pairs


def estimate_classification(
    proba: Any, classes: Sequence, reference_proba: Any = None, reference_true: Any = None
) -> dict:
    """Estimate accuracy (and, for two classes, ROC AUC) without labels, from the model's confidence.

    The model is taken to predict its most probable class. Uncalibrated, the expected accuracy is the mean of the
    top probability: right only if the model is calibrated. With labelled reference data (``reference_proba`` and
    ``reference_true``, e.g. the validation set) a monotone map from confidence to the chance of being right is
    fitted first (isotonic regression; for two classes on the positive class's probability, which also gives the
    ROC AUC estimate) and applied to the current confidences. Either way the estimate assumes the relation
    between confidence and correctness has not changed - covariate shift is fine, concept drift is not.
    """
    cls = _classes(classes)
    if not cls:
        raise InvalidInput("classes are required, in the order of the probability columns", field="classes")
    if (reference_proba is None) != (reference_true is None):
        raise InvalidInput(
            "reference_proba and reference_true go together",
            field="reference_true" if reference_true is None else "reference_proba",
        )
    matrix = _proba_matrix(proba, None, cls)
    n = int(matrix.shape[0])
    calibrated = reference_proba is not None
    result: dict[str, Any] = {"estimate": True, "method": "confidence", "n": n, "calibrated": calibrated}
    if calibrated:
        ref_true = normalize_labels(reference_true, "reference_true")
        ref_matrix = _proba_matrix(reference_proba, len(ref_true), cls, field="reference_proba")
        if not ref_true:
            raise InvalidInput("the reference set is empty", field="reference_true")
        result["n_reference"] = len(ref_true)
    binary = len(cls) == 2
    if n == 0:
        result["accuracy"] = None
        if binary:
            result["roc_auc"] = None
        return result

    predicted = matrix.argmax(axis=1)
    if binary:
        score = matrix[:, 1]
        if calibrated:
            truth = np.asarray(ref_true, dtype=object) == cls[1]
            p_positive = _isotonic(ref_matrix[:, 1], truth.astype(float)).predict(score)
        else:
            p_positive = score
        right = np.where(predicted == 1, p_positive, 1.0 - p_positive)
        result["accuracy"] = _float(np.mean(right))
        result["roc_auc"] = _float(_expected_auc(score, p_positive))
        return result

    confidence = matrix.max(axis=1)
    if calibrated:
        ref_predicted = np.asarray(cls, dtype=object)[ref_matrix.argmax(axis=1)]
        ref_right = (ref_predicted == np.asarray(ref_true, dtype=object)).astype(float)
        confidence = _isotonic(ref_matrix.max(axis=1), ref_right).predict(confidence)
    result["accuracy"] = _float(np.mean(confidence))
    return result
