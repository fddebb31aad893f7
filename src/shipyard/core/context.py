"""Who is acting. Embedded mode acts as the local OS user; the server sets the caller per request."""

from __future__ import annotations

import os
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


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Within the block, in-process service calls act as ``actor`` (tests, the demo, server requests)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
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


# While `shipyard reproduce` re-runs a pipeline, model registrations are logged but not registered.
# An environment variable rather than a context variable, so executor worker processes see it too.
REPRODUCING_ENV = "SHIPYARD_REPRODUCING"


def reproducing() -> bool:
    return os.environ.get(REPRODUCING_ENV) == "1"


@contextmanager
def reproduction() -> Iterator[None]:
    previous = os.environ.get(REPRODUCING_ENV)
    os.environ[REPRODUCING_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(REPRODUCING_ENV, None)
        else:
            os.environ[REPRODUCING_ENV] = previous
