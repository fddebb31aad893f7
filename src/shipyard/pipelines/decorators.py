"""``@step`` and ``@pipeline``."""

from __future__ import annotations

from typing import Any


def step(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("pipelines are being built")


def pipeline(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("pipelines are being built")
