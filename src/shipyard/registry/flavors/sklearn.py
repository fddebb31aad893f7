"""scikit-learn flavor: any fitted estimator, including Pipelines, persisted with joblib (default protocol).

joblib pickles by reference, so custom estimator classes must be importable where the model is
loaded; for classes defined in a notebook or ``__main__`` use the ``pyfunc`` flavor (cloudpickle).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from shipyard.registry.flavors._common import class_path

FLAVOR = "sklearn"
DISTRIBUTIONS = ("scikit-learn", "joblib")
FILE = "model.joblib"


def matches(model: Any) -> bool:
    if "sklearn" not in sys.modules:  # nothing can be an estimator if sklearn was never imported
        return False
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


def save(model: Any, path: Path) -> dict[str, Any]:
    import joblib
    import sklearn

    joblib.dump(model, path / FILE)
    return {
        "serialization": "joblib",
        "file": FILE,
        "library_version": sklearn.__version__,
        "class": class_path(model),
    }


def load(path: Path, meta: dict[str, Any]) -> Any:
    import joblib

    return joblib.load(Path(path) / meta.get("file", FILE))
