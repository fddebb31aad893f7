"""API operations of evaluations: evaluations with slices, fairness, explanations and model cards."""

from __future__ import annotations

from shipyard.api.operation import Operation

_VERSION = "/models/{name}/versions/{version}"
_MODEL = ("model", "name")

EVALUATION_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "evaluate_version",
        "evaluations",
        "POST",
        f"{_VERSION}/evaluate",
        "Evaluate a version on a dataset version, overall and per slice",
        permission="write",
        scope=_MODEL,
    ),
    Operation(
        "evaluate_fairness",
        "evaluations",
        "POST",
        f"{_VERSION}/fairness",
        "Fairness of a version across sensitive groups",
        permission="write",
        scope=_MODEL,
    ),
    Operation(
        "explain_version",
        "evaluations",
        "POST",
        f"{_VERSION}/explain",
        "Global explanation (permutation importance) of a version",
        permission="write",
        scope=_MODEL,
    ),
    Operation(
        "explain_prediction",
        "evaluations",
        "POST",
        f"{_VERSION}/explain/predict",
        "Local explanation of one prediction: feature contributions and adverse-action reasons",
        permission="read",
        scope=_MODEL,
    ),
    Operation(
        "list_evaluations",
        "evaluations",
        "GET",
        f"{_VERSION}/evaluations",
        "Stored evaluations, fairness results and explanations of a version",
        scope=_MODEL,
    ),
    Operation(
        "get_evaluation",
        "evaluations",
        "GET",
        f"{_VERSION}/evaluations/{{kind}}",
        "The newest stored result of a kind",
        scope=_MODEL,
    ),
    Operation("get_model_card", "evaluations", "GET", f"{_VERSION}/card", "A version's model card", scope=_MODEL),
    Operation(
        "render_model_card",
        "evaluations",
        "GET",
        f"{_VERSION}/card/render",
        "A version's model card as Markdown, HTML or Model Card Toolkit JSON",
        scope=_MODEL,
    ),
    Operation(
        "card_completeness",
        "evaluations",
        "GET",
        f"{_VERSION}/card/completeness",
        "Which required sections a version's model card has",
        scope=_MODEL,
    ),
    Operation(
        "set_card_section",
        "evaluations",
        "PUT",
        "/models/{name}/card/sections/{section}",
        "Set a narrative section of a model's card (model-wide, or for one version)",
        permission="write",
        scope=_MODEL,
    ),
)
