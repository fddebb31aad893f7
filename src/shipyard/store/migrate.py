"""Bring a database to the latest schema, safely when several processes start at once.

The fast path reads the current revision and returns when it is already the head. Otherwise a
cross-process lock is taken — a PostgreSQL advisory lock, or a file lock beside the SQLite
file — the revision is read again (another process may have migrated meanwhile) and Alembic
upgrades under the lock.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x5_41_50_59  # arbitrary constant shared by every Shipyard process


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect().execution_options(shipyard_write=False) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> bool:
    """Migrate to head; returns True when this process ran a migration."""
    head = head_revision()
    if current_revision(engine) == head:
        return False
    if engine.dialect.name == "sqlite":
        lock_path = f"{engine.url.database}.migrate.lock"
        with FileLock(lock_path, timeout=300):
            return _upgrade_locked(engine, head)
    with engine.connect() as lock_conn:
        lock_conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        try:
            return _upgrade_locked(engine, head)
        finally:
            lock_conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
            lock_conn.commit()


def _upgrade_locked(engine: Engine, head: str) -> bool:
    if current_revision(engine) == head:
        return False
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return True
