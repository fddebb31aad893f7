"""The scheduler loop: claim due schedule occurrences and start their pipeline runs (and, when
asked, run the monitors whose schedule is due).

``shipyard scheduler`` runs :meth:`Scheduler.run_forever`. Each tick lists the schedules, claims
the due occurrences of each (a compare-and-set in the store, so several schedulers may run side
by side without double runs) and starts one pipeline run per claimed occurrence, oldest first.
A pipeline that fails is recorded with its run id; the scheduler carries on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.core.time import now_ms
from shipyard.pipelines.schedules import Schedule

log = logging.getLogger("shipyard.scheduler")


@dataclass
class Firing:
    schedule: str
    fire_time: int
    pipeline_run_id: str | None
    status: str  # SUCCEEDED, FAILED, or ERROR when no pipeline run could start
    error: str | None = None


def launch_pipeline(client: Any, schedule: Schedule, fire_time: int) -> Any:
    from shipyard.pipelines import run

    return run(
        schedule.target,
        params=dict(schedule.params),
        executor=schedule.executor,
        client=client,
        schedule_id=schedule.id,
    )


class Scheduler:
    def __init__(
        self,
        client: Any,
        *,
        interval: float = 30.0,
        launch: Callable[[Any, Schedule, int], Any] = launch_pipeline,
        on_firing: Callable[[Firing], None] | None = None,
        schedules: bool = True,
        monitors: bool = False,
    ):
        self.client = client
        self.schedules = schedules
        self.monitors = monitors
        self.interval = interval
        self.launch = launch
        self.on_firing = on_firing
        self.stopped = threading.Event()

    def tick(self, now: int | None = None) -> list[Firing]:
        now = now_ms() if now is None else now
        firings: list[Firing] = []
        if self.monitors:
            try:
                self.client.run_due_monitors(now)
            except Exception as exc:  # monitoring must not stop the schedules (nor the other way round)
                log.warning("due monitors: %s", exc)
        if not self.schedules:
            return firings
        for schedule in self.client.list_schedules():
            if not schedule.enabled or schedule.next_run_at > now:
                continue
            claim = self.client.claim_schedule(schedule.name, now=now)
            if claim.skipped:
                log.info("schedule %s: skipped %d missed occurrence(s)", schedule.name, claim.skipped)
            for fire_time in claim.fire_times:
                firings.append(self._fire(claim.schedule, fire_time))
        return firings

    def _fire(self, schedule: Schedule, fire_time: int) -> Firing:
        try:
            result = self.launch(self.client, schedule, fire_time)
            firing = Firing(schedule.name, fire_time, getattr(result, "id", None), str(getattr(result, "status", "")))
        except Exception as exc:  # a failing pipeline must not stop the scheduler
            run_id = getattr(exc, "pipeline_run_id", None)
            firing = Firing(schedule.name, fire_time, run_id, "FAILED" if run_id else "ERROR", f"{exc}")
            log.warning("schedule %s: %s", schedule.name, exc)
        self.client.record_schedule_fire(schedule.name, fire_time, firing.pipeline_run_id, error=firing.error)
        if self.on_firing is not None:
            self.on_firing(firing)
        return firing

    def run_forever(self) -> None:
        while not self.stopped.is_set():
            try:
                self.tick()
            except Exception as exc:  # the store may be briefly unreachable; try again next tick
                log.warning("scheduler tick failed: %s", exc)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
