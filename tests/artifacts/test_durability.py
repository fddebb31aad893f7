"""Large files stream in bounded memory; crashes and concurrent writers never expose a bad object."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

import pytest

from shipyard.artifacts import ArtifactStore
from shipyard.core.hashing import hash_file

from .helpers import object_files, tmp_files

MiB = 1024 * 1024


def _generated_file(path: str, size: int) -> None:
    """A mostly sparse file with random islands, so it is cheap to create but not all zeros."""
    rng = random.Random(7)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in range(0, size, 16 * MiB):
            f.seek(offset)
            f.write(rng.randbytes(4096))


def test_large_file_streams_in_bounded_memory(store: ArtifactStore, tmp_path) -> None:
    src = str(tmp_path / "big.bin")
    size = 200 * MiB
    _generated_file(src, size)
    expected, _ = hash_file(src)

    tracemalloc.start()
    try:
        digest, stored = store.put_file(src)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        store.get_file(digest, str(tmp_path / "back.bin"))
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (digest, stored) == (expected, size)
    assert put_peak < 20 * MiB, put_peak
    assert get_peak < 20 * MiB, get_peak
    assert os.path.getsize(tmp_path / "back.bin") == size


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"writer exited ({proc.returncode}) before {what}: {err!r}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _tmp_size(root: str) -> int:
    sizes = [os.path.getsize(os.path.join(root, "tmp", name)) for name in tmp_files(root)]
    return max(sizes, default=0)


# The child runs the real store code. Replacing os.fsync with a long sleep only pins *where*
# it dies: after every byte is in the temp file, just before the rename that publishes it.
_HANG_BEFORE_RENAME = """
import os, sys, time
os.fsync = lambda fd: time.sleep(600)
from shipyard.artifacts import ArtifactStore
ArtifactStore(sys.argv[1]).put_file(sys.argv[2])
"""

_PUT_FILE = """
import sys
from shipyard.artifacts import ArtifactStore
ArtifactStore(sys.argv[1]).put_file(sys.argv[2])
"""


def _assert_recovers(root: str, src: str, digest: str) -> None:
    assert object_files(root) == []  # the half-written temp file is never visible as an object
    store = ArtifactStore(root)
    assert not store.has(digest)
    assert store.put_file(src) == (digest, os.path.getsize(src))
    assert store.verify(digest)
    assert len(object_files(root)) == 1
    assert store.sweep_tmp(older_than=0) >= 1  # the crashed writer's leftover is reclaimable
    assert tmp_files(root) == []


def test_sigkill_just_before_publish_leaves_no_object(root: str, tmp_path) -> None:
    src = str(tmp_path / "big.bin")
    _generated_file(src, 64 * MiB)
    digest, size = hash_file(src)
    ArtifactStore(root)  # create the layout so the child's temp file can be watched

    proc = subprocess.Popen([sys.executable, "-c", _HANG_BEFORE_RENAME, root, src], stderr=subprocess.PIPE)
    _wait_for(lambda: _tmp_size(root) == size, proc, "the temp file was complete")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    _assert_recovers(root, src, digest)


def test_sigkill_mid_write_leaves_no_object(root: str, tmp_path) -> None:
    payload = random.Random(1).randbytes(32 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(payload)
    digest, _ = hash_file(str(src))
    # Feed put_file through a FIFO so the child is provably stopped part-way through its copy.
    fifo = str(tmp_path / "feed")
    os.mkfifo(fifo)
    ArtifactStore(root)

    proc = subprocess.Popen([sys.executable, "-c", _PUT_FILE, root, fifo], stderr=subprocess.PIPE)
    with open(fifo, "wb") as feed:
        feed.write(payload[: 8 * MiB])
        feed.flush()
        _wait_for(lambda: _tmp_size(root) >= 4 * MiB, proc, "the copy was under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    _assert_recovers(root, str(src), digest)


@pytest.mark.timeout(120)
def test_concurrent_writers_of_same_content_make_one_valid_object(root: str, tmp_path) -> None:
    payload = random.Random(3).randbytes(8 * MiB)
    paths = []
    for i in range(4):  # separate source files, same bytes
        p = tmp_path / f"copy{i}.bin"
        p.write_bytes(payload)
        paths.append(str(p))
    store = ArtifactStore(root)

    # spawn: the parent may hold threads (fsspec's IO loop) that make fork unsafe. The target is
    # the library's own method, so children need not import this test module.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(ArtifactStore.put_file, [(store, p) for p in paths * 3])

    assert len(set(results)) == 1
    digest, size = results[0]
    assert size == len(payload)
    assert len(object_files(root)) == 1
    assert ArtifactStore(root).verify(digest)
    assert tmp_files(root) == []
