"""A loaded model version as evaluations, fairness and explanations see it: which columns it takes,
whether it classifies or regresses, and the one number an explanation explains (its output).

The output is the positive class's probability for a binary classifier (the last of ``classes_``, as
scikit-learn orders them), the probability of a given class for a multi-class one, and the predicted
value for a regressor. A classifier without ``predict_proba`` is explained on its 0/1 decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.performance import normalize_label
from shipyard.monitoring.reference import model_classes, signature_columns


@dataclass
class Predictor:
    model: Any  # a shipyard LoadedModel
    features: list[str]  # the input columns, in order
    task: str  # classification | regression
    classes: list[str] = field(default_factory=list)  # normalised labels, in predict_proba's column order

    @classmethod
    def of(cls, model: Any, version: Any, columns: list[str], label_column: str | None) -> Predictor:
        """The predictor of ``model`` (loaded from ``version``) over a dataset with ``columns``: the
        version's signature says its inputs, else every column but the label."""
        wanted = signature_columns(version)
        if wanted:
            missing = [c for c in wanted if c not in columns]
            if missing:
                raise InvalidInput(
                    f"the dataset lacks the model's input column(s) {', '.join(missing)}", field="dataset"
                )
            features = wanted
        else:
            features = [c for c in columns if c != label_column]
        if label_column is not None and label_column in features:
            raise InvalidInput(f"the label column {label_column!r} is one of the model's inputs", field="label_column")
        classes = model_classes(model)
        raw = getattr(model, "raw", model)
        task = "classification" if classes or hasattr(raw, "predict_proba") else "regression"
        return cls(model, features, task, classes)

    @property
    def has_proba(self) -> bool:
        return hasattr(self.model, "predict_proba") and bool(self.classes)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(frame[self.features]))

    def proba(self, frame: pd.DataFrame) -> np.ndarray | None:
        if not self.has_proba:
            return None
        try:
            return np.asarray(self.model.predict_proba(frame[self.features]), dtype="float64")
        except Exception:  # a model whose probabilities fail is still evaluated on its labels
            return None

    def class_index(self, label: Any) -> int:
        return self.classes.index(normalize_label(label))

    def output(self, frame: pd.DataFrame, class_index: int | None = None) -> np.ndarray:
        """The explained figure per row (see the module docstring)."""
        if self.task == "regression":
            try:
                return np.asarray(self.predict(frame), dtype="float64").reshape(len(frame))
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"the model's predictions are not numbers: {exc}", field="version") from exc
        proba = self.proba(frame)
        index = len(self.classes) - 1 if class_index is None else class_index
        if proba is not None:
            return proba[:, index]
        target = self.classes[index] if self.classes else "1"
        return np.asarray([1.0 if normalize_label(v) == target else 0.0 for v in self.predict(frame)])

    def output_name(self, class_index: int | None = None) -> str:
        if self.task == "regression":
            return "prediction"
        if not self.classes:
            return "decision"
        index = len(self.classes) - 1 if class_index is None else class_index
        return f"probability of {self.classes[index]}"
