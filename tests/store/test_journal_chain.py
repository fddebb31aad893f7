"""The journal's hash chain: intact stores verify; an entry edited, removed or slipped in directly in
the database is named by ``verify`` (SDK, CLI); stores from before the chain are chained on upgrade."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli.main import app
from shipyard.store import chain
from shipyard.store.schema import journal


@pytest.fixture(params=["sqlite", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Client:
    store_uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    c = Client(home=tmp_path / "home", store_uri=store_uri)
    for i in range(5):
        c.create_experiment(f"exp-{i}", tags={"i": str(i), "note": "ünïcode ✓"})
    yield c
    c.close()


def _engine(client: Client) -> sa.Engine:
    return client._backend.services.db.engine


def test_an_intact_journal_verifies(client: Client) -> None:
    result = client.verify_journal()
    assert result["ok"] is True and result["checked"] == len(client.read_journal(limit=1000)) >= 5
    entries = client.read_journal(limit=1000)
    assert all(e.hash and len(e.hash) == 64 for e in entries)
    assert result["last_hash"] == entries[-1].hash


def test_an_edited_entry_is_named(client: Client) -> None:
    target = client.read_journal(limit=1000)[2]
    with _engine(client).begin() as conn:
        conn.execute(journal.update().where(journal.c.seq == target.seq).values(actor="mallory"))
    result = client.verify_journal()
    assert result == {**result, "ok": False, "first_bad_seq": target.seq, "problem": "altered"}
    assert result["checked"] == 2


def test_a_removed_entry_is_named(client: Client) -> None:
    entries = client.read_journal(limit=1000)
    with _engine(client).begin() as conn:
        conn.execute(journal.delete().where(journal.c.seq == entries[1].seq))
    result = client.verify_journal()
    assert not result["ok"] and result["problem"] == "removed" and result["first_bad_seq"] == entries[2].seq


def test_an_inserted_entry_is_named(client: Client) -> None:
    entries = client.read_journal(limit=1000)
    forged_seq = entries[-1].seq + 1
    with _engine(client).begin() as conn:
        conn.execute(
            journal.insert().values(
                seq=forged_seq,
                ts=entries[-1].ts,
                actor="mallory",
                action="experiment.created",
                entity_type="experiment",
                entity_id="forged",
                payload=None,
                hash="f" * 64,
            )
        )
        if conn.dialect.name == "postgresql":  # an explicit seq does not move the sequence; the forger would
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('journal', 'seq'), :n)"), {"n": forged_seq})
    client.create_experiment("after-the-forgery")  # an honest entry chained onto the forged one
    result = client.verify_journal()
    assert not result["ok"] and result["first_bad_seq"] == forged_seq and result["problem"] == "altered"


def test_the_cli_exits_1_with_one_line_naming_the_entry(client: Client, tmp_path: Path) -> None:
    if client.settings.store_uri.startswith("postgresql"):
        pytest.skip("the CLI runs on the embedded SQLite home; the chain itself is covered on PostgreSQL above")
    runner = CliRunner()
    home = str(client.settings.home)
    good = runner.invoke(app, ["--home", home, "audit", "verify"])
    assert good.exit_code == 0 and "intact" in good.stdout
    target = client.read_journal(limit=1000)[3]
    with _engine(client).begin() as conn:
        conn.execute(journal.update().where(journal.c.seq == target.seq).values(payload={"i": "9"}))
    bad = runner.invoke(app, ["--home", home, "audit", "verify"])
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert f"seq {target.seq}: altered" in bad.stderr and "Traceback" not in bad.output


def test_a_store_from_before_the_chain_is_chained_on_upgrade(tmp_path: Path) -> None:
    from alembic import command

    from shipyard.store import Database
    from shipyard.store.migrate import alembic_config

    home = tmp_path / "old"
    c = Client(home=home)
    c.create_experiment("before")
    uri = c.settings.store_uri
    c.close()
    db = Database(uri)
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    db.dispose()
    c = Client(home=home)  # opening upgrades, and the upgrade chains the old entries
    try:
        c.create_experiment("after")
        result = c.verify_journal()
        assert result["ok"] and result["checked"] == 2
    finally:
        c.close()


class _Row:
    def __init__(self, seq: int, payload: object, previous: str):
        self.seq, self.ts, self.actor, self.action = seq, 1000 + seq, "me", "thing.done"
        self.entity_type, self.entity_id, self.payload = "thing", str(seq), payload
        self.hash = chain.entry_hash(previous, self)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)), min_size=2, max_size=8),
    st.data(),
)
def test_any_single_edit_is_caught_at_that_entry(payloads: list[dict], data: st.DataObject) -> None:
    rows, previous = [], chain.GENESIS
    for seq, payload in enumerate(payloads, 1):
        rows.append(_Row(seq, payload, previous))
        previous = rows[-1].hash
    assert chain.verify(rows)["ok"]
    victim = data.draw(st.integers(0, len(rows) - 1))
    rows[victim].actor = "mallory"
    result = chain.verify(rows)
    assert not result["ok"] and result["first_bad_seq"] == victim + 1 and result["problem"] == "altered"


def test_the_chain_holds_under_concurrent_writers(client: Client) -> None:
    import threading

    from shipyard import Client as SDK

    errors: list[BaseException] = []

    def write(worker: int) -> None:
        own = SDK(home=client.settings.home, store_uri=client.settings.store_uri)
        try:
            for i in range(10):
                own.create_experiment(f"w{worker}-{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    result = client.verify_journal()
    assert result["ok"] and result["checked"] >= 65
