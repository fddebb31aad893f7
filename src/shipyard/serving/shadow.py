"""The shadow queue: copies of live requests answered by a candidate off the request path.

Shadow predictions run on one dedicated thread with a bounded backlog, after the primary's response
has been sent. The thread runs at the lowest CPU priority (nice 19, Linux), so on a busy machine the
kernel gives the primary's threads the CPU first; when the shadow falls behind, copies are dropped
and counted instead of queued without bound, so the primary's latency and memory do not depend on
the candidate. Coverage is the price: ``counters`` says how many copies were dropped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("shipyard.serving.shadow")

__all__ = ["ShadowQueue"]


class ShadowQueue:
    def __init__(self, max_backlog: int = 64):
        self.max_backlog = max_backlog
        self._lock = threading.Lock()
        self._backlog = 0
        self._backlogs: dict[Any, int] = {}  # per key (the app's endpoint names)
        self._executor: ThreadPoolExecutor | None = None
        self.counters = {"submitted": 0, "dropped": 0, "done": 0, "failed": 0}

    def submit(self, fn: Callable[..., Any], *args: Any, key: Any = None) -> bool:
        """Run ``fn(*args)`` on the shadow thread; False (and counted) when the backlog is full.

        ``key`` (the endpoint) only sorts the backlog: :meth:`backlog_of` tells how many of its copies wait.
        """
        with self._lock:
            if self._backlog >= self.max_backlog:
                self.counters["dropped"] += 1
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="shipyard-shadow", initializer=_lowest_priority
                )
            self._backlog += 1
            self._backlogs[key] = self._backlogs.get(key, 0) + 1
            self.counters["submitted"] += 1
        self._executor.submit(self._run, fn, args, key)
        return True

    def backlog_of(self, key: Any) -> int:
        """Copies submitted with ``key`` that were not answered yet (waiting or running)."""
        return self._backlogs.get(key, 0)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], key: Any = None) -> None:
        try:
            fn(*args)
            outcome = "done"
        except Exception:
            log.exception("shadow prediction failed")
            outcome = "failed"
        with self._lock:
            self._backlog -= 1
            left = self._backlogs[key] - 1
            if left:
                self._backlogs[key] = left
            else:
                del self._backlogs[key]
            self.counters[outcome] += 1

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted copy was answered (tests, shutdown)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._backlog == 0:
                    return True
            time.sleep(0.005)
        return False

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters, backlog=self._backlog)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _lowest_priority() -> None:
    """Nice this thread to 19: Linux schedules threads individually, so only the shadow yields."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted: normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
