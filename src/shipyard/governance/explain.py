"""Explanations of a model version (pure functions over a :class:`Predictor`, no database).

Global: permutation importance (scikit-learn's ``permutation_importance``): how much a score drops
when one feature's values are shuffled. With a label the score is accuracy (classification) or R²
(regression) against it; without one it is agreement with the model's own predictions on the
unshuffled rows — how much the model *relies* on the feature rather than how much it helps. When
the optional ``shap`` package is importable, mean |SHAP| values are added (``shap_importances``);
it is not a dependency of Shipyard, so that path is skipped silently when it is absent.

Local: a model-agnostic contribution per feature — the model's output for the input minus its mean
output when that one feature takes, in turn, each background row's value (an interventional
"what if this feature were typical" effect, the one-feature marginal SHAP would average over
coalitions). Features that lowered the output become adverse-action reasons.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from shipyard.core.errors import InvalidInput
from shipyard.governance.predictor import Predictor
from shipyard.monitoring.performance import normalize_label

BACKGROUND_ROWS = 100


def jsonable(value: Any) -> Any:
    """A JSON-safe scalar: numpy numbers as Python ones, NaN/inf and NA as None, times as ISO text."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def background_sample(frame: pd.DataFrame, features: list[str], rows: int = BACKGROUND_ROWS) -> list[dict[str, Any]]:
    """Up to ``rows`` rows of the model's input columns, drawn reproducibly, as JSON records. Rows with a
    missing input are skipped when others exist: a model whose signature refuses them could not score
    the background, and a typical value is what the background is for."""
    inputs = frame[features]
    complete = inputs.dropna()
    pool = complete if len(complete) else inputs
    sample = pool.sample(n=min(rows, len(pool)), random_state=0) if len(pool) else pool
    return [{c: jsonable(v) for c, v in record.items()} for record in sample.to_dict(orient="records")]


class _Model:
    """What ``permutation_importance`` calls ``predict`` on: the predictor, by its input columns."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def fit(self, *args: Any) -> _Model:  # scikit-learn's API checks require one; never called
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predictor.predict(pd.DataFrame(frame, columns=self.predictor.features))


def _scorer(task: str):
    if task == "classification":

        def accuracy(model: _Model, frame: pd.DataFrame, target: np.ndarray) -> float:
            predicted = np.asarray([normalize_label(v) for v in model.predict(frame)], dtype=object)
            return float(np.mean(predicted == target))

        return accuracy, "accuracy"

    def r2(model: _Model, frame: pd.DataFrame, target: np.ndarray) -> float:
        predicted = np.asarray(model.predict(frame), dtype="float64")
        total = float(np.sum((target - target.mean()) ** 2))
        residual = float(np.sum((target - predicted) ** 2))
        # a constant target (e.g. a model's own constant predictions): score 1 when unchanged, else drop by
        # the mean squared change, so importance still says how much the output moves
        return 1.0 - residual / total if total > 0 else -residual / len(target)

    return r2, "r2"


def global_importance(
    predictor: Predictor,
    frame: pd.DataFrame,
    labels: pd.Series | None,
    n_repeats: int = 5,
    max_rows: int = 2000,
) -> dict[str, Any]:
    """``{"method", "score", "target", "baseline_score", "rows", "importances": [{feature, mean, std}]}``,
    the importances sorted by mean decrease, largest first."""
    if len(frame) > max_rows:
        keep = frame.sample(n=max_rows, random_state=0).index
        frame = frame.loc[keep]
        labels = None if labels is None else labels.loc[keep]
    features = frame[predictor.features].reset_index(drop=True)
    scorer, score_name = _scorer(predictor.task)
    model = _Model(predictor)
    if labels is not None:
        raw_target = labels.reset_index(drop=True)
        target_kind = "label"
    else:
        raw_target = pd.Series(model.predict(features))
        target_kind = "model predictions"
    if predictor.task == "classification":
        target = np.asarray([normalize_label(v, "label_column") for v in raw_target], dtype=object)
    else:
        try:
            target = np.asarray(raw_target, dtype="float64")
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"the label must be numeric for a regression model: {exc}", field="label_column"
            ) from exc
    baseline = scorer(model, features, target)
    found = permutation_importance(
        model, features, target, scoring=scorer, n_repeats=n_repeats, random_state=0, n_jobs=None
    )
    importances = [
        {"feature": f, "mean": float(found.importances_mean[i]), "std": float(found.importances_std[i])}
        for i, f in enumerate(predictor.features)
    ]
    importances.sort(key=lambda item: (-item["mean"], item["feature"]))
    result: dict[str, Any] = {
        "method": "permutation",
        "score": score_name,
        "target": target_kind,
        "baseline_score": float(baseline),
        "rows": len(features),
        "n_repeats": n_repeats,
        "importances": importances,
    }
    shap_values = _shap_importances(predictor, features)
    if shap_values is not None:
        result["shap_importances"] = shap_values
    return result


def _shap_importances(predictor: Predictor, features: pd.DataFrame) -> list[dict[str, Any]] | None:
    """Mean |SHAP| per feature when ``shap`` is installed (optional; never a dependency)."""
    try:
        import shap  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        sample = features.head(200)
        background = features.sample(n=min(BACKGROUND_ROWS, len(features)), random_state=0)
        explainer = shap.Explainer(
            lambda values: predictor.output(pd.DataFrame(values, columns=predictor.features)),
            shap.maskers.Independent(background),
        )
        values = np.abs(np.asarray(explainer(sample).values, dtype="float64")).mean(axis=0)
    except Exception:  # SHAP's explainers do not cover every model; permutation importance stands
        return None
    found = [{"feature": f, "mean_abs_shap": float(values[i])} for i, f in enumerate(predictor.features)]
    return sorted(found, key=lambda item: -item["mean_abs_shap"])


def local_contributions(
    predictor: Predictor, row: pd.DataFrame, background: pd.DataFrame, class_index: int | None = None
) -> tuple[float, float, list[tuple[str, Any, float]]]:
    """``(output, base_value, [(feature, value, contribution)])`` for the one-row frame ``row``."""
    if background.empty:
        raise InvalidInput("no background rows to explain against", field="background")
    features = predictor.features
    n = len(background)
    blocks = []
    for feature in features:
        block = pd.concat([row[features]] * n, ignore_index=True)
        block[feature] = background[feature].to_numpy()
        blocks.append(block)
    everything = pd.concat([row[features], background[features], *blocks], ignore_index=True)
    outputs = predictor.output(everything, class_index)
    output = float(outputs[0])
    base = float(np.mean(outputs[1 : 1 + n]))
    contributions = []
    for i, feature in enumerate(features):
        start = 1 + n + i * n
        replaced = float(np.mean(outputs[start : start + n]))
        contributions.append((feature, jsonable(row[feature].iloc[0]), output - replaced))
    return output, base, contributions


def reasons(contributions: list[tuple[str, Any, float]], what: str, top_k: int) -> list[str]:
    """The features that lowered ``what`` the most, phrased for adverse-action notices."""
    lowering = sorted((c for c in contributions if c[2] < 0), key=lambda c: c[2])[:top_k]
    return [f"{feature} = {_show(value)} lowered the {what} by {abs(delta):.2f}" for feature, value, delta in lowering]


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
