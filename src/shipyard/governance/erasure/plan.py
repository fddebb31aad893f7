"""The plan of an erasure: what it would remove, found by reading only.

:class:`Planner` looks for the subject in each kind of stored data — prediction-log segments,
dataset versions, monitor reference samples and segmented windows, models' input examples,
validation reports — and collects it in a :class:`Plan`; :meth:`Planner.report` turns a plan into
the :class:`~shipyard.governance.privacy_entities.Erasure` a dry run returns, with the model versions
to flag. Nothing here writes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.governance.erasure.storage import (
    _manifest,
    count_by_prediction_ids,
    parquet_columns,
    read_data_file,
    read_parquet,
)
from shipyard.governance.erasure.subject import (
    _example_mask,
    _json_mask,
    _scrub_report,
    column_mask,
    table_mask,
    text_matches,
)
from shipyard.governance.privacy_entities import (
    ERASED_BY_TAG,
    DatasetErasure,
    Erasure,
    FlaggedModelVersion,
    MonitorErasure,
)
from shipyard.store import schema as t

INPUT_PREFIX = "in."


@dataclass
class _Segment:
    digest: str
    ids: list[str]  # prediction_segments rows holding this blob
    mask: np.ndarray  # the subject's rows
    new_digest: str | None = None
    rows: int = 0
    first_ts: int = 0
    last_ts: int = 0


@dataclass
class _Version:
    row: Any
    manifest: dict[str, Any]
    hits: dict[str, int]  # data file path -> the subject's rows in it
    positions: set[int] | None  # the subject's row positions in the version's table (None: a file is gone)


@dataclass
class _Dataset:
    name: str
    latest: Any
    versions: list[_Version] = field(default_factory=list)
    new_version: Any = None

    @property
    def latest_hit(self) -> _Version | None:
        return next((v for v in self.versions if v.row.id == self.latest.id), None)


@dataclass
class _Monitor:
    row: Any
    sample_mask: np.ndarray | None = None
    new_sample: str | None = None
    windows: list[int] = field(default_factory=list)
    key_in_bins: list[str] = field(default_factory=list)


@dataclass
class Plan:
    subject: dict[str, str]
    seen: set[str] = field(default_factory=set)  # subject keys some stored table has as a column
    segments: list[_Segment] = field(default_factory=list)
    prediction_ids: list[str] = field(default_factory=list)
    datasets: list[_Dataset] = field(default_factory=list)
    monitors: list[_Monitor] = field(default_factory=list)
    examples: list[Any] = field(default_factory=list)  # model version rows whose input example holds the subject
    reports: list[tuple[str, str, dict[str, Any], int]] = field(default_factory=list)  # validation reports
    file_masks: dict[str, np.ndarray | None] = field(default_factory=dict)  # data file digest -> mask


class Planner:
    """Plans one erasure over the assembled services (reads only); :class:`Eraser` carries it out."""

    def __init__(self, services: Any, subject: dict[str, str]):
        self.services = services
        self.db = services.db
        self.artifacts = services.artifacts
        self.subject = subject

    # -- planning (reads only) ---------------------------------------------------------------------

    def plan(self) -> Plan:
        plan = Plan(self.subject)
        self._plan_segments(plan)
        self._plan_datasets(plan)
        self._plan_monitors(plan)
        self._plan_examples(plan)
        self._plan_reports(plan)
        missing = [key for key in self.subject if key not in plan.seen]
        if missing:
            raise InvalidInput(
                f"no prediction log, batch log, dataset or monitor sample has a column {missing[0]!r}",
                field=f"subject.{missing[0]}",
            )
        return plan

    def _plan_segments(self, plan: Plan) -> None:
        s = t.prediction_segments.c
        by_digest: dict[str, list[str]] = {}
        with self.db.read() as conn:
            for seg_id, digest in conn.execute(sa.select(s.id, s.digest).order_by(s.first_ts, s.id)):
                by_digest.setdefault(digest, []).append(seg_id)
        removed: list[str] = []
        for digest, ids in by_digest.items():
            try:
                names = set(parquet_columns(self.artifacts, digest))
            except NotFound:
                continue  # a missing blob holds nothing to erase
            flat = [k for k in self.subject if INPUT_PREFIX + k in names]
            rest = [k for k in self.subject if k not in flat]
            if rest and "inputs" not in names:
                plan.seen.update(flat)
                continue
            columns = [INPUT_PREFIX + k for k in flat] + (["inputs"] if rest else [])
            table = read_parquet(self.artifacts, digest, columns)
            plan.seen.update(flat)
            mask = np.ones(table.num_rows, dtype=bool)
            for key in flat:
                mask &= column_mask(table.column(INPUT_PREFIX + key), self.subject[key])
            if rest and mask.any():
                mask &= _json_mask(table.column("inputs"), self.subject, rest, plan.seen)
            if not mask.any():
                continue
            ids_table = read_parquet(self.artifacts, digest, ["prediction_id", "request_id"])
            removed.extend(ids_table.column("prediction_id").filter(mask).to_pylist())
            removed.extend(ids_table.column("request_id").filter(mask).to_pylist())
            plan.segments.append(_Segment(digest, ids, mask))
        plan.prediction_ids = sorted({str(i) for i in removed if i})

    def _file_mask(self, plan: Plan, digest: str, fmt: str) -> np.ndarray | None:
        if digest not in plan.file_masks:
            try:
                table = read_data_file(self.artifacts, digest, fmt)
            except NotFound:
                plan.file_masks[digest] = None  # already purged by an earlier erasure
                return None
            plan.seen.update(k for k in self.subject if k in table.column_names)
            mask = table_mask(table, self.subject)
            plan.file_masks[digest] = np.zeros(table.num_rows, dtype=bool) if mask is None else mask
        return plan.file_masks[digest]

    def _plan_datasets(self, plan: Plan) -> None:
        from shipyard.data.formats import TABULAR_FORMATS, data_files

        d, v = t.datasets.c, t.dataset_versions.c
        with self.db.read() as conn:
            datasets = conn.execute(sa.select(d.id, d.name).order_by(d.name)).all()
            versions = conn.execute(sa.select(t.dataset_versions).order_by(v.dataset_id, v.version)).all()
        by_dataset: dict[str, list[Any]] = {}
        for row in versions:
            by_dataset.setdefault(row.dataset_id, []).append(row)
        for dataset in datasets:
            rows = by_dataset.get(dataset.id, [])
            if not rows:
                continue
            found = _Dataset(dataset.name, rows[-1])
            for row in rows:
                if row.format not in TABULAR_FORMATS:
                    continue
                if row.schema:  # the profile recorded its columns: no need to read files lacking a key
                    schema_names = {c.get("name") for c in row.schema}
                    plan.seen.update(k for k in self.subject if k in schema_names)
                    if not all(k in schema_names for k in self.subject):
                        continue
                try:
                    manifest = _manifest(self.artifacts, row.digest)
                except NotFound:
                    continue
                hits = {}
                positions: set[int] | None = set()
                offset = 0  # files are read in this order into one table (what validation reports number)
                for rel in data_files(manifest["entries"], row.format):
                    mask = self._file_mask(plan, manifest["entries"][rel]["digest"], row.format)
                    if mask is None:
                        positions = None
                        continue
                    if mask.any():
                        hits[rel] = int(mask.sum())
                        if positions is not None:
                            positions.update(int(i) + offset for i in np.flatnonzero(mask))
                    offset += len(mask)
                if hits:
                    found.versions.append(_Version(row, manifest, hits, positions))
            if found.versions:
                plan.datasets.append(found)

    def _plan_monitors(self, plan: Plan) -> None:
        with self.db.read() as conn:
            monitors = conn.execute(sa.select(t.monitors)).all()
            windows = conn.execute(
                sa.select(t.monitor_windows.c.id, t.monitor_windows.c.monitor_id, t.monitor_windows.c.segment).where(
                    t.monitor_windows.c.segment != ""
                )
            ).all()
        for row in monitors:
            found = _Monitor(row)
            bins = (row.bins or {}).get("columns", {})
            found.key_in_bins = [k for k in self.subject if k in bins]
            sample = (row.reference or {}).get("sample")
            if sample:
                with contextlib.suppress(NotFound):
                    table = read_parquet(self.artifacts, sample)
                    plan.seen.update(k for k in self.subject if k in table.column_names)
                    mask = table_mask(table, self.subject)
                    if mask is not None and mask.any():
                        found.sample_mask = mask
            # a window segmented by the subject's key holds aggregates of exactly the subject's predictions
            # (with more than one key, a segment on one of them also holds other people's)
            for w in windows if len(self.subject) == 1 else ():
                if w.monitor_id != row.id:
                    continue
                column, _, value = w.segment.partition("=")
                if column in self.subject and text_matches(value, self.subject[column]):
                    found.windows.append(w.id)
            if found.sample_mask is not None or found.windows or found.key_in_bins:
                plan.monitors.append(found)

    def _plan_examples(self, plan: Plan) -> None:
        mv = t.model_versions.c
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(mv.id, mv.model_id, mv.version, mv.input_example).where(mv.input_example.is_not(None))
            ).all()
        for row in rows:
            example = row.input_example
            if isinstance(example, dict) and example.get("type") == "dataframe":
                plan.seen.update(k for k in self.subject if k in example.get("columns", []))
            if _example_mask(example, self.subject) is not None:
                plan.examples.append(row)

    def _plan_reports(self, plan: Plan) -> None:
        """Validation reports keep up to five failing rows per check, verbatim: the subject's go (found
        by their position in a version that held the subject, or by the subject's columns)."""
        r, v, d = t.validation_reports.c, t.dataset_versions.c, t.datasets.c
        positions = {ver.row.id: ver.positions for ds in plan.datasets for ver in ds.versions}
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(r.id, r.dataset_version_id, r.report, d.name)
                .select_from(t.validation_reports.join(t.dataset_versions, r.dataset_version_id == v.id).join(
                    t.datasets, v.dataset_id == d.id
                ))
            ).all()  # fmt: skip
        for row in rows:
            known = positions.get(row.dataset_version_id) or set()
            report, dropped = _scrub_report(row.report, self.subject, known)
            if dropped:
                plan.reports.append((row.id, row.name, report, dropped))

    # -- reporting ---------------------------------------------------------------------------------

    def report(self, plan: Plan, erasure_id: str | None) -> Erasure:
        with self.db.read() as conn:
            counts = count_by_prediction_ids(conn, plan.prediction_ids)
            flagged = self._flagged(conn, plan)
        return Erasure(
            id=erasure_id,
            subject_keys=sorted(self.subject),
            dry_run=erasure_id is None,
            status="planned" if erasure_id is None else "purging",
            predictions=sum(int(s.mask.sum()) * len(s.ids) for s in plan.segments),
            segments_rewritten=sum(len(s.ids) for s in plan.segments if not s.mask.all()),
            segments_deleted=sum(len(s.ids) for s in plan.segments if s.mask.all()),
            feedback=counts["feedback"],
            labels=counts["labels"],
            routed=counts["routed"],
            datasets=[
                DatasetErasure(
                    dataset=ds.name,
                    rows=sum(ds.latest_hit.hits.values()) if ds.latest_hit else 0,
                    validation_rows=sum(n for _, name, _, n in plan.reports if name == ds.name),
                    erased_versions=[f"{ds.name}@{v.row.version}" for v in ds.versions],
                    new_version=None if ds.new_version is None else ds.new_version.ref,
                )
                for ds in plan.datasets
            ],
            model_versions=flagged,
            monitors=[
                MonitorErasure(
                    monitor=m.row.name,
                    reference_rows=0 if m.sample_mask is None else int(m.sample_mask.sum()),
                    windows=len(m.windows),
                    key_in_bins=m.key_in_bins,
                )
                for m in plan.monitors
            ],
        )

    def _flagged(self, conn: sa.Connection, plan: Plan) -> list[FlaggedModelVersion]:
        """Model versions trained on a dataset version that held the subject, or whose input example does."""
        affected = {v.row.id: f"{ds.name}@{v.row.version}" for ds in plan.datasets for v in ds.versions}
        purged = _purged_ancestors(conn, affected)
        affected.update(purged)
        # a purged ancestor cannot be read any more: whether it held this subject is unknown, so say so
        label = {i: f"{ref} (purged by an earlier erasure)" if i in purged else ref for i, ref in affected.items()}
        reasons: dict[str, list[str]] = {}
        u, mv = t.data_usages.c, t.model_versions.c
        if affected:
            usages = conn.execute(
                sa.select(u.dataset_version_id, u.consumer_type, u.consumer_id).where(
                    u.dataset_version_id.in_(list(affected)), u.role == "input"
                )
            ).all()
            runs: dict[str, set[str]] = {}
            for usage in usages:
                ref = label[usage.dataset_version_id]
                if usage.consumer_type == "model_version":
                    reasons.setdefault(usage.consumer_id, []).append(f"trained on {ref}")
                elif usage.consumer_type == "run":
                    runs.setdefault(usage.consumer_id, set()).add(ref)
            if runs:
                for vid, run_id in conn.execute(
                    sa.select(mv.id, mv.source_run_id).where(mv.source_run_id.in_(list(runs)))
                ):
                    reasons.setdefault(vid, []).extend(f"trained on {ref}" for ref in sorted(runs[run_id]))
            refs = {ref: label[i] for i, ref in affected.items()}
            for vid, data_refs in conn.execute(sa.select(mv.id, mv.data_refs).where(mv.data_refs.is_not(None))):
                hits = [refs[r] for r in data_refs or [] if r in refs]
                if hits:
                    reasons.setdefault(vid, []).extend(f"trained on {r}" for r in hits)
        for row in plan.examples:
            reasons.setdefault(row.id, []).append("input example")
        if not reasons:
            return []
        rows = conn.execute(
            sa.select(mv.id, mv.version, t.registered_models.c.name)
            .select_from(t.model_versions.join(t.registered_models, mv.model_id == t.registered_models.c.id))
            .where(mv.id.in_(list(reasons)))
            .order_by(t.registered_models.c.name, mv.version)
        ).all()
        return [FlaggedModelVersion(model=r.name, version=r.version, reasons=sorted(set(reasons[r.id]))) for r in rows]


def _purged_ancestors(conn: sa.Connection, versions: dict[str, str]) -> dict[str, str]:
    """Ancestors of ``versions`` whose files an earlier erasure purged: they cannot be read any more,
    so whether they held this subject is unknown — models trained on them are flagged too."""
    v, tg = t.dataset_versions.c, t.tags.c
    erased = set(
        conn.execute(
            sa.select(tg.entity_id).where(tg.entity_type == "dataset_version", tg.key == ERASED_BY_TAG)
        ).scalars()
    )
    if not erased:
        return {}
    rows = {r.id: r for r in conn.execute(sa.select(v.id, v.dataset_id, v.version, v.parents))}
    names = dict(conn.execute(sa.select(t.datasets.c.id, t.datasets.c.name)).all())
    found: dict[str, str] = {}
    todo = [p for i in versions for p in (rows[i].parents or []) if i in rows]
    while todo:
        parent = todo.pop()
        if parent in found or parent in versions or parent not in rows:
            continue
        row = rows[parent]
        if parent in erased:
            found[parent] = f"{names.get(row.dataset_id)}@{row.version}"
        todo.extend(row.parents or [])
    return found
