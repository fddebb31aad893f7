"""A small world for monitoring tests: a model trained on logged data, and production traffic that
drifts on cue, logged as batch predictions with explicit timestamps (so windows are deterministic)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

HOUR = 3_600_000
FEATURES = ["x1", "x2", "region"]


def truth(frame: pd.DataFrame, rng: np.random.Generator, cut: float = 1.0) -> np.ndarray:
    return ((frame["x1"] + 0.5 * frame["x2"] + rng.normal(0, 0.4, len(frame))) > cut).astype(int).to_numpy()


def traffic(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x1": rng.normal(shift, 1.0, n),
            "x2": rng.normal(1.0, 1.0, n),
            "region": rng.choice(["eu", "us", "apac"], n, p=[0.5, 0.3, 0.2]),
        }
    )


class World:
    """``clf`` v1 trained on dataset ``train@1`` (which its lineage records)."""

    def __init__(self, client: Any, seed: int = 0, rows: int = 2000):
        self.c = client
        self.rng = np.random.default_rng(seed)
        train = traffic(self.rng, rows)
        train["target"] = truth(train, self.rng)
        self.dataset = client.log_dataset(train, "train")
        # a standard scikit-learn pipeline over x1, x2 that ignores the other columns it is given
        self.model = make_pipeline(
            ColumnTransformer([("numbers", "passthrough", ["x1", "x2"])]), LogisticRegression()
        ).fit(train[FEATURES], train["target"])
        self.version = client.register_model(
            self.model, "clf", data_refs=[self.dataset.ref], input_example=train[FEATURES].head(3)
        )
        self.start = (1_700_000_000_000 // HOUR) * HOUR  # a fixed hour boundary, far in the past

    def log_hour(self, hour: int, n: int = 400, shift: float = 0.0, cut: float = 1.0) -> tuple[list[str], np.ndarray]:
        """Log one hour of predictions (inputs shifted by ``shift``); returns the ids and the true labels
        (where the labelling rule moves to ``cut``)."""
        frame = traffic(self.rng, n, shift)
        frame["prediction"] = self.model.predict(frame[FEATURES])
        frame["ts"] = self.start + hour * HOUR + np.sort(self.rng.integers(0, HOUR, n))
        ids = self.c.log_predictions(frame, "clf/1", timestamp_column="ts")
        return ids, truth(frame, self.rng, cut)

    def end_of(self, hour: int) -> int:
        """A 'now' just after hour ``hour`` ended (past the monitor's grace)."""
        return self.start + (hour + 1) * HOUR + 60_000
