"""The stored bytes and rows an erasure reads, rewrites and deletes.

Reading prediction-log segments, monitor samples and dataset files (Parquet, CSV, JSON lines) as
Arrow tables and writing them back in their own format; deleting blobs, but only those nothing in
the store still references (:func:`referenced`, :func:`purge`); deleting and counting the feedback,
labels and routing rows of prediction ids; and the SQLite hygiene that makes a deletion stick
(``secure_delete``, a WAL checkpoint). Retention uses the same functions.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.hashing import hex_of
from shipyard.governance.privacy_entities import ERASED_BY_TAG
from shipyard.store import schema as t
from shipyard.store.database import Tx

CHUNK = 500  # ids per IN (...) clause
SEGMENT_ROW_GROUP = 100_000  # as batch logs: readers stream a segment by row group


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
