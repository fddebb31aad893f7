"""Adaptive micro-batching: coalesce concurrent single requests into one model call.

Most model libraries (sklearn, xgboost, lightgbm) have a large fixed cost per ``predict`` call and a
small cost per row, so under concurrent load predicting 32 rows at once costs little more than one.
:class:`MicroBatcher` sits between the request handlers and the model::

    batcher = MicroBatcher(model.unchecked("predict"), max_batch_size=32, max_wait_ms=2.0)
    output = await batcher.submit(frame)   # this request's rows of the batched output

Policy (one consumer task per batcher, on the event loop that first calls :meth:`~MicroBatcher.submit`):

1. The consumer takes the oldest queued request; a request of ``max_batch_size`` rows or more (or one
   that cannot be concatenated: a 0-d array, an empty input, anything but a DataFrame/ndarray) is
   predicted alone.
2. It adds every queued request that is *compatible* (a DataFrame with the same columns and dtypes,
   or an ndarray with the same dtype and trailing shape) and still fits in ``max_batch_size`` rows.
   Incompatible requests stay queued, in order, for a later batch: they are never concatenated.
3. Adaptive wait: if no batch is running, the batch is dispatched at once, so a lone request is never
   delayed. If batches are running (the server is under load) and a slot is free, it waits for more
   requests until ``max_wait_ms`` after the batch's first request arrived, or the batch is full. If
   all ``max_concurrency`` slots are busy it keeps filling until one frees up, since it could not be
   dispatched earlier anyway.
4. The batch is concatenated, predicted once (in a worker thread with ``run_in_thread``, so the event
   loop keeps accepting requests), and the output (ndarray, DataFrame, Series or list) is split back
   by row counts. If anything in that raises, every waiter of the batch gets the exception; other
   batches are unaffected. A waiter that is cancelled (its client went away) is skipped if its batch
   has not started, and its rows are dropped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MicroBatcher"]

log = logging.getLogger("shipyard.serving.batching")


@dataclass(eq=False)
class _Item:
    data: Any
    rows: int
    key: Hashable | None  # None: never shares a batch
    future: asyncio.Future[Any]
    arrived: float = field(default_factory=time.monotonic)


def _batch_key(data: Any) -> tuple[Hashable | None, int]:
    """What must match for two inputs to share a batch, and the input's row count."""
    if isinstance(data, pd.DataFrame):
        # exact dtypes, not just kinds: concatenating int64 with float64 would change what the model sees
        return ("frame", tuple(data.columns), tuple(data.dtypes)), len(data)
    if isinstance(data, np.ndarray) and data.ndim >= 1:
        return ("array", data.dtype.str, data.shape[1:]), data.shape[0]
    return None, 1


def _concat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    dtypes = set(first.dtypes)
    if len(dtypes) == 1 and isinstance(next(iter(dtypes)), np.dtype) and next(iter(dtypes)).kind in "biuf":
        # one numeric block: stacking the raw arrays is several times cheaper than pd.concat's alignment
        return pd.DataFrame(np.concatenate([p.to_numpy() for p in parts]), columns=first.columns)
    return pd.concat(parts, ignore_index=True)


def _split(output: Any, items: list[_Item], total: int) -> list[Any]:
    """``output`` cut into each item's rows; ValueError if it has not one row per input row."""
    if isinstance(output, np.ndarray | pd.DataFrame | pd.Series | list | tuple):
        length = output.shape[0] if isinstance(output, np.ndarray) and output.ndim else len(output)
    else:
        raise TypeError(f"cannot split a batched model output of type {type(output).__name__} by rows")
    if length != total:
        raise ValueError(f"the model returned {length} rows for a batch of {total} input rows")
    parts: list[Any] = []
    start = 0
    frame_like = isinstance(output, pd.DataFrame | pd.Series)
    # a model that echoes the (fresh 0..n-1) batch index gets each request's own index back
    reindex = frame_like and len(items) > 1 and output.index.equals(pd.RangeIndex(total))
    for item in items:
        stop = start + item.rows
        if frame_like:
            part = output.iloc[start:stop]
            if reindex and isinstance(item.data, pd.DataFrame):
                part = part.set_axis(item.data.index, axis=0)
        elif isinstance(output, tuple):
            part = list(output[start:stop])
        else:
            part = output[start:stop]
        parts.append(part)
        start = stop
    return parts


class MicroBatcher:
    """Coalesces concurrent single requests into one model call (adaptive: a lone request is not delayed
    beyond max_wait_ms; under load batches fill up to max_batch_size rows).

    ``predict`` takes a DataFrame or ndarray and returns one output row per input row. At most
    ``max_concurrency`` batches run at once. See the module docstring for the exact policy.
    """

    def __init__(
        self,
        predict: Callable[[Any], Any],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        run_in_thread: bool = True,
        max_concurrency: int = 2,
    ):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must not be negative")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.run_in_thread = run_in_thread
        self.max_concurrency = max_concurrency
        self._queue: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None  # set on every arrival and every finished batch
        self._consumer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        self._batches = 0
        self._rows = 0
        self._max_seen = 0

    # ------------------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, float | int]:
        """Batches dispatched, rows predicted, their mean and the largest batch (in rows) so far."""
        return {
            "batches": self._batches,
            "rows": self._rows,
            "mean_batch_size": self._rows / self._batches if self._batches else 0.0,
            "max_batch_size": self._max_seen,
        }

    @property
    def queue_length(self) -> int:
        """Requests waiting for a batch (not yet dispatched to the model)."""
        return len(self._queue)

    async def submit(self, data: pd.DataFrame | np.ndarray) -> Any:
        """Predict ``data`` as part of a batch; return its slice of the output (the model's own type)."""
        if self._closed:
            raise RuntimeError("this MicroBatcher is closed")
        self._ensure_consumer()
        assert self._wakeup is not None and self._loop is not None
        key, rows = _batch_key(data)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.append(_Item(data, rows, key, future))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Stop taking requests, fail the queued ones, and wait for the running batches to finish."""
        self._closed = True
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(RuntimeError("the MicroBatcher was closed before this request ran"))
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    # ------------------------------------------------------------------------------------------

    def _ensure_consumer(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed() and self._consumer and not self._consumer.done():
                raise RuntimeError("a MicroBatcher serves one event loop; this one is bound to another")
            # a fresh loop (e.g. a new asyncio.run in tests): start over on it
            self._loop, self._wakeup, self._queue, self._running = loop, asyncio.Event(), deque(), set()
            self._consumer = None
        if self._consumer is None or self._consumer.done():
            self._consumer = loop.create_task(self._consume(), name="shipyard-microbatcher")

    def _pop_live(self) -> _Item | None:
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():  # cancelled waiters are dropped before they cost a row
                return item
        return None

    def _take_compatible(self, batch: list[_Item], rows: int) -> int:
        """Move every queued live item that matches ``batch`` and still fits into it; keep the rest in order."""
        key = batch[0].key
        kept: deque[_Item] = deque()
        while self._queue:
            item = self._queue.popleft()
            if item.future.done():
                continue
            if item.key == key and rows + item.rows <= self.max_batch_size:
                batch.append(item)
                rows += item.rows
            else:
                kept.append(item)
        self._queue = kept
        return rows

    async def _consume(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            first = self._pop_live()
            if first is None:
                wakeup.clear()
                await wakeup.wait()
                continue
            batch = [first]
            rows = first.rows
            if first.key is not None and 0 < rows < self.max_batch_size:
                deadline = first.arrived + self.max_wait
                while True:
                    wakeup.clear()  # before scanning: anything appended after the scan sets it again
                    rows = self._take_compatible(batch, rows)
                    if rows >= self.max_batch_size:
                        break
                    slot_free = len(self._running) < self.max_concurrency
                    if slot_free and not self._running:
                        break  # idle server: waiting would only add latency
                    remaining = deadline - time.monotonic()
                    if slot_free and remaining <= 0:
                        break
                    try:
                        # with no free slot the batch keeps filling until a running one finishes
                        async with asyncio.timeout(remaining if slot_free else None):
                            await wakeup.wait()
                    except TimeoutError:
                        pass
            while len(self._running) >= self.max_concurrency:
                wakeup.clear()
                await wakeup.wait()
            task = asyncio.get_running_loop().create_task(self._run(batch, rows))
            self._running.add(task)

    async def _run(self, batch: list[_Item], rows: int) -> None:
        self._batches += 1
        self._rows += rows
        self._max_seen = max(self._max_seen, rows)
        try:
            if len(batch) == 1:
                # a batch of one is exactly the unbatched call: its output is handed back as it is
                work: Callable[[], list[Any]] = lambda: [self.predict(batch[0].data)]  # noqa: E731
            else:

                def work() -> list[Any]:
                    # concatenation and splitting happen in the worker thread too: they scale with the batch
                    output = self.predict(_concat([item.data for item in batch]))
                    return _split(output, batch, rows)

            parts = await asyncio.to_thread(work) if self.run_in_thread else work()
        except BaseException as exc:  # every waiter of the batch gets the failure; the batcher goes on
            if len(batch) > 1 and not isinstance(exc, asyncio.CancelledError):
                log.debug("batch of %d requests (%d rows) failed: %r", len(batch), rows, exc)
            for item in batch:
                if not item.future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        item.future.cancel()
                    else:
                        item.future.set_exception(exc)
            if not isinstance(exc, Exception | asyncio.CancelledError):
                raise
        else:
            for item, part in zip(batch, parts, strict=True):
                if not item.future.done():
                    item.future.set_result(part)
        finally:
            self._running.discard(asyncio.current_task())  # type: ignore[arg-type]
            if self._wakeup is not None:
                self._wakeup.set()
