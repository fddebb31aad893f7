"""The API contract: every service operation with its HTTP method and path, declared once.

The FastAPI app generates its routes from this table and the remote SDK backend generates its
calls from it, so the server and the client cannot drift apart. Path parameters are taken from
the method's arguments of the same name; for GET the other arguments are query parameters,
otherwise they form the JSON body.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from shipyard.api.access_operations import ACCESS_OPERATIONS
from shipyard.api.audit_operations import AUDIT_OPERATIONS
from shipyard.api.automation_operations import AUTOMATION_OPERATIONS
from shipyard.api.contract_operations import CONTRACT_OPERATIONS
from shipyard.api.data_operations import DATA_OPERATIONS
from shipyard.api.deploy_operations import DEPLOY_OPERATIONS
from shipyard.api.evaluation_operations import EVALUATION_OPERATIONS
from shipyard.api.event_operations import EVENT_OPERATIONS
from shipyard.api.governance_operations import GOVERNANCE_OPERATIONS
from shipyard.api.inventory_operations import INVENTORY_OPERATIONS
from shipyard.api.job_operations import JOB_OPERATIONS
from shipyard.api.monitoring_operations import MONITORING_OPERATIONS
from shipyard.api.operation import Operation
from shipyard.api.pipeline_operations import PIPELINE_OPERATIONS
from shipyard.api.privacy_operations import PRIVACY_OPERATIONS
from shipyard.api.schedule_operations import SCHEDULE_OPERATIONS

__all__ = ["BY_NAME", "OPERATIONS", "Operation", "return_type", "service_method"]

CORE_OPERATIONS: tuple[Operation, ...] = (
    # experiments
    Operation("create_experiment", "tracking", "POST", "/experiments", "Create an experiment"),
    Operation("list_experiments", "tracking", "GET", "/experiments", "List experiments"),
    Operation(
        "get_experiment",
        "tracking",
        "GET",
        "/experiments/{id_or_name}",
        "Get an experiment by id or name",
        scope=("experiment", "id_or_name"),
    ),
    Operation(
        "update_experiment",
        "tracking",
        "PATCH",
        "/experiments/{experiment}",
        "Rename or describe",
        scope=("experiment", "experiment"),
    ),
    Operation(
        "set_experiment_lifecycle",
        "tracking",
        "POST",
        "/experiments/{experiment}/lifecycle",
        "Delete/restore",
        scope=("experiment", "experiment"),
    ),
    Operation(
        "set_experiment_tags",
        "tracking",
        "POST",
        "/experiments/{experiment}/tags",
        "Set tags",
        scope=("experiment", "experiment"),
    ),
    # runs
    Operation("create_run", "tracking", "POST", "/runs", "Start a run", scope=("experiment", "experiment")),
    Operation("search_runs", "tracking", "POST", "/runs/search", "Search runs with a filter expression"),
    Operation(
        "get_run",
        "tracking",
        "GET",
        "/runs/{run_id}",
        "Get a run with params, latest metrics, tags",
        scope=("run", "run_id"),
    ),
    Operation(
        "update_run",
        "tracking",
        "PATCH",
        "/runs/{run_id}",
        "End a run or change its name/description",
        scope=("run", "run_id"),
    ),
    Operation(
        "set_run_lifecycle",
        "tracking",
        "POST",
        "/runs/{run_id}/lifecycle",
        "Delete/restore a run",
        scope=("run", "run_id"),
    ),
    Operation(
        "log_params", "tracking", "POST", "/runs/{run_id}/params", "Log write-once params", scope=("run", "run_id")
    ),
    Operation("set_run_tags", "tracking", "POST", "/runs/{run_id}/tags", "Set run tags", scope=("run", "run_id")),
    Operation(
        "delete_run_tag", "tracking", "DELETE", "/runs/{run_id}/tags/{key}", "Delete a run tag", scope=("run", "run_id")
    ),
    Operation(
        "log_metrics", "tracking", "POST", "/runs/{run_id}/metrics", "Append metric points", scope=("run", "run_id")
    ),
    Operation(
        "log_batch",
        "tracking",
        "POST",
        "/runs/{run_id}/batch",
        "Log metrics, params and tags at once",
        scope=("run", "run_id"),
    ),
    Operation(
        "metric_history",
        "tracking",
        "GET",
        "/runs/{run_id}/metric-history",
        "A metric series, downsampled",
        scope=("run", "run_id"),
    ),
    Operation(
        "log_artifact",
        "tracking",
        "POST",
        "/runs/{run_id}/artifacts",
        "Record an uploaded artifact",
        scope=("run", "run_id"),
    ),
    Operation(
        "list_artifacts", "tracking", "GET", "/runs/{run_id}/artifacts", "List run artifacts", scope=("run", "run_id")
    ),
    # registry
    Operation("create_model", "registry", "POST", "/models", "Create a registered model"),
    Operation("list_models", "registry", "GET", "/models", "List registered models"),
    Operation("get_model", "registry", "GET", "/models/{name}", "Get a registered model", scope=("model", "name")),
    Operation(
        "update_model", "registry", "PATCH", "/models/{name}", "Describe a registered model", scope=("model", "name")
    ),
    Operation(
        "delete_model",
        "registry",
        "DELETE",
        "/models/{name}",
        "Delete a model without versions",
        scope=("model", "name"),
    ),
    Operation("set_model_tags", "registry", "POST", "/models/{name}/tags", "Set model tags", scope=("model", "name")),
    Operation(
        "delete_model_tag",
        "registry",
        "DELETE",
        "/models/{name}/tags/{key}",
        "Delete a model tag",
        scope=("model", "name"),
    ),
    Operation(
        "create_version",
        "registry",
        "POST",
        "/models/{name}/versions",
        "Register a model version",
        scope=("model", "name"),
    ),
    Operation("list_versions", "registry", "GET", "/models/{name}/versions", "List versions", scope=("model", "name")),
    Operation(
        "get_version", "registry", "GET", "/models/{name}/versions/{version}", "Get a version", scope=("model", "name")
    ),
    Operation(
        "update_version",
        "registry",
        "PATCH",
        "/models/{name}/versions/{version}",
        "Describe a version",
        scope=("model", "name"),
    ),
    Operation(
        "set_version_tags",
        "registry",
        "POST",
        "/models/{name}/versions/{version}/tags",
        "Set version tags",
        scope=("model", "name"),
    ),
    Operation(
        "set_alias",
        "registry",
        "PUT",
        "/models/{name}/aliases/{alias}",
        "Point an alias at a version",
        scope=("model", "name"),
    ),
    Operation(
        "delete_alias",
        "registry",
        "DELETE",
        "/models/{name}/aliases/{alias}",
        "Remove an alias",
        scope=("model", "name"),
    ),
    Operation(
        "get_version_by_alias",
        "registry",
        "GET",
        "/models/{name}/aliases/{alias}",
        "Resolve an alias",
        scope=("model", "name"),
    ),
    Operation(
        "alias_history",
        "registry",
        "GET",
        "/models/{name}/alias-history",
        "Alias moves, from the journal",
        scope=("model", "name"),
    ),
    Operation("resolve_tree", "registry", "GET", "/resolve", "Resolve a model URI to its artifact tree"),
    # journal
    Operation("read", "journal", "GET", "/journal", "Read journal entries after a sequence number"),
    Operation("last_seq", "journal", "GET", "/journal/last-seq", "The latest journal sequence number"),
    Operation("verify", "journal", "GET", "/journal/verify", "Recompute the journal's hash chain"),
)

OPERATIONS: tuple[Operation, ...] = (
    CORE_OPERATIONS
    + DATA_OPERATIONS
    + CONTRACT_OPERATIONS
    + PIPELINE_OPERATIONS
    + SCHEDULE_OPERATIONS
    + JOB_OPERATIONS
    + DEPLOY_OPERATIONS
    + MONITORING_OPERATIONS
    + ACCESS_OPERATIONS
    + GOVERNANCE_OPERATIONS
    + EVALUATION_OPERATIONS
    + AUDIT_OPERATIONS
    + PRIVACY_OPERATIONS
    + INVENTORY_OPERATIONS
    + EVENT_OPERATIONS
    + AUTOMATION_OPERATIONS
)

BY_NAME: dict[tuple[str, str], Operation] = {(op.service, op.name): op for op in OPERATIONS}


def service_method(op: Operation) -> Callable[..., Any]:
    """The unbound service method an operation calls (its signature and type hints define the API)."""
    from shipyard.services import SERVICE_CLASSES

    return getattr(SERVICE_CLASSES[op.service], op.name)


def return_type(op: Operation) -> Any:
    return typing.get_type_hints(service_method(op)).get("return", Any)
