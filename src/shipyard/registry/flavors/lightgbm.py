"""LightGBM flavor: Booster and the scikit-learn wrappers (LGBMClassifier, LGBMRegressor, LGBMRanker).

A Booster is saved as LightGBM's text model (``model.txt``, exact and readable by every LightGBM
binding). The scikit-learn wrappers have no save/load of their own: LightGBM documents pickling
(joblib) as the way to persist them, since the wrapper holds fitted state the text model lacks
(label encoder, classes, objective/param resolution). So wrappers are stored with joblib, and their
booster is written next to it as ``booster.txt`` so the trees stay usable without unpickling.
lightgbm is imported lazily: without it, ``matches`` is False and ``load`` explains how to install it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from shipyard.registry.flavors._common import class_path, require_library

FLAVOR = "lightgbm"
DISTRIBUTIONS = ("lightgbm", "joblib")
BOOSTER_FILE = "model.txt"
WRAPPER_FILE = "model.joblib"
WRAPPER_BOOSTER_FILE = "booster.txt"


def _require() -> Any:
    return require_library("lightgbm", "lightgbm")


def matches(model: Any) -> bool:
    lgb = sys.modules.get("lightgbm")  # not imported yet: the model cannot be a lightgbm object
    if lgb is None or not hasattr(lgb, "Booster"):
        return False
    return isinstance(model, lgb.Booster | lgb.LGBMModel)


def save(model: Any, path: Path) -> dict[str, Any]:
    lgb = _require()
    meta: dict[str, Any] = {"library_version": lgb.__version__, "class": class_path(model)}
    if isinstance(model, lgb.Booster):
        model.save_model(str(path / BOOSTER_FILE))
        return {"serialization": "lightgbm-text", "file": BOOSTER_FILE, "kind": "booster", **meta}
    import joblib

    joblib.dump(model, path / WRAPPER_FILE)
    model.booster_.save_model(str(path / WRAPPER_BOOSTER_FILE))
    return {
        "serialization": "joblib",
        "file": WRAPPER_FILE,
        "booster_file": WRAPPER_BOOSTER_FILE,
        "kind": "sklearn",
        **meta,
    }


def load(path: Path, meta: dict[str, Any]) -> Any:
    lgb = _require()
    if meta.get("kind", "booster") == "booster":
        return lgb.Booster(model_file=str(Path(path) / meta.get("file", BOOSTER_FILE)))
    import joblib

    return joblib.load(Path(path) / meta.get("file", WRAPPER_FILE))
