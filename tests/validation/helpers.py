"""Importable python checks for the tests (contracts name them as ``tests.validation.helpers:fn``)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def no_infinity(df: pd.DataFrame) -> pd.Series:
    numeric = df.select_dtypes("number")
    return pd.Series(~np.isinf(numeric.to_numpy(dtype=float)).any(axis=1), index=df.index)
