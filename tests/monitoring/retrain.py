"""The retraining pipeline an alert triggers in the tests (importable by the runner and the server)."""

from __future__ import annotations

import shipyard
from shipyard.pipelines import pipeline, step


@step
def count_rows(data: str) -> int:
    return len(shipyard.load_dataset(data))


@pipeline
def retrain(data: str = "", reason: str = "drift"):
    count_rows(data)
