"""API operations of pipeline schedules (part of the contract in ``operations.py``)."""

from __future__ import annotations

from shipyard.api.operation import Operation

SCHEDULE_OPERATIONS: tuple[Operation, ...] = (
    Operation("create_schedule", "schedules", "POST", "/schedules", "Schedule a pipeline on a cron expression"),
    Operation("list_schedules", "schedules", "GET", "/schedules", "List schedules"),
    Operation("get_schedule", "schedules", "GET", "/schedules/{name}", "Get a schedule"),
    Operation("set_schedule_enabled", "schedules", "POST", "/schedules/{name}/enabled", "Pause or resume"),
    Operation("delete_schedule", "schedules", "DELETE", "/schedules/{name}", "Delete a schedule"),
    Operation("claim_due", "schedules", "POST", "/schedules/{name}/claim", "Claim due occurrences (schedulers)"),
    Operation("record_fire", "schedules", "POST", "/schedules/{name}/fired", "Record an occurrence's pipeline run"),
)
