"""Batch prediction logs: predictions scored offline go into the same log as the server's.

:func:`prediction_table` turns a DataFrame of inputs and predictions into a prediction-log segment
(the columns :func:`shipyard.serving.prediction_log.read_predictions` reads: base columns, one
``in.<column>`` per input, ``proba.<class>`` per class probability), so monitors treat served and
batch-scored predictions alike.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInput
from shipyard.core.time import now_ms

BATCH_ENDPOINT = "batch"


def prediction_table(
    frame: pd.DataFrame,
    *,
    endpoint: str,
    model: str,
    version: int,
    prediction_column: str = "prediction",
    id_column: str | None = None,
    timestamp_column: str | None = None,
    proba_columns: Sequence[str] | None = None,
) -> tuple[Any, list[str]]:
    """The Arrow table of one segment, and the prediction ids (given by ``id_column`` or generated)."""
    import pyarrow as pa

    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise InvalidInput("log_predictions takes a non-empty pandas DataFrame", field="df")
    if prediction_column not in frame.columns:
        raise InvalidInput(f"the frame has no prediction column {prediction_column!r}", field="prediction_column")
    n = len(frame)
    if id_column is not None:
        if id_column not in frame.columns:
            raise InvalidInput(f"the frame has no id column {id_column!r}", field="id_column")
        ids = [str(v) for v in frame[id_column]]
        if any(not v or len(v) > 64 for v in ids) or len(set(ids)) != n:
            raise InvalidInput("prediction ids must be unique, non-empty and at most 64 characters", field="id_column")
    else:
        batch = uuid.uuid4().hex
        ids = [f"{batch}-{i}" for i in range(n)]
    if timestamp_column is not None:
        if timestamp_column not in frame.columns:
            raise InvalidInput(f"the frame has no timestamp column {timestamp_column!r}", field="timestamp_column")
        ts = _timestamps(frame[timestamp_column])
    else:
        ts = np.full(n, now_ms(), dtype="int64")
    proba = list(proba_columns or [])
    missing = [c for c in proba if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the frame has no probability column(s) {missing}", field="proba_columns")
    skip = {prediction_column, id_column, timestamp_column, *proba}
    inputs = [c for c in frame.columns if c not in skip]
    predictions = frame[prediction_column]
    numeric = pd.api.types.is_numeric_dtype(predictions) and not pd.api.types.is_bool_dtype(predictions)
    request = [i.rsplit("-", 1)[0] if id_column is None else i for i in ids]
    records = frame[inputs].to_dict(orient="records")
    columns: dict[str, Any] = {
        "prediction_id": pa.array(ids, pa.string()),
        "request_id": pa.array(request, pa.string()),
        "row": pa.array(np.arange(n, dtype="int32")),
        "endpoint": pa.array([endpoint] * n, pa.string()),
        "model": pa.array([model] * n, pa.string()),
        "version": pa.array(np.full(n, version, dtype="int32")),
        "variant": pa.array([None] * n, pa.string()),
        "ts": pa.array(ts, pa.int64()),
        "latency_ms": pa.array([None] * n, pa.float64()),
        "inputs": pa.array([json.dumps(r, default=str) for r in records], pa.string()),
        "output": pa.array([json.dumps(_plain(v), default=str) for v in predictions], pa.string()),
        "prediction": pa.array(predictions.astype("float64") if numeric else [None] * n, pa.float64()),
        "routing": pa.array([None] * n, pa.string()),
    }
    for name in inputs:
        series = frame[name]
        key = "in." + str(name)
        if pd.api.types.is_bool_dtype(series):
            columns[key] = pa.array(series.astype(object).where(series.notna(), None), pa.bool_())
        elif pd.api.types.is_numeric_dtype(series):
            columns[key] = pa.array(series.astype("float64"), pa.float64())
        else:
            columns[key] = pa.array([None if _missing(v) else str(v) for v in series], pa.string())
    for name in proba:
        label = name[len("proba.") :] if name.startswith("proba.") else name
        columns["proba." + label] = pa.array(frame[name].astype("float64"), pa.float64())
    return pa.table(columns), ids


def _timestamps(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
        return (values.astype("int64") // 1_000_000).to_numpy(dtype="int64")
    if pd.api.types.is_integer_dtype(series):
        return series.to_numpy(dtype="int64")
    raise InvalidInput("the timestamp column must hold datetimes or epoch milliseconds", field="timestamp_column")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
