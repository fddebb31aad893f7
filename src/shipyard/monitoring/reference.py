"""The reference a monitor compares against, resolved once when the monitor is created.

By default it is the training data recorded in the model version's lineage (its first dataset
ref), so training-serving skew is measured with no configuration. It can also be any dataset
version (``"NAME@3"``) or a window of the prediction log (``"window:START..END"``, ISO times or
epoch ms). The model scores the reference, so prediction drift compares live predictions with what
the model predicted on its own training data.

What is kept: the reference bins and profile (JSON, in the monitor row) and a sample of up to
``SAMPLE_ROWS`` rows with predictions, labels and probabilities (a Parquet blob) for the label-free
estimate's calibration, the multivariate check and importance stability.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInput
from shipyard.core.time import parse_time
from shipyard.monitoring.compute import LABEL, PREDICTION, PROBA_PREFIX, features_of, predicted_values
from shipyard.monitoring.profiles import Profile, ReferenceBins, fit_bins, profile_frame

SCORE_ROWS = 100_000  # reference rows scored by the model for the prediction's reference profile
SAMPLE_ROWS = 5_000


@dataclass
class Reference:
    spec: dict[str, Any]
    task: str
    columns: list[str]
    classes: list[str]
    bins: ReferenceBins
    profile: Profile
    sample: pd.DataFrame


def signature_columns(version: Any) -> list[str]:
    inputs = (version.signature or {}).get("inputs") or {}
    return [str(c["name"]) for c in inputs.get("columns") or [] if isinstance(c, dict) and "name" in c]


def model_classes(model: Any) -> list[str]:
    raw = getattr(model, "raw", model)
    classes = getattr(raw, "classes_", None)
    if classes is None and hasattr(raw, "steps"):  # a scikit-learn Pipeline
        classes = getattr(raw.steps[-1][1], "classes_", None)
    return [] if classes is None else [str(c.item() if hasattr(c, "item") else c) for c in classes]


def build_reference(
    client: Any,
    version: Any,
    model: Any,
    spec: str | None,
    columns: list[str] | None,
    label_column: str | None,
    task: str | None,
    read_window: Any,
) -> Reference:
    """Resolve and profile the reference. ``read_window(since, until)`` reads logged predictions."""
    frame, resolved, logged = _reference_frame(client, version, spec, read_window)
    if frame.empty:
        raise InvalidInput(f"the reference {resolved.get('ref') or spec!r} has no rows", field="reference")
    wanted = signature_columns(version)
    available = (
        [c[len("in.") :] for c in frame.columns if c.startswith("in.")] if logged else [str(c) for c in frame.columns]
    )
    if label_column is None and not logged:
        extra = [c for c in available if c not in wanted] if wanted else []
        label_column = extra[0] if len(extra) == 1 else None
    if label_column is not None and label_column not in available:
        raise InvalidInput(f"the reference has no label column {label_column!r}", field="label_column")
    if columns is None:
        columns = [c for c in wanted if c in available] if wanted else [c for c in available if c != label_column]
    missing = [c for c in columns if c not in available]
    if missing or not columns:
        raise InvalidInput(
            f"the reference lacks the monitored column(s) {missing}" if missing else "no columns to monitor",
            field="columns",
        )
    classes = model_classes(model) if model is not None else []
    if task is None:
        task = "classification" if classes or hasattr(getattr(model, "raw", None), "predict_proba") else "regression"
    if task not in ("classification", "regression"):
        raise InvalidInput(f"task must be classification or regression, not {task!r}", field="task")

    scored = frame.head(SCORE_ROWS).reset_index(drop=True)
    if logged:
        features = features_of(scored, columns)
        prediction = predicted_values(scored, task)
        labels = pd.Series([None] * len(scored))
    else:
        features = scored[columns].copy()
        labels = scored[label_column] if label_column else pd.Series([None] * len(scored))
        prediction = _predict(model, features, task)
    current = features.copy()
    current[PREDICTION] = prediction.to_numpy()
    bins = fit_bins(current)
    profile = profile_frame(current, bins)

    sample = current.head(SAMPLE_ROWS).copy()
    sample[LABEL] = labels.head(SAMPLE_ROWS).to_numpy()
    if task == "classification" and model is not None and classes:
        try:
            proba = np.asarray(model.predict_proba(features.head(SAMPLE_ROWS)), dtype="float64")
            for i, name in enumerate(classes):
                sample[PROBA_PREFIX + name] = proba[:, i]
        except Exception:  # no probabilities: no calibrated estimate, the rest stands
            pass
    resolved.update({"rows": int(len(frame)), "label_column": label_column})
    return Reference(resolved, task, columns, classes, bins, profile, sample)


def _predict(model: Any, features: pd.DataFrame, task: str) -> pd.Series:
    if model is None:
        return pd.Series([None] * len(features))
    values = np.asarray(model.predict(features)).tolist()
    frame = pd.DataFrame({"prediction": pd.to_numeric(pd.Series(values), errors="coerce")})
    if task == "classification" or frame["prediction"].isna().any():
        frame = pd.DataFrame({"output": [_json(v) for v in values]})
    return predicted_values(frame, task)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def _reference_frame(
    client: Any, version: Any, spec: str | None, read_window: Any
) -> tuple[pd.DataFrame, dict[str, Any], bool]:
    if spec is None:
        if not version.data_refs:
            raise InvalidInput(
                f"{version.model_name}/{version.version} has no training dataset in its lineage; "
                "give a reference (a dataset version NAME@N, or window:START..END)",
                field="reference",
            )
        ref = version.data_refs[0]
        return client.load_dataset(ref, record=False), {"kind": "dataset", "ref": ref, "source": "lineage"}, False
    if spec.startswith("window:"):
        since_text, sep, until_text = spec[len("window:") :].partition("..")
        if not sep:
            raise InvalidInput(f"a window reference reads window:START..END, not {spec!r}", field="reference")
        since, until = _time(since_text), _time(until_text)
        if until <= since:
            raise InvalidInput("the reference window ends before it starts", field="reference")
        frame = read_window(since, until)
        return frame, {"kind": "window", "since": since, "until": until, "ref": spec, "source": "given"}, True
    resolved = client.get_dataset(spec)
    return (
        client.load_dataset(resolved.ref, record=False),
        {"kind": "dataset", "ref": resolved.ref, "source": "given"},
        False,
    )


def _time(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else parse_time(text)


def sample_to_bytes(sample: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame = sample.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def sample_from_bytes(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))
