"""Signed journal checkpoints: an outside party keeps them and later proves the journal was only appended
to — including against a forger who rewrote the whole chain consistently, which the chain alone cannot
catch; offline from a JSON Lines export, and through the SDK on every backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli.main import app
from shipyard.core.errors import InvalidInput
from shipyard.governance import signing
from shipyard.store import chain
from shipyard.store import schema as t
from tests.governance.test_signing import engine


def _changes(client: Client, prefix: str, n: int = 3) -> None:
    for i in range(n):
        client.create_experiment(f"{prefix}-{i}")


def _rewrite_from(conn: sa.Connection, seq: int, actor: str) -> None:
    """Edit the entry at ``seq`` and recompute every later hash: a chain that verifies, but is not the one signed."""
    conn.execute(t.journal.update().where(t.journal.c.seq == seq).values(actor=actor))
    previous = chain.GENESIS
    for row in conn.execute(sa.select(t.journal).order_by(t.journal.c.seq)).all():
        new = chain.entry_hash(previous, row)
        if new != row.hash:
            conn.execute(t.journal.update().where(t.journal.c.seq == row.seq).values(hash=new))
        previous = new


def test_checkpoints_prove_the_journal_was_only_appended_to(client: Client) -> None:
    _changes(client, "before")
    first = client.create_checkpoint()
    assert first.seq == client.last_journal_seq() and first.hash == client.read_journal(after=first.seq - 1)[0].hash
    assert client.create_checkpoint() == first  # the head did not move: the same checkpoint
    assert first.key_id == client.server_public_key().key_id
    assert signing.verify(first.public_key, signing.checkpoint_message(first.seq, first.hash), first.signature)
    _changes(client, "after")
    second = client.create_checkpoint()
    kept = [cp.model_dump() for cp in client.export_checkpoints()]
    assert [c["seq"] for c in kept] == [first.seq, second.seq]
    assert set(kept[0]) == {"seq", "hash", "key_id", "public_key", "signature", "created_at"}
    _changes(client, "later")
    result = client.verify_checkpoints(kept)
    assert result["ok"] and result["checked"] == 2 and result["last_seq"] == client.last_journal_seq()
    assert client.verify_checkpoints()["ok"]  # the store's own checkpoints
    assert [c.seq for c in client.export_checkpoints(after=first.seq)] == [second.seq]


def test_a_consistently_rewritten_history_fails_the_checkpoint(client: Client) -> None:
    _changes(client, "before")
    kept = [client.create_checkpoint().model_dump()]
    _changes(client, "after")
    with engine(client).begin() as conn:
        _rewrite_from(conn, 2, "mallory")
    assert client.verify_journal()["ok"]  # the chain alone cannot tell
    result = client.verify_checkpoints(kept)
    assert not result["ok"] and result["first_bad_checkpoint"] == kept[0]["seq"]
    assert "history before it was rewritten" in result["problem"]


def test_an_edited_or_truncated_journal_names_the_first_failing_checkpoint(client: Client) -> None:
    _changes(client, "a")
    one = client.create_checkpoint().model_dump()
    _changes(client, "b")
    two = client.create_checkpoint().model_dump()
    with engine(client).begin() as conn:  # an edit between the two checkpoints breaks the chain there
        conn.execute(t.journal.update().where(t.journal.c.seq == one["seq"] + 1).values(actor="mallory"))
    result = client.verify_checkpoints([two, one])
    assert not result["ok"] and result["first_bad_checkpoint"] == two["seq"] and result["checked"] == 1
    assert f"breaks at seq {one['seq'] + 1}" in result["problem"]
    with engine(client).begin() as conn:  # and a journal cut back before a checkpoint
        conn.execute(t.journal.delete().where(t.journal.c.seq > one["seq"]))
    result = client.verify_checkpoints([one, two])
    assert not result["ok"] and result["first_bad_checkpoint"] == two["seq"]
    assert f"no entry at seq {two['seq']}" in result["problem"]


def test_a_forged_checkpoint_is_named(client: Client) -> None:
    _changes(client, "a")
    cp = client.create_checkpoint().model_dump()
    forged = {**cp, "hash": "f" * 64}
    result = client.verify_checkpoints([cp, forged | {"seq": cp["seq"] + 0}])
    assert not result["ok"] and "signature does not verify" in result["problem"]
    other = signing.Ed25519PrivateKey.generate()
    resigned = {**cp, "signature": signing.sign(other, signing.checkpoint_message(cp["seq"], cp["hash"]))}
    assert "signature does not verify" in client.verify_checkpoints([resigned])["problem"]
    swapped = {**resigned, "public_key": signing.public_key_b64(other)}
    assert "is not the id of its public key" in client.verify_checkpoints([swapped])["problem"]


@pytest.mark.parametrize(
    ("checkpoints", "field"),
    [
        ([], "checkpoints"),
        ([{"seq": 1}], "checkpoints[0].hash"),
        ([{"seq": "1", "hash": "x", "key_id": "k", "public_key": "p", "signature": "s"}], "checkpoints[0].seq"),
        (["nope"], "checkpoints[0]"),
    ],
)
def test_bad_checkpoints_are_refused_naming_the_field(client: Client, checkpoints: list, field: str) -> None:
    _changes(client, "a", 1)
    with pytest.raises(InvalidInput) as err:
        client.verify_checkpoints(checkpoints)
    # a remote server's request validation names a list item "checkpoints.0"
    assert err.value.field.replace("checkpoints.0", "checkpoints[0]") == field


def test_offline_verification_from_a_journal_export(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    client = Client(home=home)
    runner = CliRunner()
    try:
        _changes(client, "a")
        made = runner.invoke(app, ["--home", home, "--json", "audit", "checkpoint"])
        assert made.exit_code == 0, made.output
        assert json.loads(made.stdout)["seq"] == client.last_journal_seq()
        _changes(client, "b")
        cps, jnl = tmp_path / "checkpoints.json", tmp_path / "journal.jsonl"
        assert runner.invoke(app, ["--home", home, "audit", "export-checkpoints", "-o", str(cps)]).exit_code == 0
        exported = runner.invoke(app, ["--home", home, "audit", "export-journal", "-o", str(jnl)])
        assert exported.exit_code == 0 and f"wrote {client.last_journal_seq()} journal entries" in exported.stdout
    finally:
        client.close()
    # offline: a directory with no store at all
    offline = ["--home", str(tmp_path / "none"), "audit", "verify-checkpoints", "--journal", str(jnl), "-c", str(cps)]
    good = runner.invoke(app, offline)
    assert good.exit_code == 0, good.output
    assert "only appended to" in good.stdout and not (tmp_path / "none").exists()
    lines = jnl.read_text().splitlines()
    entry = json.loads(lines[1])
    lines[1] = json.dumps({**entry, "actor": "mallory"})
    jnl.write_text("\n".join(lines) + "\n")
    bad = runner.invoke(app, offline)
    assert bad.exit_code == 1
    assert "checkpoints FAILED: checkpoint at seq" in bad.stderr and f"breaks at seq {entry['seq']}" in bad.stderr
    assert "Traceback" not in bad.output
    missing = runner.invoke(
        app, ["audit", "verify-checkpoints", "--journal", str(tmp_path / "x.jsonl"), "-c", str(cps)]
    )
    assert missing.exit_code == 1 and "no journal file" in missing.stderr
