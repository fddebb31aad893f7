"""Concept drift: change detectors on error streams, and the stability of permutation importance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.concept import ChangeDetection, detect_changes, importance_stability

DETECTORS = ["adwin", "ddm", "page_hinkley"]


def _errors(seed: int, rates: list[float], length: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([(rng.random(length) < rate).astype(int) for rate in rates])


# --------------------------------------------------------------------------------------------- change detection


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detectors_catch_a_jump_in_error_rate(detector, seed):
    stream = _errors(seed, [0.1, 0.4], 2000)  # 4000 predictions, the error rate jumps at 2000
    result = detect_changes(stream, detector)
    assert result.drifted
    assert result.n == 4000
    assert 2000 <= result.changes[0] < 2500, result.changes


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_detectors_stay_quiet_on_a_stationary_stream(detector, seed):
    result = detect_changes(_errors(seed, [0.1], 4000), detector)
    assert not result.drifted, result.changes
    assert result.changes == []


def test_adwin_on_absolute_errors_of_a_regression_model():
    rng = np.random.default_rng(4)
    stream = np.concatenate([np.abs(rng.normal(0, 1, 2000)), np.abs(rng.normal(0, 2, 2000))])
    assert detect_changes(stream.tolist()).changes[0] >= 2000
    assert not detect_changes(np.abs(rng.normal(0, 1, 4000))).drifted


def test_result_reports_the_detector_settings_and_is_json_safe():
    result = detect_changes(_errors(0, [0.1], 100))
    assert isinstance(result, ChangeDetection)
    assert result.detector == "adwin" and result.params["delta"] == 0.002 and result.params["clock"] == 32
    body = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert body == {"detector": "adwin", "n": 100, "changes": [], "drifted": False, "params": result.params}
    custom = detect_changes(_errors(0, [0.1], 100), "Page-Hinkley", threshold=10.0)
    assert custom.detector == "page_hinkley" and custom.params["threshold"] == 10.0
    assert detect_changes([], "ddm").to_dict()["n"] == 0


def test_detector_errors_are_invalid_input():
    with pytest.raises(InvalidInput) as err:
        detect_changes([0, 1], "cusum")
    assert err.value.field == "detector"
    assert "adwin" in err.value.message and "ddm" in err.value.message and "page_hinkley" in err.value.message
    with pytest.raises(InvalidInput):
        detect_changes([0.0, 0.5, 1.0], "ddm")  # DDM reads 0/1 errors only
    with pytest.raises(InvalidInput):
        detect_changes([0, 1], "adwin", window=3)
    with pytest.raises(InvalidInput):
        detect_changes([0, float("nan")])
    with pytest.raises(InvalidInput):
        detect_changes(["a", "b"])


# --------------------------------------------------------------------------------------------- importance


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"x{i}" for i in range(6)])


def test_importance_is_stable_when_the_concept_holds_and_moves_when_the_label_follows_another_feature():
    rng = np.random.default_rng(0)
    train, reference, current = _frame(rng, 2000), _frame(rng, 800), _frame(rng, 800)

    def concept(frame: pd.DataFrame, driver: str, helper: str) -> np.ndarray:
        return np.where(frame[driver] + 0.5 * frame[helper] > 0, "yes", "no")

    model = LogisticRegression().fit(train, concept(train, "x0", "x1"))
    same = importance_stability(
        model.predict, reference, concept(reference, "x0", "x1"), current, concept(current, "x0", "x1")
    )
    assert same["stable"], same
    assert same["shift"] < 0.2
    assert same["changed"] == []  # the unused features reshuffle, but that is noise, not a change
    assert max(same["reference"], key=same["reference"].get) == "x0"
    assert max(same["current"], key=same["current"].get) == "x0"

    changed = importance_stability(
        model.predict, reference, concept(reference, "x0", "x1"), current, concept(current, "x3", "x1")
    )
    json.loads(json.dumps(changed, allow_nan=False))
    assert not changed["stable"], changed
    assert changed["shift"] > 0.5
    assert changed["current"]["x0"] < 0.2 * changed["reference"]["x0"]  # relying on x0 no longer pays
    assert set(changed["reference"]) == {f"x{i}" for i in range(6)}
    assert 0.0 <= changed["top_k_overlap"] <= 1.0
    assert set(changed["changed"]) == {"x0", "x1"}  # x0 fell from first place, x1 took it


def test_importance_stability_with_a_regression_score_and_numeric_labels():
    rng = np.random.default_rng(1)
    train, reference, current = _frame(rng, 1000), _frame(rng, 500), _frame(rng, 500)
    model = LinearRegression().fit(train, 3 * train["x0"] + train["x2"])
    same = importance_stability(
        model.predict,
        reference,
        3 * reference["x0"] + reference["x2"],
        current,
        3 * current["x0"] + current["x2"],
        scoring="neg_mean_absolute_error",
        n_repeats=3,
        top_k=2,
    )
    assert same["stable"] and same["top_k_overlap"] == 1.0 and same["changed"] == []
    assert same["spearman"] is not None
    moved = importance_stability(
        model.predict,
        reference,
        3 * reference["x0"] + reference["x2"],
        current,
        3 * current["x4"] + current["x2"],
        scoring="neg_mean_absolute_error",
        n_repeats=3,
        top_k=2,
    )
    assert not moved["stable"]


def test_importance_stability_rejects_bad_input():
    rng = np.random.default_rng(2)
    frame = _frame(rng, 20)
    y = np.where(frame["x0"] > 0, 1, 0)

    def predict(data: pd.DataFrame) -> np.ndarray:
        return np.where(data["x0"] > 0, 1, 0)

    with pytest.raises(InvalidInput):
        importance_stability(predict, frame, y, frame, y, scoring="auc")
    with pytest.raises(InvalidInput):
        importance_stability(predict, frame, y, frame.iloc[:0], y[:0])
    with pytest.raises(InvalidInput):
        importance_stability(predict, frame, y, frame.drop(columns=["x1"]), y)
    with pytest.raises(InvalidInput):
        importance_stability(predict, frame, y[:-1], frame, y)
    # reproducible for a seed
    first = importance_stability(predict, frame, y, frame, y, seed=3)
    assert first == importance_stability(predict, frame, y, frame, y, seed=3)
