"""Models with known behaviour for deployment tests: good, faulty, slow, refusing to load."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_iris()
    return pd.DataFrame(data.data, columns=COLUMNS), data.target


def good(kind: str = "logistic") -> Any:
    x, y = iris()
    model = LogisticRegression(max_iter=500) if kind == "logistic" else DecisionTreeClassifier(random_state=0)
    return model.fit(x, y)


class Faulty(LogisticRegression):
    """Fits like a logistic regression, raises on every prediction (a broken release)."""

    def predict(self, X: Any) -> Any:  # noqa: N803 - sklearn's name
        raise RuntimeError("feature store unreachable")


class Slow(LogisticRegression):
    """Correct answers, ``delay`` seconds late."""

    delay = 0.03

    def predict(self, X: Any) -> Any:  # noqa: N803
        time.sleep(self.delay)
        return super().predict(X)


class Constant(LogisticRegression):
    """Always answers class 2: a model whose predictions diverge from the baseline's."""

    def predict(self, X: Any) -> Any:  # noqa: N803
        return np.full(len(X), 2)


def fitted(cls: type) -> Any:
    x, y = iris()
    return cls(max_iter=500).fit(x, y)


class Flaky(LogisticRegression):
    """Passes a smoke test on typical rows but raises on narrow sepals (about 40% of live iris traffic)."""

    def predict(self, X: Any) -> Any:  # noqa: N803
        if (np.asarray(X)[:, 1] < 3.0).any():
            raise RuntimeError("feature store unreachable for this segment")
        return super().predict(X)
