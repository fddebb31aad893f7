"""The retraining pipeline the closed-loop tests' automation runs (importable by the engine)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

import shipyard
from shipyard.pipelines import pipeline, step

FEATURES = ["x1", "x2", "region"]


class RangeBug(ClassifierMixin, BaseEstimator):
    """A release that raises on rows with ``x1`` above ``limit``: fine on the training data (and so in
    its evaluation and smoke test), failing on drifted live traffic."""

    def __init__(self, model: Any = None, limit: float = 0.0):
        self.model = model
        self.limit = limit

    def fit(self, X: pd.DataFrame, y: Any) -> RangeBug:  # noqa: N803 - sklearn's name
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: pd.DataFrame) -> Any:  # noqa: N803
        if (np.asarray(X["x1"], dtype=float) > self.limit).any():
            raise OverflowError(f"x1 above {self.limit:g}")
        return self.model.predict(X)

    def predict_proba(self, X: pd.DataFrame) -> Any:  # noqa: N803
        self.predict(X)
        return self.model.predict_proba(X)


@step
def refit(base: str, fresh: str, fault: bool = False) -> dict:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    old, new = shipyard.load_dataset(base), shipyard.load_dataset(fresh)
    label = "target" if "target" in new.columns else "label"
    new = new.rename(columns={label: "target"})
    frame = pd.concat([old, new[old.columns]], ignore_index=True)
    model = make_pipeline(ColumnTransformer([("numbers", "passthrough", ["x1", "x2"])]), LogisticRegression())
    model.fit(frame[FEATURES], frame["target"].astype(int))
    if fault:
        model = RangeBug(model, float(old["x1"].max()) + 0.01).fit(frame[FEATURES], frame["target"].astype(int))
    version = shipyard.register_model(
        model, "clf", input_example=old[FEATURES].head(3), data_refs=[base, fresh], description="retrained"
    )
    return {"version": version.version, "rows": len(frame)}


@pipeline
def retrain(dataset: str = "", base: str = "train@1", fault: bool = False):
    refit(base, dataset, fault)
