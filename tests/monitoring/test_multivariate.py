"""The domain classifier: quiet on same-distribution data, loud (and pointing at the right column) on a shift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.multivariate import domain_classifier

ROWS = 800  # per side: enough for a stable AUC, small enough to keep the suite fast


def _numbers(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame(rng.normal(size=(n, 10)), columns=[f"f{i}" for i in range(10)])
    frame["f6"] += shift
    return frame


def _json_safe(result: dict) -> dict:
    return json.loads(json.dumps(result, allow_nan=False))


def test_same_distribution_is_not_drifted():
    rng = np.random.default_rng(0)
    result = _json_safe(domain_classifier(_numbers(rng, ROWS), _numbers(rng, ROWS)))
    assert result["status"] == "ok"
    assert 0.4 < result["auc"] < 0.55
    assert not result["drifted"]
    assert result["threshold"] == 0.55 and result["folds"] == 5
    assert result["n_reference"] == ROWS and result["n_current"] == ROWS
    assert result["auc_std"] >= 0.0


def test_one_shifted_feature_is_detected_and_ranked_first():
    rng = np.random.default_rng(1)
    result = _json_safe(domain_classifier(_numbers(rng, ROWS), _numbers(rng, ROWS, shift=1.5)))
    assert result["drifted"]
    assert result["auc"] > 0.7
    assert result["top_features"][0]["feature"] == "f6"
    assert result["top_features"][0]["importance"] > 5 * abs(result["top_features"][1]["importance"])
    assert "permutation" in result["importance_method"]


def test_a_change_in_correlation_alone_is_detected():
    # both columns are standard normal on both sides; only how they move together changes
    rng = np.random.default_rng(2)
    correlated = rng.multivariate_normal([0, 0], [[1, 0.95], [0.95, 1]], size=ROWS)
    independent = rng.normal(size=(ROWS, 2))
    result = domain_classifier(
        pd.DataFrame(correlated, columns=["a", "b"]), pd.DataFrame(independent, columns=["a", "b"])
    )
    assert result["drifted"] and result["auc"] > 0.65
    assert {f["feature"] for f in result["top_features"]} == {"a", "b"}


def _mixed(rng: np.random.Generator, n: int, weights: list[float]) -> pd.DataFrame:
    frame = _numbers(rng, n)
    frame["plan"] = pd.Series(rng.choice(["free", "pro", "team"], size=n, p=weights), dtype="category")
    frame["country"] = pd.array(rng.choice(["de", "fr", None], size=n), dtype="str")
    frame["flag"] = rng.random(n) < 0.5
    frame["count"] = pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 5, n)), dtype="Int64")
    frame["constant"] = 7
    frame["empty"] = np.nan
    frame["mixed"] = [1 if i % 2 else "1" for i in range(n)]  # the same label as int and text: one category
    frame["at"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), unit="min")
    return frame


def test_mixed_types_missing_and_constant_columns_do_not_crash():
    rng = np.random.default_rng(3)
    reference, current = _mixed(rng, ROWS, [0.6, 0.3, 0.1]), _mixed(rng, ROWS, [0.6, 0.3, 0.1])
    current["at"] += pd.Timedelta(days=30)  # a later window: not drift
    result = _json_safe(domain_classifier(reference, current))
    assert result["status"] == "ok" and not result["drifted"], result
    ignored = {item["column"]: item["reason"] for item in result["ignored"]}
    assert ignored == {"at": "date/time", "constant": "constant", "empty": "all missing", "mixed": "constant"}
    assert "plan" in result["columns"] and "count" in result["columns"] and "at" not in result["columns"]


def test_a_categorical_shift_is_ranked_first():
    rng = np.random.default_rng(4)
    result = domain_classifier(_mixed(rng, ROWS, [0.6, 0.3, 0.1]), _mixed(rng, ROWS, [0.1, 0.3, 0.6]))
    assert result["drifted"] and result["auc"] > 0.7
    assert result["top_features"][0]["feature"] == "plan"


def test_a_column_that_goes_missing_is_drift():
    rng = np.random.default_rng(5)
    reference, current = _numbers(rng, ROWS), _numbers(rng, ROWS)
    current.loc[current.index[: ROWS // 2], "f2"] = np.nan  # an upstream job stopped filling half the rows
    result = domain_classifier(reference, current)
    assert result["drifted"] and result["top_features"][0]["feature"] == "f2"


def test_empty_sides_have_no_data():
    rng = np.random.default_rng(6)
    frame = _numbers(rng, 50)
    for reference, current in ((frame.iloc[:0], frame), (frame, frame.iloc[:0]), (frame.iloc[:1], frame)):
        result = _json_safe(domain_classifier(reference, current))
        assert result["status"] == "no data" and not result["drifted"] and result["auc"] is None
    only_constant = pd.DataFrame({"c": [1] * 20})
    same = domain_classifier(only_constant, only_constant)
    assert same["status"] == "ok" and same["auc"] == 0.5 and not same["drifted"]


def test_rows_are_sampled_and_columns_chosen():
    rng = np.random.default_rng(7)
    reference, current = _numbers(rng, 1500), _numbers(rng, 300, shift=2.0)
    result = domain_classifier(reference, current, columns=["f6", "f1"], max_rows=400, folds=3, threshold=0.6)
    assert result["n_reference"] == 400 and result["n_current"] == 300 and result["folds"] == 3
    assert result["columns"] == ["f6", "f1"] and result["threshold"] == 0.6
    assert result["drifted"] and result["top_features"][0]["feature"] == "f6"
    assert domain_classifier(reference, current, columns=["f6", "f1"], max_rows=400, folds=3, threshold=0.6) == result
    with pytest.raises(InvalidInput) as err:
        domain_classifier(reference, current, columns=["f6", "nope"])
    assert err.value.field == "columns"
    with pytest.raises(InvalidInput):
        domain_classifier(reference, current, folds=1)
