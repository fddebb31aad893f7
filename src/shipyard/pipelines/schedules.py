"""Pipeline schedules: cron expressions in the store, and the claim that makes each firing happen once.

A schedule names a pipeline by import reference (``package.module:function``), a cron expression
(UTC, five fields, evaluated by croniter), parameters and a catch-up policy for occurrences that
were missed while no scheduler was running:

- ``skip``: missed occurrences are dropped; the next run is the next future occurrence.
- ``latest``: one run for the most recent missed occurrence, then on schedule.
- ``all``: every missed occurrence runs, oldest first (at most ``MAX_CATCHUP``).

A scheduler *claims* the due occurrences by moving ``next_run_at`` forward with a compare-and-set,
so two schedulers running at once never fire the same occurrence twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from croniter import croniter
from pydantic import BaseModel, Field

from shipyard.core.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.core.ids import new_id
from shipyard.core.names import check_name
from shipyard.core.time import now_ms
from shipyard.store import schema as t
from shipyard.store.database import Database

CATCHUP_POLICIES = ("skip", "latest", "all")
EXECUTORS = ("inprocess", "process", "dask")
MAX_CATCHUP = 100
MAX_COUNT = 10_000  # skipped occurrences are counted up to this many


class Schedule(BaseModel):
    id: str
    name: str
    target: str
    cron: str
    params: dict[str, Any] = Field(default_factory=dict)
    catchup: str
    executor: str
    enabled: bool
    next_run_at: int
    last_run_at: int | None = None
    last_pipeline_run_id: str | None = None
    created_by: str | None = None
    created_at: int
    updated_at: int


class Claim(BaseModel):
    """Occurrences a scheduler won the right to run (epoch ms, oldest first), and how many were skipped."""

    schedule: Schedule
    fire_times: list[int]
    skipped: int


def check_cron(expression: str) -> str:
    if not isinstance(expression, str) or not croniter.is_valid(expression) or len(expression.split()) != 5:
        raise InvalidInput(
            f"cron expression {expression!r} is not valid: use five fields, minute hour day month weekday "
            "(e.g. '*/15 * * * *')",
            field="cron",
        )
    return expression


def check_target(target: str) -> str:
    module, _, attribute = target.partition(":") if isinstance(target, str) else ("", "", "")
    if not module or not attribute or not all(part.isidentifier() for part in module.split(".") + attribute.split(".")):
        raise InvalidInput(f"target {target!r} must be an import reference 'package.module:function'", field="target")
    return target


def next_after(expression: str, after_ms: int) -> int:
    """The first occurrence strictly after ``after_ms`` (UTC)."""
    start = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    return int(croniter(expression, start).get_next(datetime).timestamp() * 1000)


def occurrences(expression: str, first_ms: int, until_ms: int, limit: int) -> tuple[list[int], int]:
    """The last ``limit`` occurrences in ``[first_ms, until_ms]`` (oldest first; ``first_ms`` is itself an
    occurrence) and how many earlier ones they leave out (counted up to ``MAX_COUNT``)."""
    if first_ms > until_ms:
        return [], 0
    # Walk backwards from the end, so a scheduler that was down for a year does not iterate a year.
    cursor = croniter(expression, datetime.fromtimestamp((until_ms + 1) / 1000, tz=UTC))
    times: list[int] = []
    while len(times) < limit:
        when = int(cursor.get_prev(datetime).timestamp() * 1000)
        if when < first_ms:
            break
        times.append(when)
    times.reverse()
    earlier = 0
    if times:
        current = first_ms
        while current < times[0] and earlier < MAX_COUNT:
            earlier += 1
            current = next_after(expression, current)
    return times, earlier


class ScheduleService:
    def __init__(self, db: Database):
        self.db = db

    def create_schedule(
        self,
        name: str,
        target: str,
        cron: str,
        params: dict[str, Any] | None = None,
        catchup: str = "skip",
        executor: str = "inprocess",
        start_at: int | None = None,
    ) -> Schedule:
        """Schedule ``target`` on ``cron``; the first occurrence is the first after ``start_at`` (default now)."""
        check_name(name, "schedule name")
        check_target(target)
        check_cron(cron)
        _check_choice(catchup, CATCHUP_POLICIES, "catchup")
        _check_choice(executor, EXECUTORS, "executor")
        if params is not None and not isinstance(params, dict):
            raise InvalidInput("params must be an object of parameter values", field="params")
        now = now_ms()
        values = {
            "id": new_id(),
            "name": name,
            "target": target,
            "cron": cron,
            "params": params or {},
            "catchup": catchup,
            "executor": executor,
            "enabled": True,
            "next_run_at": next_after(cron, now if start_at is None else start_at),
            "created_at": now,
            "updated_at": now,
        }
        with self.db.write() as tx:
            if self._row(tx.conn, name, required=False) is not None:
                raise AlreadyExists(f"schedule {name!r} already exists", field="name")
            tx.conn.execute(t.pipeline_schedules.insert().values(**values, created_by=tx.actor))
            tx.journal("schedule.created", "schedule", values["id"], {"after": _summary(values)})
        return self.get_schedule(name)

    def get_schedule(self, name: str) -> Schedule:
        with self.db.read() as conn:
            return Schedule(**self._row(conn, name)._mapping)

    def list_schedules(self) -> list[Schedule]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.pipeline_schedules).order_by(t.pipeline_schedules.c.name)).all()
        return [Schedule(**row._mapping) for row in rows]

    def set_schedule_enabled(self, name: str, enabled: bool) -> Schedule:
        """Pause or resume. Resuming moves the next occurrence to the first one after now (a pause skips)."""
        with self.db.write() as tx:
            row = self._row(tx.conn, name)
            changes: dict[str, Any] = {"enabled": enabled, "updated_at": now_ms()}
            if enabled and not row.enabled:
                changes["next_run_at"] = next_after(row.cron, now_ms())
            tx.conn.execute(t.pipeline_schedules.update().where(t.pipeline_schedules.c.id == row.id).values(**changes))
            tx.journal(
                "schedule.resumed" if enabled else "schedule.paused",
                "schedule",
                row.id,
                {"before": {"enabled": row.enabled}, "after": {"enabled": enabled}},
            )
        return self.get_schedule(name)

    def delete_schedule(self, name: str) -> None:
        with self.db.write() as tx:
            row = self._row(tx.conn, name)
            tx.conn.execute(t.pipeline_schedules.delete().where(t.pipeline_schedules.c.id == row.id))
            tx.journal("schedule.deleted", "schedule", row.id, {"before": _summary(row._mapping)})

    def claim_due(self, name: str, now: int | None = None) -> Claim:
        """Take the occurrences of ``name`` due by ``now`` under its catch-up policy (none when not due).

        The claim advances ``next_run_at`` past ``now`` only if nobody else did first, so each occurrence
        is claimed by exactly one scheduler.
        """
        now = now_ms() if now is None else now
        with self.db.write() as tx:
            row = self._row(tx.conn, name)
            schedule = Schedule(**row._mapping)
            if not row.enabled or row.next_run_at > now:
                return Claim(schedule=schedule, fire_times=[], skipped=0)
            limit = {"skip": 1, "latest": 1, "all": MAX_CATCHUP}[row.catchup]
            due, dropped = occurrences(row.cron, row.next_run_at, now, limit)
            if row.catchup == "skip":
                # Only an occurrence that fell due within the last minute counts as on time.
                on_time = [when for when in due if now - when < 60_000]
                dropped += len(due) - len(on_time)
                due = on_time
            following = next_after(row.cron, now)
            claimed = tx.conn.execute(
                t.pipeline_schedules.update()
                .where(t.pipeline_schedules.c.id == row.id, t.pipeline_schedules.c.next_run_at == row.next_run_at)
                .values(next_run_at=following, updated_at=now_ms())
            ).rowcount
            if claimed != 1:
                return Claim(schedule=schedule, fire_times=[], skipped=0)
            tx.journal(
                "schedule.claimed",
                "schedule",
                row.id,
                {"after": {"fire_times": due, "skipped": dropped, "next_run_at": following}},
            )
            schedule.next_run_at = following
        return Claim(schedule=schedule, fire_times=due, skipped=dropped)

    def record_fire(
        self, name: str, fire_time: int, pipeline_run_id: str | None = None, error: str | None = None
    ) -> Schedule:
        """Note which pipeline run an occurrence started (or the error that stopped it from starting)."""
        with self.db.write() as tx:
            row = self._row(tx.conn, name)
            tx.conn.execute(
                t.pipeline_schedules.update()
                .where(t.pipeline_schedules.c.id == row.id)
                .values(last_run_at=fire_time, last_pipeline_run_id=pipeline_run_id, updated_at=now_ms())
            )
            tx.journal(
                "schedule.fired",
                "schedule",
                row.id,
                {"after": {"fire_time": fire_time, "pipeline_run_id": pipeline_run_id, "error": error}},
            )
        return self.get_schedule(name)

    def _row(self, conn: sa.Connection, name: str, required: bool = True) -> sa.Row | None:
        row = conn.execute(sa.select(t.pipeline_schedules).where(t.pipeline_schedules.c.name == name)).first()
        if row is None and required:
            raise NotFound(f"schedule {name!r} does not exist", field="name")
        return row


def _check_choice(value: str, choices: tuple[str, ...], field: str) -> None:
    if value not in choices:
        raise InvalidInput(f"{field} must be one of {', '.join(choices)}, not {value!r}", field=field)


def _summary(values: Any) -> dict[str, Any]:
    keys = ("name", "target", "cron", "params", "catchup", "executor", "next_run_at")
    return {k: values[k] for k in keys}
