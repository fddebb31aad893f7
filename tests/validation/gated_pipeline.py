"""A pipeline gated by a data contract (steps must live in an importable module)."""

from __future__ import annotations

import pandas as pd

from shipyard.data.validation import check
from shipyard.pipelines import pipeline, step

CONTRACT = {"columns": {"age": {"min": 0, "max": 120}, "id": {"unique": True}}, "rows": {"min": 1}}


@step
def make_people(bad: bool = False) -> pd.DataFrame:
    ages = [30, 40, 150 if bad else 50]
    return pd.DataFrame({"id": [1, 2, 3], "age": ages})


@step
def validate(frame: pd.DataFrame) -> int:
    return check(frame, contract=CONTRACT).row_count


@step
def use(rows: int) -> int:
    return rows * 2


@pipeline
def gated_people(bad: bool = False):
    use(validate(make_people(bad)))
