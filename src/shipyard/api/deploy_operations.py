"""API operations of endpoints and deployments (part of the contract in ``operations.py``)."""

from __future__ import annotations

from shipyard.api.operation import Operation

DEPLOY_OPERATIONS: tuple[Operation, ...] = (
    Operation("list_endpoints", "deploy", "GET", "/endpoints", "List endpoints"),
    Operation("get_endpoint", "deploy", "GET", "/endpoints/{name}", "Get an endpoint"),
    Operation(
        "ensure_endpoint",
        "deploy",
        "PUT",
        "/endpoints/{name}",
        "Create an endpoint serving a model, if absent",
        permission="deploy",
    ),
    Operation(
        "create_deployment",
        "deploy",
        "POST",
        "/endpoints/{endpoint}/deployments",
        "Roll a model version out",
        permission="deploy",
    ),
    Operation("deployment_history", "deploy", "GET", "/endpoints/{endpoint}/deployments", "An endpoint's rollouts"),
    Operation("deployment_status", "deploy", "GET", "/endpoints/{endpoint}/status", "Rollout status and evidence"),
    Operation(
        "promote_deployment",
        "deploy",
        "POST",
        "/endpoints/{endpoint}/promote",
        "Finish with the candidate",
        permission="deploy",
    ),
    Operation(
        "rollback_deployment",
        "deploy",
        "POST",
        "/endpoints/{endpoint}/rollback",
        "Back to the baseline",
        permission="deploy",
    ),
    Operation(
        "abort_deployment",
        "deploy",
        "POST",
        "/endpoints/{endpoint}/abort",
        "Stop without a verdict",
        permission="deploy",
    ),
    Operation(
        "advance_deployment", "deploy", "POST", "/endpoints/{endpoint}/advance", "Controller tick", permission="deploy"
    ),
    Operation("get_deployment", "deploy", "GET", "/deployments/{deployment_id}", "Get a deployment"),
    Operation(
        "sync_replica",
        "deploy",
        "POST",
        "/endpoints/{endpoint}/replicas/{replica_id}",
        "Replica heartbeat",
        permission="deploy",
    ),
    Operation(
        "record_samples",
        "deploy",
        "POST",
        "/replicas/{replica_id}/samples",
        "Replica observations",
        permission="deploy",
    ),
    Operation("record_feedback", "deploy", "POST", "/feedback", "Report outcomes by prediction id"),
    Operation(
        "record_segment",
        "predictions",
        "POST",
        "/prediction-segments",
        "Index a prediction log segment",
        permission="deploy",
    ),
    Operation("list_segments", "predictions", "GET", "/prediction-segments", "Prediction log segments"),
)
