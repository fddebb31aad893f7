"""Journal entries as the service, API and SDK return them; no database imports, so remote clients stay light."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class JournalEntry(BaseModel):
    seq: int
    ts: int
    actor: str
    action: str
    entity_type: str
    entity_id: str
    payload: dict[str, Any] | None = None
    hash: str | None = None  # the hash chain: commits to this entry and every one before it
