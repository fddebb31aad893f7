"""Evaluations with slices, fairness evaluations, explanations and model cards of model versions.

Each computed result is a ``version_evaluations`` row (kind ``evaluation``, ``fairness`` or
``explanation``, the dataset version ``NAME@N`` it was computed on, and a JSON result whose
``metrics`` policies read), journaled in the same transaction as ``version.evaluated`` on the model
with ``{"version", "kind", "dataset", ...headline figures}``. Local explanations are reads.

The model version and the dataset are loaded through an embedded client over this store — the one
the monitoring service keeps — so the server and an embedded SDK run the same code, and loading a
model verifies its digest and signatures as ``load_model`` does everywhere.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from shipyard.core.errors import InvalidInput, NotFound, ShipyardError
from shipyard.core.ids import new_id
from shipyard.core.names import check_text
from shipyard.core.time import now_ms
from shipyard.governance import cards, explain, fairness
from shipyard.governance import slices as slicing
from shipyard.governance.card_render import render
from shipyard.governance.evaluation_entities import (
    EVALUATION_KINDS,
    CardCompleteness,
    CardSection,
    FeatureContribution,
    LocalExplanation,
    ModelCard,
    VersionEvaluation,
)
from shipyard.governance.predictor import Predictor
from shipyard.governance.privacy_entities import ERASED_BY_TAG, SUCCESSOR_TAG
from shipyard.monitoring.performance import normalize_label
from shipyard.registry.entities import ModelVersion
from shipyard.store import schema as t

MODEL_CACHE = 8  # loaded models kept, by digest
MAX_SLICES = 20
MAX_SENSITIVE = 5
MAX_CARD_TEXT = 50_000


class EvaluationService:
    def __init__(self, services: Any):
        # the assembled Services: this service reaches the store and its sibling services through it
        self.services = services
        self.db = services.db
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------------
    # Evaluation with slices

    def evaluate_version(
        self, name: str, version: int, dataset: str, label_column: str, slices: list[str] | None = None
    ) -> VersionEvaluation:
        """Classification or regression metrics of the version on a dataset version, overall and for
        each value of every slice column; stored (kind ``evaluation``) and journaled."""
        label_column = _column_name(label_column, "label_column")
        slice_columns = _columns(slices, "slices", MAX_SLICES)
        mv = self.services.registry.get_version(name, version)
        ref, frame = self._dataset(dataset)
        _require_columns(frame, [label_column], "label_column")
        _require_columns(frame, slice_columns, "slices")
        frame, dropped = _labelled(frame, label_column)
        predictor = self._predictor(mv, frame, label_column)
        predicted = _scored(predictor.predict, frame)
        proba = predictor.proba(frame) if predictor.task == "classification" else None
        try:
            result = slicing.evaluate(
                predictor.task, frame[label_column], predicted, proba, predictor.classes, frame[slice_columns]
            )
        except InvalidInput as exc:  # a label the metrics cannot read (text for a regression model...)
            raise InvalidInput(f"label column {label_column!r}: {exc.message}", field="label_column") from exc
        result.update({"label_column": label_column, "rows_without_label": dropped})
        headline = {k: v for k, v in result["metrics"].items() if k in ("accuracy", "f1", "roc_auc", "rmse", "r2")}
        return self._store(name, version, "evaluation", ref, result, {"task": predictor.task, **headline})

    # ----------------------------------------------------------------------------------------------
    # Fairness

    def evaluate_fairness(
        self,
        name: str,
        version: int,
        dataset: str,
        sensitive_features: list[str],
        label_column: str,
        reference_group: str | None = None,
        positive_label: str | int | float | bool | None = None,
        min_group_size: int = 30,
    ) -> VersionEvaluation:
        """Per-group rates with 95% Wilson intervals and the disparity measures (Fairlearn) of a binary
        classifier on a dataset version; groups under ``min_group_size`` rows are flagged, not judged.
        Stored (kind ``fairness``) and journaled."""
        label_column = _column_name(label_column, "label_column")
        sensitive = _columns(sensitive_features, "sensitive_features", MAX_SENSITIVE)
        if not sensitive:
            raise InvalidInput("give at least one sensitive feature column", field="sensitive_features")
        if isinstance(min_group_size, bool) or not isinstance(min_group_size, int) or min_group_size < 1:
            raise InvalidInput(
                f"min_group_size must be a positive integer, not {min_group_size!r}", field="min_group_size"
            )
        if reference_group is not None and not isinstance(reference_group, str):
            reference_group = normalize_label(reference_group, "reference_group")
        mv = self.services.registry.get_version(name, version)
        ref, frame = self._dataset(dataset)
        _require_columns(frame, [label_column], "label_column")
        _require_columns(frame, sensitive, "sensitive_features")
        frame, dropped = _labelled(frame, label_column)
        predictor = self._predictor(mv, frame, label_column)
        if predictor.task != "classification":
            raise InvalidInput(f"fairness needs a classifier; {name}/{version} is a regression model", field="version")
        positive = fairness.choose_positive(frame[label_column], positive_label, predictor.classes)
        predicted = _scored(predictor.predict, frame)
        report = fairness.fairness_report(
            fairness.binarize(frame[label_column], positive),
            fairness.binarize(pd.Series(predicted), positive),
            fairness.group_labels(frame, sensitive),
            reference_group=reference_group,
            min_group_size=min_group_size,
        )
        result = {
            "sensitive_features": sensitive,
            "label_column": label_column,
            "positive_label": normalize_label(positive),
            "rows": len(frame),
            "rows_without_label": dropped,
            **report,
        }
        metrics = result["metrics"]
        headline = {
            "sensitive_features": sensitive,
            "reference_group": result["reference_group"],
            "demographic_parity_difference": metrics["demographic_parity_difference"],
            "disparate_impact_ratio": metrics["disparate_impact_ratio"],
            "four_fifths_passed": metrics["four_fifths_passed"],
            "small_groups": result["small_groups"],
        }
        return self._store(name, version, "fairness", ref, result, headline)

    # ----------------------------------------------------------------------------------------------
    # Explanations

    def explain_version(
        self,
        name: str,
        version: int,
        dataset: str,
        label_column: str | None = None,
        n_repeats: int = 5,
        max_rows: int = 2000,
    ) -> VersionEvaluation:
        """Global permutation importance of each input feature on a dataset version (scored on the label
        when given, else on agreement with the model's own predictions; mean |SHAP| too when ``shap`` is
        installed), with a background sample for local explanations. Stored (kind ``explanation``)."""
        if label_column is not None:
            label_column = _column_name(label_column, "label_column")
        _bounded(n_repeats, "n_repeats", 1, 50)
        _bounded(max_rows, "max_rows", 10, 100_000)
        mv = self.services.registry.get_version(name, version)
        ref, frame = self._dataset(dataset)
        dropped = 0
        if label_column is not None:
            _require_columns(frame, [label_column], "label_column")
            frame, dropped = _labelled(frame, label_column)
        predictor = self._predictor(mv, frame, label_column)
        labels = frame[label_column] if label_column is not None else None
        try:
            result = explain.global_importance(predictor, frame, labels, n_repeats=n_repeats, max_rows=max_rows)
        except ShipyardError:
            raise
        except Exception as exc:  # the model failed on its own inputs: say so, as a 400 on the dataset
            raise InvalidInput(f"the model could not score the dataset: {exc}", field="dataset") from exc
        result.update(
            {
                "task": predictor.task,
                "label_column": label_column,
                "rows_without_label": dropped,
                "features": predictor.features,
                "background": explain.background_sample(frame, predictor.features),
            }
        )
        top = [item["feature"] for item in result["importances"][:3]]
        return self._store(name, version, "explanation", ref, result, {"method": result["method"], "top_features": top})

    def explain_prediction(self, name: str, version: int, inputs: dict[str, Any], top_k: int = 5) -> LocalExplanation:
        """Why the version predicts what it does for one input: each feature's contribution to its
        output (the positive class's probability, or the predicted value) against background rows —
        the newest stored explanation's, else a sample of the version's training data — and the
        features that lowered it as adverse-action reasons."""
        if not isinstance(inputs, dict) or not inputs:
            raise InvalidInput("inputs must be a non-empty mapping of feature to value", field="inputs")
        _bounded(top_k, "top_k", 1, 1000)
        mv = self.services.registry.get_version(name, version)
        model = self._load(mv)
        background, source = self._background(mv, list(inputs))
        predictor = Predictor.of(model, mv, list(background.columns), None)
        missing = [f for f in predictor.features if f not in inputs]
        if missing:
            raise InvalidInput(f"inputs lack the model's feature(s) {', '.join(missing)}", field="inputs")
        unknown = [k for k in inputs if k not in predictor.features]
        if unknown:
            raise InvalidInput(
                f"unknown feature(s) {', '.join(map(str, unknown))}; the model takes {', '.join(predictor.features)}",
                field="inputs",
            )
        missing_bg = [f for f in predictor.features if f not in background.columns]
        if missing_bg:
            raise InvalidInput(f"the background rows lack feature(s) {', '.join(missing_bg)}", field="version")
        row = pd.DataFrame([{f: inputs[f] for f in predictor.features}])
        prediction = _scored(predictor.predict, row)[0]
        class_index = None
        if predictor.task == "classification" and len(predictor.classes) > 2:
            # multi-class: explain the predicted class (a label outside classes_ falls back to the last class)
            with contextlib.suppress(InvalidInput, ValueError):
                class_index = predictor.class_index(prediction)
        output, base, contributions = _scored(
            lambda _: explain.local_contributions(predictor, row, background[predictor.features], class_index), row
        )
        ranked = sorted(contributions, key=lambda c: -abs(c[2]))
        what = "score" if predictor.task == "classification" else "prediction"
        return LocalExplanation(
            model_name=name,
            version=version,
            prediction=explain.jsonable(prediction),
            output=output,
            output_name=predictor.output_name(class_index),
            base_value=base,
            contributions=[FeatureContribution(feature=f, value=v, contribution=c) for f, v, c in ranked[:top_k]],
            reasons=explain.reasons(contributions, what, top_k),
            background=source,
            background_rows=len(background),
        )

    def _background(self, mv: ModelVersion, input_keys: list[str]) -> tuple[pd.DataFrame, str]:
        for stored in self.list_evaluations(mv.model_name, mv.version, "explanation"):  # newest first
            if stored.result.get("background") and not self._erased(stored.dataset):
                return pd.DataFrame.from_records(stored.result["background"]), f"explanation of {stored.dataset}"
        if mv.data_refs:
            # read each time rather than cached: an erasure may purge the training data meanwhile, and
            # then its successor (the same data without the erased rows) stands in for it
            ref, frame = self._dataset(self._unerased(mv.data_refs[0]), field="version")
            columns = [c for c in frame.columns if c in input_keys] if not mv.signature else list(frame.columns)
            wanted = Predictor.of(self._load(mv), mv, columns, None).features
            return pd.DataFrame.from_records(explain.background_sample(frame, wanted)), f"training data {ref}"
        raise InvalidInput(
            f"{mv.model_name}/{mv.version} has no stored explanation and no training data in its lineage to "
            "explain against; run explain_version on a dataset first",
            field="version",
        )

    def _unerased(self, ref: str) -> str:
        """``ref``, or the version an erasure wrote in its place (following successive erasures)."""
        for _ in range(100):
            try:
                tags = self.services.data.resolve_version(ref).tags
            except NotFound:
                return ref
            if ERASED_BY_TAG not in tags or not tags.get(SUCCESSOR_TAG):
                return ref
            ref = tags[SUCCESSOR_TAG]
        return ref

    def _erased(self, ref: str | None) -> bool:
        """Did an erasure purge rows of this dataset version (or is it gone)? Its rows copied into a
        background must not explain predictions any more."""
        if ref is None:
            return False
        try:
            return ERASED_BY_TAG in self.services.data.resolve_version(ref).tags
        except NotFound:
            return True

    # ----------------------------------------------------------------------------------------------
    # Stored results

    def list_evaluations(self, name: str, version: int, kind: str | None = None) -> list[VersionEvaluation]:
        """The stored results about a version, newest first (optionally of one kind)."""
        if kind is not None and kind not in EVALUATION_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(EVALUATION_KINDS)}, not {kind!r}", field="kind")
        e = t.version_evaluations
        with self.db.read() as conn:
            _, row = self.services.registry._version_row(conn, name, version)
            query = sa.select(e).where(e.c.version_id == row.id)
            if kind is not None:
                query = query.where(e.c.kind == kind)
            rows = conn.execute(query.order_by(e.c.created_at.desc(), e.c.id.desc())).all()
        return [_evaluation(name, version, r) for r in rows]

    def get_evaluation(self, name: str, version: int, kind: str) -> VersionEvaluation:
        """The newest stored result of ``kind`` about a version."""
        found = self.list_evaluations(name, version, kind)
        if not found:
            raise NotFound(f"{name}/{version} has no {kind} result yet", field="kind")
        return found[0]

    def _store(
        self, name: str, version: int, kind: str, ref: str, result: dict[str, Any], headline: dict[str, Any]
    ) -> VersionEvaluation:
        result = _json_safe(result)
        with self.db.write() as tx:
            model, row = self.services.registry._version_row(tx.conn, name, version)
            values = {
                "id": new_id(),
                "version_id": row.id,
                "kind": kind,
                "dataset": ref,
                "result": result,
                "created_by": tx.actor,
                "created_at": now_ms(),
            }
            tx.conn.execute(t.version_evaluations.insert().values(**values))
            tx.journal(
                "version.evaluated",
                "model",
                model.id,
                _json_safe({"version": version, "kind": kind, "dataset": ref, **headline}),
            )
        return VersionEvaluation(model_name=name, version=version, **values)

    # ----------------------------------------------------------------------------------------------
    # Model cards

    def get_model_card(self, name: str, version: int) -> ModelCard:
        """The version's model card, assembled from what the store knows plus its narrative sections."""
        return cards.assemble(self.services, self, name, version)

    def set_card_section(self, name: str, section: str, text: str, version: int | None = None) -> CardSection:
        """Set a narrative section of the card: model-wide (``version`` None) or for one version (which
        wins over the model-wide text). Empty text removes the section."""
        if section not in cards.NARRATIVE_SECTIONS:
            raise InvalidInput(
                f"unknown card section {section!r}; editable sections: {', '.join(cards.NARRATIVE_SECTIONS)}",
                field="section",
            )
        if not isinstance(text, str):
            raise InvalidInput("text must be a string", field="text")
        text = check_text(text.strip(), "text", MAX_CARD_TEXT) or ""
        s = t.model_card_sections
        with self.db.write() as tx:
            if version is None:
                model = self.services.registry._model_row(tx.conn, name)
            else:
                model, _ = self.services.registry._version_row(tx.conn, name, version)
            key = {"model_id": model.id, "version": version or 0, "section": section}
            where = sa.and_(*(s.c[k] == v for k, v in key.items()))
            before = tx.conn.execute(sa.select(s.c.text).where(where)).scalar()
            at = now_ms()
            tx.conn.execute(s.delete().where(where))
            if text:
                tx.conn.execute(s.insert().values(**key, text=text, updated_by=tx.actor, updated_at=at))
            tx.journal(
                "card.section_set",
                "model",
                model.id,
                {"version": version, "section": section, "removed": not text, "changed": before != (text or None)},
            )
        return CardSection(
            model_name=name, version=version, section=section, text=text, updated_by=tx.actor, updated_at=at
        )

    def render_model_card(self, name: str, version: int, format: str = "markdown") -> str:
        """The card as ``markdown``, self-contained ``html``, or ``json`` (Model Card Toolkit sections)."""
        if format not in ("markdown", "html", "json"):
            raise InvalidInput(f'format must be "markdown", "html" or "json", not {format!r}', field="format")
        return render(self.get_model_card(name, version), format)

    def card_completeness(self, name: str, version: int) -> CardCompleteness:
        """Which required sections the card has (``cards.REQUIRED_SECTIONS``): complete, score 0..1, missing."""
        return self.get_model_card(name, version).completeness

    # ----------------------------------------------------------------------------------------------
    # Loading

    def _load(self, mv: ModelVersion) -> Any:
        """The loaded model (verified, as load_model does), cached by digest."""
        with self._lock:
            cached = self._models.get(mv.digest)
            if cached is not None:
                self._models.move_to_end(mv.digest)
                return cached
        try:
            model = self.services.monitoring.embedded_client().load_model(mv.uri)
        except ShipyardError:
            raise
        except Exception as exc:  # e.g. a library the flavor needs is missing here
            raise InvalidInput(f"cannot load {mv.model_name}/{mv.version}: {exc}", field="version") from exc
        with self._lock:
            self._models[mv.digest] = model
            while len(self._models) > MODEL_CACHE:
                self._models.popitem(last=False)
        return model

    def _dataset(self, dataset: str, field: str = "dataset") -> tuple[str, pd.DataFrame]:
        """``(NAME@N, frame)`` of a dataset ref (``NAME@N``, ``NAME``, ``NAME@latest``)."""
        if not isinstance(dataset, str) or not dataset.strip():
            raise InvalidInput("dataset must be a dataset version, e.g. 'credit@3'", field=field)
        client = self.services.monitoring.embedded_client()
        try:
            resolved = client.get_dataset(dataset.strip())
            frame = client.load_dataset(resolved.ref, record=False)
        except NotFound as exc:
            raise NotFound(f"dataset {dataset!r}: {exc.message}", field=field) from exc
        except InvalidInput as exc:
            raise InvalidInput(f"dataset {dataset!r}: {exc.message}", field=field) from exc
        if frame.empty:
            raise InvalidInput(f"dataset {resolved.ref} has no rows", field=field)
        return resolved.ref, frame.reset_index(drop=True)

    def _predictor(self, mv: ModelVersion, frame: pd.DataFrame, label_column: str | None) -> Predictor:
        return Predictor.of(self._load(mv), mv, [str(c) for c in frame.columns], label_column)


# --------------------------------------------------------------------------------------------------
# helpers


def _evaluation(name: str, version: int, row: Any) -> VersionEvaluation:
    return VersionEvaluation(
        id=row.id,
        model_name=name,
        version=version,
        kind=row.kind,
        dataset=row.dataset,
        result=row.result or {},
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _column_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a column name", field=field)
    return value.strip()


def _columns(values: Any, field: str, limit: int) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    if not isinstance(values, list):
        raise InvalidInput(f"{field} must be a list of column names", field=field)
    names = [_column_name(v, field) for v in values]
    if len(names) > limit:
        raise InvalidInput(f"at most {limit} {field} columns, not {len(names)}", field=field)
    return list(dict.fromkeys(names))


def _require_columns(frame: pd.DataFrame, columns: list[str], field: str) -> None:
    present = [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in present]
    if missing:
        raise InvalidInput(
            f"{field}: the dataset has no column {', '.join(map(repr, missing))} (columns: {', '.join(present[:30])})",
            field=field,
        )


def _bounded(value: Any, field: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{field} must be an integer from {low} to {high}, not {value!r}", field=field)


def _labelled(frame: pd.DataFrame, label_column: str) -> tuple[pd.DataFrame, int]:
    """The rows that have a label, and how many had none."""
    keep = frame[label_column].notna()
    dropped = int((~keep).sum())
    if not keep.any():
        raise InvalidInput(f"label column {label_column!r} has no values", field="label_column")
    return frame[keep].reset_index(drop=True), dropped


def _scored(predict: Any, frame: pd.DataFrame) -> Any:
    """Run the model; its own failures become a 400 on the dataset (the data does not fit the model)."""
    try:
        return predict(frame)
    except ShipyardError:
        raise
    except Exception as exc:
        raise InvalidInput(f"the model could not score the data: {exc}", field="dataset") from exc


def _json_safe(value: Any) -> Any:
    """Plain JSON: numpy scalars as Python ones, NaN and infinities as None (PostgreSQL's JSON refuses them)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_safe(v) for v in value.tolist()]
    return explain.jsonable(value)
