"""Who is acting. Embedded mode acts as the local OS user; the server sets the caller per request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from shipyard.core.settings import default_actor

_actor: ContextVar[str | None] = ContextVar("shipyard_actor", default=None)


def current_actor() -> str:
    return _actor.get() or default_actor()


def set_actor(actor: str | None):
    return _actor.set(actor)


def reset_actor(token) -> None:
    _actor.reset(token)


# The lineage consumers in effect: (consumer_type, consumer_id) pairs, e.g. ("step_run", id) and
# ("pipeline_run", id) while a pipeline step runs. Dataset loads are recorded against each of them.
_consumers: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("shipyard_consumers", default=())


def current_consumers() -> tuple[tuple[str, str], ...]:
    return _consumers.get()


@contextmanager
def consuming(*consumers: tuple[str, str]) -> Iterator[None]:
    """Within the block, dataset loads are also recorded as inputs of ``consumers``."""
    token = _consumers.set(_consumers.get() + tuple(consumers))
    try:
        yield
    finally:
        _consumers.reset(token)
