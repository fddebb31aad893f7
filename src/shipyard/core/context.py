"""Who is acting. Embedded mode acts as the local OS user; the server sets the caller per request."""

from __future__ import annotations

from contextvars import ContextVar

from shipyard.core.settings import default_actor

_actor: ContextVar[str | None] = ContextVar("shipyard_actor", default=None)


def current_actor() -> str:
    return _actor.get() or default_actor()


def set_actor(actor: str | None):
    return _actor.set(actor)


def reset_actor(token) -> None:
    _actor.reset(token)
