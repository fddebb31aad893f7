"""The SDK's schedule calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

from typing import Any

from shipyard.pipelines.schedules import Claim, Schedule


class SchedulesMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def create_schedule(
        self,
        name: str,
        target: str,
        cron: str,
        params: dict[str, Any] | None = None,
        *,
        catchup: str = "skip",
        executor: str = "inprocess",
        start_at: int | None = None,
    ) -> Schedule:
        """Run pipeline ``target`` ("package.module:function") on ``cron`` (UTC) with ``params``."""
        return self._call(
            "schedules",
            "create_schedule",
            name=name,
            target=target,
            cron=cron,
            params=params,
            catchup=catchup,
            executor=executor,
            start_at=start_at,
        )

    def list_schedules(self) -> list[Schedule]:
        return self._call("schedules", "list_schedules")

    def get_schedule(self, name: str) -> Schedule:
        return self._call("schedules", "get_schedule", name=name)

    def pause_schedule(self, name: str) -> Schedule:
        return self._call("schedules", "set_schedule_enabled", name=name, enabled=False)

    def resume_schedule(self, name: str) -> Schedule:
        return self._call("schedules", "set_schedule_enabled", name=name, enabled=True)

    def delete_schedule(self, name: str) -> None:
        self._call("schedules", "delete_schedule", name=name)

    def claim_schedule(self, name: str, now: int | None = None) -> Claim:
        return self._call("schedules", "claim_due", name=name, now=now)

    def record_schedule_fire(
        self, name: str, fire_time: int, pipeline_run_id: str | None, error: str | None = None
    ) -> Schedule:
        return self._call(
            "schedules", "record_fire", name=name, fire_time=fire_time, pipeline_run_id=pipeline_run_id, error=error
        )
