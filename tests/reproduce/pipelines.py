"""Small pipelines for the reproduce tests: one deterministic, one that is not (importable by reference)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

import shipyard
from shipyard.pipelines import pipeline, step


@step
def make(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] + x[:, 1] > 0).astype(int)})


@step
def fit(frame: pd.DataFrame, deterministic: bool = True) -> dict:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=5, random_state=0 if deterministic else None, n_jobs=1)
    model.fit(frame[["a", "b", "c"]], frame["y"])
    shipyard.log_metric("train_accuracy", float(model.score(frame[["a", "b", "c"]], frame["y"])))
    if not deterministic:
        shipyard.log_metric("draw", random.random())
    version = shipyard.register_model(model, "repro")
    return {"digest": version.digest}


@pipeline
def repro(rows: int = 200, seed: int = 0, deterministic: bool = True):
    fit(make(rows, seed), deterministic)
