"""Bring a database to the latest schema, safely when several processes start at once.

The fast path reads the current revision and returns when it is already the head — with plain
SQL and the migration file names, so a process that needs no migration never imports Alembic
(a tenth of a second of every CLI call). Otherwise a
cross-process lock is taken — a PostgreSQL advisory lock, or a file lock beside the SQLite
file — the revision is read again (another process may have migrated meanwhile) and Alembic
upgrades under the lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x5_41_50_59  # arbitrary constant shared by every Shipyard process


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest revision. Revisions are numbered ``NNNN`` in one line, named by their file's prefix
    (a test checks this agrees with Alembic's own view)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(engine: Engine) -> str | None:
    with engine.connect().execution_options(shipyard_write=False) as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


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
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return True
