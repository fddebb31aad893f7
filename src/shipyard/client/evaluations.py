"""The SDK's evaluations calls, mixed into :class:`shipyard.Client`: evaluations with slices, fairness,
explanations and model cards (the work is in ``governance/evaluation_service.py``, on the server
when remote)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.governance.evaluation_entities import (
    CardCompleteness,
    CardSection,
    LocalExplanation,
    ModelCard,
    VersionEvaluation,
)


class EvaluationsMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    # -- evaluations, fairness, explanations: computed on a dataset version, stored with the version

    def evaluate_version(
        self, name: str, version: int, dataset: str, label_column: str, slices: list[str] | None = None
    ) -> VersionEvaluation:
        """Metrics of ``name``/``version`` on ``dataset`` (``NAME@N``) against ``label_column``, overall
        (``result["metrics"]``) and per value of each slice column (``result["slices"]``)."""
        return self._call(
            "evaluations",
            "evaluate_version",
            name=name,
            version=int(version),
            dataset=dataset,
            label_column=label_column,
            slices=slices,
        )

    def evaluate_fairness(
        self,
        name: str,
        version: int,
        dataset: str,
        sensitive_features: list[str] | str,
        label_column: str,
        reference_group: str | None = None,
        positive_label: str | int | float | bool | None = None,
        min_group_size: int = 30,
    ) -> VersionEvaluation:
        """Per-group selection rate, TPR, FPR and accuracy with 95% intervals, and the disparity measures
        (``result["metrics"]``: demographic parity difference/ratio, equalized odds and equal opportunity
        differences, disparate-impact ratio and the four-fifths verdict); small groups are flagged."""
        if isinstance(sensitive_features, str):
            sensitive_features = [part.strip() for part in sensitive_features.split(",") if part.strip()]
        return self._call(
            "evaluations",
            "evaluate_fairness",
            name=name,
            version=int(version),
            dataset=dataset,
            sensitive_features=sensitive_features,
            label_column=label_column,
            reference_group=reference_group,
            positive_label=positive_label,
            min_group_size=min_group_size,
        )

    def explain_version(
        self,
        name: str,
        version: int,
        dataset: str,
        label_column: str | None = None,
        n_repeats: int = 5,
        max_rows: int = 2000,
    ) -> VersionEvaluation:
        """Global permutation importance (``result["importances"]``, largest first) on ``dataset``."""
        return self._call(
            "evaluations",
            "explain_version",
            name=name,
            version=int(version),
            dataset=dataset,
            label_column=label_column,
            n_repeats=n_repeats,
            max_rows=max_rows,
        )

    def explain_prediction(self, name: str, version: int, inputs: dict[str, Any], top_k: int = 5) -> LocalExplanation:
        """Why the version predicts what it does for ``inputs``: top feature contributions and reasons."""
        return self._call(
            "evaluations", "explain_prediction", name=name, version=int(version), inputs=inputs, top_k=top_k
        )

    def list_evaluations(self, name: str, version: int, kind: str | None = None) -> list[VersionEvaluation]:
        """Stored results about a version, newest first (kind: evaluation, fairness or explanation)."""
        return self._call("evaluations", "list_evaluations", name=name, version=int(version), kind=kind)

    def get_evaluation(self, name: str, version: int, kind: str) -> VersionEvaluation:
        """The newest stored result of ``kind`` about a version."""
        return self._call("evaluations", "get_evaluation", name=name, version=int(version), kind=kind)

    # -- model cards

    def get_model_card(self, name: str, version: int) -> ModelCard:
        return self._call("evaluations", "get_model_card", name=name, version=int(version))

    def set_card_section(self, name: str, section: str, text: str, version: int | None = None) -> CardSection:
        """Set a narrative section (intended_use, limitations, ethical_considerations, ...): model-wide,
        or for one version (which wins). Empty text removes it."""
        return self._call(
            "evaluations",
            "set_card_section",
            name=name,
            section=section,
            text=text,
            version=None if version is None else int(version),
        )

    def render_model_card(
        self, name: str, version: int, format: str = "markdown", path: str | Path | None = None
    ) -> str:
        """The card as ``markdown``, ``html`` or ``json`` (Model Card Toolkit sections); written to
        ``path`` too when given."""
        text = self._call("evaluations", "render_model_card", name=name, version=int(version), format=format)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def card_completeness(self, name: str, version: int) -> CardCompleteness:
        """``complete``, ``score`` (0..1), ``missing`` and per required section whether it is present."""
        return self._call("evaluations", "card_completeness", name=name, version=int(version))
