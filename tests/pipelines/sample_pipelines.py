"""Pipelines used by the pipeline tests: importable, so worker processes import the same steps."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

import shipyard
from shipyard.core.errors import ShipyardError
from shipyard.pipelines import DatasetRef, pipeline, step

log = logging.getLogger("sample")


class Split(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame


@step
def make_frame(rows: int = 10, seed: int = 0) -> pd.DataFrame:
    print(f"making {rows} rows")
    log.info("seeded with %s", seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pd.DataFrame({"x": x, "y": (x > 0).astype(int)})


@step
def split(frame: pd.DataFrame, ratio: float = 0.5) -> Split:
    cut = int(len(frame) * ratio)
    return Split(frame.iloc[:cut], frame.iloc[cut:])


@step
def stats(frame: pd.DataFrame) -> dict:
    shipyard.log_metric("rows", len(frame))
    return {"rows": len(frame), "mean": float(frame["x"].mean())}


@step(outputs=["array", "table"])
def convert(frame: pd.DataFrame) -> tuple[np.ndarray, pa.Table]:
    return frame["x"].to_numpy(), pa.Table.from_pandas(frame, preserve_index=False)


@step
def train(train: pd.DataFrame, c: float = 1.0, register_as: str | None = None):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c).fit(train[["x"]], train["y"])
    shipyard.log_metric("train_accuracy", float(model.score(train[["x"]], train["y"])))
    if register_as:
        shipyard.log_model(model, "model", registered_model_name=register_as)
    return model


@step
def evaluate(model, test: pd.DataFrame) -> float:
    return float(model.score(test[["x"]], test["y"]))


@pipeline
def training(rows: int = 40, c: float = 1.0, register_as: str | None = None):
    frame = make_frame(rows)
    parts = split(frame)
    model = train(parts.train, c=c, register_as=register_as)
    evaluate(model, parts.test)
    stats(frame)


@pipeline
def kinds(rows: int = 6):
    frame = make_frame(rows)
    array, table = convert(frame)
    stats(frame)


# -- failure, retries, timeouts -------------------------------------------------------------------


class ValidationFailed(ShipyardError):
    code = "validation_failed"
    status = 422

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


@step
def gate(frame: pd.DataFrame, min_rows: int = 100) -> int:
    if len(frame) < min_rows:
        raise ValidationFailed(f"{len(frame)} rows < {min_rows}", report={"rows": len(frame), "min_rows": min_rows})
    return len(frame)


@step
def after_gate(rows: int) -> int:
    return rows * 2


@pipeline
def gated(rows: int = 10, min_rows: int = 100):
    frame = make_frame(rows)
    checked = gate(frame, min_rows=min_rows)
    after_gate(checked)
    stats(frame)  # an independent branch: still runs when the gate fails


@step(retries=2, retry_backoff=0.05)
def flaky(marker_dir: str, fail_times: int = 2) -> int:
    """Fails ``fail_times`` times (counted in files), then succeeds."""
    directory = Path(marker_dir)
    directory.mkdir(parents=True, exist_ok=True)
    attempts = len(list(directory.iterdir())) + 1
    (directory / f"attempt-{attempts}").touch()
    if attempts <= fail_times:
        raise RuntimeError(f"flaky attempt {attempts}")
    return attempts


@pipeline
def retrying(marker_dir: str, fail_times: int = 2):
    flaky(marker_dir, fail_times)


@step(timeout=1.0)
def slow(seconds: float = 30.0) -> float:
    time.sleep(seconds)
    return seconds


@pipeline
def timing_out(seconds: float = 30.0):
    slow(seconds)


@step
def nap(label: str, seconds: float = 1.5) -> dict:
    start = time.time()
    time.sleep(seconds)
    return {"label": label, "pid": os.getpid(), "start": start, "end": time.time()}


@pipeline
def parallel(seconds: float = 1.5):
    nap("a", seconds)
    nap("b", seconds)


@step
def wait_for_file(path: str) -> str:
    Path(path + ".started").touch()
    while not Path(path).exists():
        time.sleep(0.05)
    return path


@pipeline
def blocking(path: str, rows: int = 5):
    frame = make_frame(rows)
    stats(frame)
    wait_for_file(path)


# -- bad pipelines ---------------------------------------------------------------------------------


class Opaque:
    pass


@step
def opaque() -> object:
    return Opaque()


@pipeline
def unserialisable():
    opaque()


@pipeline
def unknown_output():
    parts = split(make_frame(4))
    stats(parts.nope)


@pipeline
def missing_input():
    stats()


@step
def read_dataset(ref: DatasetRef) -> int:
    return len(ref.load())


@pipeline
def uses_dataset(ref: str = "numbers@1"):
    read_dataset(DatasetRef(ref))


@step
def load_inside(ref: str) -> int:
    return len(shipyard.data.load(ref))


@pipeline
def loads_dataset(ref: str = "numbers@1"):
    load_inside(ref)


@step
def interrupted() -> int:
    raise KeyboardInterrupt


@pipeline
def interrupting(rows: int = 3):
    frame = make_frame(rows)
    interrupted()
    stats(frame)
