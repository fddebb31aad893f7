"""Datasets: content-addressed, immutable, profiled versions with lineage to runs, pipelines and models.

``shipyard.data.load("NAME@3")`` returns the version as pandas (or ``as_="arrow"``) and records it as
an input of the active run and pipeline step.
"""

from __future__ import annotations

from typing import Any


def load(ref: str, **kwargs: Any) -> Any:
    from shipyard.client.fluent import load_dataset

    return load_dataset(ref, **kwargs)


__all__ = ["load"]
