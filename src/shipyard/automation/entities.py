"""What the events API returns: events, subscribers, dead letters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Event(BaseModel):
    """A journal entry delivered as an event; ``seq`` is its identity (handlers are idempotent by it)."""

    seq: int
    ts: int
    actor: str
    action: str
    entity_type: str
    entity_id: str
    payload: dict[str, Any] | None = None


class EventBatch(BaseModel):
    """The next events of a subscriber and how far the journal was scanned: acknowledging ``scanned_to``
    after handling ``events`` also skips the entries the filter left out."""

    subscriber: str
    events: list[Event]
    scanned_to: int


class Subscriber(BaseModel):
    name: str
    kind: str  # handler | webhook
    actions: list[str] = Field(default_factory=list)
    entity_types: list[str] = Field(default_factory=list)
    cursor: int
    url: str | None = None
    # the signing secret is shown once, when the webhook is created, and never read back
    secret: str | None = None
    max_attempts: int
    created_by: str | None = None
    created_at: int
    updated_at: int


class DeadLetter(BaseModel):
    id: int
    subscriber: str
    seq: int
    event: dict[str, Any]
    error: str
    attempts: int
    created_at: int


class Delivery(BaseModel):
    """One webhook delivery (or replay): where, which event, how it went."""

    subscriber: str
    seq: int
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    dead_letter_id: int | None = None
