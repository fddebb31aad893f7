"""Carrying out an erasure: new blobs first, one transaction to switch, old blobs deleted last.

:class:`Eraser` writes the rewritten segments and monitor samples and the new dataset versions,
then moves every reference in one transaction with the erasure record (status ``purging`` and the
blobs to delete), then purges. :func:`finish_purge` completes the deletions of an erasure a crash
or a failure interrupted after its switch; :func:`pending_erasures` names those.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

import sqlalchemy as sa

from shipyard.core.errors import NotFound
from shipyard.core.hashing import canonical_json, hex_of
from shipyard.core.ids import new_id
from shipyard.core.time import now_ms
from shipyard.governance.erasure.plan import Plan, Planner
from shipyard.governance.erasure.storage import (
    compact_sqlite,
    data_file_bytes,
    delete_by_prediction_ids,
    purge,
    read_data_file,
    read_parquet,
    secure_delete,
    segment_bytes,
)
from shipyard.governance.erasure.subject import _without_subject
from shipyard.governance.erasure.summary import erasure_of, journal_summary
from shipyard.governance.privacy_entities import ERASED_BY_TAG, ERASURE_TAG, SUCCESSOR_TAG, Erasure
from shipyard.store import schema as t
from shipyard.store.database import Tx
from shipyard.store.tags import set_tags

log = logging.getLogger("shipyard.governance.erasure")  # the name it had as one module


class Eraser(Planner):
    """Plans and carries out one erasure over the assembled services."""

    def execute(self, plan: Plan, erasure_id: str) -> Erasure:
        old_blobs: list[str] = []
        self._write_segments(plan, old_blobs)
        self._write_monitor_samples(plan, old_blobs)
        self._write_dataset_versions(plan, erasure_id)
        erased_trees = [v.row.digest for ds in plan.datasets for v in ds.versions]
        for ds in plan.datasets:
            for v in ds.versions:
                old_blobs.extend(v.manifest["entries"][rel]["digest"] for rel in v.hits)
        old_blobs = list(dict.fromkeys(old_blobs))
        report = self.report(plan, erasure_id)
        self._switch(plan, erasure_id, report, old_blobs, erased_trees)
        try:
            return finish_purge(self.services, erasure_id)
        except Exception as exc:  # the erasure is recorded as "purging": the next one finishes the deletions
            log.warning("erasure %s: deleting the old blobs failed, to be retried: %s", erasure_id, type(exc).__name__)
            with self.db.read() as conn:
                return erasure_of(
                    conn.execute(sa.select(t.erasures).where(t.erasures.c.id == erasure_id)).one()._mapping
                )

    def _write_segments(self, plan: Plan, old_blobs: list[str]) -> None:
        for seg in plan.segments:
            old_blobs.append(seg.digest)
            if seg.mask.all():
                continue
            table = read_parquet(self.artifacts, seg.digest).filter(~seg.mask)
            seg.new_digest, _ = self.artifacts.put_bytes(segment_bytes(table))
            ts = table.column("ts").to_numpy()
            seg.rows, seg.first_ts, seg.last_ts = table.num_rows, int(ts.min()), int(ts.max())

    def _write_monitor_samples(self, plan: Plan, old_blobs: list[str]) -> None:
        for m in plan.monitors:
            if m.sample_mask is None:
                continue
            digest = m.row.reference["sample"]
            table = read_parquet(self.artifacts, digest).filter(~m.sample_mask)
            m.new_sample, _ = self.artifacts.put_bytes(segment_bytes(table))
            old_blobs.append(digest)

    def _write_dataset_versions(self, plan: Plan, erasure_id: str) -> None:
        """A new version of each dataset whose latest version holds the subject (its own transaction
        in the dataset service: an extra version without the subject is consistent on its own)."""
        from shipyard.artifacts.trees import TreeEntry
        from shipyard.data.formats import data_files
        from shipyard.data.profile import profile_files
        from shipyard.data.snapshot import manifest_of

        for ds in plan.datasets:
            latest = ds.latest_hit
            if latest is None:
                continue
            row = latest.row
            entries = {
                rel: TreeEntry(digest=e["digest"], size=e["size"], mode=e["mode"])
                for rel, e in latest.manifest["entries"].items()
            }
            for rel in latest.hits:
                old = entries[rel]
                table = read_data_file(self.artifacts, old.digest, row.format)
                data = data_file_bytes(table.filter(~plan.file_masks[old.digest]), row.format)
                digest, size = self.artifacts.put_bytes(data)
                entries[rel] = TreeEntry(digest=digest, size=size, mode=old.mode)
            entries = dict(sorted(entries.items()))
            tree, _ = self.artifacts.put_bytes(canonical_json(manifest_of(entries)))
            with tempfile.TemporaryDirectory(prefix="shipyard-erasure-") as tmp:
                paths = []
                for rel in data_files(entries, row.format):
                    path = self.artifacts.local_path(entries[rel].digest) if self.artifacts.is_local else None
                    if path is None:
                        path = os.path.join(tmp, hex_of(entries[rel].digest))
                        self.artifacts.get_file(entries[rel].digest, path)
                    paths.append(path)
                profiled = profile_files(paths, row.format)
            removed = sum(latest.hits.values())
            ds.new_version = self.services.data.create_version(
                name=ds.name,
                digest=tree,
                format=row.format,
                file_count=len(entries),
                size=sum(e.size for e in entries.values()),
                row_count=profiled.row_count,
                schema=profiled.schema,
                profile=profiled.profile,
                source_uri=f"erasure:{erasure_id}",
                parents=[f"{ds.name}@{row.version}"],
                description=(
                    f"{ds.name}@{row.version} without the {removed} row(s) of a data subject (erasure {erasure_id})"
                ),
                tags={ERASURE_TAG: erasure_id},
            )

    def _switch(self, plan: Plan, erasure_id: str, report: Erasure, old_blobs: list[str], trees: list[str]) -> None:
        """Every reference moves in one transaction, with the erasure record and its pending deletions."""
        s = t.prediction_segments.c
        with self.db.write() as tx:
            secure_delete(tx)
            for seg in plan.segments:
                for seg_id in seg.ids:
                    before = {"digest": seg.digest, "rows": None}
                    current = tx.conn.execute(sa.select(s.rows).where(s.id == seg_id, s.digest == seg.digest)).first()
                    if current is None:  # retention (or another erasure) already replaced it
                        if seg.new_digest is not None:
                            old_blobs.append(seg.new_digest)  # then nothing may reference the blob written for it
                        continue
                    before["rows"] = current.rows
                    if seg.new_digest is None:
                        tx.conn.execute(t.prediction_segments.delete().where(s.id == seg_id))
                        tx.journal(
                            "prediction_segment.erased", "prediction_segment", seg_id,
                            {"erasure": erasure_id, "before": before, "after": None},
                        )  # fmt: skip
                        continue
                    after = {
                        "digest": seg.new_digest,
                        "rows": seg.rows,
                        "first_ts": seg.first_ts,
                        "last_ts": seg.last_ts,
                    }
                    tx.conn.execute(t.prediction_segments.update().where(s.id == seg_id).values(**after))
                    tx.journal(
                        "prediction_segment.erased", "prediction_segment", seg_id,
                        {"erasure": erasure_id, "before": before, "after": after},
                    )  # fmt: skip
            counts = delete_by_prediction_ids(tx, plan.prediction_ids)
            report.feedback, report.labels, report.routed = counts["feedback"], counts["labels"], counts["routed"]
            for ds in plan.datasets:
                successor = ds.new_version.ref if ds.new_version is not None else f"{ds.name}@{ds.latest.version}"
                for v in ds.versions:
                    tags = {ERASED_BY_TAG: erasure_id, SUCCESSOR_TAG: successor}
                    set_tags(tx, "dataset_version", v.row.id, tags)
                    tx.conn.execute(
                        t.dataset_versions.update().where(t.dataset_versions.c.id == v.row.id).values(profile=None)
                    )
                    tx.journal(
                        "dataset_version.erased", "dataset_version", v.row.id,
                        {"erasure": erasure_id, "files_purged": len(v.hits), "successor": successor, "tags": tags},
                    )  # fmt: skip
            self._drop_backgrounds(tx, plan, erasure_id)
            for report_id, _, scrubbed, dropped in plan.reports:
                vr = t.validation_reports
                tx.conn.execute(vr.update().where(vr.c.id == report_id).values(report=scrubbed))
                tx.journal(
                    "validation_report.erased", "validation_report", report_id, {"erasure": erasure_id, "rows": dropped}
                )
            for m in plan.monitors:
                if m.new_sample is not None:
                    reference = {**m.row.reference, "sample": m.new_sample}
                    tx.conn.execute(t.monitors.update().where(t.monitors.c.id == m.row.id).values(reference=reference))
                if m.windows:
                    w = t.monitor_windows.c
                    tx.conn.execute(t.monitor_windows.delete().where(w.id.in_(m.windows)))
                if m.new_sample is not None or m.windows:
                    rows = 0 if m.sample_mask is None else int(m.sample_mask.sum())
                    tx.journal(
                        "monitor.erased", "monitor", m.row.id,
                        {"erasure": erasure_id, "reference_rows": rows, "windows": len(m.windows)},
                    )  # fmt: skip
            self._flag_models(tx, plan, report, erasure_id)
            summary = report.model_dump(exclude={"id", "actor", "created_at"})
            summary["pending_blobs"] = old_blobs
            summary["erased_trees"] = trees
            tx.conn.execute(
                t.erasures.insert().values(
                    id=erasure_id,
                    subject_key=",".join(sorted(self.subject)),
                    summary=summary,
                    actor=tx.actor,
                    created_at=now_ms(),
                )
            )
            tx.journal("erasure.recorded", "erasure", erasure_id, journal_summary(report))

    def _drop_backgrounds(self, tx: Tx, plan: Plan, erasure_id: str) -> None:
        """Explanations keep a sample of their dataset's rows as background for local explanations; one
        drawn from a purged dataset version may hold the subject's rows, so the sample goes (the
        importances stay; local explanations fall back to an unpurged background)."""
        refs = [f"{ds.name}@{v.row.version}" for ds in plan.datasets for v in ds.versions]
        if not refs:
            return
        ev = t.version_evaluations.c
        rows = tx.conn.execute(
            sa.select(ev.id, ev.version_id, ev.result).where(ev.kind == "explanation", ev.dataset.in_(refs))
        ).all()
        for row in rows:
            result = dict(row.result or {})
            if not result.get("background"):
                continue
            result["background"] = []
            result["background_erased_by"] = erasure_id
            tx.conn.execute(t.version_evaluations.update().where(ev.id == row.id).values(result=result))
            model_id = tx.conn.execute(
                sa.select(t.model_versions.c.model_id, t.model_versions.c.version).where(
                    t.model_versions.c.id == row.version_id
                )
            ).one()
            tx.journal(
                "evaluation.erased", "model", model_id.model_id,
                {"version": model_id.version, "kind": "explanation", "erasure": erasure_id, "background": "dropped"},
            )  # fmt: skip

    def _flag_models(self, tx: Tx, plan: Plan, report: Erasure, erasure_id: str) -> None:
        mv = t.model_versions.c
        examples = {row.id: row for row in plan.examples}
        for flagged in report.model_versions:
            row = tx.conn.execute(
                sa.select(mv.id, mv.model_id, mv.input_example)
                .select_from(t.model_versions.join(t.registered_models, mv.model_id == t.registered_models.c.id))
                .where(t.registered_models.c.name == flagged.model, mv.version == flagged.version)
            ).one()
            set_tags(tx, "version", row.id, {ERASURE_TAG: erasure_id})
            if row.id in examples:
                tx.conn.execute(
                    t.model_versions.update()
                    .where(mv.id == row.id)
                    .values(input_example=_without_subject(row.input_example, self.subject))
                )
            tx.journal(
                "version.flagged", "model", row.model_id,
                {"version": flagged.version, "erasure": erasure_id, "reasons": flagged.reasons},
            )  # fmt: skip


def finish_purge(services: Any, erasure_id: str) -> Erasure:
    """Delete the blobs an erasure left pending (no-op when complete) and mark it complete."""
    e = t.erasures.c
    with services.db.read() as conn:
        row = conn.execute(sa.select(t.erasures).where(e.id == erasure_id)).first()
    if row is None:
        raise NotFound(f"erasure {erasure_id!r} not found", field="erasure_id")
    summary = dict(row.summary or {})
    if summary.get("status") == "purging":
        deleted, kept = purge(services, summary.get("pending_blobs", []), summary.get("erased_trees", []))
        summary.update(status="complete", blobs_deleted=deleted, blobs_kept=kept, pending_blobs=[])
        with services.db.write() as tx:
            tx.conn.execute(t.erasures.update().where(e.id == erasure_id).values(summary=summary))
            tx.journal("erasure.purged", "erasure", erasure_id, {"blobs_deleted": deleted, "blobs_kept": len(kept)})
        compact_sqlite(services.db)
    return erasure_of({**row._mapping, "summary": summary})


def pending_erasures(db: Any) -> list[str]:
    with db.read() as conn:
        rows = conn.execute(sa.select(t.erasures.c.id, t.erasures.c.summary)).all()
    return [r.id for r in rows if (r.summary or {}).get("status") == "purging"]


def new_erasure_id() -> str:
    return new_id()
