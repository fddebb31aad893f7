"""Erasure of a data subject: find every stored row whose column KEY equals VALUE, and remove it.

A subject is a set of ``KEY=VALUE`` pairs; a row is the subject's when every pair matches (values
compared as text, so ``--subject user_id=42`` matches the integer 42, the float 42.0 and the string
"42"). An erasure touches:

* the prediction log (served and batch-logged segments): each Parquet segment holding the subject
  is rewritten without its rows (a new blob; the segment row switches to it), or dropped when
  nothing is left;
* feedback, labels and routed-prediction rows of the removed prediction ids (and request ids);
* datasets: when the latest version holds the subject, a new version without those rows (parent:
  the latest) is written through the dataset service, so its profile and lineage are right. Every
  version that held the subject has the files holding it **deleted** (rewriting them would change
  the version's identity, its tree digest), its profile cleared (top values, min and max could
  reveal the subject) and the tags ``shipyard.erased_by`` / ``shipyard.erased_successor``, so
  reading it says which erasure purged it and which version to read instead;
* model versions trained on a version that held the subject (``data_refs``, ``data_usages``,
  their source runs' inputs) are tagged ``shipyard.erasure`` and listed, and a stored input example
  holding the subject loses those rows (the model tree keeps its copy: the version is flagged);
* validation reports: the subject's failing rows, kept verbatim, are removed;
* monitors: rows of the subject in a stored reference sample (a Parquet blob of raw rows) are
  removed, windows segmented by the subject's own value (``KEY=VALUE``) deleted.

Crash safety: new blobs (and the new dataset versions, each consistent on its own) are written
first, every reference switches in one transaction (with the erasure record, status ``purging`` and
the blobs to delete), and old blobs are deleted last — each only when nothing references it any
more. A crash before the switch leaves every existing reference as it was (plus unreferenced new
blobs); after it, the next erasure or retention run finishes the pending deletions.

The erased value is never stored, journaled or logged: the record keeps the keys and counts.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.hashing import canonical_json, hex_of
from shipyard.core.ids import new_id
from shipyard.core.names import MAX_KEY
from shipyard.core.time import now_ms
from shipyard.governance.privacy_entities import (
    ERASED_BY_TAG,
    ERASURE_TAG,
    SUCCESSOR_TAG,
    DatasetErasure,
    Erasure,
    FlaggedModelVersion,
    MonitorErasure,
)
from shipyard.store import schema as t
from shipyard.store.database import Tx
from shipyard.store.tags import set_tags

log = logging.getLogger(__name__)

INPUT_PREFIX = "in."
CHUNK = 500  # ids per IN (...) clause
SEGMENT_ROW_GROUP = 100_000  # as batch logs: readers stream a segment by row group

# -- matching --------------------------------------------------------------------------------------


def parse_subject(subject: Any) -> dict[str, str]:
    """Validate a subject: a non-empty mapping of column name to value (values compared as text)."""
    if not isinstance(subject, dict) or not subject:
        raise InvalidInput(
            "subject must be a non-empty mapping of column to value, e.g. {'user_id': '42'}", field="subject"
        )
    parsed: dict[str, str] = {}
    for key, value in subject.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
            raise InvalidInput(f"subject key must be a column name of 1 to {MAX_KEY} characters", field="subject")
        if value is None or isinstance(value, dict | list):
            # the message names the key, never the value
            raise InvalidInput(f"subject.{key} must be a string or a number", field=f"subject.{key}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if not text:
            raise InvalidInput(f"subject.{key} must not be empty", field=f"subject.{key}")
        parsed[key] = text
    return parsed


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def value_matches(value: Any, wanted: str) -> bool:
    """Whether one JSON value equals the wanted text (numbers compared as numbers)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return wanted.strip().lower() in (("true", "1") if value else ("false", "0"))
    if isinstance(value, int | float):
        number = _number(wanted)
        return number is not None and value == number
    return str(value) == wanted


def text_matches(text: str, wanted: str) -> bool:
    """Whether a value written as text (``"42.0"``) equals the wanted text (``"42"``)."""
    if text == wanted:
        return True
    a, b = _number(text), _number(wanted)
    return a is not None and b is not None and a == b


def column_mask(column: Any, wanted: str) -> np.ndarray:
    """Which values of an Arrow column equal ``wanted`` (a bool array; nulls never match)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    typ = column.type
    none = np.zeros(len(column), dtype=bool)
    if pa.types.is_null(typ):
        return none
    if pa.types.is_boolean(typ):
        w = wanted.strip().lower()
        if w not in ("true", "1", "false", "0"):
            return none
        result = pc.equal(column, w in ("true", "1"))
    elif pa.types.is_integer(typ):
        number = _number(wanted)
        if number is None or float(number) != int(number):
            return none
        try:
            result = pc.equal(column, pa.scalar(int(number), pa.int64()))
        except (pa.ArrowException, OverflowError):
            return none
    elif pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        number = _number(wanted)
        if number is None:
            return none
        result = pc.equal(column.cast(pa.float64()), float(number))
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        result = pc.equal(column, wanted)
    else:
        try:
            result = pc.equal(column.cast(pa.string()), wanted)
        except (pa.ArrowException, NotImplementedError):
            return none
    return np.asarray(result.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def table_mask(table: Any, subject: dict[str, str], prefix: str = "") -> np.ndarray | None:
    """The subject's rows of a table whose columns are ``prefix + KEY``; None when a key is missing."""
    names = set(table.column_names)
    if not all(prefix + key in names for key in subject):
        return None
    mask = np.ones(table.num_rows, dtype=bool)
    for key, wanted in subject.items():
        mask &= column_mask(table.column(prefix + key), wanted)
    return mask


def _json_mask(texts: Any, subject: dict[str, str], keys: list[str], seen: set[str]) -> np.ndarray:
    """Rows whose JSON ``inputs`` hold every key in ``keys`` with the wanted value (segments where a
    key was not flattened into an ``in.`` column, e.g. because its values had mixed types)."""
    import pyarrow.compute as pc

    candidates = np.ones(len(texts), dtype=bool)
    for key in keys:  # a cheap substring test before parsing any JSON
        candidates &= np.asarray(pc.match_substring(texts, json.dumps(key)).fill_null(False).to_numpy(), dtype=bool)
    mask = np.zeros(len(texts), dtype=bool)
    for i in np.flatnonzero(candidates):
        try:
            row = json.loads(texts[int(i)].as_py())
        except (TypeError, ValueError):
            continue
        if not isinstance(row, dict):
            continue
        seen.update(k for k in keys if k in row)
        mask[i] = all(value_matches(row.get(k), subject[k]) for k in keys)
    return mask


# -- blobs -----------------------------------------------------------------------------------------


def _source(artifacts: Any, digest: str) -> Any:
    """A local path for a local store, else the bytes in memory (for Arrow readers)."""
    return artifacts.local_path(digest) if artifacts.is_local else io.BytesIO(artifacts.read_bytes(digest))


def read_parquet(artifacts: Any, digest: str, columns: list[str] | None = None) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(_source(artifacts, digest), columns=columns)


def parquet_columns(artifacts: Any, digest: str) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(_source(artifacts, digest)).schema_arrow.names)


def read_data_file(artifacts: Any, digest: str, fmt: str) -> Any:
    """A dataset's data file (parquet, csv or jsonl) as an Arrow table."""
    if fmt == "parquet":
        return read_parquet(artifacts, digest)
    source = io.BytesIO(artifacts.read_bytes(digest))
    if fmt == "csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(source)
    import pyarrow.json as pjson

    return pjson.read_json(source)


def segment_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=SEGMENT_ROW_GROUP)
    return buf.getvalue()


def data_file_bytes(table: Any, fmt: str) -> bytes:
    """A dataset data file in its own format (Parquet with the options ``log_dataset`` uses)."""
    buf = io.BytesIO()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        from shipyard.data.formats import ROW_GROUP

        pq.write_table(
            table,
            buf,
            row_group_size=ROW_GROUP,
            compression="zstd",
            compression_level=3,
            use_dictionary=True,
            write_statistics=True,
            version="2.6",
        )
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, buf)
    else:
        buf.write(table.to_pandas().to_json(orient="records", lines=True, date_format="iso").encode())
    return buf.getvalue()


def delete_blob(artifacts: Any, digest: str) -> bool:
    """Delete one object from the artifact store (the store itself never deletes); False if absent."""
    path = artifacts._object_path(digest)  # the store's own layout; same package family
    try:
        if artifacts.is_local:
            os.unlink(path)
        else:
            artifacts._fs.rm_file(path)
    except FileNotFoundError:
        return False
    return True


def referenced(conn: sa.Connection, artifacts: Any, digests: Iterable[str]) -> dict[str, str]:
    """Which of ``digests`` something in the store still references, and what (so it is kept)."""
    wanted = set(digests)
    found: dict[str, str] = {}
    if not wanted:
        return found
    direct = (
        (t.prediction_segments, "prediction segment"),
        (t.run_artifacts, "run artifact"),
        (t.model_versions, "model version"),
        (t.dataset_versions, "dataset version"),
    )
    for table, what in direct:
        ids = sorted(wanted)
        for i in range(0, len(ids), CHUNK):
            for digest in conn.execute(
                sa.select(table.c.digest).where(table.c.digest.in_(ids[i : i + CHUNK]))
            ).scalars():
                found.setdefault(digest, what)
    for row in conn.execute(sa.select(t.monitors.c.name, t.monitors.c.reference)):
        sample = (row.reference or {}).get("sample")
        if sample in wanted:
            found.setdefault(sample, f"monitor {row.name}")
    # Files inside dataset trees: a dataset version's manifest names each file's digest. Versions an
    # erasure purged do not count: their files holding a subject are meant to be gone.
    erased = sa.select(t.tags.c.entity_id).where(
        t.tags.c.entity_type == "dataset_version", t.tags.c.key == ERASED_BY_TAG
    )
    live = sa.select(t.dataset_versions.c.digest).where(t.dataset_versions.c.id.not_in(erased))
    for tree in set(conn.execute(live).scalars()):
        with contextlib.suppress(NotFound, InvalidInput):
            for digest in _tree_files(artifacts, tree) & wanted:
                found.setdefault(digest, "dataset file")
    return found


# A manifest never changes (its digest names it), so the file digests of each tree are read once per
# process: retention, run by the server's loop, checks every dataset tree before deleting a segment.
_TREE_FILES: dict[tuple[str, str], frozenset[str]] = {}
_TREE_FILES_MAX = 100_000


def _tree_files(artifacts: Any, tree: str) -> frozenset[str]:
    key = (str(artifacts.root), tree)
    files = _TREE_FILES.get(key)
    if files is None:
        files = frozenset(e["digest"] for e in _manifest(artifacts, tree)["entries"].values())
        if len(_TREE_FILES) >= _TREE_FILES_MAX:
            _TREE_FILES.clear()
        _TREE_FILES[key] = files
    return files


def _manifest(artifacts: Any, digest: str) -> dict[str, Any]:
    from shipyard.artifacts import read_manifest

    return read_manifest(artifacts, digest)


def purge(services: Any, digests: Iterable[str], trees: Iterable[str] = ()) -> tuple[int, list[dict[str, Any]]]:
    """Delete the blobs nothing references any more; (deleted, kept with what references them).

    ``trees`` are dataset trees whose local copies (hard links into the store, kept by the SDK under
    the home's cache) must go too, or the deleted objects' bytes would live on through the links.
    """
    digests = list(dict.fromkeys(digests))
    with services.db.read() as conn:
        still = referenced(conn, services.artifacts, digests)
    deleted = 0
    kept = []
    for digest in digests:
        if digest in still:
            kept.append({"digest": digest, "referenced_by": still[digest]})
        elif delete_blob(services.artifacts, digest):
            deleted += 1
    cache = os.path.join(os.fspath(services.settings.home), "cache", "datasets")
    for tree in trees:
        shutil.rmtree(os.path.join(cache, hex_of(tree)), ignore_errors=True)
    return deleted, kept


def compact_sqlite(db: Any) -> None:
    """Fold the SQLite write-ahead log into the database and truncate it, so deleted rows' old page
    images do not linger in the WAL file (best effort: a busy reader just delays it)."""
    if db.dialect != "sqlite":
        return
    with contextlib.suppress(Exception):
        raw = db.engine.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.fetchall()
            cursor.close()
        finally:
            raw.close()


def secure_delete(tx: Tx) -> None:
    """On SQLite, overwrite deleted content with zeros instead of leaving it in free pages."""
    if tx.dialect == "sqlite":
        tx.conn.exec_driver_sql("PRAGMA secure_delete = ON")


def delete_by_prediction_ids(tx: Tx, ids: list[str]) -> dict[str, int]:
    """Delete feedback, labels and routing rows of these prediction (or request) ids; counts per table."""
    counts = {"feedback": 0, "labels": 0, "routed": 0}
    tables = {"feedback": t.prediction_feedback, "labels": t.prediction_labels, "routed": t.routed_predictions}
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        for name, table in tables.items():
            counts[name] += tx.conn.execute(table.delete().where(table.c.prediction_id.in_(chunk))).rowcount or 0
    return counts


def count_by_prediction_ids(conn: sa.Connection, ids: list[str]) -> dict[str, int]:
    counts = {"feedback": 0, "labels": 0, "routed": 0}
    tables = {"feedback": t.prediction_feedback, "labels": t.prediction_labels, "routed": t.routed_predictions}
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        for name, table in tables.items():
            counts[name] += conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.prediction_id.in_(chunk))
            ).scalar_one()
    return counts


# -- the plan --------------------------------------------------------------------------------------


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


class Eraser:
    """Plans and carries out one erasure over the assembled services."""

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

    # -- carrying it out ---------------------------------------------------------------------------

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


def journal_summary(report: Erasure) -> dict[str, Any]:
    """What the journal keeps of an erasure: keys, counts and the versions involved — no value."""
    return {
        "subject_keys": report.subject_keys,
        "predictions": report.predictions,
        "segments_rewritten": report.segments_rewritten,
        "segments_deleted": report.segments_deleted,
        "feedback": report.feedback,
        "labels": report.labels,
        "routed": report.routed,
        "datasets": [d.model_dump() for d in report.datasets],
        "model_versions": [f"{m.model}/{m.version}" for m in report.model_versions],
        "monitors": [m.monitor for m in report.monitors],
    }


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


def erasure_of(row: Any) -> Erasure:
    summary = {k: v for k, v in dict(row["summary"] or {}).items() if k in Erasure.model_fields}
    return Erasure(**summary, id=row["id"], actor=row["actor"], created_at=row["created_at"])


# -- stored rows: validation reports and input examples --------------------------------------------


def _scrub_report(report: Any, subject: dict[str, str], positions: set[int]) -> tuple[Any, int]:
    """The report without the subject's failing rows, and how many were dropped."""
    if not isinstance(report, dict) or not isinstance(report.get("checks"), list):
        return report, 0
    dropped = 0
    checks = []
    for check in report["checks"]:
        rows = check.get("failing_rows") if isinstance(check, dict) else None
        if not rows:
            checks.append(check)
            continue
        kept = [
            row
            for row in rows
            if not (
                isinstance(row, dict)
                and (
                    row.get("_row") in positions
                    or all(k in row and value_matches(row[k], w) for k, w in subject.items())
                )
            )
        ]
        dropped += len(rows) - len(kept)
        checks.append({**check, "failing_rows": kept})
    return {**report, "checks": checks}, dropped


def _example_mask(example: Any, subject: dict[str, str]) -> list[int] | None:
    """Rows of a stored ``dataframe`` input example that are the subject's (None: none are)."""
    if not isinstance(example, dict) or example.get("type") != "dataframe":
        return None
    columns = [str(c) for c in example.get("columns", [])]
    if not all(k in columns for k in subject):
        return None
    index = {k: columns.index(k) for k in subject}
    hits = [
        i
        for i, row in enumerate(example.get("data", []))
        if isinstance(row, list) and all(value_matches(row[index[k]], w) for k, w in subject.items())
    ]
    return hits or None


def _without_subject(example: dict[str, Any], subject: dict[str, str]) -> dict[str, Any] | None:
    hits = set(_example_mask(example, subject) or [])
    data = [row for i, row in enumerate(example.get("data", [])) if i not in hits]
    return {**example, "data": data} if data else None


def new_erasure_id() -> str:
    return new_id()
