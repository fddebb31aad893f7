"""``EventService``: subscribers with durable cursors over the journal, webhooks and dead letters.

A subscriber's ``cursor`` is the last journal seq it acknowledged. ``poll_events`` returns the next
matching events after it; ``ack_events`` moves it forward — only after the handler returned, so a
subscriber that crashes between the two sees the same events again (at least once, never lost).
Webhooks are subscribers whose handler is an HTTP POST (``deliver_webhooks``); what they cannot
deliver lands in the dead-letter list, which ``replay_dead_letters`` re-sends.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa

from shipyard.automation import webhooks
from shipyard.automation.entities import DeadLetter, Delivery, Event, EventBatch, Subscriber
from shipyard.automation.filters import check_filter, where
from shipyard.core.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.core.names import check_name
from shipyard.core.time import now_ms
from shipyard.store import schema as t
from shipyard.store.database import Database

MAX_POLL = 1000
MAX_ATTEMPTS = 20
DEFAULT_ATTEMPTS = 5


class EventService:
    def __init__(self, db: Database):
        self.db = db

    # -- subscribers -------------------------------------------------------------------------------

    def create_subscriber(
        self,
        name: str,
        actions: list[str] | None = None,
        entity_types: list[str] | None = None,
        after: int | None = None,
    ) -> Subscriber:
        """Register a subscriber; it receives events with ``seq > after`` (default: only new ones)."""
        return self._create(name, "handler", actions, entity_types, after)

    def create_webhook(
        self,
        name: str,
        url: str,
        secret: str | None = None,
        actions: list[str] | None = None,
        entity_types: list[str] | None = None,
        after: int | None = None,
        max_attempts: int = DEFAULT_ATTEMPTS,
    ) -> Subscriber:
        """Register a webhook; without ``secret`` one is generated. The secret is returned only here."""
        if not _valid_url(url):
            raise InvalidInput("url must be an http(s) URL with a host", field="url")
        if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 200):
            raise InvalidInput("secret must be 16 to 200 characters", field="secret")
        if not isinstance(max_attempts, int) or not 1 <= max_attempts <= MAX_ATTEMPTS:
            raise InvalidInput(f"max_attempts must be between 1 and {MAX_ATTEMPTS}", field="max_attempts")
        secret = secret or secrets.token_urlsafe(32)
        created = self._create(
            name, "webhook", actions, entity_types, after, url=url, secret=secret, max_attempts=max_attempts
        )
        return created.model_copy(update={"secret": secret})

    def _create(
        self,
        name: str,
        kind: str,
        actions: list[str] | None,
        entity_types: list[str] | None,
        after: int | None,
        **extra: Any,
    ) -> Subscriber:
        check_name(name, "subscriber name")
        actions = check_filter(actions, "actions")
        entity_types = check_filter(entity_types, "entity_types")
        if after is not None:
            _check_seq(after, "after")
        now = now_ms()
        with self.db.write() as tx:
            if tx.conn.execute(sa.select(t.event_subscribers.c.name).where(t.event_subscribers.c.name == name)).first():
                raise AlreadyExists(f"subscriber {name!r} already exists", field="name")
            start_at_head = after is None
            if after is None:
                after = int(tx.conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.journal.c.seq), 0))).scalar_one())
            values = {
                "name": name,
                "kind": kind,
                "actions": actions,
                "entity_types": entity_types,
                "cursor": after,
                "url": extra.get("url"),
                "secret": extra.get("secret"),
                "max_attempts": extra.get("max_attempts", DEFAULT_ATTEMPTS),
                "created_by": tx.actor,
                "created_at": now,
                "updated_at": now,
            }
            tx.conn.execute(t.event_subscribers.insert().values(**values))
            summary = {k: values[k] for k in ("kind", "actions", "entity_types", "cursor", "url")}
            seq = tx.journal(f"{kind if kind == 'webhook' else 'subscriber'}.created", kind, name, {"after": summary})
            if start_at_head:  # new events only: those after this subscriber's own creation
                tx.conn.execute(
                    t.event_subscribers.update().where(t.event_subscribers.c.name == name).values(cursor=seq)
                )
        return self.get_subscriber(name)

    def list_subscribers(self, kind: str | None = None) -> list[Subscriber]:
        query = sa.select(t.event_subscribers).order_by(t.event_subscribers.c.name)
        if kind:
            query = query.where(t.event_subscribers.c.kind == kind)
        with self.db.read() as conn:
            return [_subscriber(row) for row in conn.execute(query)]

    def list_webhooks(self) -> list[Subscriber]:
        return self.list_subscribers(kind="webhook")

    def get_subscriber(self, name: str) -> Subscriber:
        with self.db.read() as conn:
            return _subscriber(self._row(conn, name))

    def delete_subscriber(self, name: str) -> None:
        """Delete a subscriber (or webhook) with its cursor, processed marks and dead letters."""
        with self.db.write() as tx:
            row = self._row(tx.conn, name)
            tx.conn.execute(t.event_subscribers.delete().where(t.event_subscribers.c.name == name))
            tx.conn.execute(t.event_processed.delete().where(t.event_processed.c.subscriber == name))
            tx.conn.execute(t.event_dead_letters.delete().where(t.event_dead_letters.c.subscriber == name))
            kind = "webhook" if row.kind == "webhook" else "subscriber"
            tx.journal(f"{kind}.deleted", row.kind, name, {"before": {"cursor": row.cursor, "url": row.url}})

    def delete_webhook(self, name: str) -> None:
        if self.get_subscriber(name).kind != "webhook":
            raise NotFound(f"webhook {name!r} not found", field="name")
        self.delete_subscriber(name)

    # -- reading and acknowledging -----------------------------------------------------------------

    def read_events(
        self,
        after: int = 0,
        limit: int = 100,
        actions: list[str] | None = None,
        entity_types: list[str] | None = None,
    ) -> list[Event]:
        """Events with ``seq > after`` in order, filtered like a subscriber."""
        _check_seq(after, "after")
        actions, entity_types = check_filter(actions, "actions"), check_filter(entity_types, "entity_types")
        return self._scan(after, _limit(limit), actions, entity_types)[0]

    def poll_events(self, name: str, limit: int = 100) -> EventBatch:
        """A subscriber's next events after its cursor (the cursor does not move: see ``ack_events``)."""
        sub = self.get_subscriber(name)
        events, scanned_to = self._scan(sub.cursor, _limit(limit), sub.actions, sub.entity_types)
        return EventBatch(subscriber=name, events=events, scanned_to=scanned_to)

    def ack_events(self, name: str, seq: int) -> Subscriber:
        """Acknowledge everything up to ``seq``: the cursor only moves forward (late or repeated acks are no-ops)."""
        _check_seq(seq, "seq")
        with self.db.write() as tx:
            self._row(tx.conn, name)
            tx.conn.execute(
                t.event_subscribers.update()
                .where(t.event_subscribers.c.name == name, t.event_subscribers.c.cursor < seq)
                .values(cursor=seq, updated_at=now_ms())
            )
        return self.get_subscriber(name)

    def mark_processed(self, name: str, seq: int) -> bool:
        """Record that subscriber ``name`` processed event ``seq``: True the first time, False after.

        For handlers whose effect must happen once although delivery is at least once: call it in
        the same place as the effect (or before an effect that is itself idempotent)."""
        _check_seq(seq, "seq")
        self.get_subscriber(name)
        try:
            with self.db.write() as tx:
                tx.conn.execute(t.event_processed.insert().values(subscriber=name, seq=seq, processed_at=now_ms()))
        except AlreadyExists:
            return False
        return True

    def _scan(self, after: int, limit: int, actions: list[str], entity_types: list[str]) -> tuple[list[Event], int]:
        j = t.journal
        columns = [j.c.seq, j.c.ts, j.c.actor, j.c.action, j.c.entity_type, j.c.entity_id, j.c.payload]
        with self.db.read() as conn:
            # how far the journal reaches now: the filter may skip entries, and the cursor may skip them too
            head = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(j.c.seq), 0))).scalar_one())
            query = sa.select(*columns).where(j.c.seq > after, j.c.seq <= head, *where(actions, entity_types))
            rows = conn.execute(query.order_by(j.c.seq).limit(limit)).all()
        events = [Event(**row._mapping) for row in rows]
        scanned_to = events[-1].seq if len(events) == limit else max(head, after)
        return events, scanned_to

    # -- webhooks ----------------------------------------------------------------------------------

    def deliver_webhooks(self, name: str | None = None, limit: int = 100) -> list[Delivery]:
        """One round: each webhook (or ``name``) sends its next events in order, advancing its cursor
        after each; an event that fails every attempt goes to the dead letters and the cursor moves on."""
        subs = [self.get_subscriber(name)] if name else self.list_webhooks()
        out: list[Delivery] = []
        for sub in subs:
            if sub.kind != "webhook":
                raise InvalidInput(f"{sub.name!r} is not a webhook", field="name")
            secret = self._secret(sub.name)
            batch = self.poll_events(sub.name, limit)
            for event in batch.events:
                out.append(self.deliver_one(sub, secret, event))
                self.ack_events(sub.name, event.seq)
            if batch.scanned_to > sub.cursor:
                self.ack_events(sub.name, batch.scanned_to)
        return out

    def deliver_one(self, sub: Subscriber, secret: str, event: Event) -> Delivery:
        """Send one event to a webhook; after the last failed attempt, store it as a dead letter."""
        outcome = webhooks.send(sub.url or "", secret, event.model_dump(), sub.max_attempts)
        delivery = Delivery(
            subscriber=sub.name,
            seq=event.seq,
            ok=outcome["ok"],
            attempts=outcome["attempts"],
            status=outcome.get("status", outcome.get("last_status")),
            error=outcome.get("error"),
        )
        if not delivery.ok:
            with self.db.write() as tx:
                result = tx.conn.execute(
                    t.event_dead_letters.insert().values(
                        subscriber=sub.name,
                        seq=event.seq,
                        event=event.model_dump(),
                        error=delivery.error or "failed",
                        attempts=delivery.attempts,
                        created_at=now_ms(),
                    )
                )
            delivery.dead_letter_id = int(result.inserted_primary_key[0])
        return delivery

    def list_dead_letters(self, subscriber: str | None = None, limit: int = 100) -> list[DeadLetter]:
        query = sa.select(t.event_dead_letters).order_by(t.event_dead_letters.c.id).limit(_limit(limit))
        if subscriber:
            query = query.where(t.event_dead_letters.c.subscriber == subscriber)
        with self.db.read() as conn:
            return [DeadLetter(**row._mapping) for row in conn.execute(query)]

    def replay_dead_letters(self, subscriber: str | None = None, ids: list[int] | None = None) -> list[Delivery]:
        """Re-send dead letters (all, one webhook's, or ``ids``); each one delivered is removed, the others
        stay (with the new error and attempt count)."""
        query = sa.select(t.event_dead_letters).order_by(t.event_dead_letters.c.id)
        if subscriber:
            query = query.where(t.event_dead_letters.c.subscriber == subscriber)
        if ids:
            if not all(isinstance(i, int) and 0 <= i < 2**63 for i in ids):
                raise InvalidInput("ids must be dead-letter ids", field="ids")
            query = query.where(t.event_dead_letters.c.id.in_(ids))
        with self.db.read() as conn:
            letters = [DeadLetter(**row._mapping) for row in conn.execute(query)]
        out = []
        for letter in letters:
            sub = self.get_subscriber(letter.subscriber)
            outcome = webhooks.send(sub.url or "", self._secret(sub.name), letter.event, sub.max_attempts)
            status = outcome.get("status", outcome.get("last_status"))
            with self.db.write() as tx:
                if outcome["ok"]:
                    tx.conn.execute(t.event_dead_letters.delete().where(t.event_dead_letters.c.id == letter.id))
                    tx.journal("webhook.replayed", "webhook", sub.name, {"after": {"seq": letter.seq}})
                else:
                    tx.conn.execute(
                        t.event_dead_letters.update()
                        .where(t.event_dead_letters.c.id == letter.id)
                        .values(error=outcome.get("error") or "failed", attempts=letter.attempts + outcome["attempts"])
                    )
            out.append(
                Delivery(
                    subscriber=sub.name,
                    seq=letter.seq,
                    ok=outcome["ok"],
                    attempts=outcome["attempts"],
                    status=status,
                    error=outcome.get("error"),
                    dead_letter_id=None if outcome["ok"] else letter.id,
                )
            )
        return out

    # -- helpers -----------------------------------------------------------------------------------

    def _secret(self, name: str) -> str:
        with self.db.read() as conn:
            return self._row(conn, name).secret or ""

    def _row(self, conn: sa.Connection, name: str) -> Any:
        row = conn.execute(sa.select(t.event_subscribers).where(t.event_subscribers.c.name == name)).first()
        if row is None:
            raise NotFound(f"subscriber {name!r} not found", field="name")
        return row


def _valid_url(url: object) -> bool:
    import httpx

    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2000:
        return False
    try:
        return bool(httpx.URL(url).host)
    except (httpx.InvalidURL, ValueError):
        return False


def _check_seq(seq: int, field: str) -> None:
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
        raise InvalidInput(f"{field} must be a sequence number ≥ 0", field=field)


def _limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_POLL:
        raise InvalidInput(f"limit must be between 1 and {MAX_POLL}", field="limit")
    return limit


def _subscriber(row: Any) -> Subscriber:
    values = dict(row._mapping)
    values["secret"] = None
    return Subscriber(**values)
