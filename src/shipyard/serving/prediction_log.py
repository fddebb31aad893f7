"""The prediction log: every served prediction, written off the request path to Parquet segments.

``PredictionLog.record`` is what a serving endpoint calls after answering a request. It does O(1)
work — one bounds check and one append under a lock held for microseconds — and never raises: when
the log is full (the writer has fallen behind, or the store is failing) or closed, the request's
predictions are shed and counted in ``stats["dropped"]``, and the prediction itself goes on.

A daemon thread turns queued requests into one row per prediction, groups the rows per
(endpoint, model, version), and writes each group as an append-only, zstd-compressed Parquet
segment to the content-addressed artifact store, then indexes it with one ``prediction_segments``
row (journaled as ``prediction_segment.written``) through the service in
:mod:`shipyard.serving.segments` — directly when embedded, over the API from a remote client
(``PredictionLog.for_client``). A segment is written when
``segment_rows`` rows of one group have accumulated, when a group's oldest row is
``flush_interval`` seconds old, on ``flush()`` and on ``close()``. A failed write is counted in
``stats["errors"]``; its rows stay buffered (still counting against ``max_queue``) and are retried
on the next flush.

``read_predictions`` selects segments by endpoint, model, version and time range from the table and
reads them with DuckDB. See docs/prediction-log.md.
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import numbers
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from shipyard.core.time import now_ms

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from shipyard.artifacts import ArtifactStore
    from shipyard.client import Client
    from shipyard.store.database import Database

log = logging.getLogger(__name__)

ACTOR = "prediction-log"
INPUT_PREFIX = "in."
# The columns every segment has, in order; ``in.<column>`` columns follow them.
BASE_COLUMNS = (
    "prediction_id",
    "request_id",
    "row",
    "endpoint",
    "model",
    "version",
    "variant",
    "ts",
    "latency_ms",
    "inputs",
    "output",
    "prediction",
    "routing",
)


class _Request(NamedTuple):
    """One recorded request, as handed to ``record``; expanded into rows by the writer thread."""

    endpoint: str
    model: str
    version: int
    variant: str | None
    request_id: str
    inputs: list[dict[str, Any]]
    outputs: list[Any]
    latency_ms: float
    routing: dict[str, Any] | None
    ts: int


class _Group:
    """The buffered rows of one (endpoint, model, version), waiting to become segments."""

    __slots__ = ("rows", "since")

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.since = time.monotonic()  # when the oldest buffered row arrived


class PredictionLog:
    def __init__(
        self,
        db: Database | None,
        artifacts: ArtifactStore,
        *,
        register: Callable[..., Any] | None = None,
        max_queue: int = 100_000,
        segment_rows: int = 10_000,
        flush_interval: float = 5.0,
    ) -> None:
        if max_queue < 1 or segment_rows < 1 or flush_interval <= 0:
            raise ValueError("max_queue and segment_rows must be ≥ 1 and flush_interval > 0")
        self.db = db
        self.artifacts = artifacts
        if register is None:
            if db is None:
                raise ValueError("give the store (db) or a register callable")
            from shipyard.serving.segments import PredictionSegmentService

            register = PredictionSegmentService(db).record_segment
        self._register = register
        self.max_queue = max_queue
        self.segment_rows = segment_rows
        self.flush_interval = flush_interval

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[_Request] = deque()
        self._pending_rows = 0
        self._held = 0  # rows accepted and not yet written: pending + buffered in groups
        self._closed = False
        self._stopping = False
        self._flush_requested = 0
        self._flush_done = 0
        self._failed_rows = 0  # rows the last write pass had to keep because a write failed
        self._counters = {"recorded": 0, "dropped": 0, "written_rows": 0, "segments": 0, "errors": 0}
        self._groups: dict[tuple[str, str, int], _Group] = {}  # only touched by the writer thread
        self._thread = threading.Thread(target=self._run, name="shipyard-prediction-log", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    @classmethod
    def for_client(cls, client: Client, **options: Any) -> PredictionLog:
        """A log writing through ``client``: straight to its store when embedded; when remote, segments
        are uploaded as blobs and indexed through the server's API."""
        if not client.is_remote:
            services = client._backend.services
            return cls(services.db, services.artifacts, **options)

        def register(**segment: Any) -> None:
            client._call("predictions", "record_segment", **segment)

        return cls(None, client.artifacts, register=register, **options)

    # -- the request path ------------------------------------------------------------------------

    def record(
        self,
        *,
        endpoint: str,
        model: str,
        version: int,
        variant: str | None,
        request_id: str,
        inputs: list[dict[str, Any]],
        outputs: list[Any],
        latency_ms: float,
        routing: dict[str, Any] | None = None,
        ts: int | None = None,
    ) -> bool:
        """Queue one request's predictions (one per input row); False when they were shed instead.

        Never blocks on I/O and never raises. The lists are kept by reference until written: do not
        mutate them afterwards.
        """
        try:
            n = len(inputs)
            request = _Request(
                endpoint, model, version, variant, request_id, inputs, outputs, latency_ms, routing,
                now_ms() if ts is None else ts,
            )  # fmt: skip
            with self._lock:
                if self._closed or self._held + n > self.max_queue:
                    self._counters["dropped"] += n
                    return False
                self._pending.append(request)
                self._pending_rows += n
                self._held += n
                self._counters["recorded"] += n
                if self._pending_rows >= self.segment_rows:
                    self._wake.notify_all()  # the writer and any flush() callers share the condition
            return True
        except Exception:  # a prediction must never fail because of its log
            try:
                with self._lock:
                    self._counters["dropped"] += 1
            except Exception:
                pass
            return False

    # -- control ---------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Counters in predictions (rows), except ``segments`` and ``errors`` (failed segment writes)."""
        with self._lock:
            return dict(self._counters, queued=self._held)

    def flush(self, timeout: float | None = None) -> bool:
        """Write every prediction queued so far. True when nothing accepted before the call is left
        unwritten; False on timeout or when a write failed (those rows are retried later)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if not self._thread.is_alive():
                return self._held == 0
            self._flush_requested += 1
            ticket = self._flush_requested
            self._wake.notify_all()  # the writer and any flush() callers share the condition
            while self._flush_done < ticket:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._wake.wait(remaining)
            return self._failed_rows == 0

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting predictions, write what is queued, and stop the writer thread."""
        with self._lock:
            self._closed = True
        ok = self.flush(timeout)
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        self._thread.join(timeout)
        _LIVE.discard(self)
        return ok

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        tick = min(self.flush_interval, 1.0)
        while True:
            with self._lock:
                if not (self._pending_rows >= self.segment_rows or self._flush_requested > self._flush_done):
                    if self._stopping:
                        return
                    self._wake.wait(tick)
                if self._stopping and not self._pending and self._flush_requested == self._flush_done:
                    return
                ticket = self._flush_requested
                batch = list(self._pending)
                self._pending.clear()
                self._pending_rows = 0
            try:
                self._absorb(batch)
                self._write_due(force=ticket > self._flush_done)
            except Exception:  # never let the thread die: the log would silently fill up and shed
                log.exception("prediction log writer failed")
                with self._lock:
                    self._counters["errors"] += 1
            finally:
                if ticket > self._flush_done:
                    with self._lock:
                        self._flush_done = ticket
                        self._wake.notify_all()

    def _absorb(self, batch: list[_Request]) -> None:
        """Expand requests into rows and buffer them per (endpoint, model, version).

        A request that cannot be expanded (say, a latency that is not a number) is shed and counted
        as dropped, so it can neither wedge a segment nor keep holding room in the queue.
        """
        for req in batch:
            try:
                key = (str(req.endpoint), str(req.model), int(req.version))
                rows = [_row(req, i, row) for i, row in enumerate(req.inputs)]
            except Exception as exc:
                log.warning("prediction log: dropping an unloggable request %r: %s", req.request_id, exc)
                with self._lock:
                    self._held -= len(req.inputs)
                    self._counters["recorded"] -= len(req.inputs)
                    self._counters["dropped"] += len(req.inputs)
                continue
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group()
            group.rows.extend(rows)

    def _write_due(self, force: bool) -> None:
        failed = 0
        now = time.monotonic()
        for key in list(self._groups):
            group = self._groups[key]
            due = force or now - group.since >= self.flush_interval
            while group.rows and (len(group.rows) >= self.segment_rows or due):
                chunk = group.rows[: self.segment_rows]
                try:
                    self._write_segment(key, chunk)
                except Exception as exc:
                    log.warning("prediction log: writing a segment of %s failed (will retry): %s", key, exc)
                    with self._lock:
                        self._counters["errors"] += 1
                    failed += len(group.rows)
                    break
                del group.rows[: len(chunk)]
                with self._lock:
                    self._held -= len(chunk)
                    self._counters["written_rows"] += len(chunk)
                    self._counters["segments"] += 1
            if not group.rows:
                del self._groups[key]
        with self._lock:
            self._failed_rows = failed

    def _write_segment(self, key: tuple[str, str, int], rows: list[dict[str, Any]]) -> None:
        import pyarrow.parquet as pq

        endpoint, model, version = key
        table = _to_table(rows)
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        digest, _ = self.artifacts.put_bytes(buf.getvalue())
        first_ts = min(r["ts"] for r in rows)
        last_ts = max(r["ts"] for r in rows)
        self._register(
            endpoint=endpoint,
            model_name=model,
            model_version=version,
            digest=digest,
            rows=len(rows),
            first_ts=first_ts,
            last_ts=last_ts,
        )


# -- rows to Arrow ---------------------------------------------------------------------------------


def _row(req: _Request, i: int, inputs: Any) -> dict[str, Any]:
    output = req.outputs[i] if i < len(req.outputs) else None
    return {
        "prediction_id": f"{req.request_id}-{i}",
        "request_id": str(req.request_id),
        "row": i,
        "endpoint": str(req.endpoint),
        "model": str(req.model),
        "version": int(req.version),
        "variant": None if req.variant is None else str(req.variant),
        "ts": int(req.ts),
        "latency_ms": float(req.latency_ms),
        "inputs": _json(inputs),
        "output": _json(output),
        "prediction": _number(output),
        "routing": None if req.routing is None else _json(req.routing),
        "_raw": inputs,
    }


def _json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), allow_nan=True)


def _number(value: Any) -> float | None:
    """The output as a float when it is a real number (or a one-element list of one), else None."""
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real too
        return None
    try:
        return float(value)
    except (OverflowError, ValueError):
        return None


def _scalar_kind(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float"
    if isinstance(value, str):
        return "str"
    return None


def _to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The segment's Arrow table: the base columns, then ``in.<column>`` for scalar input columns.

    An input column is flattened when every value in the segment is a scalar of one kind (or
    missing): numbers become float64, booleans bool, strings string. Anything else is only in the
    ``inputs`` JSON column.
    """
    import pyarrow as pa

    columns: dict[str, pa.Array] = {
        "prediction_id": pa.array([r["prediction_id"] for r in rows], pa.string()),
        "request_id": pa.array([r["request_id"] for r in rows], pa.string()),
        "row": pa.array([r["row"] for r in rows], pa.int32()),
        "endpoint": pa.array([r["endpoint"] for r in rows], pa.string()),
        "model": pa.array([r["model"] for r in rows], pa.string()),
        "version": pa.array([r["version"] for r in rows], pa.int32()),
        "variant": pa.array([r["variant"] for r in rows], pa.string()),
        "ts": pa.array([r["ts"] for r in rows], pa.int64()),
        "latency_ms": pa.array([r["latency_ms"] for r in rows], pa.float64()),
        "inputs": pa.array([r["inputs"] for r in rows], pa.string()),
        "output": pa.array([r["output"] for r in rows], pa.string()),
        "prediction": pa.array([r["prediction"] for r in rows], pa.float64()),
        "routing": pa.array([r["routing"] for r in rows], pa.string()),
    }
    kinds: dict[str, str | None] = {}
    for r in rows:
        raw = r["_raw"]
        if not isinstance(raw, dict):
            continue
        for name, value in raw.items():
            kind = _scalar_kind(value)
            seen = kinds.get(name, "null")
            if kind is None or (seen not in ("null", kind) and kind != "null"):
                kinds[name] = None
            elif name not in kinds or seen == "null":
                kinds[name] = kind
    types = {"float": pa.float64(), "bool": pa.bool_(), "str": pa.string(), "null": pa.null()}
    for name, kind in kinds.items():
        column = INPUT_PREFIX + str(name)
        if kind is None or column in columns:
            continue
        values = [r["_raw"].get(name) if isinstance(r["_raw"], dict) else None for r in rows]
        try:
            if kind == "float":
                values = [None if v is None else float(v) for v in values]
            columns[column] = pa.array(values, types[kind])
        except (OverflowError, ValueError, pa.ArrowException):
            continue  # e.g. an integer too large for float64: the JSON column still has it
    return pa.table(columns)


# -- reading ---------------------------------------------------------------------------------------


def list_segments(
    db: Database,
    endpoint: str | None = None,
    model: str | None = None,
    version: int | None = None,
    since: int | None = None,
    until: int | None = None,
) -> list[dict[str, Any]]:
    """The segments that may hold predictions of the selection in ``[since, until)`` (epoch ms)."""
    from shipyard.serving.segments import PredictionSegmentService

    segments = PredictionSegmentService(db).list_segments(endpoint, model, version, since, until)
    return [segment.model_dump() for segment in segments]


def read_predictions(
    db: Database,
    artifacts: ArtifactStore,
    endpoint: str | None = None,
    model: str | None = None,
    version: int | None = None,
    since: int | None = None,
    until: int | None = None,
) -> pd.DataFrame:
    """Logged predictions with ``since <= ts < until`` (epoch ms), ordered by ts then prediction id.

    Segments are chosen from ``prediction_segments``; their Parquet objects are read with DuckDB —
    straight from the object files for a local artifact store, through Arrow otherwise. Segments
    whose ``in.<column>`` columns differ are combined by name (DuckDB widens conflicting types).
    """
    import pandas as pd

    query = _query(db, artifacts, endpoint, model, version, since, until, order=True)
    if query is None:
        return pd.DataFrame({name: pd.Series(dtype=_EMPTY_DTYPES[name]) for name in BASE_COLUMNS})
    con, sql, params = query
    try:
        return con.execute(sql, params).df()
    finally:
        con.close()


def iter_predictions(
    db: Database,
    artifacts: ArtifactStore,
    endpoint: str | None = None,
    model: str | None = None,
    version: int | None = None,
    since: int | None = None,
    until: int | None = None,
    batch_rows: int = 100_000,
    columns: list[str] | None = None,
    exclude: list[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """The same rows as :func:`read_predictions`, unordered, as DataFrames of at most ``batch_rows``:
    a window of any size is read in bounded memory (DuckDB streams the Parquet files). ``columns``
    narrows the read to those columns, ``exclude`` leaves some out (Parquet is columnar: the others are
    never decoded)."""
    query = _query(db, artifacts, endpoint, model, version, since, until, order=False, columns=columns, exclude=exclude)
    if query is None:
        return
    con, sql, params = query
    try:
        reader = con.sql(sql, params=params).to_arrow_reader(batch_rows)
        for batch in reader:
            if batch.num_rows:
                yield batch.to_pandas()
    finally:
        con.close()


def _query(
    db: Database,
    artifacts: ArtifactStore,
    endpoint: str | None,
    model: str | None,
    version: int | None,
    since: int | None,
    until: int | None,
    order: bool,
    columns: list[str] | None = None,
    exclude: list[str] | None = None,
) -> tuple[Any, str, dict[str, Any]] | None:
    import duckdb

    segments = list_segments(db, endpoint, model, version, since, until)
    if not segments:
        return None
    digests = list(dict.fromkeys(s["digest"] for s in segments))
    conditions, params = [], {}
    if since is not None:
        conditions.append("ts >= $since")
        params["since"] = int(since)
    if until is not None:
        conditions.append("ts < $until")
        params["until"] = int(until)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    con = duckdb.connect()
    if artifacts.is_local:
        params["paths"] = [artifacts.local_path(d) for d in digests]
        source = "read_parquet($paths, union_by_name = true)"
    else:
        import pyarrow.parquet as pq

        names = []
        for i, digest in enumerate(digests):
            name = f"segment_{i}"
            con.register(name, pq.read_table(io.BytesIO(artifacts.read_bytes(digest))))
            names.append(f"SELECT * FROM {name}")
        source = f"({' UNION ALL BY NAME '.join(names)})"

    def quoted(names: list[str]) -> str:
        return ", ".join('"' + c.replace('"', '""') + '"' for c in names)

    selected = quoted(columns) if columns is not None else f"* EXCLUDE ({quoted(exclude)})" if exclude else "*"
    sql = f"SELECT {selected} FROM {source}{where}" + (" ORDER BY ts, request_id, row" if order else "")
    return con, sql, params


_EMPTY_DTYPES = {
    "prediction_id": "object",
    "request_id": "object",
    "row": "int32",
    "endpoint": "object",
    "model": "object",
    "version": "int32",
    "variant": "object",
    "ts": "int64",
    "latency_ms": "float64",
    "inputs": "object",
    "output": "object",
    "prediction": "float64",
    "routing": "object",
}


# -- process exit ----------------------------------------------------------------------------------

_LIVE: weakref.WeakSet[PredictionLog] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    for plog in list(_LIVE):
        try:
            plog.close(timeout=10)
        except Exception as exc:  # nothing to raise to at exit
            log.warning("prediction log: could not flush at exit: %s", exc)
