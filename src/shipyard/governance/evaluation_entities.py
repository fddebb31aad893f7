"""Entities of evaluations, fairness results, explanations and model cards (what the SDK returns).

Stored results keep a plain JSON ``result`` (``version_evaluations.result``) whose keys policies read
(``result["metrics"][name]``); the entities wrap it with where and when it was computed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

EVALUATION_KINDS = ("evaluation", "fairness", "explanation")


class VersionEvaluation(BaseModel):
    """One stored result about a model version: an evaluation with slices, a fairness evaluation or
    a global explanation, computed on the dataset version ``dataset`` (``NAME@N``)."""

    id: str
    model_name: str
    version: int
    kind: str  # evaluation | fairness | explanation
    dataset: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    created_by: str | None = None
    created_at: int

    @property
    def metrics(self) -> dict[str, Any]:
        """The headline figures policies read (``result["metrics"]``)."""
        found = self.result.get("metrics")
        return dict(found) if isinstance(found, dict) else {}


class FeatureContribution(BaseModel):
    feature: str
    value: Any = None  # the input's value of the feature
    contribution: float  # output(x) - mean over background rows of output(x with this feature from the row)


class LocalExplanation(BaseModel):
    """Why one input got its prediction: each feature's contribution to the explained output, and
    the features that lowered it phrased as reasons (for adverse-action notices)."""

    model_name: str
    version: int
    prediction: Any = None  # what the model predicts for the input
    output: float  # the explained figure: positive-class probability (classifiers) or the predicted value
    output_name: str  # e.g. "probability of 1", or "prediction"
    base_value: float  # the mean output over the background rows
    contributions: list[FeatureContribution]  # sorted by |contribution|, the top_k
    reasons: list[str]  # the features that lowered the output most, most first
    background: str  # where the background rows came from
    background_rows: int


class CardCompleteness(BaseModel):
    """Is the card complete enough for a policy? ``sections`` says which required section is present."""

    complete: bool
    score: float  # the share of required sections present, 0..1
    missing: list[str]
    sections: dict[str, bool]


class TrainingDataset(BaseModel):
    """One dataset version of a model version's training lineage, summarised for its card."""

    ref: str
    digest: str | None = None
    row_count: int | None = None
    columns: list[dict[str, Any]] = Field(default_factory=list)  # [{name, type, kind, missing, ...summary}]
    description: str | None = None
    error: str | None = None  # why it could not be read (deleted, erased...)


class CardReview(BaseModel):
    reviewer: str
    decision: str
    comment: str | None = None
    digest: str
    created_at: int


class CardSignature(BaseModel):
    key_id: str
    signer: str
    digest: str
    created_at: int


class ModelDetails(BaseModel):
    name: str
    version: int
    uri: str
    digest: str
    flavor: str
    description: str | None = None
    model_description: str | None = None
    created_by: str | None = None
    created_at: int
    owners: list[str] = Field(default_factory=list)
    risk_tier: str | None = None
    stage: str
    aliases: list[str] = Field(default_factory=list)
    source_run_id: str | None = None
    code_commit: str | None = None
    signature: dict[str, Any] | None = None  # the input/output schema


class ModelCard(BaseModel):
    """A model version's card, assembled from the store, with its editable narrative sections."""

    model_details: ModelDetails
    sections: dict[str, str] = Field(default_factory=dict)  # narrative: intended_use, limitations, ...
    training_data: list[TrainingDataset] = Field(default_factory=list)
    run_metrics: dict[str, float | None] = Field(default_factory=dict)  # the source run's latest metrics
    evaluation: VersionEvaluation | None = None  # the newest evaluation with slices
    fairness: VersionEvaluation | None = None
    explanation: VersionEvaluation | None = None
    reviews: list[CardReview] = Field(default_factory=list)
    signatures: list[CardSignature] = Field(default_factory=list)
    completeness: CardCompleteness
    generated_at: int


class CardSection(BaseModel):
    """One narrative section of a card: model-wide (``version`` None) or for one version."""

    model_name: str
    version: int | None = None
    section: str
    text: str  # empty: the section was removed
    updated_by: str | None = None
    updated_at: int
