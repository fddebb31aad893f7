"""One window's metrics from its logged predictions: drift against the reference, realised
performance on the joined labels, the label-free estimate, health, concept drift and the
multivariate check.

A :class:`WindowAccumulator` takes the window's rows batch by batch (with their labels joined) and
keeps only bounded summaries: the mergeable profile, latencies (4 bytes a row), a distinct-request
sketch, a uniform sample of ``SAMPLE_ROWS`` rows (for the estimate and the multivariate check) and
the labelled rows (up to ``LABELLED_ROWS``, then a uniform sample of them). So a window of any size
is computed in bounded memory. Pure given its inputs; the service streams the rows and stores what
this returns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.monitoring.drift import DriftResult, compare
from shipyard.monitoring.profiles import Profile, ReferenceBins

log = logging.getLogger("shipyard.monitoring")

PREDICTION = "prediction"  # the name the prediction column is monitored under
LABEL = "__label__"  # the joined ground truth, in frames handed to window_metrics
INPUT_PREFIX = "in."
PROBA_PREFIX = "proba."
MIN_CONCEPT_LABELS = 30
MIN_IMPORTANCE_LABELS = 100
MIN_MULTIVARIATE_ROWS = 50
SAMPLE_ROWS = 20_000  # uniform sample of a window (segments: SEGMENT_SAMPLE_ROWS)
SEGMENT_SAMPLE_ROWS = 2_000
LABELLED_ROWS = 200_000  # labelled rows kept exactly; beyond, a uniform sample of this size


@dataclass
class Context:
    """What a monitor knows about its reference and model, built once per run."""

    task: str
    columns: list[str]
    bins: ReferenceBins
    reference: Profile
    options: dict[str, Any]
    classes: list[str] = field(default_factory=list)
    sample: pd.DataFrame | None = None  # reference rows: columns, prediction, label, proba.*
    model: Any = None  # the loaded model version (for probabilities and importances), if it loads


def features_of(predictions: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The monitored input columns of logged predictions (``in.<name>``), missing ones as nulls."""
    out = {}
    for name in columns:
        source = INPUT_PREFIX + name
        out[name] = predictions[source] if source in predictions.columns else pd.Series([None] * len(predictions))
    return pd.DataFrame(out, index=predictions.index)


def predicted_values(predictions: pd.DataFrame, task: str) -> pd.Series:
    """The predicted value per row: the numeric ``prediction`` column, else the decoded ``output``."""
    if "prediction" in predictions.columns and predictions["prediction"].notna().all() and len(predictions):
        values = predictions["prediction"].astype("float64")
    else:
        values = predictions["output"].map(_decode_output) if "output" in predictions.columns else pd.Series([])
    if task == "classification":
        return values.map(_class_label)
    return pd.to_numeric(values, errors="coerce")


def _decode_output(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict) and "label" in value:
        value = value["label"]
    return value


def _class_label(value: Any) -> Any:
    """Classes compare as strings (a label sent as ``"1"`` matches a prediction of ``1`` or ``1.0``)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


class WindowAccumulator:
    """Consumes a window's logged rows (``__label__`` joined) batch by batch, in bounded memory."""

    def __init__(self, ctx: Context, full: bool = True, labels_only: bool = False, seed: int = 0):
        self.ctx = ctx
        self.full = full
        self.labels_only = labels_only
        self.rng = np.random.default_rng(seed)
        self.profile = Profile.empty(ctx.bins)
        self.rows = 0
        self.labelled_count = 0
        self.latencies: list[np.ndarray] = []
        self.requests = 0  # distinct per batch, summed: a request split across two batches counts twice
        self.ts_min: int | None = None
        self.ts_max: int | None = None
        self.sample_size = SAMPLE_ROWS if full else SEGMENT_SAMPLE_ROWS
        self._sample: pd.DataFrame | None = None  # bottom-k by random key: a uniform sample
        self._labelled: pd.DataFrame | None = None

    def add(self, batch: pd.DataFrame) -> None:
        if batch.empty:
            return
        n = len(batch)
        keep = features_of(batch, self.ctx.columns)
        keep[PREDICTION] = predicted_values(batch, self.ctx.task).to_numpy()
        for column in batch.columns:
            if column.startswith(PROBA_PREFIX):
                keep[column] = batch[column].to_numpy()
        keep["ts"] = batch["ts"].to_numpy()
        labels = batch[LABEL] if LABEL in batch.columns else pd.Series([None] * n, index=batch.index)
        keep[LABEL] = labels.to_numpy()
        keep["_key"] = self.rng.random(n)
        has_label = labels.notna().to_numpy()
        self.labelled_count += int(has_label.sum())
        if has_label.any():
            self._labelled = _bottom_k(self._labelled, keep[has_label], LABELLED_ROWS)
        self.rows += n
        ts = batch["ts"].to_numpy()
        self.ts_min = int(ts.min()) if self.ts_min is None else min(self.ts_min, int(ts.min()))
        self.ts_max = int(ts.max()) if self.ts_max is None else max(self.ts_max, int(ts.max()))
        if self.labels_only:
            return
        self.profile.update(keep[[*self.ctx.columns, PREDICTION]])
        if "latency_ms" in batch.columns:
            latency = pd.to_numeric(batch["latency_ms"], errors="coerce").to_numpy(dtype="float32")
            self.latencies.append(latency[np.isfinite(latency)])
        self.requests += int(batch["request_id"].nunique()) if "request_id" in batch.columns else n
        self._sample = _bottom_k(self._sample, keep, self.sample_size)

    def labelled(self) -> pd.DataFrame:
        """The labelled rows kept (all of them up to ``LABELLED_ROWS``), in time order."""
        if self._labelled is None:
            return pd.DataFrame(columns=[*self.ctx.columns, PREDICTION, LABEL, "ts"])
        return self._labelled.sort_values("ts", kind="stable").reset_index(drop=True)

    def result(
        self, previous: pd.DataFrame | None = None, earlier: dict[str, Any] | None = None
    ) -> tuple[Profile, dict[str, Any], int]:
        """The window's profile, metrics and labelled-row count. ``previous`` (the window before's
        labelled rows) lets the change detectors see a change between two windows; ``earlier`` (the
        window's metrics before its labels arrived) saves recomputing what labels cannot change."""
        ctx, rows = self.ctx, self.rows
        metrics: dict[str, Any] = {"rows": rows}
        if rows == 0:
            metrics["status"] = "no data"
            return self.profile, metrics, 0
        opts = ctx.options
        drift = compare(
            ctx.reference,
            self.profile,
            method=opts.get("method"),
            threshold=opts.get("thresholds"),
            tests=bool(opts.get("tests", False)),
        )
        metrics["drift"] = drift_summary(drift, ctx.columns)
        metrics["health"] = self._health()
        labelled = self.labelled_count
        metrics["labels"] = {"labelled": labelled, "coverage": labelled / rows}
        kept = self.labelled()
        if labelled:
            if len(kept) < labelled:
                metrics["labels"]["sampled"] = len(kept)  # performance is computed on a uniform sample
            proba, classes = probabilities(kept, ctx)
            mismatched = label_mismatches(ctx.task, kept[LABEL], classes)
            if mismatched:
                metrics["labels"]["mismatched"] = mismatched
            metrics["performance"] = performance(ctx.task, kept[LABEL], kept[PREDICTION], proba, classes)
        sample = self._sample if self._sample is not None else pd.DataFrame()
        if ctx.task == "classification" and len(sample):
            proba, classes = probabilities(sample, ctx)
            if proba is not None:
                metrics["estimate"] = estimate(proba, classes, ctx)
                if len(sample) < rows:
                    metrics["estimate"]["sampled"] = len(sample)
        if self.full:
            if labelled >= MIN_CONCEPT_LABELS:
                metrics["concept"] = concept(ctx, kept, previous)
            wants = opts.get("multivariate", "on_drift")
            if earlier is not None and "multivariate" in earlier:
                metrics["multivariate"] = earlier["multivariate"]
            elif (
                rows >= MIN_MULTIVARIATE_ROWS
                and ctx.sample is not None
                and (wants == "always" or (wants == "on_drift" and drift.drifted))
            ):
                metrics["multivariate"] = multivariate(ctx, sample)
        return self.profile, metrics, labelled

    def _health(self) -> dict[str, Any]:
        latency = np.concatenate(self.latencies) if self.latencies else np.empty(0, dtype="float32")
        span_s = max((self.ts_max - self.ts_min) / 1000.0, 1e-3) if self.ts_min is not None else None
        out: dict[str, Any] = {
            "rows": self.rows,
            "requests": self.requests,
            "rows_per_second": self.rows / span_s if span_s else None,
        }
        for q, name in ((50, "latency_p50_ms"), (95, "latency_p95_ms"), (99, "latency_p99_ms")):
            out[name] = float(np.percentile(latency, q)) if len(latency) else None
        return out


def _bottom_k(kept: pd.DataFrame | None, new: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ``k`` rows with the smallest random keys among both: a uniform sample, mergeable."""
    both = new if kept is None else pd.concat([kept, new], ignore_index=True)
    if len(both) <= k:
        return both
    return both.nsmallest(k, "_key").reset_index(drop=True)


def window_metrics(
    frame: pd.DataFrame,
    ctx: Context,
    full: bool = True,
    previous: pd.DataFrame | None = None,
    earlier: dict[str, Any] | None = None,
) -> tuple[Profile, dict[str, Any], int]:
    """One window's profile, metrics and labelled-row count from a frame of its rows (see
    :class:`WindowAccumulator`; ``previous`` is the window before's rows with labels)."""
    acc = WindowAccumulator(ctx, full=full)
    acc.add(frame)
    prior = None
    if previous is not None and len(previous):
        before = WindowAccumulator(ctx, full=False, labels_only=True)
        before.add(previous)
        prior = before.labelled()
    return acc.result(prior, earlier)


def drift_summary(drift: DriftResult, columns: list[str]) -> dict[str, Any]:
    result = drift.to_dict()
    features = [c for c in result["columns"] if c != PREDICTION]
    drifted_features = [c for c in drift.drifted if c != PREDICTION]
    return {
        "share": len(drifted_features) / len(features) if features else 0.0,
        "drifted": drifted_features,
        "prediction_drift": PREDICTION in drift.drifted,
        "dataset_drift": drift.dataset_drift,
        "columns": result["columns"],
    }


def probabilities(kept: pd.DataFrame, ctx: Context) -> tuple[np.ndarray | None, list[str]]:
    """Class probabilities for kept rows: logged ``proba.<class>`` columns, else the model's
    predict_proba on the logged inputs (when the monitor could load the model), else None."""
    if ctx.task != "classification" or kept.empty:
        return None, ctx.classes
    logged = [c for c in kept.columns if c.startswith(PROBA_PREFIX)]
    if logged:
        classes = [c[len(PROBA_PREFIX) :] for c in logged]
        return kept[logged].to_numpy(dtype="float64", na_value=np.nan), classes
    if ctx.model is None or not ctx.classes or not ctx.options.get("estimate", True):
        return None, ctx.classes
    try:
        proba = np.asarray(ctx.model.predict_proba(kept[ctx.columns]), dtype="float64")
    except Exception as exc:  # a model without probabilities, or inputs it refuses: no estimate
        log.info("monitor: no probabilities from the model (%s)", exc)
        return None, ctx.classes
    if proba.ndim != 2 or proba.shape[1] != len(ctx.classes):
        return None, ctx.classes
    return proba, ctx.classes


def label_mismatches(task: str, labels: pd.Series, classes: list[str]) -> dict[str, Any] | None:
    """Labels of the wrong type for the task: classes the model does not know, or non-numbers for a
    regression. Counted and shown with examples, so a feed sending the wrong field is visible."""
    if task == "classification":
        if not classes:
            return None
        known = set(classes)
        wrong = labels.map(_class_label)
        wrong = wrong[~wrong.isin(known)]
        reason = f"not one of the model's classes {sorted(known)[:10]}"
    else:
        numbers = pd.to_numeric(labels, errors="coerce")
        wrong = labels[numbers.isna() | ~np.isfinite(numbers.astype("float64"))]
        reason = "not a number (a regression needs numeric labels; these rows are left out)"
    if wrong.empty:
        return None
    return {"count": int(len(wrong)), "examples": sorted({str(v) for v in wrong})[:5], "reason": reason}


def performance(
    task: str, y_true: pd.Series, y_pred: pd.Series, proba: np.ndarray | None, classes: list[str]
) -> dict[str, Any]:
    from shipyard.monitoring.performance import classification_metrics, regression_metrics

    if task == "classification":
        y_true = y_true.map(_class_label)
        return classification_metrics(list(y_true), list(y_pred), proba=proba, classes=classes or None)
    truth = pd.to_numeric(y_true, errors="coerce").to_numpy(dtype="float64")
    pred = pd.to_numeric(y_pred, errors="coerce").to_numpy(dtype="float64")
    ok = np.isfinite(truth) & np.isfinite(pred)
    return regression_metrics(truth[ok], pred[ok])


def estimate(proba: np.ndarray, classes: list[str], ctx: Context) -> dict[str, Any]:
    from shipyard.monitoring.performance import estimate_classification

    ref_proba = ref_true = None
    sample = ctx.sample
    if sample is not None and LABEL in sample.columns:
        cols = [PROBA_PREFIX + c for c in classes]
        ok = sample[LABEL].notna()
        if ok.any() and all(c in sample.columns for c in cols):
            ref_proba = sample.loc[ok, cols].to_numpy(dtype="float64")
            ref_true = list(sample.loc[ok, LABEL].map(_class_label))
    ok_rows = np.isfinite(proba).all(axis=1)
    return estimate_classification(proba[ok_rows], classes, reference_proba=ref_proba, reference_true=ref_true)


def concept(ctx: Context, kept: pd.DataFrame, previous: pd.DataFrame | None = None) -> dict[str, Any]:
    """Change detection on the labelled error stream (in time order; the previous window's stream
    first, changes counted only inside this window), and, when the model is loaded and enough
    labels exist, the stability of feature importances against the reference."""
    from shipyard.monitoring.concept import detect_changes, importance_stability

    y_pred, y_true = kept[PREDICTION].to_numpy(), kept[LABEL].to_numpy()
    offset = 0
    if previous is not None and len(previous):
        offset = len(previous)
        y_pred = np.concatenate([previous[PREDICTION].to_numpy(), y_pred])
        y_true = np.concatenate([previous[LABEL].to_numpy(), y_true])
    if ctx.task == "classification":
        errors = [float(_class_label(t) != p) for t, p in zip(y_true, y_pred, strict=True)]
        detector = ctx.options.get("concept_detector", "adwin")
    else:
        truth = pd.to_numeric(pd.Series(y_true), errors="coerce").to_numpy(dtype="float64")
        errors = list(np.nan_to_num(np.abs(truth - np.asarray(y_pred, dtype="float64"))))
        detector = ctx.options.get("concept_detector", "adwin")
    detection = detect_changes(errors, detector).to_dict()
    detection["changes"] = [i - offset for i in detection["changes"] if i >= offset]
    detection["n"] = len(errors) - offset
    detection["drifted"] = bool(detection["changes"])
    out: dict[str, Any] = {"errors": detection, "drifted": detection["drifted"]}
    sample = ctx.sample
    if (
        ctx.model is not None
        and sample is not None
        and LABEL in sample.columns
        and len(kept) >= MIN_IMPORTANCE_LABELS
        and ctx.options.get("importance", True)
    ):
        ref = sample[sample[LABEL].notna()]
        cur_y = kept[LABEL]
        ref_y = ref[LABEL]
        if ctx.task == "classification":
            cur_y, ref_y = cur_y.map(_class_label), ref_y.map(_class_label)

            def predict(x: pd.DataFrame) -> Any:
                return [_class_label(v) for v in np.asarray(ctx.model.predict(x)).tolist()]

            scoring = "accuracy"
        else:

            def predict(x: pd.DataFrame) -> Any:
                return np.asarray(ctx.model.predict(x), dtype="float64")

            scoring = "neg_mean_absolute_error"
        try:
            stability = importance_stability(
                predict,
                ref[ctx.columns].head(2000),
                list(ref_y.head(2000)),
                kept[ctx.columns].head(2000),
                list(cur_y.head(2000)),
                scoring=scoring,
                n_repeats=3,
            )
            out["importance"] = stability
            out["drifted"] = out["drifted"] or not stability.get("stable", True)
        except Exception as exc:  # importances are a diagnostic; the window's other metrics stand
            log.info("monitor: importance stability skipped (%s)", exc)
    return out


def multivariate(ctx: Context, current: pd.DataFrame) -> dict[str, Any]:
    from shipyard.monitoring.multivariate import domain_classifier

    assert ctx.sample is not None
    return domain_classifier(ctx.sample[ctx.columns], current[ctx.columns], max_rows=2000, folds=3)
