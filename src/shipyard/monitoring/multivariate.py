"""Multivariate data drift: can a classifier tell the current data from the reference data?

Per-column tests miss changes in how features move together (each marginal the same, the joint different).
:func:`domain_classifier` labels reference rows 0 and current rows 1, trains a gradient-boosted classifier and
measures its cross-validated ROC AUC: about 0.5 when the two are indistinguishable, towards 1 the more they differ.
The permutation importance of that classifier says which columns give the difference away.

Pure function over pandas/scikit-learn, no database; the result is JSON-safe (no NaN or infinity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from shipyard.core.errors import InvalidInput

TOP_FEATURES = 10
_MAX_NATIVE_CATEGORIES = 250  # HistGradientBoosting's categorical support stops at max_bins (255) categories
_IMPORTANCE_REPEATS = 3  # per fold; with 5 folds every column is shuffled 15 times
_IMPORTANCE_METHOD = "permutation: mean drop of held-out ROC AUC when the column is shuffled, over the CV folds"


def _encode(values: pd.Series) -> tuple[np.ndarray, bool]:
    """One column as floats with NaN for missing, and whether to treat it as categorical."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan), False
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        if isinstance(dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert(None)
        missing = values.isna().to_numpy()
        numbers = values.to_numpy().astype("int64").astype(np.float64)
        numbers[missing] = np.nan
        return numbers, False
    # everything else is a category, compared as text (so 1 and "1" are one category, as elsewhere)
    text = values.map(lambda v: v if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)) else str(v))
    codes, uniques = pd.factorize(text.astype(object), sort=True, use_na_sentinel=True)
    numbers = codes.astype(np.float64)
    numbers[codes < 0] = np.nan
    # past the native limit the sorted codes still carry the information, as an ordinal number
    return numbers, len(uniques) <= _MAX_NATIVE_CATEGORIES


def _uninformative(column: np.ndarray) -> str | None:
    missing = np.isnan(column)
    if missing.all():
        return "all missing"
    if np.unique(column[~missing]).size == 1 and not missing.any():
        return "constant"
    return None


def _is_time(dtype: Any) -> bool:
    return pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)


def domain_classifier(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    max_rows: int = 5000,
    folds: int = 5,
    threshold: float = 0.55,
    seed: int = 0,
) -> dict:
    """Cross-validated ROC AUC of a classifier separating ``current`` rows from ``reference`` rows.

    Up to ``max_rows`` rows are sampled from each side (``n_reference``/``n_current`` are the rows used). Numbers
    and booleans are used as they are, other columns as categories (text), and missing values stay missing -
    HistGradientBoostingClassifier handles them natively, so a change in missingness is itself detectable.
    Without ``columns`` the columns both sides share are used, except date/time columns: a reference window and
    a current window always differ in time, which is not drift. Columns constant or entirely missing on both
    sides carry no signal and are listed under ``ignored``. ``drifted`` is ``auc > threshold``. ``top_features``
    are ranked by the classifier's permutation importance (see ``importance_method``).

    An empty side, or one with fewer than 2 rows (nothing to cross-validate), gives ``status`` "no data",
    ``auc`` None and ``drifted`` False.
    """
    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"{name} must be a pandas DataFrame", field=name)
    if folds < 2:
        raise InvalidInput("folds must be at least 2", field="folds")
    if max_rows < 2:
        raise InvalidInput("max_rows must be at least 2", field="max_rows")
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInput("threshold is a ROC AUC, between 0 and 1", field="threshold")

    ignored: list[dict[str, str]] = []
    if columns is None:
        shared = [c for c in reference.columns if c in current.columns]
        used = [c for c in shared if not (_is_time(reference[c].dtype) or _is_time(current[c].dtype))]
        ignored += [{"column": str(c), "reason": "date/time"} for c in shared if c not in used]
    else:
        used = list(columns)
        missing = [c for c in used if c not in reference.columns or c not in current.columns]
        if missing:
            raise InvalidInput(f"columns {missing} are not in both reference and current", field="columns")

    ref = reference.sample(n=max_rows, random_state=seed) if len(reference) > max_rows else reference
    cur = current.sample(n=max_rows, random_state=seed) if len(current) > max_rows else current
    result: dict[str, Any] = {
        "status": "ok",
        "auc": None,
        "auc_std": None,
        "threshold": float(threshold),
        "drifted": False,
        "n_reference": len(ref),
        "n_current": len(cur),
        "columns": [str(c) for c in used],
        "ignored": ignored,
        "folds": 0,
        "top_features": [],
        "importance_method": _IMPORTANCE_METHOD,
    }
    splits = min(folds, len(ref), len(cur))
    if splits < 2 or not used:
        result["status"] = "no data"
        result["reason"] = "no columns to compare" if not used else "each side needs at least 2 rows"
        return result

    encoded, categorical, names = [], [], []
    for column in used:
        values, is_category = _encode(pd.concat([ref[column], cur[column]], ignore_index=True))
        reason = _uninformative(values)
        if reason:
            ignored.append({"column": str(column), "reason": reason})
            continue
        encoded.append(values)
        categorical.append(is_category)
        names.append(str(column))
    result["folds"] = splits
    result["columns"] = names
    if not encoded:
        # every column is the same constant (or missing) on both sides: the sides are indistinguishable
        result.update(auc=0.5, auc_std=0.0)
        return result

    x = np.column_stack(encoded)
    y = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(cur), dtype=int)]
    mask = np.asarray(categorical) if any(categorical) else None
    aucs: list[float] = []
    importance = np.zeros(len(names))
    # No class weights for unequal sides: ROC AUC ranks, so the class balance does not bias it, and weighted
    # binning cost more than the rest of the fit. One OpenMP thread: monitoring runs beside serving and other
    # jobs, and on a busy machine the boosting's spin-waiting threads made this 8x slower (23 s instead of 3 s
    # for 2 x 1000 rows on 2 loaded cores).
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed).split(x, y):
            model = HistGradientBoostingClassifier(
                categorical_features=mask,
                # stopping when a held-out tenth stops improving is cheap when there is nothing to find
                # (no drift: ~10 rounds instead of 100) and leaves room when there is
                early_stopping=True,
                validation_fraction=0.1,
                n_iter_no_change=10,
                random_state=seed,
            ).fit(x[train], y[train])
            aucs.append(float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])))
            permuted = permutation_importance(
                model, x[test], y[test], scoring="roc_auc", n_repeats=_IMPORTANCE_REPEATS, random_state=seed
            )
            importance += permuted.importances_mean / splits

    auc = float(np.mean(aucs))
    result.update(auc=auc, auc_std=float(np.std(aucs)), drifted=bool(auc > threshold))
    order = sorted(range(len(names)), key=lambda i: -importance[i])
    result["top_features"] = [
        {"feature": names[i], "importance": float(importance[i]) if np.isfinite(importance[i]) else 0.0}
        for i in order[:TOP_FEATURES]
    ]
    return result
