"""Building a version's evidence bundle: one zip an auditor can verify offline.

Contents (every file listed in ``manifest.json`` with its SHA-256; ``manifest.sig`` is the server's
signature over the manifest's exact bytes):

- ``version.json`` — the version record (digest, flavor, source run, lineage refs, stage)
- ``model_card.md``, ``model_card.json`` — the rendered model card
- ``approvals.json`` (reviews), ``policy_decisions.json``, ``evaluations.json``
- ``metrics.json`` — the source run's metrics and params
- ``lineage.json`` — the pinned dataset versions and their tree digests
- ``signatures.json`` — the version's signatures with their public keys
- ``journal.jsonl`` — the model's journal entries, each with the hash of the entry before it
- ``audit_log.json`` — the same entries for this version, summarised
- ``checkpoint.json`` — a signed journal checkpoint at or after the last included entry

``verify_bundle.py`` checks all of it without a store.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import sqlalchemy as sa

from shipyard.core.context import current_actor
from shipyard.core.time import now_ms
from shipyard.governance import audit_log, signing
from shipyard.governance.audit_entities import Bundle
from shipyard.store import chain
from shipyard.store import schema as t

KIND = "shipyard.evidence-bundle/v1"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n"


def _rows(conn: sa.Connection, table: sa.Table, version_id: str, order: sa.Column) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(table).where(table.c.version_id == version_id).order_by(order))
    return [dict(row._mapping) for row in rows]


def _card(services: Any, name: str, version: int, record: dict[str, Any]) -> tuple[bytes, bytes, str]:
    """The model card as Markdown and JSON, from the evaluations service when it can render one."""
    try:
        render = services.evaluations.render_model_card
    except AttributeError:
        render = None
    if render is not None:
        try:
            markdown, as_json = render(name, version, "markdown"), render(name, version, "json")
        except NotImplementedError:
            pass
        else:
            md = markdown if isinstance(markdown, str) else json.dumps(markdown, default=str)
            if hasattr(as_json, "model_dump"):
                as_json = as_json.model_dump()
            js = as_json.encode() if isinstance(as_json, str) else _json(as_json)
            return md.encode(), js, "rendered"
    minimal = {
        "model_details": {
            "name": name,
            "version": version,
            "digest": record["digest"],
            "flavor": record["flavor"],
            "owners": [record.get("created_by")],
            "description": record.get("description"),
        },
        "training_data": record.get("data_refs"),
    }
    data = ", ".join(record.get("data_refs") or []) or "-"
    md = (
        f"# Model card: {name} version {version}\n\n"
        f"- digest: `{record['digest']}`\n- flavor: {record['flavor']}\n"
        f"- registered by: {record.get('created_by')}\n- training data: {data}\n"
        f"\n{record.get('description') or ''}\n"
    )
    return md.encode(), _json(minimal), "minimal"


def _journal_lines(conn: sa.Connection, model: sa.Row) -> tuple[list[dict[str, Any]], list[Any]]:
    """The model's journal entries as raw records with ``previous_hash`` (the hash of the entry just
    before each one in the whole journal, which its own hash commits to)."""
    entries = audit_log.model_entries(conn, model)
    j = t.journal
    lines = []
    for entry in entries:
        previous = conn.execute(sa.select(j.c.hash).where(j.c.seq < entry.seq).order_by(j.c.seq.desc()).limit(1))
        lines.append(
            {
                "seq": entry.seq,
                "ts": entry.ts,
                "actor": entry.actor,
                "action": entry.action,
                "entity_type": entry.entity_type,
                "entity_id": entry.entity_id,
                "payload": entry.evidence,
                "hash": entry.hash,
                "previous_hash": previous.scalar() or chain.GENESIS,
            }
        )
    return lines, entries


def build(services: Any, name: str, version: int) -> Bundle:
    registry = services.registry
    record = registry.get_version(name, version).model_dump()
    audit = services.audit
    with services.db.read() as conn:
        model, row = registry._version_row(conn, name, version)
        reviews = _rows(conn, t.version_reviews, row.id, t.version_reviews.c.created_at)
        decisions = _rows(conn, t.policy_decisions, row.id, t.policy_decisions.c.created_at)
        evaluations = _rows(conn, t.version_evaluations, row.id, t.version_evaluations.c.created_at)
        journal_lines, entries = _journal_lines(conn, model)
    metrics: dict[str, Any] = {"run_id": record.get("source_run_id")}
    if record.get("source_run_id"):
        run = services.tracking.get_run(record["source_run_id"])
        metrics.update(metrics=run.metrics, params=run.params, run_name=run.name, status=str(run.status))
    lineage = []
    for ref in record.get("data_refs") or []:
        dataset = services.data.resolve_version(ref)
        lineage.append({"ref": dataset.ref, "digest": dataset.digest, "rows": dataset.row_count})
    card_md, card_json, card_kind = _card(services, name, version, record)
    signatures = {
        "model": name,
        "version": version,
        "digest": record["digest"],
        "message": "shipyard-model-version:v1\\n{model}\\n{version}\\n{digest}",
        "signatures": audit.signature_records(name, version),
        "verification": audit.verify_version_signature(name, version),
    }
    checkpoint = audit.create_checkpoint()  # after reading the entries: at or after the last of them
    files: dict[str, bytes] = {
        "version.json": _json(record),
        "model_card.md": card_md,
        "model_card.json": card_json,
        "approvals.json": _json(reviews),
        "policy_decisions.json": _json(decisions),
        "evaluations.json": _json(evaluations),
        "metrics.json": _json(metrics),
        "lineage.json": _json({"data_refs": record.get("data_refs") or [], "datasets": lineage}),
        "signatures.json": _json(signatures),
        "journal.jsonl": b"".join(
            json.dumps(line, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n" for line in journal_lines
        ),
        "audit_log.json": _json([e.model_dump() for e in entries if e.version == version]),
        "checkpoint.json": _json(checkpoint.model_dump()),
    }
    key, key_id, public = audit.server_key
    manifest = {
        "kind": KIND,
        "model": name,
        "version": version,
        "digest": record["digest"],
        "created_at": now_ms(),
        "created_by": current_actor(),
        "model_card": card_kind,
        "key_id": key_id,
        "public_key": public,
        "files": {
            path: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for path, data in files.items()
        },
    }
    manifest_bytes = _json(manifest)
    sig = {
        "key_id": key_id,
        "public_key": public,
        "signature": signing.sign(key, signing.bundle_message(manifest_bytes)),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in [("manifest.json", manifest_bytes), ("manifest.sig", _json(sig)), *files.items()]:
            archive.writestr(zipfile.ZipInfo(path, date_time=ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
    digest, size = services.artifacts.put_bytes(buffer.getvalue())
    return Bundle(
        digest=digest,
        size=size,
        model=name,
        version=version,
        files=["manifest.json", "manifest.sig", *files],
        checkpoint_seq=checkpoint.seq,
    )
