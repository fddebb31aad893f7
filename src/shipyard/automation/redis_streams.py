"""The Redis Streams transport, for server deployments with several processes.

**Publishing.** ``Publisher.publish_once`` copies journal entries in seq order into one stream
(``{prefix}events``) with ``XADD``, each under the stream id ``<seq>-0``. The publisher's cursor —
the last seq in the stream — is the Redis key ``{prefix}events:published``; one Lua script reads it,
appends only the entries after it and moves it, atomically. So any number of publishers (every
server process runs one) can race: each seq enters the stream exactly once, in order.

**Consuming.** Each subscriber is a consumer group named after it, created at the subscriber's
cursor in the store. ``RedisConsumer.run_once`` first claims entries another consumer read but
never acknowledged for longer than ``claim_idle_ms`` (``XAUTOCLAIM``: that consumer crashed), then
reads new ones (``XREADGROUP``), calls the handler with each matching event and ``XACK``s it only
after the handler returned — at least once, like the in-process transport — and moves the
subscriber's cursor in the store forward for visibility (``shipyard events subscribers``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from typing import Any

from shipyard.automation.consumer import Handler
from shipyard.automation.entities import Event
from shipyard.automation.filters import matches

log = logging.getLogger("shipyard.events")
DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "shipyard:"

# KEYS: stream, cursor key. ARGV: maxlen, then (seq, event JSON) pairs in seq order.
_PUBLISH = """
local cursor = tonumber(redis.call('GET', KEYS[2]) or '0')
local added = 0
for i = 2, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > cursor then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 'event', ARGV[i + 1])
    cursor = seq
    added = added + 1
  end
end
if added > 0 then redis.call('SET', KEYS[2], ARGV[#ARGV - 1]) end
return added
"""


def connect(url: str | None = None) -> Any:
    import redis

    return redis.Redis.from_url(url or os.environ.get("SHIPYARD_REDIS_URL", DEFAULT_URL))


def default_prefix() -> str:
    return os.environ.get("SHIPYARD_REDIS_PREFIX", DEFAULT_PREFIX)


class Publisher:
    """Copies the journal into the stream; ``events`` is anything with ``read_events(after, limit)``."""

    def __init__(self, events: Any, redis: Any, prefix: str | None = None, maxlen: int = 1_000_000, batch: int = 500):
        self.events = events
        self.redis = redis
        self.prefix = default_prefix() if prefix is None else prefix
        self.stream = f"{self.prefix}events"
        self.cursor_key = f"{self.prefix}events:published"
        self.maxlen = maxlen
        self.batch = batch
        self._script = redis.register_script(_PUBLISH)

    def published(self) -> int:
        return int(self.redis.get(self.cursor_key) or 0)

    def publish_once(self) -> int:
        """Append the journal entries after the published cursor (one batch); returns how many this call added."""
        entries = self.events.read_events(after=self.published(), limit=self.batch)
        if not entries:
            return 0
        args: list[Any] = [self.maxlen]
        for event in entries:
            args += [event.seq, event.model_dump_json()]
        return int(self._script(keys=[self.stream, self.cursor_key], args=args))

    def publish_all(self) -> int:
        total = 0
        while added := self.publish_once():
            total += added
        return total


class RedisConsumer:
    """One consumer of a subscriber's consumer group; ``store`` has ``get_subscriber`` and ``ack_events``."""

    def __init__(
        self,
        store: Any,
        redis: Any,
        name: str,
        handler: Handler,
        *,
        prefix: str | None = None,
        consumer: str | None = None,
        batch: int = 100,
        claim_idle_ms: int = 30_000,
    ):
        self.store = store
        self.redis = redis
        self.name = name
        self.handler = handler
        self.stream = f"{default_prefix() if prefix is None else prefix}events"
        self.group = name
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self._filter: tuple[list[str], list[str]] | None = None

    def ensure_group(self) -> None:
        import redis

        sub = self.store.get_subscriber(self.name)
        self._filter = (sub.actions, sub.entity_types)
        try:
            self.redis.xgroup_create(
                self.stream, self.group, id=f"{sub.cursor}-0" if sub.cursor else "0", mkstream=True
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run_once(self, block_ms: int | None = None) -> int:
        """Handle re-claimed then new entries (one batch each); returns how many events were handled.

        Raises what the handler raised; that entry stays pending and is claimed again later."""
        if self._filter is None:
            self.ensure_group()
        _, claimed, *_ = self.redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=self.batch
        )
        handled = self._handle(claimed)
        read = self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=self.batch, block=block_ms)
        for _stream, entries in read or []:
            handled += self._handle(entries)
        return handled

    def _handle(self, entries: list[Any]) -> int:
        assert self._filter is not None
        actions, entity_types = self._filter
        handled = 0
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending: nothing left to deliver
                self.redis.xack(self.stream, self.group, entry_id)
                continue
            event = Event(**json.loads(fields[b"event"]))
            if matches(actions, entity_types, event.action, event.entity_type):
                self.handler(event)
                handled += 1
            self.redis.xack(self.stream, self.group, entry_id)
            try:
                self.store.ack_events(self.name, event.seq)
            except Exception as exc:  # the stream is the truth here; the store's cursor is informational
                log.debug("subscriber %s: cursor not recorded: %s", self.name, exc)
        return handled

    def pending(self) -> int:
        return int(self.redis.xpending(self.stream, self.group)["pending"])
