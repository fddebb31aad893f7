"""API operations that run work on the server (part of the contract in ``operations.py``)."""

from __future__ import annotations

from shipyard.api.operation import Operation

JOB_OPERATIONS: tuple[Operation, ...] = (
    Operation("run_pipeline", "jobs", "POST", "/jobs/run-pipeline", "Run a pipeline (importable by the server)"),
    Operation("batch_score", "jobs", "POST", "/jobs/batch-score", "Score a dataset version with a model"),
    Operation("reproduce_model", "jobs", "POST", "/jobs/reproduce", "Re-run a model version's pipeline and compare"),
)
