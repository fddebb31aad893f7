"""Identifiers: random, URL-safe, sortable enough to read in a log."""

from __future__ import annotations

import uuid


def new_id() -> str:
    return uuid.uuid4().hex
