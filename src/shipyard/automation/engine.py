"""The automation engine: the ``automations`` event subscriber that fires rules.

For each event, every enabled rule whose ``on`` matches the action and whose ``where`` holds fires:
its actions run in order, each recorded as a firing row keyed by (rule, event seq, action index)
and journaled (``automation.fired`` once, then ``automation.action_succeeded`` or
``automation.action_failed``). The row is inserted — claimed — before the action runs, so an event
delivered again (delivery is at least once) finds the row and does nothing: an action never runs
twice. A rule never fires on the journal entries of its own firings, and automation entries deeper
than ``MAX_DEPTH`` in a chain of rules fire nothing (a guard against rules that trigger each other).

Actions act as the principal who saved the rule's current version: their permission was checked
then (see ``automation_service.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from shipyard.automation import conditions, templates
from shipyard.automation.actions import ACTIONS, ActionFailed
from shipyard.automation.entities import Event
from shipyard.automation.rules import matches_on
from shipyard.core.context import acting_as
from shipyard.core.errors import AlreadyExists, NotFound, ShipyardError

log = logging.getLogger("shipyard.automations")
SUBSCRIBER = "automations"
MAX_DEPTH = 20
TRANSPORTS = ("inprocess", "redis")


def context_of(services: Any, event: Event) -> dict[str, Any]:
    """What a rule can read beyond the event: the entities it names, looked up once per event."""
    ctx: dict[str, Any] = {}
    payload = event.payload or {}
    try:
        if event.entity_type == "alert":
            alert = services.monitoring.get_alert(event.entity_id)
            ctx["alert"] = alert.model_dump(mode="json")
            mon = services.monitoring.get_monitor(alert.monitor)
            ctx["monitor"] = {"name": mon.name, "model": mon.model, "version": mon.version, "endpoint": mon.endpoint}
        elif event.entity_type == "model":
            ctx.update(_model_context(services, event.entity_id, payload))
        elif event.entity_type == "deployment":
            d = services.deploy.get_deployment(event.entity_id)
            ctx["deployment"] = {
                "id": d.id,
                "endpoint": d.endpoint,
                "strategy": d.strategy,
                "status": d.status,
                "outcome": d.outcome,
                "candidate": {"model": d.candidate.model_name, "version": d.candidate.version, "uri": d.candidate.uri},
                "baseline": {"model": d.baseline.model_name, "version": d.baseline.version, "uri": d.baseline.uri},
            }
        elif event.entity_type == "pipeline_run":
            run = services.pipelines.get_pipeline_run(event.entity_id)
            ctx["pipeline_run"] = {"id": run.id, "name": run.name, "status": run.status.value, "params": run.params}
    except ShipyardError as exc:  # the entity is gone: the condition sees the fields as missing
        log.debug("automation context of seq %s: %s", event.seq, exc)
    return ctx


def _model_context(services: Any, model_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    import sqlalchemy as sa

    from shipyard.store import schema as t

    with services.db.read() as conn:
        name = conn.execute(
            sa.select(t.registered_models.c.name).where(t.registered_models.c.id == model_id)
        ).scalar_one_or_none()
    if name is None:
        return {}
    ctx: dict[str, Any] = {"model": {"name": name}}
    version = payload.get("version", (payload.get("after") or {}).get("version"))
    if isinstance(version, int) and not isinstance(version, bool):
        mv = services.registry.get_version(name, version)
        metrics: dict[str, float] = {}
        if mv.source_run_id:
            with contextlib.suppress(NotFound):
                metrics = dict(services.tracking.get_run(mv.source_run_id).metrics)
        ctx["version"] = {
            "version": mv.version,
            "uri": f"models:/{name}/{mv.version}",
            "stage": mv.stage,
            "tags": dict(mv.tags),
            "digest": mv.digest,
            "source_run_id": mv.source_run_id,
            "data_refs": list(mv.data_refs or []),
            "metrics": metrics,
        }
    return ctx


class Engine:
    """Fires rules on events; ``service`` is the :class:`AutomationService`."""

    def __init__(self, service: Any):
        self.service = service
        self.services = service.services

    def handle(self, event: Event) -> int:
        """Fire every matching rule; returns how many fired. Raises only on store failures (the event
        then comes again, and what was already claimed is not repeated)."""
        payload = event.payload or {}
        if event.action.startswith("automation.") and int(payload.get("depth") or 0) >= MAX_DEPTH:
            return 0
        fired = 0
        ctx: dict[str, Any] | None = None
        for rule in self.service.active_rules():
            spec = rule["spec"]
            if not matches_on(spec["on"], event.action):
                continue
            if event.action.startswith("automation.") and payload.get("rule") == rule["name"]:
                continue  # never on its own firings
            if ctx is None and "context" in json.dumps(spec):
                ctx = context_of(self.services, event)
            variables = _variables(event, ctx or {}, rule)
            if not conditions.evaluate(spec.get("where"), lambda path, v=variables: conditions.lookup(v, path)):
                continue
            if self.fire(rule, event, variables):
                fired += 1
        return fired

    def fire(self, rule: dict[str, Any], event: Event, variables: dict[str, Any]) -> bool:
        """Run the rule's actions for ``event``; False when an earlier delivery already fired it."""
        depth = int((event.payload or {}).get("depth") or 0) + 1 if event.action.startswith("automation.") else 1
        results: list[Any] = []
        for index, action in enumerate(rule["spec"]["do"]):
            try:
                firing_id = self.service.claim(rule, event, index, action["action"], depth)
            except AlreadyExists:
                return index > 0
            variables = {**variables, "results": results}
            started = time.monotonic()
            try:
                args = templates.render(action["args"], variables, f"do[{index}].{action['action']}")
                with acting_as(rule["actor"]):
                    result = ACTIONS[action["action"]](self.services, args, event)
            except Exception as exc:  # an action's failure is recorded; the rule's later actions do not run
                partial = exc.result if isinstance(exc, ActionFailed) else {}
                message = exc.message if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, ShipyardError | ActionFailed):
                    log.warning("automation %s: %s failed:\n%s", rule["name"], action["action"], traceback.format_exc())
                self.service.finish(firing_id, rule, event, index, action["action"], depth, partial, message, started)
                return True
            self.service.finish(firing_id, rule, event, index, action["action"], depth, result, None, started)
            results.append(result)
        return True


def _variables(event: Event, ctx: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    data = event.model_dump()
    return {
        **data,
        "event": data,
        "payload": data.get("payload") or {},
        "context": ctx,
        "rule": {"name": rule["name"], "version": rule["version"]},
    }


class AutomationRunner:
    """Feeds the engine from the journal: in-process (a Consumer over the EventService) or through
    Redis Streams (publish the journal, consume the ``automations`` consumer group)."""

    def __init__(
        self,
        services: Any,
        transport: str = "inprocess",
        interval: float = 0.5,
        *,
        redis_url: str | None = None,
        prefix: str | None = None,
        claim_idle_ms: int = 30_000,
    ):
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        self.services = services
        self.transport = transport
        self.interval = interval
        self.engine = services.automations.engine
        self._stop = False
        self._ready = False  # the subscriber exists once a rule was saved; until then there is nothing to do
        if transport == "redis":
            from shipyard.automation.redis_streams import Publisher, RedisConsumer, connect

            self.redis = connect(redis_url)
            self.publisher = Publisher(services.events, self.redis, prefix)
            self.consumer: Any = RedisConsumer(
                services.events, self.redis, SUBSCRIBER, self.engine.handle, prefix=prefix, claim_idle_ms=claim_idle_ms
            )
        else:
            from shipyard.automation.consumer import Consumer

            self.consumer = Consumer(services.events, SUBSCRIBER, self.engine.handle)

    def run_once(self) -> int:
        """Handle what is pending now; returns how many events were handled."""
        if not self._ready:
            try:
                self.services.events.get_subscriber(SUBSCRIBER)
            except NotFound:
                return 0
            self._ready = True
        total = 0
        if self.transport == "redis":
            self.publisher.publish_all()
        while handled := self.consumer.run_once():
            total += handled
            if self.transport == "redis":
                self.publisher.publish_all()  # the actions wrote new entries
        return total

    def run_forever(self) -> None:
        while not self._stop:
            try:
                self.run_once()
            except Exception as exc:  # unacknowledged events come again; claimed actions do not repeat
                log.warning("automations: round failed, retrying: %s", exc)
            time.sleep(self.interval)

    def start(self) -> AutomationRunner:
        import threading

        threading.Thread(target=self.run_forever, name="shipyard-automations", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        if self.transport == "redis":
            self.redis.close()


def run_until_idle(
    target: Any,
    *,
    transport: str = "inprocess",
    timeout: float = 300.0,
    quiet: float = 1.0,
    poll: float = 0.2,
    redis_url: str | None = None,
    prefix: str | None = None,
    on_round: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Run the engine until nothing is left to do: no event pending, no firing running and no
    deployment an automation started still rolling out, for ``quiet`` seconds (or until ``timeout``).

    ``target`` is the :class:`~shipyard.services.Services` or an embedded :class:`shipyard.Client`;
    ``on_round`` is called after every round (to send traffic, approve a review, print progress).
    Returns ``{"events": n, "firings": [...], "timed_out": bool}`` with this call's firings."""
    services = getattr(getattr(target, "_backend", None), "services", target)
    if not hasattr(services, "automations"):
        raise ValueError("run_until_idle needs the Services or an embedded Client (it runs beside the store)")
    runner = AutomationRunner(services, transport, redis_url=redis_url, prefix=prefix)
    since = services.automations.last_firing_id()
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    events = 0
    try:
        while time.monotonic() < deadline:
            handled = runner.run_once()
            events += handled
            if on_round is not None:
                on_round()
            busy = handled > 0 or services.automations.busy(since)
            if busy:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet:
                break
            time.sleep(poll)
        timed_out = time.monotonic() >= deadline
    finally:
        runner.close()
    firings = services.automations.list_automation_firings(after_id=since, limit=1000)
    return {"events": events, "firings": firings, "timed_out": timed_out}
