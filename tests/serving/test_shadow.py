"""The shadow queue: off the request path, bounded, lowest priority, and honest about what it dropped."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from shipyard.serving.shadow import ShadowQueue


def test_copies_beyond_the_backlog_are_dropped_and_counted() -> None:
    queue = ShadowQueue(max_backlog=2)
    release = threading.Event()
    done: list[int] = []

    def slow(i: int) -> None:
        release.wait(10)
        done.append(i)

    accepted = [queue.submit(slow, i) for i in range(5)]
    assert accepted == [True, True, False, False, False]
    assert queue.stats == {"submitted": 2, "dropped": 3, "done": 0, "failed": 0, "backlog": 2}
    release.set()
    assert queue.drain()
    assert sorted(done) == [0, 1] and queue.stats["done"] == 2 and queue.stats["backlog"] == 0
    assert queue.submit(slow, 9) is True  # room again once the backlog drained
    assert queue.drain()
    queue.close()


def test_a_failing_shadow_is_counted_and_the_queue_keeps_working() -> None:
    queue = ShadowQueue()

    def boom() -> None:
        raise RuntimeError("candidate broke")

    queue.submit(boom)
    queue.submit(lambda: None)
    assert queue.drain()
    assert queue.stats["failed"] == 1 and queue.stats["done"] == 1
    queue.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_shadow_thread_runs_at_the_lowest_priority() -> None:
    queue = ShadowQueue()
    seen: list[int] = []
    queue.submit(lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    assert queue.drain()
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != 19  # only that thread yields
    queue.close()
