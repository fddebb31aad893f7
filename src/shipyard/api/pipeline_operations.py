"""API operations of the pipeline services (part of the contract in ``operations.py``)."""

from __future__ import annotations

from shipyard.api.operation import Operation

PIPELINE_OPERATIONS: tuple[Operation, ...] = (
    Operation("create_pipeline_run", "pipelines", "POST", "/pipeline-runs", "Record a pipeline run and its steps"),
    Operation("list_pipeline_runs", "pipelines", "GET", "/pipeline-runs", "List pipeline runs, newest first"),
    Operation("get_pipeline_run", "pipelines", "GET", "/pipeline-runs/{pipeline_run_id}", "A run with its steps"),
    Operation(
        "heartbeat_pipeline_run", "pipelines", "POST", "/pipeline-runs/{pipeline_run_id}/heartbeat", "Runner alive"
    ),
    Operation("finish_pipeline_run", "pipelines", "POST", "/pipeline-runs/{pipeline_run_id}/finish", "End a run"),
    Operation("diff_pipeline_runs", "pipelines", "GET", "/pipeline-runs/{a}/diff/{b}", "Compare two pipeline runs"),
    Operation(
        "get_step_logs", "pipelines", "GET", "/pipeline-runs/{pipeline_run_id}/steps/{step}/logs", "A step's logs"
    ),
    Operation("get_pipeline_definition", "pipelines", "GET", "/pipeline-definitions/{digest}", "A definition"),
    Operation("start_step_run", "pipelines", "POST", "/step-runs/{step_run_id}/start", "Begin a step attempt"),
    Operation("finish_step_run", "pipelines", "POST", "/step-runs/{step_run_id}/finish", "End a step"),
    Operation("find_cached_step", "pipelines", "GET", "/step-cache", "A reusable step run for a cache key"),
    Operation("get_step_run_by_run_id", "pipelines", "GET", "/step-runs/by-run/{run_id}", "Step run of a tracking run"),
)
