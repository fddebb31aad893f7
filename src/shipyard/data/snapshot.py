"""Snapshot a file or directory into the artifact store as one tree, re-hashing only what changed.

One pass per file: the store hashes while it copies (and skips the copy when the object already
exists); files run in parallel on a thread pool, since hashlib and file I/O release the GIL. The
stat cache (:mod:`shipyard.data.statcache`) supplies the digests of files unchanged since they were
last stored, so an unchanged directory is re-snapshotted from ``stat`` calls alone. The manifest is
stored last: until then nothing names the snapshot, so a crash part-way leaves only unreferenced
objects, never a partial tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from shipyard.artifacts.store import ArtifactStore
from shipyard.artifacts.trees import MODE_EXEC, MODE_FILE, TREE_KIND, BlobStore, TreeEntry, _scan
from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.hashing import CHUNK, PREFIX, canonical_json, hash_stream
from shipyard.data.statcache import RACY_NS, FileStat, StatCache

# Two cores hash at ~2 GB/s together; extra threads hide disk and network latency.
WORKERS = min(16, 2 * (os.cpu_count() or 2))


@dataclass(frozen=True)
class Snapshot:
    """A stored tree and what it took: ``hashed_files`` were read; the rest came from the stat cache."""

    digest: str
    entries: dict[str, TreeEntry] = field(repr=False)
    size: int
    hashed_files: int
    hashed_bytes: int
    seconds: float
    source: str

    @property
    def file_count(self) -> int:
        return len(self.entries)

    @property
    def files(self) -> list[str]:
        return list(self.entries)

    @property
    def cached_files(self) -> int:
        return self.file_count - self.hashed_files


@dataclass(frozen=True)
class _File:
    rel: str
    path: str  # the real path (symlinks inside the tree resolved)
    mode: int
    stat: FileStat


def list_files(path: str | os.PathLike[str], exclude: Sequence[str] = ()) -> tuple[str, list[_File]]:
    """(absolute source path, files with their stat); a single file is a tree of one entry.

    Files whose real path lies under one of the ``exclude`` directories are left out (the client
    passes its Shipyard home, so ``shipyard data add .`` does not snapshot the store into itself).
    """
    source = os.path.abspath(os.fspath(path))
    if os.path.isdir(source):
        found, _ = _scan(source)  # same rules as artifact trees: symlinks must stay inside, no specials
        skip = tuple(os.path.realpath(d).rstrip(os.sep) + os.sep for d in exclude)
        files = []
        for f in found:
            if skip and f.path.startswith(skip):
                continue
            files.append(_File(f.rel, f.path, f.mode, FileStat.of(os.stat(f.path))))
        return source, files
    if os.path.isfile(source):
        st = os.stat(source)
        real = os.path.realpath(source)
        mode = MODE_EXEC if st.st_mode & 0o111 else MODE_FILE
        return source, [_File(os.path.basename(source), real, mode, FileStat.of(st))]
    if os.path.lexists(source):
        raise InvalidInput(f"not a regular file or directory: {source}", field="path")
    raise NotFound(f"no such file or directory: {source}", field="path")


def _copy(src: int, dst: int, size: int, buf: memoryview) -> int:
    """Copy ``size`` bytes from offset 0; in-kernel where the OS can, else through ``buf``. Returns bytes copied."""
    offset = 0
    in_kernel = hasattr(os, "copy_file_range")
    while offset < size:
        if in_kernel:
            try:
                copied = os.copy_file_range(src, dst, size - offset, offset, offset)
            except OSError:  # filesystem or kernel without support: fall back
                in_kernel = False
                continue
        else:
            copied = os.preadv(src, [buf], offset) if hasattr(os, "preadv") else 0
            if copied:
                os.pwrite(dst, buf[:copied], offset)
        if copied == 0:
            break
        offset += copied
    return offset


def _ingest_local(store: ArtifactStore, f: _File) -> tuple[str, int]:
    """Hash the file, then (only for new content) copy it in-kernel into the store's tmp/ and rename it into place.

    The copy is taken after hashing, so the caller compares the file's stat before and after; a
    file modified recently enough that its timestamp could hide a write (see statcache.RACY_NS) has
    its copy hashed again, so an object's content always matches its name.
    """
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    with open(f.path, "rb", buffering=0) as src:
        while n := src.readinto(buf):
            h.update(view[:n])
            size += n
        digest = PREFIX + h.hexdigest()
        final = store._object_path(digest)  # the store's own layout; same package family, kept private there
        if os.path.isfile(final):
            return digest, size
        os.makedirs(store._tmp_dir(), exist_ok=True)  # someone may have cleaned tmp/ under us
        fd, tmp = tempfile.mkstemp(dir=store._tmp_dir(), prefix="snap-", suffix=".part")
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                if _copy(src.fileno(), out.fileno(), size, view) != size:
                    raise InvalidInput(f"{f.path} changed while it was being snapshotted; try again", field="path")
                if f.stat.mtime_ns >= time.time_ns() - RACY_NS:
                    with open(tmp, "rb") as check:
                        if hash_stream(check)[0] != digest:
                            raise InvalidInput(
                                f"{f.path} changed while it was being snapshotted; try again", field="path"
                            )
                # Checked before the object gets its name: a write after hashing changes the stat.
                if FileStat.of(os.fstat(src.fileno())) != f.stat:
                    raise InvalidInput(f"{f.path} changed while it was being snapshotted; try again", field="path")
                # Without fsync a power loss after the rename could leave a named but empty object.
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)  # identical concurrent writers race harmlessly: same bytes
            tmp = ""
        finally:
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    return digest, size


def _store_file(artifacts: BlobStore, f: _File) -> tuple[str, int, int]:
    """Store one file; (digest, size, hashed_at_ns). Refuses a file that changed meanwhile."""
    hashed_at = time.time_ns()
    try:
        if isinstance(artifacts, ArtifactStore) and artifacts.is_local:
            digest, size = _ingest_local(artifacts, f)
        else:
            digest, size = artifacts.put_file(f.path)
        after = FileStat.of(os.stat(f.path))
    except FileNotFoundError:
        raise InvalidInput(f"{f.path} disappeared while it was being snapshotted", field="path") from None
    except PermissionError:
        raise InvalidInput(f"{f.path} is not readable", field="path") from None
    if after != f.stat or size != f.stat.size:
        raise InvalidInput(f"{f.path} changed while it was being snapshotted; try again", field="path")
    return digest, size, hashed_at


def snapshot_path(
    path: str | os.PathLike[str],
    artifacts: BlobStore,
    cache: StatCache | None = None,
    *,
    workers: int = WORKERS,
    exclude: Sequence[str] = (),
    on_plan: Callable[[int, int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Snapshot:
    """Store ``path`` (a file or a directory) as a tree in ``artifacts``; its digest names the content.

    ``on_plan(files, bytes)`` is called once with what must be hashed; ``progress(bytes)`` after
    each file is stored (both in the caller's thread).
    """
    started = time.perf_counter()
    source, files = list_files(path, exclude)
    cached = cache.lookup_under(os.path.realpath(source)) if cache is not None else {}
    # A cheap existence check keeps the cache honest if objects were removed from a local store.
    check_local = bool(getattr(artifacts, "is_local", False))

    entries: dict[str, TreeEntry] = {}
    todo: list[_File] = []
    for f in files:
        hit = cached.get(f.path)
        if hit is not None and hit.trusted_for(f.stat) and (not check_local or artifacts.has(hit.digest)):
            entries[f.rel] = TreeEntry(digest=hit.digest, size=f.stat.size, mode=f.mode)
        else:
            todo.append(f)

    if on_plan is not None:
        on_plan(len(todo), sum(f.stat.size for f in todo))
    learned: list[tuple[str, FileStat, str, int]] = []
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))), thread_name_prefix="shipyard-snap") as ex:
            futures = {ex.submit(_store_file, artifacts, f): f for f in todo}
            pending = set(futures)
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_EXCEPTION, timeout=0.1)
                    for future in finished:
                        f = futures[future]
                        digest, size, hashed_at = future.result()
                        entries[f.rel] = TreeEntry(digest=digest, size=size, mode=f.mode)
                        learned.append((f.path, f.stat, digest, hashed_at))
                        if progress is not None:
                            progress(size)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise

    ordered = dict(sorted(entries.items()))
    digest, _ = artifacts.put_bytes(canonical_json(manifest_of(ordered)))
    if cache is not None:
        cache.record(learned)
    return Snapshot(
        digest=digest,
        entries=ordered,
        size=sum(e.size for e in ordered.values()),
        hashed_files=len(todo),
        hashed_bytes=sum(f.stat.size for f in todo),
        seconds=time.perf_counter() - started,
        source=source,
    )


def manifest_of(entries: dict[str, TreeEntry]) -> dict[str, Any]:
    """The tree manifest exactly as ``artifacts.trees`` writes it, so digests agree with ``put_tree``."""
    return {
        "kind": TREE_KIND,
        "entries": {rel: {"digest": e.digest, "size": e.size, "mode": e.mode} for rel, e in entries.items()},
    }
