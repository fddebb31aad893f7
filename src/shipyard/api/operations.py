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
from shipyard.api.contract_operations import CONTRACT_OPERATIONS
from shipyard.api.data_operations import DATA_OPERATIONS
from shipyard.api.deploy_operations import DEPLOY_OPERATIONS
from shipyard.api.evaluation_operations import EVALUATION_OPERATIONS
from shipyard.api.governance_operations import GOVERNANCE_OPERATIONS
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
    Operation("get_experiment", "tracking", "GET", "/experiments/{id_or_name}", "Get an experiment by id or name"),
    Operation("update_experiment", "tracking", "PATCH", "/experiments/{experiment}", "Rename or describe"),
    Operation("set_experiment_lifecycle", "tracking", "POST", "/experiments/{experiment}/lifecycle", "Delete/restore"),
    Operation("set_experiment_tags", "tracking", "POST", "/experiments/{experiment}/tags", "Set tags"),
    # runs
    Operation("create_run", "tracking", "POST", "/runs", "Start a run"),
    Operation("search_runs", "tracking", "POST", "/runs/search", "Search runs with a filter expression"),
    Operation("get_run", "tracking", "GET", "/runs/{run_id}", "Get a run with params, latest metrics, tags"),
    Operation("update_run", "tracking", "PATCH", "/runs/{run_id}", "End a run or change its name/description"),
    Operation("set_run_lifecycle", "tracking", "POST", "/runs/{run_id}/lifecycle", "Delete/restore a run"),
    Operation("log_params", "tracking", "POST", "/runs/{run_id}/params", "Log write-once params"),
    Operation("set_run_tags", "tracking", "POST", "/runs/{run_id}/tags", "Set run tags"),
    Operation("delete_run_tag", "tracking", "DELETE", "/runs/{run_id}/tags/{key}", "Delete a run tag"),
    Operation("log_metrics", "tracking", "POST", "/runs/{run_id}/metrics", "Append metric points"),
    Operation("log_batch", "tracking", "POST", "/runs/{run_id}/batch", "Log metrics, params and tags at once"),
    Operation("metric_history", "tracking", "GET", "/runs/{run_id}/metric-history", "A metric series, downsampled"),
    Operation("log_artifact", "tracking", "POST", "/runs/{run_id}/artifacts", "Record an uploaded artifact"),
    Operation("list_artifacts", "tracking", "GET", "/runs/{run_id}/artifacts", "List run artifacts"),
    # registry
    Operation("create_model", "registry", "POST", "/models", "Create a registered model"),
    Operation("list_models", "registry", "GET", "/models", "List registered models"),
    Operation("get_model", "registry", "GET", "/models/{name}", "Get a registered model"),
    Operation("update_model", "registry", "PATCH", "/models/{name}", "Describe a registered model"),
    Operation("delete_model", "registry", "DELETE", "/models/{name}", "Delete a model without versions"),
    Operation("set_model_tags", "registry", "POST", "/models/{name}/tags", "Set model tags"),
    Operation("delete_model_tag", "registry", "DELETE", "/models/{name}/tags/{key}", "Delete a model tag"),
    Operation("create_version", "registry", "POST", "/models/{name}/versions", "Register a model version"),
    Operation("list_versions", "registry", "GET", "/models/{name}/versions", "List versions"),
    Operation("get_version", "registry", "GET", "/models/{name}/versions/{version}", "Get a version"),
    Operation("update_version", "registry", "PATCH", "/models/{name}/versions/{version}", "Describe a version"),
    Operation("set_version_tags", "registry", "POST", "/models/{name}/versions/{version}/tags", "Set version tags"),
    Operation("set_alias", "registry", "PUT", "/models/{name}/aliases/{alias}", "Point an alias at a version"),
    Operation("delete_alias", "registry", "DELETE", "/models/{name}/aliases/{alias}", "Remove an alias"),
    Operation("get_version_by_alias", "registry", "GET", "/models/{name}/aliases/{alias}", "Resolve an alias"),
    Operation("alias_history", "registry", "GET", "/models/{name}/alias-history", "Alias moves, from the journal"),
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
)

BY_NAME: dict[tuple[str, str], Operation] = {(op.service, op.name): op for op in OPERATIONS}


def service_method(op: Operation) -> Callable[..., Any]:
    """The unbound service method an operation calls (its signature and type hints define the API)."""
    from shipyard.services import SERVICE_CLASSES

    return getattr(SERVICE_CLASSES[op.service], op.name)


def return_type(op: Operation) -> Any:
    return typing.get_type_hints(service_method(op)).get("return", Any)
