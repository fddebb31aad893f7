"""``DatasetRef``: a dataset version passed to a step, recorded as an input of the step and pipeline run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.core.errors import InvalidInput


@dataclass(frozen=True)
class DatasetRef:
    """``DatasetRef("NAME@3")`` (or ``NAME@alias``): resolved to a version when the step starts."""

    ref: str

    def __post_init__(self) -> None:
        if not isinstance(self.ref, str) or "@" not in self.ref:
            raise InvalidInput(f"dataset reference {self.ref!r} must look like 'NAME@VERSION'", field="ref")

    def load(self, **kwargs: Any) -> Any:
        """The dataset version (pandas by default), recorded as an input of the running step."""
        from shipyard.data import load

        return load(self.ref, **kwargs)

    def __str__(self) -> str:
        return self.ref
