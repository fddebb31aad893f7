"""A pipeline that writes a dataset in one step and reads it in the next (importable for the runner)."""

from __future__ import annotations

import pandas as pd

import shipyard
from shipyard.pipelines import pipeline, step


@step
def publish(rows: int = 5) -> str:
    return shipyard.log_dataset(pd.DataFrame({"a": range(rows)}), name="pipe-out").ref


@step
def consume(ref: str) -> int:
    return len(shipyard.data.load(ref))


@pipeline
def publish_then_consume(rows: int = 5):
    consume(publish(rows))
