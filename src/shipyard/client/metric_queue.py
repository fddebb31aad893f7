"""Background batching of metric points, so a training loop never waits on the store or the network.

``log_metric`` validates the point and appends it to a bounded in-memory queue; a daemon thread
writes the queue in batches (one transaction or one HTTP request per run and batch). Transient
failures (server unreachable, 502/503/504) are retried with backoff and the points are kept; when
the queue is full, callers wait for room instead of dropping points. The queue is flushed on
``flush()``, at run end, before any read through the same client, and at process exit.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

from shipyard.core.errors import ShipyardError, Unavailable


class QueuedPoint(NamedTuple):
    """A validated point waiting to be written; attribute-compatible with QueuedPoint, ten times cheaper."""

    key: str
    value: float
    step: int
    timestamp: int


FLUSH_INTERVAL = 0.5
FLUSH_THRESHOLD = 10_000
MAX_BATCH = 20_000


class MetricQueue:
    def __init__(
        self,
        write: Callable[[str, list[QueuedPoint]], None],
        capacity: int = 200_000,
        retry_for: float = 120.0,
    ):
        self._write = write
        self._capacity = capacity
        self._retry_for = retry_for
        self._pending: list[tuple[str, QueuedPoint]] = []
        self._in_flight = 0
        self._cond = threading.Condition()
        self._error: ShipyardError | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="shipyard-metrics", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def put(self, run_id: str, point: QueuedPoint) -> None:
        self.put_many(run_id, [point])

    def put_many(self, run_id: str, points: list[QueuedPoint]) -> None:
        with self._cond:
            self._raise_pending_error()
            while self._pending and len(self._pending) + len(points) > self._capacity:
                self._cond.notify_all()
                self._cond.wait(0.05)
            self._pending.extend((run_id, point) for point in points)
            if len(self._pending) >= FLUSH_THRESHOLD:
                self._cond.notify_all()

    def flush(self) -> None:
        """Return when every point queued so far is stored; raise the first permanent write error."""
        with self._cond:
            while self._pending or self._in_flight:
                if not self._thread.is_alive():
                    self._drain_here()
                    break
                self._cond.notify_all()
                self._cond.wait(0.05)
            self._raise_pending_error()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    if self._closed:
                        return
                    self._cond.wait(FLUSH_INTERVAL)
                if not self._pending:
                    continue
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                self._in_flight = len(batch)
            try:
                self._write_batch(batch)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _drain_here(self) -> None:
        batch, self._pending = self._pending, []
        self._write_batch(batch)

    def _write_batch(self, batch: list[tuple[str, QueuedPoint]]) -> None:
        by_run: dict[str, list[QueuedPoint]] = defaultdict(list)
        for run_id, point in batch:
            by_run[run_id].append(point)
        for run_id, points in by_run.items():
            deadline = time.monotonic() + self._retry_for
            delay = 0.1
            while True:
                try:
                    self._write(run_id, points)
                    break
                except Unavailable as exc:
                    if time.monotonic() > deadline:
                        self._record(exc)
                        break
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except ShipyardError as exc:
                    self._record(exc)
                    break
                except Exception as exc:  # a bug or a broken connection: keep it for the caller
                    self._record(Unavailable(f"metric write failed: {exc}"))
                    break

    def _record(self, error: ShipyardError) -> None:
        with self._cond:
            if self._error is None:
                self._error = error


_LIVE: weakref.WeakSet[MetricQueue] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for queue in list(_LIVE):
        try:
            queue.close()
        except Exception as exc:  # nothing to raise to at exit; say what was lost
            import sys

            print(f"shipyard: metric points could not be written at exit: {exc}", file=sys.stderr)
