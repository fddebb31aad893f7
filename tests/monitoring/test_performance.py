"""Performance metrics: agreement with scikit-learn, honest edge cases, JSON safety, and label-free estimates."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.performance import (
    classification_metrics,
    estimate_classification,
    expected_calibration_error,
    normalize_label,
    regression_metrics,
)

PROBA_KEYS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")


def _json_safe(result: dict) -> dict:
    # allow_nan=False fails on NaN and infinities, which are not JSON
    return json.loads(json.dumps(result, allow_nan=False))


def _dirichlet(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.dirichlet(np.ones(k), size=n)


# --------------------------------------------------------------------------------------------- properties


label_lists = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
    )
)


@pytest.mark.filterwarnings("ignore:A single label was found")  # scikit-learn's, in the comparison below
@settings(max_examples=60, deadline=None)
@given(label_lists)
def test_label_metrics_match_sklearn_on_random_labels(pair):
    y_true, y_pred = pair
    result = classification_metrics(y_true, y_pred)
    _json_safe(result)
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for key, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert result[key] == pytest.approx(fn(y_true, y_pred, average="macro", zero_division=0))
        assert 0.0 <= result[key] <= 1.0
    labels = result["confusion_matrix"]["labels"]
    assert result["confusion_matrix"]["matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert sum(c["support"] for c in result["per_class"].values()) == len(y_true)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=2, max_value=80), st.integers(min_value=0, max_value=2**31 - 1))
def test_binary_probability_metrics_match_sklearn(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = rng.random(n)
    result = classification_metrics(y, (p >= 0.5).astype(int), proba=p, classes=[0, 1])
    _json_safe(result)
    if len(set(y)) == 2:
        assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
        assert result["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    else:
        assert result["roc_auc"] is None
    assert result["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert result["log_loss"] == pytest.approx(skm.log_loss(y, np.column_stack([1 - p, p]), labels=[0, 1]))
    assert 0.0 <= result["ece"] <= 1.0
    assert result["precision_positive"] == pytest.approx(skm.precision_score(y, p >= 0.5, zero_division=0))
    assert result["recall_positive"] == pytest.approx(skm.recall_score(y, p >= 0.5, zero_division=0))


def test_multiclass_probability_metrics_match_sklearn():
    rng = np.random.default_rng(3)
    classes = ["cat", "dog", "eel"]
    proba = _dirichlet(rng, 500, 3)
    y = np.array(classes, dtype=object)[rng.integers(0, 3, 500)]
    pred = np.array(classes, dtype=object)[proba.argmax(axis=1)]
    result = classification_metrics(y, pred, proba=proba, classes=classes)
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    assert result["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes))
    assert result["brier"] == pytest.approx(np.mean(np.sum((proba - (y[:, None] == classes)) ** 2, axis=1)))
    onehot = (y[:, None] == np.array(classes)).astype(int)
    assert result["pr_auc"] == pytest.approx(skm.average_precision_score(onehot, proba, average="macro"))
    assert result["positive_class"] is None and result["precision_positive"] is None


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_ece_is_near_zero_for_a_calibrated_model_and_large_for_an_overconfident_one(seed):
    rng = np.random.default_rng(seed)
    p = rng.random(20000)
    y = rng.random(20000) < p
    confidence = np.maximum(p, 1 - p)
    assert expected_calibration_error(confidence, ((p >= 0.5) == y).astype(float)) < 0.03
    # stretching probabilities towards 0 and 1 makes the model overconfident
    sharp = np.clip((p - 0.5) * 3 + 0.5, 0, 1)
    sharp_confidence = np.maximum(sharp, 1 - sharp)
    assert expected_calibration_error(sharp_confidence, ((sharp >= 0.5) == y).astype(float)) > 0.1


def test_ece_of_classification_metrics_uses_the_top_probability():
    rng = np.random.default_rng(11)
    proba = rng.dirichlet([1, 1, 1], size=20000)
    y = np.array([rng.choice(3, p=row) for row in proba])
    calibrated = classification_metrics(y, proba.argmax(axis=1), proba=proba, classes=[0, 1, 2])
    assert calibrated["ece"] < 0.03
    sharp = proba**4 / np.sum(proba**4, axis=1, keepdims=True)
    overconfident = classification_metrics(y, sharp.argmax(axis=1), proba=sharp, classes=[0, 1, 2])
    assert overconfident["ece"] > 0.1


def test_ece_bins_put_confidence_one_in_the_last_bin():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.0
    assert expected_calibration_error(np.array([]), np.array([])) is None


# --------------------------------------------------------------------------------------------- edge cases


def test_empty_input_has_n_zero_and_no_metrics():
    result = classification_metrics([], [], proba=np.empty((0, 2)), classes=["no", "yes"])
    _json_safe(result)
    assert result["n"] == 0
    for key in ("accuracy", "precision", "recall", "f1", *PROBA_KEYS):
        assert result[key] is None
    assert result["confusion_matrix"] == {"labels": ["no", "yes"], "matrix": [[0, 0], [0, 0]]}
    assert result["per_class"]["yes"]["support"] == 0
    assert classification_metrics([], [])["confusion_matrix"] == {"labels": [], "matrix": []}


def test_one_class_present_leaves_roc_auc_undefined():
    result = classification_metrics([1, 1, 1, 1], [1, 0, 1, 1], proba=[0.9, 0.4, 0.8, 0.7], classes=[0, 1])
    _json_safe(result)
    assert result["roc_auc"] is None
    assert result["pr_auc"] == pytest.approx(1.0)
    assert result["accuracy"] == 0.75
    assert result["recall_positive"] == 0.75
    # multi-class with one class present: no class has both positives and negatives
    only = classification_metrics(
        ["a"] * 3, ["a", "b", "a"], proba=_dirichlet(np.random.default_rng(0), 3, 3), classes=["a", "b", "c"]
    )
    assert only["roc_auc"] is None
    assert only["pr_auc"] is not None


def test_mixed_int_and_string_labels_are_compared_as_strings():
    # feedback arrives as text ("1") or as floats from a column with gaps (1.0); predictions as ints
    result = classification_metrics(["1", "0", 1.0, 0.0], [1, 0, 1, 1], proba=[0.9, 0.1, 0.8, 0.6])
    assert result["accuracy"] == 0.75
    assert result["confusion_matrix"] == {"labels": ["0", "1"], "matrix": [[1, 1], [0, 2]]}
    assert set(result["per_class"]) == {"0", "1"}
    assert result["positive_class"] == "1"
    assert normalize_label(np.int64(3)) == "3" and normalize_label(2.5) == "2.5" and normalize_label(True) == "True"


def test_string_labels_and_numeric_label_order():
    result = classification_metrics(["spam", "ham", "spam"], ["spam", "spam", "spam"])
    assert result["confusion_matrix"]["labels"] == ["ham", "spam"]
    assert result["positive_class"] == "spam"
    assert result["per_class"]["ham"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # numbers sort numerically, so proba columns follow scikit-learn's classes_ order
    assert classification_metrics([2, 10, 9], [2, 10, 9])["confusion_matrix"]["labels"] == ["2", "9", "10"]


def test_proba_with_a_column_missing_is_rejected():
    proba = _dirichlet(np.random.default_rng(1), 4, 2)
    with pytest.raises(InvalidInput) as err:
        classification_metrics(["a", "b", "c", "a"], ["a", "b", "c", "a"], proba=proba, classes=["a", "b", "c"])
    assert err.value.field == "proba"
    with pytest.raises(InvalidInput):  # without classes the labels seen (3) decide, and 2 columns do not fit
        classification_metrics(["a", "b", "c", "a"], ["a", "b", "c", "a"], proba=proba)


def test_true_label_outside_the_models_classes_counts_as_probability_zero():
    result = classification_metrics(
        ["a", "b", "z"], ["a", "b", "a"], proba=[[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]], classes=["a", "b"]
    )
    _json_safe(result)
    assert result["confusion_matrix"]["labels"] == ["a", "b", "z"]
    assert result["log_loss"] == pytest.approx((-math.log(0.9) - math.log(0.8) - math.log(np.finfo(float).eps)) / 3)


def test_bad_inputs_raise_invalid_input():
    with pytest.raises(InvalidInput):
        classification_metrics([1, 0], [1])
    with pytest.raises(InvalidInput):
        classification_metrics([1, None], [1, 0])
    with pytest.raises(InvalidInput):
        classification_metrics([1, 0], [1, 0], proba=[0.5, float("nan")], classes=[0, 1])
    with pytest.raises(InvalidInput):
        classification_metrics([1, 0], [1, 0], proba=[1.5, 0.2], classes=[0, 1])
    with pytest.raises(InvalidInput):
        classification_metrics([1, 0], [1, 0], classes=[1, "1"])  # the same label after normalisation


# --------------------------------------------------------------------------------------------- regression


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=2, max_size=50))
def test_regression_metrics_match_sklearn(pairs):
    y, p = (np.array(v) for v in zip(*pairs, strict=True))
    result = regression_metrics(y, p)
    _json_safe(result)
    assert result["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)), abs=1e-9)
    assert result["mae"] == pytest.approx(skm.mean_absolute_error(y, p), abs=1e-9)
    assert result["mean_residual"] == pytest.approx(np.mean(y - p), abs=1e-9)
    expected = skm.r2_score(y, p) if np.sum((y - y.mean()) ** 2) > 0 else None
    if expected is not None and np.isfinite(expected):
        assert result["r2"] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    else:  # a constant target, or a spread so tiny that the ratio overflows (sklearn says -inf): no R²
        assert result["r2"] is None
    q = result["residual_quantiles"]
    assert q["0.05"] <= q["0.25"] <= q["0.5"] <= q["0.75"] <= q["0.95"]


def test_regression_edge_cases():
    empty = _json_safe(regression_metrics([], []))
    assert empty["n"] == 0 and empty["rmse"] is None and empty["residual_quantiles"]["0.5"] is None
    one = regression_metrics([3.0], [1.0])
    assert one["r2"] is None and one["rmse"] == 2.0 and one["mean_residual"] == 2.0
    assert regression_metrics([5, 5, 5], [4, 5, 6])["r2"] is None  # constant truth
    with pytest.raises(InvalidInput):
        regression_metrics([1, 2], [1, float("inf")])
    with pytest.raises(InvalidInput):
        regression_metrics([1, 2], [1])


# --------------------------------------------------------------------------------------------- estimation


def test_estimate_matches_realised_accuracy_of_a_calibrated_binary_model():
    rng = np.random.default_rng(7)
    p = rng.beta(2, 2, 8000)
    y = (rng.random(8000) < p).astype(int)
    realised = classification_metrics(y, (p >= 0.5).astype(int), proba=p, classes=[0, 1])
    estimate = estimate_classification(p, classes=[0, 1])
    _json_safe(estimate)
    assert estimate["estimate"] is True and estimate["method"] == "confidence" and estimate["n"] == 8000
    assert estimate["calibrated"] is False
    assert abs(estimate["accuracy"] - realised["accuracy"]) < 0.03
    assert abs(estimate["roc_auc"] - realised["roc_auc"]) < 0.03


def test_estimate_matches_realised_accuracy_of_a_calibrated_multiclass_model():
    rng = np.random.default_rng(8)
    proba = rng.dirichlet([0.7, 0.7, 0.7], size=6000)
    y = np.array([rng.choice(3, p=row) for row in proba])
    realised = np.mean(proba.argmax(axis=1) == y)
    estimate = estimate_classification(proba, classes=[0, 1, 2])
    assert abs(estimate["accuracy"] - realised) < 0.03
    assert "roc_auc" not in estimate


def test_reference_labels_calibrate_an_overconfident_model():
    rng = np.random.default_rng(9)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        truth = rng.beta(2, 2, n)  # the real chance of class 1
        y = (rng.random(n) < truth).astype(int)
        reported = np.clip((truth - 0.5) * 2 + 0.5, 0.0, 1.0)  # what an overconfident model says
        return reported, y

    ref_p, ref_y = sample(6000)
    cur_p, cur_y = sample(6000)
    realised = classification_metrics(cur_y, (cur_p >= 0.5).astype(int), proba=cur_p, classes=[0, 1])
    naive = estimate_classification(cur_p, classes=[0, 1])
    calibrated = estimate_classification(cur_p, classes=[0, 1], reference_proba=ref_p, reference_true=ref_y)
    assert naive["accuracy"] - realised["accuracy"] > 0.08  # trusting an overconfident model overestimates
    assert calibrated["calibrated"] is True and calibrated["n_reference"] == 6000
    assert abs(calibrated["accuracy"] - realised["accuracy"]) < 0.03
    assert abs(calibrated["roc_auc"] - realised["roc_auc"]) < 0.03
    # the multi-class path: isotonic correctness on top confidence, here with labels given as strings
    two_col = np.column_stack([1 - cur_p, cur_p])
    multi = estimate_classification(
        np.column_stack([two_col, np.zeros(6000)]),
        classes=["0", "1", "2"],
        reference_proba=np.column_stack([1 - ref_p, ref_p, np.zeros(6000)]),
        reference_true=ref_y.astype(str),
    )
    assert abs(multi["accuracy"] - realised["accuracy"]) < 0.03


def test_estimate_edge_cases():
    empty = _json_safe(estimate_classification(np.empty((0, 2)), classes=["a", "b"]))
    assert empty["n"] == 0 and empty["accuracy"] is None and empty["roc_auc"] is None
    confident = estimate_classification([1.0, 1.0, 0.0], classes=[0, 1])
    assert confident["accuracy"] == 1.0 and confident["roc_auc"] == pytest.approx(1.0)
    assert estimate_classification([1.0, 1.0], classes=[0, 1])["roc_auc"] is None  # nothing can be negative
    with pytest.raises(InvalidInput):
        estimate_classification([0.3], classes=[0, 1], reference_proba=[0.2])
    with pytest.raises(InvalidInput):
        estimate_classification([[0.3, 0.7]], classes=[0, 1, 2])
