"""Migrations run automatically and safely when several processes open a new or old database at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import sqlalchemy as sa

from shipyard.store import Database
from shipyard.store.migrate import alembic_config, current_revision, head_revision

PROCESSES = 6


def _open(uri: str, barrier, queue) -> None:
    try:
        barrier.wait(60)
        db = Database(uri)
        with db.write("migration-test") as tx:
            tx.journal("test.opened", "process", str(multiprocessing.current_process().pid))
        db.dispose()
        queue.put("ok")
    except BaseException as exc:
        queue.put(f"{type(exc).__name__}: {exc}")


def _open_concurrently(uri: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(uri, barrier, queue)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert results == ["ok"] * PROCESSES
    db = Database(uri)
    assert current_revision(db.engine) == head_revision()
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM journal")).scalar() == PROCESSES
    db.dispose()


def test_concurrent_start_on_new_sqlite(tmp_path: Path) -> None:
    _open_concurrently(f"sqlite:///{tmp_path / 'new.db'}")


def test_concurrent_start_on_new_postgres(fresh_pg_uri: str) -> None:
    _open_concurrently(fresh_pg_uri)


def test_concurrent_start_on_old_database(tmp_path: Path) -> None:
    """A database at an older revision (here: base, after downgrading) is upgraded exactly once."""
    from alembic import command

    uri = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(uri)
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert current_revision(db.engine) is None
    db.dispose()
    _open_concurrently(uri)


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()


def test_fast_head_revision_agrees_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    from shipyard.store.migrate import alembic_config, head_revision

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head_revision()]  # one line of history, named by file prefixes
