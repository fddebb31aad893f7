"""Models the demo rolls out: a refit challenger, and a release with a bug the smoke test misses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin


class RangeBug(ClassifierMixin, BaseEstimator):
    """Wraps a fitted classifier but raises on rows whose ``column`` exceeds ``limit`` — a release whose
    feature scaling overflows on large tumours. Its smoke inputs all lie below the limit, so only live
    traffic reveals it."""

    def __init__(self, model: Any = None, column: str = "mean area", limit: float = 0.0):
        self.model = model
        self.column = column
        self.limit = limit

    def fit(self, X: pd.DataFrame, y: Any) -> RangeBug:  # noqa: N803 - sklearn's name
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: pd.DataFrame) -> Any:  # noqa: N803
        if (np.asarray(X[self.column], dtype=float) > self.limit).any():
            raise OverflowError(f"{self.column} above {self.limit:g} overflows the scaler")
        return self.model.predict(X)
