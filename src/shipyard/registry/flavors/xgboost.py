"""XGBoost flavor: Booster and the scikit-learn wrappers (XGBClassifier, XGBRegressor, ...).

Models are written with XGBoost's own ``save_model`` in UBJSON (exact, version-portable, no pickle).
For the wrappers the constructor parameters that are plain JSON are recorded too, because
``save_model`` keeps the trees and the fitted attributes (classes, feature names) but not the
hyper-parameters; on load the same class is rebuilt with them and ``load_model`` is called on it.
xgboost is imported lazily: without it, ``matches`` is False and ``load`` explains how to install it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from shipyard.registry.flavors._common import class_path, import_class, is_jsonable, require_library

FLAVOR = "xgboost"
DISTRIBUTIONS = ("xgboost", "xgboost-cpu")
FILE = "model.ubj"


def _require() -> Any:
    return require_library("xgboost", "xgboost")


def matches(model: Any) -> bool:
    xgb = sys.modules.get("xgboost")  # not imported yet: the model cannot be an xgboost object
    if xgb is None or not hasattr(xgb, "Booster"):
        return False
    return isinstance(model, xgb.Booster | xgb.XGBModel)


def save(model: Any, path: Path) -> dict[str, Any]:
    xgb = _require()
    model.save_model(str(path / FILE))
    meta: dict[str, Any] = {
        "serialization": "xgboost-ubj",
        "file": FILE,
        "library_version": xgb.__version__,
        "class": class_path(model),
        "kind": "booster" if isinstance(model, xgb.Booster) else "sklearn",
    }
    if not isinstance(model, xgb.Booster):
        params = model.get_params(deep=False)
        meta["params"] = {k: v for k, v in params.items() if v is not None and is_jsonable(v)}
    return meta


def load(path: Path, meta: dict[str, Any]) -> Any:
    xgb = _require()
    file = str(Path(path) / meta.get("file", FILE))
    if meta.get("kind", "booster") == "booster":
        booster = xgb.Booster()
        booster.load_model(file)
        return booster
    cls = import_class(meta["class"], xgb.XGBModel)
    model = cls(**meta.get("params", {}))
    model.load_model(file)
    return model


def predict(model: Any, data: Any) -> Any:
    """A bare Booster wants a DMatrix; ``inplace_predict`` takes arrays and DataFrames directly."""
    xgb = _require()
    if isinstance(model, xgb.Booster):
        return model.inplace_predict(data)
    return model.predict(data)
