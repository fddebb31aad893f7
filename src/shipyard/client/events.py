"""The SDK's event calls, mixed into :class:`shipyard.Client` (see docs/events.md)."""

from __future__ import annotations

from typing import Any

from shipyard.automation.entities import DeadLetter, Delivery, Event, EventBatch, Subscriber


class EventsMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def read_events(
        self,
        after: int = 0,
        limit: int = 100,
        *,
        actions: list[str] | None = None,
        entity_types: list[str] | None = None,
    ) -> list[Event]:
        """Journal entries as events with ``seq > after``; ``actions`` match exactly or as prefixes ending in '.'."""
        return self._call("events", "read_events", after=after, limit=limit, actions=actions, entity_types=entity_types)

    def create_subscriber(
        self,
        name: str,
        *,
        actions: list[str] | None = None,
        entity_types: list[str] | None = None,
        after: int | None = None,
    ) -> Subscriber:
        """A subscriber with a durable cursor, starting after ``after`` (default: the journal's head)."""
        return self._call(
            "events", "create_subscriber", name=name, actions=actions, entity_types=entity_types, after=after
        )

    def list_subscribers(self, kind: str | None = None) -> list[Subscriber]:
        return self._call("events", "list_subscribers", kind=kind)

    def get_subscriber(self, name: str) -> Subscriber:
        return self._call("events", "get_subscriber", name=name)

    def delete_subscriber(self, name: str) -> None:
        self._call("events", "delete_subscriber", name=name)

    def poll_events(self, name: str, limit: int = 100) -> EventBatch:
        return self._call("events", "poll_events", name=name, limit=limit)

    def ack_events(self, name: str, seq: int) -> Subscriber:
        return self._call("events", "ack_events", name=name, seq=seq)

    def mark_processed(self, name: str, seq: int) -> bool:
        return self._call("events", "mark_processed", name=name, seq=seq)

    def subscribe(self, name: str, handler: Any, *, batch: int = 100, interval: float = 0.2) -> Any:
        """A :class:`~shipyard.automation.consumer.Consumer` of subscriber ``name`` calling ``handler(event)``:
        ``.run_once()`` handles what is there, ``.start()`` runs it in a thread until ``.stop()``."""
        from shipyard.automation.consumer import Consumer

        return Consumer(self, name, handler, batch=batch, interval=interval)  # type: ignore[arg-type]

    def create_webhook(
        self,
        name: str,
        url: str,
        *,
        secret: str | None = None,
        actions: list[str] | None = None,
        entity_types: list[str] | None = None,
        after: int | None = None,
        max_attempts: int = 5,
    ) -> Subscriber:
        """A webhook: matching events POSTed as signed JSON. The returned ``secret`` is shown only now."""
        return self._call(
            "events",
            "create_webhook",
            name=name,
            url=url,
            secret=secret,
            actions=actions,
            entity_types=entity_types,
            after=after,
            max_attempts=max_attempts,
        )

    def list_webhooks(self) -> list[Subscriber]:
        return self._call("events", "list_webhooks")

    def delete_webhook(self, name: str) -> None:
        self._call("events", "delete_webhook", name=name)

    def deliver_webhooks(self, name: str | None = None, limit: int = 100) -> list[Delivery]:
        """One delivery round (what `shipyard events run --once` does)."""
        return self._call("events", "deliver_webhooks", name=name, limit=limit)

    def list_dead_letters(self, subscriber: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return self._call("events", "list_dead_letters", subscriber=subscriber, limit=limit)

    def replay_dead_letters(self, subscriber: str | None = None, ids: list[int] | None = None) -> list[Delivery]:
        return self._call("events", "replay_dead_letters", subscriber=subscriber, ids=ids)
