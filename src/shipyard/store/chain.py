"""The journal's hash chain: each entry commits to every entry before it.

``hash(n) = SHA-256(hash(n-1) || canonical JSON of [ts, actor, action, entity_type, entity_id,
payload])``, with 64 zeros before the first entry. ``Tx.journal`` computes it under the journal's
append lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so the chain follows
sequence order. :func:`verify` recomputes it and names the first entry that was altered, inserted
or removed. (Someone able to rewrite the whole chain from a point on can make it consistent again;
signed checkpoints, which an outside party keeps, are what prove the log was only appended to.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

GENESIS = "0" * 64


def canonical(ts: int, actor: str, action: str, entity_type: str, entity_id: str, payload: Any) -> bytes:
    return json.dumps(
        [int(ts), actor, action, entity_type, entity_id, payload],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    ).encode()


def link(previous: str, ts: int, actor: str, action: str, entity_type: str, entity_id: str, payload: Any) -> str:
    digest = hashlib.sha256(previous.encode())
    digest.update(canonical(ts, actor, action, entity_type, entity_id, payload))
    return digest.hexdigest()


def entry_hash(previous: str, row: Any) -> str:
    return link(previous, row.ts, row.actor, row.action, row.entity_type, row.entity_id, row.payload)


def verify(rows: Iterable[Any]) -> dict[str, Any]:
    """Walk the entries in sequence order. The result says ``ok`` and how many entries were checked,
    or names the first broken entry: ``altered`` (its content no longer matches its hash, while the
    next entry still follows it), ``removed`` (it no longer follows the entry before it, across a gap
    in the sequence numbers), or ``inserted`` (it follows nothing: an entry slipped in, or the chain was
    rewritten from here on)."""
    previous = GENESIS
    previous_seq: int | None = None
    pending: tuple[Any, str] | None = None  # an entry whose hash did not match, judged by the next one
    checked = 0
    for row in rows:
        if pending is not None:
            bad, bad_previous = pending
            if row.hash == entry_hash(bad.hash, row):
                return _broken(bad, "altered", checked, "its content no longer matches its hash")
            return _broken(bad, "inserted", checked, "it follows no entry, and the next does not follow it")
        expected = entry_hash(previous, row)
        if row.hash != expected:
            if previous_seq is not None and row.seq > previous_seq + 1:
                gap = f"entries between seq {previous_seq} and {row.seq} are missing"
                return _broken(row, "removed", checked, gap)
            pending = (row, previous)
        else:
            previous, previous_seq = row.hash, row.seq
            checked += 1
            continue
        previous_seq = row.seq
    if pending is not None:
        return _broken(pending[0], "altered", checked, "the last entry's content does not match its hash")
    return {"ok": True, "checked": checked, "last_seq": previous_seq, "last_hash": previous}


def _broken(row: Any, kind: str, checked: int, why: str) -> dict[str, Any]:
    return {"ok": False, "checked": checked, "first_bad_seq": int(row.seq), "problem": kind, "detail": why}
