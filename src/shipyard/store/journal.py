"""Reading the journal: the audit trail and the event stream are the same ordered rows.

Entries are appended by ``Tx.journal`` inside each change's transaction; here they are read back
by sequence number, so a follower resumes exactly after the last entry it saw.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shipyard.core.errors import InvalidInput
from shipyard.store.database import Database
from shipyard.store.entities import JournalEntry
from shipyard.store.schema import journal

MAX_READ = 10_000


class JournalService:
    def __init__(self, db: Database):
        self.db = db

    def read(
        self,
        after: int = 0,
        limit: int = 100,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
    ) -> list[JournalEntry]:
        """Entries with ``seq > after`` in order; ``action`` matches exactly or as a prefix ending in '.'."""
        if not 1 <= limit <= MAX_READ:
            raise InvalidInput(f"limit must be between 1 and {MAX_READ}", field="limit")
        if after < 0:
            raise InvalidInput("after must be a sequence number ≥ 0", field="after")
        query = sa.select(journal).where(journal.c.seq > after).order_by(journal.c.seq).limit(limit)
        if entity_type:
            query = query.where(journal.c.entity_type == entity_type)
        if entity_id:
            query = query.where(journal.c.entity_id == entity_id)
        if action:
            query = query.where(
                journal.c.action.startswith(action) if action.endswith(".") else journal.c.action == action
            )
        with self.db.read() as conn:
            return [JournalEntry(**row._mapping) for row in conn.execute(query)]

    def verify(self) -> dict[str, Any]:
        """Recompute the journal's hash chain from the first entry: ``{"ok": true, "checked": n, ...}``,
        or the first entry that was altered, inserted or removed (see ``store/chain.py``)."""
        from shipyard.store import chain

        with self.db.read() as conn:
            rows = conn.execution_options(yield_per=10_000).execute(sa.select(journal).order_by(journal.c.seq))
            return chain.verify(rows)

    def last_seq(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(journal.c.seq), 0))).scalar_one())
