"""Concept drift: has the relation between inputs and target changed, judged from labelled outcomes.

Pure functions, no database:

* :func:`detect_changes` - run a sequential change detector from ``river`` (ADWIN, DDM, Page-Hinkley) over a
  model's error stream (0/1 misclassifications, or absolute errors for ADWIN and Page-Hinkley) and report where
  it fired;
* :func:`importance_stability` - permutation importance of the same model on reference and on current labelled
  data: when the label starts to depend on other features, the model's reliance on its features stops paying off
  and the importance profile moves.

Results are JSON-safe: no NaN or infinity, ``None`` where a figure is undefined.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from river.drift import ADWIN, PageHinkley
from river.drift.binary import DDM
from scipy import stats as sps
from sklearn.metrics import f1_score

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.performance import normalize_labels

# Overrides of river's defaults. DDM's own (warm_start=30, drift_threshold=3) fire on close to half of all
# stationary 4000-long streams at a 10% error rate: an error-free first stretch makes s_min 0 and the minimum of
# p + s is a biased-low pick, so any later error crosses it. 300 and 4 bring that to about 1% at 10% errors,
# at the cost of a slower reaction (a jump from 10% to 40% is still caught within ~150 samples).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "adwin": {"delta": 0.002},
    "ddm": {"warm_start": 300, "warning_threshold": 3.0, "drift_threshold": 4.0},
    "page_hinkley": {},
}
_DETECTORS: dict[str, type] = {"adwin": ADWIN, "ddm": DDM, "page_hinkley": PageHinkley}

# The verdict of importance_stability: the normalised L1 distance between the two importance profiles.
# 0.5 means half of the importance mass moved between features, or the total shrank to a third (or grew 3x).
IMPORTANCE_SHIFT_THRESHOLD = 0.5
# A feature with at least this share of a side's (positive) importance is one the model relies on there.
MATERIAL_SHARE = 0.05


# --------------------------------------------------------------------------------------------- change detection


@dataclass
class ChangeDetection:
    """Where a change detector fired on a stream. ``changes`` are 0-based indices into the stream."""

    detector: str
    n: int
    changes: list[int] = field(default_factory=list)
    drifted: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _detector_name(detector: str) -> str:
    name = str(detector).strip().lower().replace("-", "_")
    if name not in _DETECTORS:
        raise InvalidInput(
            f"unknown change detector {detector!r}; choose one of {', '.join(sorted(_DETECTORS))}", field="detector"
        )
    return name


def detect_changes(errors: Sequence[float], detector: str = "adwin", **params: Any) -> ChangeDetection:
    """Run a change detector over an error stream, in order, and report every index at which it fired.

    * ``"adwin"`` - river's ADWIN on any bounded numbers (0/1 errors, absolute errors); default ``delta`` 0.002.
      It checks every ``clock`` (32) items, so a detection is reported at the next check after the evidence.
    * ``"ddm"`` - river's binary DDM; ``errors`` must be 0/1 (1 = the prediction was wrong). Defaults
      ``warm_start`` 300 and ``drift_threshold`` 4 (see ``_DEFAULTS`` for why not river's 30 and 3).
    * ``"page_hinkley"`` - river's Page-Hinkley (both directions); its ``threshold`` (50) is in the units of the
      errors, so scale it for errors that are not 0/1.

    Extra keyword arguments go to the river detector; ``params`` in the result are all of its settings as used.
    After a detection river restarts the detector, so later changes are found relative to the new regime.
    """
    name = _detector_name(detector)
    try:
        values = np.asarray(list(errors) if not isinstance(errors, np.ndarray | pd.Series) else errors, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"errors must be numbers: {exc}", field="errors") from exc
    if values.ndim != 1:
        raise InvalidInput(f"errors must be a 1-d stream, got shape {values.shape}", field="errors")
    if not np.isfinite(values).all():
        raise InvalidInput("errors contain NaN or infinite values", field="errors")
    if name == "ddm" and not np.isin(values, (0.0, 1.0)).all():
        raise InvalidInput("DDM needs a stream of 0/1 errors (1 = wrong prediction)", field="errors")

    cls = _DETECTORS[name]
    settings = {**_DEFAULTS[name], **params}
    try:
        instance = cls(**settings)
    except (TypeError, ValueError) as exc:
        accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
        raise InvalidInput(f"bad parameters for {name}: {exc}; it accepts {accepted}", field="params") from exc
    used = {p: getattr(instance, p) for p in inspect.signature(cls).parameters if hasattr(instance, p)}

    changes: list[int] = []
    for i, x in enumerate(values.tolist()):
        instance.update(x)
        if instance.drift_detected:
            changes.append(i)
    return ChangeDetection(detector=name, n=int(values.size), changes=changes, drifted=bool(changes), params=used)


# --------------------------------------------------------------------------------------------- importance stability


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


def _mse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((y - p) ** 2))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - p) ** 2)) / total if total > 0 else 0.0


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p))


def _balanced_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean([np.mean(p[y == label] == label) for label in np.unique(y)]))


def _f1_macro(y: np.ndarray, p: np.ndarray) -> float:
    return float(f1_score(y, p, average="macro", zero_division=0.0))


# name -> (is classification, higher-is-better score function)
_SCORERS: dict[str, tuple[bool, Callable[[np.ndarray, np.ndarray], float]]] = {
    "accuracy": (True, _accuracy),
    "balanced_accuracy": (True, _balanced_accuracy),
    "f1_macro": (True, _f1_macro),
    "neg_mean_absolute_error": (False, lambda y, p: -_mae(y, p)),
    "neg_mean_squared_error": (False, lambda y, p: -_mse(y, p)),
    "neg_root_mean_squared_error": (False, lambda y, p: -math.sqrt(_mse(y, p))),
    "r2": (False, _r2),
}


def _as_target(values: Any, classification: bool, field: str) -> np.ndarray:
    if classification:
        return np.asarray(normalize_labels(values, field), dtype=object)
    try:
        array = np.asarray(values.tolist() if isinstance(values, pd.Series | pd.Index) else values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be numeric for a regression score: {exc}", field=field) from exc
    return array.reshape(-1)


def _permutation_importance(
    predict: Callable[[pd.DataFrame], Any],
    frame: pd.DataFrame,
    y: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], float],
    classification: bool,
    n_repeats: int,
    seed: int,
) -> dict[str, float]:
    def scored(data: pd.DataFrame) -> float:
        return score(y, _as_target(predict(data), classification, "predict"))

    baseline = scored(frame)
    rng = np.random.default_rng(seed)
    importances: dict[str, float] = {}
    for column in frame.columns:
        drops = []
        for _ in range(n_repeats):
            shuffled = frame.copy()
            # iloc + set_axis keeps the column's dtype (categoricals, nullable ints) intact
            shuffled[column] = frame[column].iloc[rng.permutation(len(frame))].set_axis(frame.index)
            drops.append(baseline - scored(shuffled))
        value = float(np.mean(drops))
        importances[str(column)] = value if math.isfinite(value) else 0.0
    return importances


def _ranks(importance: dict[str, float], features: list[str]) -> dict[str, int]:
    """1 = most important; ties keep the column order, so ranks are total and reproducible."""
    ordered = sorted(features, key=lambda f: -importance[f])
    return {feature: i + 1 for i, feature in enumerate(ordered)}


def importance_stability(
    predict: Callable[[pd.DataFrame], Any],
    reference: pd.DataFrame,
    reference_y: Any,
    current: pd.DataFrame,
    current_y: Any,
    scoring: str = "accuracy",
    n_repeats: int = 5,
    top_k: int = 5,
    seed: int = 0,
) -> dict:
    """Compare the model's permutation importances on reference and current labelled data.

    Importance of a feature = the score with the data as is minus the mean score with that column shuffled
    (``n_repeats`` times), both with ``predict`` (the model's predict function over a DataFrame). ``scoring`` is
    one of ``accuracy``, ``balanced_accuracy``, ``f1_macro`` (labels compared as normalised strings, as in
    :mod:`shipyard.monitoring.performance`), ``neg_mean_absolute_error``, ``neg_mean_squared_error``,
    ``neg_root_mean_squared_error`` or ``r2``.

    The verdict (``stable``) rests on ``shift``: ``sum |ref - cur| / (sum ref + sum cur)`` over importances
    clipped at 0 - how much of the importance mass moved between features or vanished. Rank statistics are
    reported (``spearman`` over all features, ``top_k_overlap``) but do not decide, because the ranks of the many
    features a model barely uses are noise and would flag a stable model. ``changed`` lists, most moved first and
    at most ``top_k``, the features whose rank moved among those holding at least ``MATERIAL_SHARE`` (5%) of
    either side's importance - a reshuffle of features the model does not use is not a change.
    """
    if scoring not in _SCORERS:
        raise InvalidInput(f"unknown scoring {scoring!r}; choose one of {', '.join(_SCORERS)}", field="scoring")
    if n_repeats < 1:
        raise InvalidInput("n_repeats must be at least 1", field="n_repeats")
    if top_k < 1:
        raise InvalidInput("top_k must be at least 1", field="top_k")
    classification, score = _SCORERS[scoring]
    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"{name} must be a pandas DataFrame", field=name)
        if len(frame) == 0:
            raise InvalidInput(f"{name} has no rows; importance needs labelled data", field=name)
    missing = [c for c in reference.columns if c not in current.columns]
    if missing:
        raise InvalidInput(f"current lacks reference columns {missing}", field="current")
    current = current[list(reference.columns)]
    ref_y = _as_target(reference_y, classification, "reference_y")
    cur_y = _as_target(current_y, classification, "current_y")
    if len(ref_y) != len(reference):
        raise InvalidInput(f"reference_y has {len(ref_y)} values for {len(reference)} rows", field="reference_y")
    if len(cur_y) != len(current):
        raise InvalidInput(f"current_y has {len(cur_y)} values for {len(current)} rows", field="current_y")

    ref_imp = _permutation_importance(predict, reference, ref_y, score, classification, n_repeats, seed)
    cur_imp = _permutation_importance(predict, current, cur_y, score, classification, n_repeats, seed)
    features = list(ref_imp)

    spearman = None
    ref_values = np.array([ref_imp[f] for f in features])
    cur_values = np.array([cur_imp[f] for f in features])
    if len(features) >= 2 and np.ptp(ref_values) > 0 and np.ptp(cur_values) > 0:
        rho = sps.spearmanr(ref_values, cur_values).statistic
        spearman = float(rho) if math.isfinite(rho) else None

    k = min(top_k, len(features))
    ref_rank, cur_rank = _ranks(ref_imp, features), _ranks(cur_imp, features)
    ref_top = {f for f in features if ref_rank[f] <= k}
    cur_top = {f for f in features if cur_rank[f] <= k}
    top_k_overlap = len(ref_top & cur_top) / k if k else 1.0

    a, b = np.clip(ref_values, 0, None), np.clip(cur_values, 0, None)
    mass = float(a.sum() + b.sum())
    shift = float(np.abs(a - b).sum() / mass) if mass > 1e-12 else None
    stable = shift is None or shift < IMPORTANCE_SHIFT_THRESHOLD

    # Only features that carry real weight on some side can have "moved": the ranks of the rest are noise.
    material = set()
    for side in (a, b):
        if side.sum() > 1e-12:
            material |= {f for f, share in zip(features, side / side.sum(), strict=True) if share >= MATERIAL_SHARE}
    moved = [f for f in features if f in material and ref_rank[f] != cur_rank[f]]
    moved.sort(key=lambda f: (-abs(ref_rank[f] - cur_rank[f]), min(ref_rank[f], cur_rank[f])))
    return {
        "reference": ref_imp,
        "current": cur_imp,
        "scoring": scoring,
        "spearman": spearman,
        "top_k_overlap": float(top_k_overlap),
        "shift": shift,
        "threshold": IMPORTANCE_SHIFT_THRESHOLD,
        "stable": bool(stable),
        "changed": moved[:k],
    }
