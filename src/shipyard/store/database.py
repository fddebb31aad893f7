"""The unit of work: one database, short transactions, and a journal entry with every change.

``Database.write()`` opens a write transaction and yields a :class:`Tx`. Services perform their
change through ``tx.conn`` and record it with ``tx.journal(...)``; both commit together or not at
all, so the journal is exactly the list of changes that happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shipyard.core.context import current_actor
from shipyard.core.errors import AlreadyExists
from shipyard.core.time import now_ms
from shipyard.store import chain, migrate
from shipyard.store.engine import create_engine
from shipyard.store.schema import journal

# A PostgreSQL transaction-scoped advisory lock serialises journal appends, so sequence numbers
# become visible in commit order and a reader following the journal never skips an entry.
_PG_JOURNAL_LOCK = 0x5_4A_4E_4C


@dataclass
class Tx:
    conn: sa.Connection
    actor: str
    dialect: str
    _journal_locked: bool = False

    def journal(self, action: str, entity_type: str, entity_id: str, payload: dict[str, Any] | None = None) -> int:
        if self.dialect == "postgresql" and not self._journal_locked:
            self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_JOURNAL_LOCK})
            self._journal_locked = True
        # the chain: this entry's hash commits to the last one's (read under the append lock)
        previous = self.conn.execute(sa.select(journal.c.hash).order_by(journal.c.seq.desc()).limit(1)).scalar()
        ts = now_ms()
        stored = _stored(payload)
        result = self.conn.execute(
            journal.insert().values(
                ts=ts,
                actor=self.actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                payload=payload,
                hash=chain.link(previous or chain.GENESIS, ts, self.actor, action, entity_type, entity_id, stored),
            )
        )
        return int(result.inserted_primary_key[0])


def _stored(payload: dict[str, Any] | None) -> Any:
    """The payload as it reads back from the JSON column (tuples become lists, keys strings), so the
    hash computed now is the one a verifier recomputes later."""
    return None if payload is None else json.loads(json.dumps(payload, default=str))


class Database:
    def __init__(self, uri: str, *, auto_migrate: bool = True):
        self.uri = uri
        self.engine: Engine = create_engine(uri)
        self.dialect = self.engine.dialect.name
        if auto_migrate:
            migrate.upgrade(self.engine)

    @contextmanager
    def write(self, actor: str | None = None) -> Iterator[Tx]:
        """A write transaction. A uniqueness violation from a concurrent writer becomes AlreadyExists."""
        try:
            with self.engine.begin() as conn:
                yield Tx(conn=conn, actor=actor or current_actor(), dialect=self.dialect)
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(
                f"a concurrent change conflicts with this one ({_constraint(exc)}); retry", field=_constraint(exc)
            ) from exc

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.engine.connect().execution_options(shipyard_write=False) as conn:
            yield conn
            conn.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


def _constraint(exc: sa.exc.IntegrityError) -> str:
    """The violated constraint's name when the driver reports it (PostgreSQL does), else the message."""
    diag = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    return diag or str(exc.orig).splitlines()[0][:200]
