"""``shipyard events run`` and the server's background loop: deliver every webhook's events.

In-process (the default): each round calls ``deliver_webhooks`` — every webhook reads the journal
after its cursor, sends, and acknowledges. With ``transport="redis"``: each round publishes the
journal into the Redis stream (safe beside other publishers) and each webhook consumes its own
consumer group, so several runners share the work and a crashed runner's pending entries are
claimed by another.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shipyard.automation.entities import Delivery, Event

log = logging.getLogger("shipyard.events")
TRANSPORTS = ("inprocess", "redis")


class WebhookRunner:
    def __init__(
        self,
        events: Any,
        transport: str = "inprocess",
        interval: float = 1.0,
        *,
        redis_url: str | None = None,
        prefix: str | None = None,
        claim_idle_ms: int = 30_000,
    ):
        """``events``: the ``EventService`` (redis needs it in-process) or a Client (in-process transport)."""
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        self.events = events
        self.transport = transport
        self.interval = interval
        self.stop_event = threading.Event()
        self.deliveries: list[Delivery] = []  # of the last round
        self._consumers: dict[str, Any] = {}
        if transport == "redis":
            from shipyard.automation.redis_streams import Publisher, connect

            self.redis = connect(redis_url)
            self.prefix = prefix
            self.claim_idle_ms = claim_idle_ms
            self.publisher = Publisher(events, self.redis, prefix)

    def run_once(self) -> list[Delivery]:
        if self.transport == "inprocess":
            self.deliveries = self.events.deliver_webhooks()
            return self.deliveries
        from shipyard.automation.redis_streams import RedisConsumer

        self.deliveries = []
        self.publisher.publish_all()
        hooks = self.events.list_webhooks()
        for gone in set(self._consumers) - {sub.name for sub in hooks}:  # deleted webhooks: drop their groups
            consumer = self._consumers.pop(gone)
            self.redis.xgroup_destroy(consumer.stream, consumer.group)
        for sub in hooks:
            consumer = self._consumers.get(sub.name)
            if consumer is None:
                consumer = self._consumers[sub.name] = RedisConsumer(
                    self.events,
                    self.redis,
                    sub.name,
                    self._sender(sub.name),
                    prefix=self.prefix,
                    claim_idle_ms=self.claim_idle_ms,
                )
            while consumer.run_once():
                pass
        return self.deliveries

    def _sender(self, name: str) -> Any:
        def handle(event: Event) -> None:
            sub = self.events.get_subscriber(name)
            self.deliveries.append(self.events.deliver_one(sub, self.events._secret(name), event))

        return handle

    def run_forever(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.run_once()
            except Exception as exc:  # keep running; undelivered events stay after the cursor
                log.warning("webhook delivery failed: %s", exc)
            self.stop_event.wait(self.interval)

    def start(self) -> WebhookRunner:
        threading.Thread(target=self.run_forever, name="shipyard-events", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
