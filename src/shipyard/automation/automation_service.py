"""``AutomationService``: rules as versioned YAML in the store, their firings, and the engine's store side.

Saving a rule parses and validates its YAML (errors are 4xx naming the line and field); saving a
changed text makes version N+1 and keeps the old ones; the same text again changes nothing. A rule
is enabled or disabled as a whole. Rules whose actions deploy, promote or roll back need the
``deploy`` permission to be saved or enabled; everything else needs ``write``. See
docs/automations.md.
"""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from shipyard.automation import conditions, rules
from shipyard.automation.entities import Event
from shipyard.automation.rule_entities import AutomationFiring, AutomationRule
from shipyard.core.context import current_actor
from shipyard.core.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.core.names import check_name
from shipyard.core.time import now_ms
from shipyard.store import schema as t

MAX_FIRINGS = 1000
STATUSES = ("running", "succeeded", "failed")


class AutomationService:
    def __init__(self, services: Any):
        # the assembled Services: actions reach every sibling service through it
        self.services = services
        self.db = services.db

    @cached_property
    def engine(self) -> Any:
        from shipyard.automation.engine import Engine

        return Engine(self)

    # -- rules --------------------------------------------------------------------------------------

    def save_automation(self, text: str, name: str | None = None, enabled: bool | None = None) -> AutomationRule:
        """Save a rule's YAML: a new rule (enabled unless ``enabled=False``) or version N+1 of it."""
        spec = rules.parse_rule(text, name)
        name = spec["name"]
        if rules.deploys(spec):
            self.services.access.require("deploy")
        if enabled is not None and not isinstance(enabled, bool):
            raise InvalidInput("enabled must be true or false", field="enabled")
        digest = rules.digest(text)
        now = now_ms()
        with self.db.write() as tx:
            row = tx.conn.execute(sa.select(t.automations).where(t.automations.c.name == name)).first()
            changed = row is None or self._version_row(tx.conn, name, row.version).digest != digest
            unchanged = not changed and (enabled is None or enabled == row.enabled)
            version = 1 if row is None else row.version + (1 if changed else 0)
            if changed and not unchanged:
                tx.conn.execute(
                    t.automation_versions.insert().values(
                        name=name, version=version, text=text, spec=spec, digest=digest, created_by=tx.actor,
                        created_at=now,
                    )
                )  # fmt: skip
            on = True if row is None and enabled is None else (row.enabled if enabled is None else enabled)
            if unchanged:
                pass  # the same text again: nothing to store
            elif row is None:
                tx.conn.execute(
                    t.automations.insert().values(
                        name=name, version=version, enabled=on, created_by=tx.actor, created_at=now, updated_at=now
                    )
                )
            else:
                tx.conn.execute(
                    t.automations.update()
                    .where(t.automations.c.name == name)
                    .values(version=version, enabled=on, updated_at=now)
                )
            if not unchanged:
                tx.journal(
                    "automation.saved",
                    "automation",
                    name,
                    {"version": version, "enabled": on, "on": spec["on"], "actions": [a["action"] for a in spec["do"]]},
                )
        self.ensure_subscriber()  # the engine sees every event from the first rule's save on
        return self.get_automation(name)

    def list_automations(self) -> list[AutomationRule]:
        """Every rule at its current version, by name."""
        a, v = t.automations, t.automation_versions
        query = sa.select(a, v.c.text, v.c.spec, v.c.digest, v.c.created_by.label("version_by")).join(
            v, sa.and_(v.c.name == a.c.name, v.c.version == a.c.version)
        )
        with self.db.read() as conn:
            return [_rule(r, r) for r in conn.execute(query.order_by(a.c.name))]

    def get_automation(self, name: str, version: int | None = None) -> AutomationRule:
        """A rule at its current version, or at ``version``."""
        check_name(name, "rule name")
        with self.db.read() as conn:
            row = self._row(conn, name)
            ver = self._version_row(conn, name, row.version if version is None else _number(version, "version"))
        return _rule(row, ver)

    def list_automation_versions(self, name: str) -> list[AutomationRule]:
        """Every stored version of a rule, newest first."""
        with self.db.read() as conn:
            row = self._row(conn, name)
            versions = conn.execute(
                sa.select(t.automation_versions)
                .where(t.automation_versions.c.name == name)
                .order_by(t.automation_versions.c.version.desc())
            ).all()
        return [_rule(row, v) for v in versions]

    def set_automation_enabled(self, name: str, enabled: bool) -> AutomationRule:
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled must be true or false", field="enabled")
        rule = self.get_automation(name)
        if enabled and rules.deploys({"do": rule.actions}):
            self.services.access.require("deploy")
        with self.db.write() as tx:
            row = self._row(tx.conn, name)
            if row.enabled != enabled:
                tx.conn.execute(
                    t.automations.update()
                    .where(t.automations.c.name == name)
                    .values(enabled=enabled, updated_at=now_ms())
                )
                tx.journal(
                    "automation.enabled" if enabled else "automation.disabled",
                    "automation",
                    name,
                    {"version": row.version},
                )
        return self.get_automation(name)

    def delete_automation(self, name: str) -> None:
        """Delete a rule with its versions (its firings stay: they are history)."""
        with self.db.write() as tx:
            row = self._row(tx.conn, name)
            tx.conn.execute(t.automation_versions.delete().where(t.automation_versions.c.name == name))
            tx.conn.execute(t.automations.delete().where(t.automations.c.name == name))
            tx.journal("automation.deleted", "automation", name, {"version": row.version})

    # -- firings ------------------------------------------------------------------------------------

    def list_automation_firings(
        self,
        rule: str | None = None,
        status: str | None = None,
        seq: int | None = None,
        limit: int = 100,
        after_id: int | None = None,
    ) -> list[AutomationFiring]:
        """Firings, newest first: each action of each rule fired by an event, with its outcome."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_FIRINGS:
            raise InvalidInput(f"limit must be between 1 and {MAX_FIRINGS}", field="limit")
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        f = t.automation_firings
        query = sa.select(f).order_by(f.c.id.desc()).limit(limit)
        if rule is not None:
            query = query.where(f.c.rule == rule)
        if status is not None:
            query = query.where(f.c.status == status)
        if seq is not None:
            query = query.where(f.c.seq == _number(seq, "seq"))
        if after_id is not None:
            query = query.where(f.c.id > after_id)
        with self.db.read() as conn:
            return [AutomationFiring(**r._mapping) for r in conn.execute(query)]

    def run_automations(self, limit: int = 100) -> dict[str, Any]:
        """One in-process round of the engine (``shipyard automations run --once`` against a server)."""
        from shipyard.automation.consumer import Consumer
        from shipyard.automation.engine import SUBSCRIBER

        self.ensure_subscriber()
        since = self.last_firing_id()
        consumer = Consumer(self.services.events, SUBSCRIBER, self.engine.handle, batch=limit)
        handled = 0
        while (n := consumer.run_once()) and handled < 10 * limit:
            handled += n
        fired = self.list_automation_firings(after_id=since, limit=MAX_FIRINGS)
        return {"events": handled, "firings": [f.model_dump() for f in fired]}

    # -- recipes ------------------------------------------------------------------------------------

    def install_recipe(
        self,
        model: str,
        endpoint: str,
        pipeline: str,
        recipe: str = "closed-loop",
        strategy: str = "canary",
        dataset: str | None = None,
        label_column: str = "target",
        monitor: str | None = None,
        params: dict[str, Any] | None = None,
        window_param: str | None = "dataset",
        metric: str | None = None,
        tolerance: float = 0.0,
        deploy_options: dict[str, Any] | None = None,
        notify_url: str | None = None,
        prefix: str = "closed-loop",
    ) -> list[AutomationRule]:
        """Write a built-in rule set (``closed-loop``; see recipes.py) and return its rules."""
        from shipyard.automation import recipes

        texts = recipes.render(
            recipe,
            model=model,
            endpoint=endpoint,
            pipeline=pipeline,
            strategy=strategy,
            dataset=dataset,
            label_column=label_column,
            monitor=monitor,
            params=params,
            window_param=window_param,
            metric=metric,
            tolerance=tolerance,
            deploy_options=deploy_options,
            notify_url=notify_url,
            prefix=prefix,
        )
        return [self.save_automation(text) for text in texts]

    # -- the engine's store side ----------------------------------------------------------------------

    def ensure_subscriber(self) -> None:
        """The engine's subscriber, created at the journal's head the first time (older events never fire)."""
        from shipyard.automation.engine import SUBSCRIBER

        try:
            self.services.events.get_subscriber(SUBSCRIBER)
        except NotFound:
            with contextlib.suppress(AlreadyExists):  # another process created it meanwhile
                self.services.events.create_subscriber(SUBSCRIBER)

    def active_rules(self) -> list[dict[str, Any]]:
        """The enabled rules at their current versions, with the principal their actions act as."""
        a, v = t.automations, t.automation_versions
        query = (
            sa.select(a.c.name, a.c.version, v.c.spec, v.c.created_by)
            .join(v, sa.and_(v.c.name == a.c.name, v.c.version == a.c.version))
            .where(a.c.enabled.is_(True))
            .order_by(a.c.name)
        )
        with self.db.read() as conn:
            return [
                {"name": r.name, "version": r.version, "spec": r.spec, "actor": r.created_by or current_actor()}
                for r in conn.execute(query)
            ]

    def claim(self, rule: dict[str, Any], event: Event, index: int, action: str, depth: int) -> int:
        """Insert the firing row of one action (AlreadyExists when an earlier delivery did)."""
        with self.db.write() as tx:
            result = tx.conn.execute(
                t.automation_firings.insert().values(
                    rule=rule["name"],
                    rule_version=rule["version"],
                    seq=event.seq,
                    event_action=event.action,
                    action_index=index,
                    action=action,
                    status="running",
                    started_at=now_ms(),
                )
            )
            if index == 0:
                tx.journal(
                    "automation.fired",
                    "automation",
                    rule["name"],
                    {
                        "rule": rule["name"],
                        "version": rule["version"],
                        "seq": event.seq,
                        "event": event.action,
                        "entity": f"{event.entity_type}:{event.entity_id}",
                        "depth": depth,
                    },
                )
        return int(result.inserted_primary_key[0])

    def finish(
        self,
        firing_id: int,
        rule: dict[str, Any],
        event: Event,
        index: int,
        action: str,
        depth: int,
        result: dict[str, Any] | None,
        error: str | None,
        started: float,
    ) -> None:
        import json
        import time

        safe = json.loads(json.dumps(result or {}, default=str)) if result is not None else None
        status = "failed" if error else "succeeded"
        with self.db.write() as tx:
            tx.conn.execute(
                t.automation_firings.update()
                .where(t.automation_firings.c.id == firing_id)
                .values(status=status, result=safe, error=error, finished_at=now_ms())
            )
            tx.journal(
                f"automation.action_{status}",
                "automation",
                rule["name"],
                {
                    "rule": rule["name"],
                    "version": rule["version"],
                    "seq": event.seq,
                    "index": index,
                    "action": action,
                    "result": safe,
                    "error": error,
                    "duration_ms": int((time.monotonic() - started) * 1000),
                    "depth": depth,
                },
            )

    def last_firing_id(self) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.automation_firings.c.id), 0))).scalar_one()
            )

    def busy(self, since: int = 0) -> bool:
        """Work in flight since firing ``since``: a firing still running, or a deployment an automation
        started still rolling out (an action left running by a crashed process long ago does not count)."""
        f = t.automation_firings
        with self.db.read() as conn:
            if conn.execute(sa.select(f.c.id).where(f.c.id > since, f.c.status == "running").limit(1)).first():
                return True
            rows = conn.execute(
                sa.select(f.c.result).where(f.c.id > since, f.c.action == "deploy", f.c.status == "succeeded")
            ).all()
        ids = [r.result.get("deployment_id") for r in rows if r.result and r.result.get("deployment_id")]
        return any(self.services.deploy.get_deployment(i).active for i in ids)

    # -- helpers ------------------------------------------------------------------------------------

    def _row(self, conn: sa.Connection, name: str) -> Any:
        row = conn.execute(sa.select(t.automations).where(t.automations.c.name == name)).first()
        if row is None:
            raise NotFound(f"automation rule {name!r} not found", field="name")
        return row

    def _version_row(self, conn: sa.Connection, name: str, version: int) -> Any:
        row = conn.execute(
            sa.select(t.automation_versions).where(
                t.automation_versions.c.name == name, t.automation_versions.c.version == version
            )
        ).first()
        if row is None:
            raise NotFound(f"automation rule {name!r} has no version {version}", field="version")
        return row


def _number(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 2**63:
        raise InvalidInput(f"{field} must be a positive whole number", field=field)
    return value


def _rule(row: Any, ver: Any) -> AutomationRule:
    spec = ver.spec
    return AutomationRule(
        name=row.name,
        version=ver.version,
        latest=row.version,
        enabled=row.enabled,
        description=spec.get("description"),
        on=spec["on"],
        where=spec.get("where"),
        where_text=conditions.describe(spec.get("where")),
        actions=spec["do"],
        text=ver.text,
        digest=ver.digest,
        created_by=getattr(ver, "version_by", None) or ver.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
