"""The client-side stat cache: (path, size, mtime, ctime, inode) → digest, so unchanged files are never re-hashed.

Kept in a small SQLite file under the Shipyard home (``cache/statcache.sqlite``), keyed by the
artifact store the file was stored in: an entry means "this exact file is already an object of
that store". Like git's index it is only a hint that can be rebuilt at any time: a missing or
unreadable cache just means files are hashed again.

Racy entries: file timestamps have coarse granularity, so a file rewritten within the same tick as
it was hashed could keep its stat. An entry whose mtime is too close to the moment it was hashed is
therefore not trusted (the file is hashed again next time, which then records a trustworthy entry).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Timestamps closer than this to the hashing moment may not reveal a later write (see module doc).
RACY_NS = 50_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    store TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL,
    PRIMARY KEY (store, path)
) WITHOUT ROWID
"""


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, inode=st.st_ino)


@dataclass(frozen=True)
class CachedDigest:
    stat: FileStat
    digest: str
    hashed_at_ns: int

    def trusted_for(self, current: FileStat) -> bool:
        return current == self.stat and self.stat.mtime_ns < self.hashed_at_ns - RACY_NS


class StatCache:
    """Digests of files already stored in one artifact store, keyed by real path and stat."""

    def __init__(self, path: str | os.PathLike[str], store_key: str):
        self.path = Path(path)
        self.store_key = store_key
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
            except (OSError, sqlite3.Error):
                return None  # a cache we cannot open only costs re-hashing
            self._conn = conn
        return self._conn

    def lookup_under(self, root: str) -> dict[str, CachedDigest]:
        """Entries for ``root`` itself and every path below it, in one query."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return {}
            # Paths under root sort between "root/" and "root0" ('0' follows '/' in ASCII).
            prefix = root.rstrip(os.sep) + os.sep
            try:
                rows = conn.execute(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, digest, hashed_at_ns FROM files "
                    "WHERE store = ? AND ((path >= ? AND path < ?) OR path = ?)",
                    (self.store_key, prefix, prefix[:-1] + chr(ord(os.sep) + 1), root),
                ).fetchall()
            except sqlite3.Error:
                return {}
        return {row[0]: CachedDigest(FileStat(row[1], row[2], row[3], row[4]), row[5], row[6]) for row in rows}

    def record(self, entries: Iterable[tuple[str, FileStat, str, int]]) -> None:
        """Remember (path, stat, digest, hashed_at_ns) for files now stored; one transaction."""
        rows = [
            (self.store_key, path, st.size, st.mtime_ns, st.ctime_ns, st.inode, digest, hashed_at)
            for path, st, digest, hashed_at in entries
        ]
        if not rows:
            return
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            with contextlib.suppress(sqlite3.Error):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def default_cache(home: str | os.PathLike[str], store_key: str) -> StatCache:
    return StatCache(Path(home) / "cache" / "statcache.sqlite", store_key)
