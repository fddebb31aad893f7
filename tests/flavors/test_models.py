"""Save → load round trips for every flavor on tiny real models, plus the descriptor's guarantees."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.errors import IntegrityError, InvalidInput
from shipyard.registry.flavors import (
    DESCRIPTOR,
    FORMAT,
    LoadedModel,
    PythonModel,
    detect_flavor,
    load_model,
    read_descriptor,
    save_model,
)
from shipyard.registry.flavors import lightgbm as lgb_flavor
from shipyard.registry.flavors import xgboost as xgb_flavor


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


def roundtrip(model: Any, path: Path, X: pd.DataFrame, **kwargs: Any) -> tuple[dict[str, Any], LoadedModel]:
    descriptor = save_model(model, path, input_example=X.iloc[:5], **kwargs)
    return descriptor, load_model(path)


# ---------------------------------------------------------------------------------------------
# Real models, identical predictions
# ---------------------------------------------------------------------------------------------


def test_sklearn_logistic_regression(tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = LogisticRegression(max_iter=200, solver="liblinear").fit(X, y)
    descriptor, loaded = roundtrip(model, tmp_path / "m", X)
    assert descriptor["flavor"] == "sklearn"
    assert descriptor["flavor_meta"]["serialization"] == "joblib"
    assert descriptor["flavor_meta"]["class"] == "sklearn.linear_model._logistic:LogisticRegression"
    assert "scikit-learn" in descriptor["library_versions"]
    assert isinstance(loaded.raw, LogisticRegression)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.signature is not None
    assert loaded.signature["outputs"] == {"type": "tensor", "dtype": "int64", "shape": [-1]}


def test_sklearn_pipeline(tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = Pipeline(
        [("scale", StandardScaler()), ("rf", RandomForestClassifier(n_estimators=10, random_state=0, n_jobs=1))]
    ).fit(X, y)
    _, loaded = roundtrip(model, tmp_path / "m", X)
    assert loaded.flavor == "sklearn"
    assert isinstance(loaded.raw, Pipeline)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_xgboost_classifier(tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = xgb.XGBClassifier(n_estimators=10, max_depth=3, learning_rate=0.3, n_jobs=1).fit(X, y)
    descriptor, loaded = roundtrip(model, tmp_path / "m", X)
    assert descriptor["flavor"] == "xgboost"  # checked before sklearn although it is a BaseEstimator
    assert descriptor["flavor_meta"]["serialization"] == "xgboost-ubj"
    assert not any(name.endswith((".pkl", ".joblib")) for name in descriptor["files"])
    assert type(loaded.raw) is xgb.XGBClassifier
    assert loaded.raw.get_params()["max_depth"] == 3
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_xgboost_regressor_and_booster(tmp_path: Path, diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = diabetes
    reg = xgb.XGBRegressor(n_estimators=5, max_depth=2, n_jobs=1).fit(X, y)
    _, loaded = roundtrip(reg, tmp_path / "reg", X)
    assert type(loaded.raw) is xgb.XGBRegressor
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert not hasattr(loaded, "predict_proba")

    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, y), num_boost_round=5)
    _, loaded = roundtrip(booster, tmp_path / "booster", X)
    assert isinstance(loaded.raw, xgb.Booster)
    np.testing.assert_array_equal(loaded.predict(X), booster.inplace_predict(X))


def test_lightgbm_classifier(tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, n_jobs=1, verbose=-1).fit(X, y)
    descriptor, loaded = roundtrip(model, tmp_path / "m", X)
    assert descriptor["flavor"] == "lightgbm"
    assert set(descriptor["files"]) == {"model.joblib", "booster.txt"}
    assert type(loaded.raw) is lgb.LGBMClassifier
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    # the side-car text model alone reproduces the positive-class probability
    text_booster = lgb.Booster(model_file=str(tmp_path / "m" / "booster.txt"))
    np.testing.assert_array_equal(text_booster.predict(X), model.predict_proba(X)[:, 1])


def test_lightgbm_booster(tmp_path: Path, diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = diabetes
    booster = lgb.train({"num_leaves": 7, "verbose": -1, "num_threads": 1}, lgb.Dataset(X, y), num_boost_round=5)
    descriptor, loaded = roundtrip(booster, tmp_path / "m", X)
    assert descriptor["flavor_meta"]["serialization"] == "lightgbm-text"
    assert isinstance(loaded.raw, lgb.Booster)
    np.testing.assert_array_equal(loaded.predict(X), booster.predict(X))


class Thresholded(PythonModel):
    """Custom model whose threshold lives in an artifact file rather than in the pickle."""

    def __init__(self, base: Any, threshold: float):
        self.base = base
        self.threshold = threshold
        self.loaded_threshold: float | None = None

    def save_context(self, artifacts_dir: Path) -> None:
        (artifacts_dir / "threshold.json").write_text(json.dumps({"threshold": self.threshold}))

    def load_context(self, artifacts_dir: Path) -> None:
        self.loaded_threshold = json.loads((artifacts_dir / "threshold.json").read_text())["threshold"]

    def predict(self, model_input: Any) -> Any:
        assert self.loaded_threshold is not None, "load_context was not called"
        return (self.base.predict_proba(model_input)[:, 1] >= self.loaded_threshold).astype(int)


def test_custom_python_model(tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    base = LogisticRegression(max_iter=200, solver="liblinear").fit(X, y)
    model = Thresholded(base, 0.8)
    descriptor, loaded = roundtrip(model, tmp_path / "m", X)
    assert descriptor["flavor"] == "pyfunc"
    assert descriptor["flavor_meta"]["python_model"] is True
    assert "artifacts/threshold.json" in descriptor["files"]
    assert loaded.raw.loaded_threshold == 0.8
    # outputs were inferred through a reloaded copy, after load_context
    assert descriptor["signature"]["outputs"] == {"type": "tensor", "dtype": "int64", "shape": [-1]}
    assert model.loaded_threshold is None  # the caller's object was not touched
    expected = (base.predict_proba(X)[:, 1] >= 0.8).astype(int)
    np.testing.assert_array_equal(loaded.predict(X), expected)


class PlainScorer:
    """Not a PythonModel, not an estimator: just something with predict."""

    def __init__(self, weights: np.ndarray):
        self.weights = weights

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(data, dtype="float64") @ self.weights


def test_plain_object_with_predict(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    model = PlainScorer(rng.normal(size=4))
    descriptor = save_model(model, tmp_path / "m", input_example=X)
    assert descriptor["flavor"] == "pyfunc"
    assert descriptor["flavor_meta"]["python_model"] is False
    assert descriptor["signature"]["inputs"] == {"type": "tensor", "dtype": "float64", "shape": [-1, 4]}
    assert descriptor["signature"]["outputs"] == {"type": "tensor", "dtype": "float64", "shape": [-1]}
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.input_example, X[:20])
    with pytest.raises(InvalidInput, match="dimension 1 has size 3"):
        loaded.predict(X[:, :3])


def test_plain_function_object_defined_in_place(tmp_path: Path) -> None:
    class Local:  # a local class cannot be pickled by reference; cloudpickle stores it by value
        def predict(self, data: Any) -> list[int]:
            return [len(str(x)) for x in data]

    save_model(Local(), tmp_path / "m")
    assert load_model(tmp_path / "m").predict(["a", "bbb"]) == [1, 3]


# ---------------------------------------------------------------------------------------------
# Descriptor, validation, integrity, errors
# ---------------------------------------------------------------------------------------------


def test_descriptor_contents(tmp_path: Path, diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = diabetes
    model = Ridge().fit(X, y)
    descriptor = save_model(model, tmp_path / "m", input_example=X, extra_metadata={"team": "risk", "run": "r1"})
    on_disk = read_descriptor(tmp_path / "m")
    assert on_disk == descriptor
    assert descriptor["format"] == FORMAT
    assert descriptor["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert descriptor["team"] == "risk" and descriptor["run"] == "r1"
    assert set(descriptor["library_versions"]) >= {"numpy", "pandas", "scikit-learn", "joblib"}
    assert descriptor["input_example"]["type"] == "dataframe"
    assert len(descriptor["input_example"]["data"]) == 20  # truncated
    assert descriptor["input_example"]["columns"] == list(X.columns)
    assert [c["name"] for c in descriptor["signature"]["inputs"]["columns"]] == list(X.columns)
    json.loads((tmp_path / "m" / DESCRIPTOR).read_text(), parse_constant=pytest.fail)  # strict JSON
    loaded = load_model(tmp_path / "m")
    assert loaded.metadata["team"] == "risk"
    pd.testing.assert_frame_equal(loaded.input_example, X.iloc[:20].reset_index(drop=True), check_exact=True)


def test_predict_validates_and_reorders(tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = LogisticRegression(max_iter=200, solver="liblinear").fit(X, y)
    _, loaded = roundtrip(model, tmp_path / "m", X)
    shuffled = X[list(reversed(X.columns))].assign(extra="ignored")
    np.testing.assert_array_equal(loaded.predict(shuffled), model.predict(X))
    with pytest.raises(InvalidInput, match="'mean radius'") as err:
        loaded.predict(X.drop(columns=["mean radius"]))
    assert err.value.field == "mean radius"
    bad = X.astype({"worst area": object})
    bad.loc[bad.index[0], "worst area"] = "big"
    with pytest.raises(InvalidInput, match="'worst area'"):
        loaded.predict_proba(bad)


def test_explicit_signature_must_accept_example(tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = LogisticRegression(max_iter=200, solver="liblinear").fit(X, y)
    signature = {"inputs": {"type": "columns", "columns": [{"name": "nope", "type": "double", "nullable": False}]}}
    with pytest.raises(InvalidInput, match="'nope'"):
        save_model(model, tmp_path / "m", signature=signature, input_example=X.iloc[:3])
    assert not (tmp_path / "m").exists()
    descriptor = save_model(model, tmp_path / "m2", signature=None)
    assert descriptor["signature"] is None and descriptor["input_example"] is None
    # without a signature predict is not checked: the raw model sees the data as is
    np.testing.assert_array_equal(load_model(tmp_path / "m2").predict(X), model.predict(X))


def test_untypable_example_fails_before_writing(tmp_path: Path) -> None:
    example = pd.DataFrame({"x": [1.0, 2.0], "blank": [None, None]})
    with pytest.raises(InvalidInput, match="'blank'"):
        save_model(PlainScorer(np.ones(2)), tmp_path / "m", input_example=example)
    assert not (tmp_path / "m").exists()


def test_unknown_flavor_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="'tensorflow'"):
        save_model(PlainScorer(np.ones(2)), tmp_path / "a", flavor="tensorflow")
    save_model(PlainScorer(np.ones(2)), tmp_path / "b")
    descriptor_file = tmp_path / "b" / DESCRIPTOR
    descriptor = json.loads(descriptor_file.read_text())
    descriptor["flavor"] = "onnx"
    descriptor_file.write_text(json.dumps(descriptor))
    with pytest.raises(InvalidInput, match="'onnx'") as err:
        load_model(tmp_path / "b")
    assert err.value.field == "flavor"


def test_flavor_must_match_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a sklearn model"):
        save_model(PlainScorer(np.ones(2)), tmp_path / "m", flavor="sklearn")
    with pytest.raises(InvalidInput, match="no callable predict"):
        save_model(object(), tmp_path / "m")
    assert detect_flavor(Ridge()) == "sklearn"
    assert detect_flavor(xgb.XGBRegressor()) == "xgboost"
    assert detect_flavor(lgb.LGBMRegressor()) == "lightgbm"
    assert detect_flavor(PlainScorer(np.ones(2))) == "pyfunc"


def test_target_directory_rules(tmp_path: Path) -> None:
    model = PlainScorer(np.ones(2))
    (tmp_path / "empty").mkdir()
    save_model(model, tmp_path / "empty")  # an existing empty directory is fine
    with pytest.raises(InvalidInput, match="not empty"):
        save_model(model, tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="is a file"):
        save_model(model, tmp_path / "file")
    with pytest.raises(InvalidInput, match="format"):
        save_model(model, tmp_path / "x", extra_metadata={"format": "mine"})
    with pytest.raises(InvalidInput, match="JSON"):
        save_model(model, tmp_path / "y", extra_metadata={"score": float("nan")})
    with pytest.raises(InvalidInput, match="no shipyard-model.json"):
        load_model(tmp_path / "nowhere")


class FailingContext(PythonModel):
    def save_context(self, artifacts_dir: Path) -> None:
        (artifacts_dir / "partial.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    def predict(self, model_input: Any) -> Any:
        return model_input


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="disk full"):
        save_model(FailingContext(), tmp_path / "m")
    assert not (tmp_path / "m").exists()
    (tmp_path / "pre").mkdir()
    with pytest.raises(RuntimeError):
        save_model(FailingContext(), tmp_path / "pre")
    assert (tmp_path / "pre").is_dir() and not any((tmp_path / "pre").iterdir())


def test_tampered_file_detected(tmp_path: Path, diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = diabetes
    save_model(Ridge().fit(X, y), tmp_path / "m")
    (tmp_path / "m" / "model.joblib").write_bytes(b"not a model")
    with pytest.raises(IntegrityError, match="model.joblib"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "model.joblib").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        load_model(tmp_path / "m")


def test_missing_optional_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, diabetes: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = diabetes
    reg = xgb.XGBRegressor(n_estimators=2, n_jobs=1).fit(X, y)
    save_model(reg, tmp_path / "m")
    booster = lgb.train({"verbose": -1, "num_threads": 1}, lgb.Dataset(X, y), num_boost_round=2)
    save_model(booster, tmp_path / "l")
    monkeypatch.setitem(sys.modules, "xgboost", None)  # makes `import xgboost` raise ImportError
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    assert xgb_flavor.matches(reg) is False
    assert lgb_flavor.matches(booster) is False
    assert detect_flavor(reg) == "sklearn"  # still a BaseEstimator: falls through
    with pytest.raises(InvalidInput, match=r"shipyard\[xgboost\]"):
        load_model(tmp_path / "m")
    with pytest.raises(InvalidInput, match=r"shipyard\[lightgbm\]"):
        load_model(tmp_path / "l")


def test_output_inference_failure_warns(tmp_path: Path) -> None:
    class Picky:
        def predict(self, data: Any) -> Any:
            raise ValueError("wants something else")

    with pytest.warns(RuntimeWarning, match="output signature"):
        descriptor = save_model(Picky(), tmp_path / "m", input_example=pd.DataFrame({"a": [1.0]}))
    assert descriptor["signature"]["outputs"] is None
    assert descriptor["signature"]["inputs"]["columns"][0]["name"] == "a"
