"""Signed journal checkpoints: the server's signature over (seq, head hash), and their verification.

A checkpoint is kept by an outside party. Later, the journal proves it was only appended to if
(a) each checkpoint's signature verifies, (b) the journal still has that hash at that seq, and
(c) the hash chain verifies from the first entry through every entry after it. :func:`verify`
does all three over any iterable of journal rows — the store's, or a JSON Lines export read
offline — and names the first checkpoint that fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from shipyard.core.errors import InvalidInput
from shipyard.core.time import now_ms
from shipyard.governance import signing
from shipyard.governance.audit_entities import Checkpoint
from shipyard.store import chain
from shipyard.store import schema as t
from shipyard.store.database import Tx

FIELDS = ("seq", "hash", "key_id", "public_key", "signature")
ROW_FIELDS = ("seq", "ts", "actor", "action", "entity_type", "entity_id", "payload", "hash")


def head(conn: sa.Connection) -> tuple[int, str] | None:
    row = conn.execute(sa.select(t.journal.c.seq, t.journal.c.hash).order_by(t.journal.c.seq.desc()).limit(1)).first()
    return None if row is None else (int(row.seq), str(row.hash))


def create(tx: Tx, key: Any, key_id: str) -> int:
    """Sign the journal's current head; a checkpoint that already exists at that seq is kept. Returns the seq."""
    current = head(tx.conn)
    if current is None:
        raise InvalidInput("the journal is empty: nothing to checkpoint", field="journal")
    seq, head_hash = current
    exists = tx.conn.execute(sa.select(t.journal_checkpoints.c.seq).where(t.journal_checkpoints.c.seq == seq)).first()
    if exists is None:
        tx.conn.execute(
            t.journal_checkpoints.insert().values(
                seq=seq,
                hash=head_hash,
                key_id=key_id,
                signature=signing.sign(key, signing.checkpoint_message(seq, head_hash)),
                created_at=now_ms(),
            )
        )
    return seq


def listing(conn: sa.Connection, seq: int | None = None) -> list[Checkpoint]:
    query = (
        sa.select(t.journal_checkpoints, t.signing_keys.c.public_key)
        .join(t.signing_keys, t.signing_keys.c.key_id == t.journal_checkpoints.c.key_id)
        .order_by(t.journal_checkpoints.c.seq)
    )
    if seq is not None:
        query = query.where(t.journal_checkpoints.c.seq == seq)
    return [Checkpoint(**row._mapping) for row in conn.execute(query)]


def parse(checkpoints: Any) -> list[dict[str, Any]]:
    """Validate a list of exported checkpoints, naming the first bad field."""
    if not isinstance(checkpoints, list) or not checkpoints:
        raise InvalidInput("checkpoints must be a non-empty list of exported checkpoints", field="checkpoints")
    parsed = []
    for i, item in enumerate(checkpoints):
        where = f"checkpoints[{i}]"
        if isinstance(item, Checkpoint):
            item = item.model_dump()
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} must be an object with {', '.join(FIELDS)}", field=where)
        for name in FIELDS:
            if name not in item:
                raise InvalidInput(f"{where} has no {name}", field=f"{where}.{name}")
        if isinstance(item["seq"], bool) or not isinstance(item["seq"], int) or item["seq"] < 1:
            raise InvalidInput(f"{where}.seq must be a positive integer", field=f"{where}.seq")
        for name in FIELDS[1:]:
            if not isinstance(item[name], str):
                raise InvalidInput(f"{where}.{name} must be a string", field=f"{where}.{name}")
        parsed.append(item)
    return sorted(parsed, key=lambda c: c["seq"])


def check_signature(cp: dict[str, Any]) -> str | None:
    """Why the checkpoint's own signature does not hold, or None."""
    try:
        key_id = signing.key_id_of(cp["public_key"])
    except InvalidInput:
        return "its public_key is not valid base64"
    if key_id != cp["key_id"]:
        return f"its key_id {cp['key_id']} is not the id of its public key ({key_id})"
    if not signing.verify(cp["public_key"], signing.checkpoint_message(cp["seq"], cp["hash"]), cp["signature"]):
        return "its signature does not verify"
    return None


def verify(checkpoints: Any, rows: Iterable[Any]) -> dict[str, Any]:
    """Check the checkpoints against journal rows (in seq order, from the first entry).

    ``{"ok": true, "checked": n, "entries": m, "last_seq": s}`` or ``ok: false`` with the first failing
    checkpoint's seq (``first_bad_checkpoint``; None when the checkpoints hold but the chain breaks after
    the last of them) and the ``problem``.
    """
    wanted = parse(checkpoints)
    for cp in wanted:
        why = check_signature(cp)
        if why:
            return _failed(cp["seq"], f"checkpoint at seq {cp['seq']}: {why}", 0)
    seen: dict[int, str] = {}
    seqs = {cp["seq"] for cp in wanted}

    def tap(source: Iterable[Any]) -> Iterator[Any]:
        for row in source:
            if row.seq in seqs:
                seen[int(row.seq)] = row.hash
            yield row

    result = chain.verify(tap(rows))
    for checked, cp in enumerate(wanted):
        seq = cp["seq"]
        if not result["ok"] and result["first_bad_seq"] <= seq:
            problem = (
                f"checkpoint at seq {seq}: the journal's chain breaks at seq {result['first_bad_seq']} "
                f"({result['problem']}: {result['detail']})"
            )
            return _failed(seq, problem, checked, result)
        if seq not in seen:
            return _failed(seq, f"checkpoint at seq {seq}: the journal has no entry at seq {seq}", checked, result)
        if seen[seq] != cp["hash"]:
            problem = (
                f"checkpoint at seq {seq}: the journal's entry there has hash {seen[seq]}, the checkpoint "
                f"signed {cp['hash']}: history before it was rewritten"
            )
            return _failed(seq, problem, checked, result)
    if not result["ok"]:
        problem = (
            f"the checkpoints hold, but the journal's chain breaks after them at seq {result['first_bad_seq']} "
            f"({result['problem']}: {result['detail']})"
        )
        return _failed(None, problem, len(wanted), result)
    return {
        "ok": True,
        "checked": len(wanted),
        "entries": result["checked"],
        "last_seq": result["last_seq"],
        "first_bad_checkpoint": None,
        "problem": None,
    }


def _failed(seq: int | None, problem: str, checked: int, result: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "ok": False,
        "checked": checked,
        "entries": (result or {}).get("checked", 0),
        "last_seq": (result or {}).get("last_seq"),
        "first_bad_checkpoint": seq,
        "problem": problem,
    }


def journal_file_rows(path: str) -> Iterator[Any]:
    """The entries of a ``shipyard audit export-journal`` JSON Lines file, as rows :func:`verify` reads."""
    from types import SimpleNamespace

    try:
        lines = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise InvalidInput(f"no journal file at {path}", field="journal") from None
    with lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                yield SimpleNamespace(**{k: entry[k] for k in ROW_FIELDS})
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{path}: line {n} is not a journal entry ({exc})", field="journal") from None


def load_checkpoints_file(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InvalidInput(f"no checkpoints file at {path}", field="checkpoints") from None
    except ValueError as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}", field="checkpoints") from None
