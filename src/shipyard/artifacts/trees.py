"""Directories as content-addressed trees: a manifest object lists every file's digest.

A manifest is canonical JSON::

    {"kind": "shipyard.tree/v1",
     "entries": {"rel/posix/path": {"digest": "sha256:...", "size": N, "mode": 420}}}

stored as an ordinary object, so its digest names the whole directory. Only regular files
appear; empty directories are not represented, and timestamps, ownership and file creation
order do not affect the digest.

Everything here talks to the store only through ``has/put_file/put_bytes/read_bytes/get_file/
open`` (plus the optional ``local_path``), so it works unchanged over a remote HTTP store.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from shipyard.artifacts.store import DIR_MODE
from shipyard.core.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from shipyard.core.hashing import canonical_json, hash_bytes, hash_file, normalize_digest

TREE_KIND = "shipyard.tree/v1"
# Hashing releases the GIL, so a few threads overlap disk reads and hashing.
WORKERS = 4
# Like git, record only "executable or not": raw permission bits depend on the umask of
# whoever created the files and would make identical directories hash differently.
MODE_FILE = 0o644
MODE_EXEC = 0o755

T = TypeVar("T")


class BlobStore(Protocol):
    """The part of the ArtifactStore interface trees need (a remote HTTP store provides it too)."""

    def has(self, digest: str) -> bool: ...
    def put_file(self, path: str) -> tuple[str, int]: ...
    def put_bytes(self, data: bytes) -> tuple[str, int]: ...
    def read_bytes(self, digest: str, verify: bool = True) -> bytes: ...
    def get_file(self, digest: str, dest_path: str, verify: bool = True) -> None: ...


@dataclass(frozen=True)
class TreeEntry:
    digest: str
    size: int
    mode: int


@dataclass(frozen=True)
class Tree:
    """A stored directory: its manifest digest and the files it lists (keyed by relative posix path)."""

    digest: str
    entries: dict[str, TreeEntry] = field(hash=False)
    total_size: int
    file_count: int

    @classmethod
    def from_manifest(cls, digest: str, manifest: dict[str, Any]) -> Tree:
        entries = {
            rel: TreeEntry(digest=e["digest"], size=e["size"], mode=e["mode"])
            for rel, e in sorted(manifest["entries"].items())
        }
        return cls(
            digest=digest,
            entries=entries,
            total_size=sum(e.size for e in entries.values()),
            file_count=len(entries),
        )

    def manifest(self) -> dict[str, Any]:
        return _manifest(self.entries)


@dataclass(frozen=True)
class _SourceFile:
    rel: str
    path: str  # real path to read (symlinks already resolved)
    mode: int


# -- scanning a local directory ------------------------------------------------------------


def _normal_mode(st_mode: int) -> int:
    return MODE_EXEC if st_mode & 0o111 else MODE_FILE


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _scan(directory: str, *, strict: bool = True) -> tuple[list[_SourceFile], list[str]]:
    """List the regular files under ``directory`` (following symlinks that stay inside it).

    Returns (files, problems). With ``strict`` a problem (symlink leaving the tree, dangling
    link, symlink cycle, special file, unrepresentable name) raises InvalidInput; otherwise
    its relative path is returned in ``problems``.
    """
    if not os.path.isdir(directory):
        raise NotFound(f"no such directory: {directory}", field="path")
    root = os.path.realpath(directory)
    files: list[_SourceFile] = []
    problems: list[str] = []

    def problem(rel: str, why: str) -> None:
        if strict:
            raise InvalidInput(f"{os.path.join(directory, rel)}: {why}", field="path")
        problems.append(rel)

    def walk(real_dir: str, prefix: str, ancestors: frozenset[str]) -> None:
        with os.scandir(real_dir) as it:
            names = sorted(it, key=lambda e: e.name)
        for entry in names:
            rel = prefix + entry.name
            if "\\" in entry.name or not _encodable(entry.name):
                problem(rel, "file name cannot be stored portably (backslash or non-UTF-8)")
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not _inside(target, root):
                    problem(rel, "symlink points outside the directory being stored")
                    continue
                try:
                    st = os.stat(target)
                except FileNotFoundError:
                    problem(rel, "dangling symlink")
                    continue
                real = target
            else:
                st = entry.stat(follow_symlinks=False)
                real = entry.path
            if stat.S_ISDIR(st.st_mode):
                real = os.path.realpath(real)
                if real in ancestors:
                    problem(rel, "symlink cycle")
                    continue
                walk(real, rel + "/", ancestors | {real})
            elif stat.S_ISREG(st.st_mode):
                files.append(_SourceFile(rel=rel, path=real, mode=_normal_mode(st.st_mode)))
            else:
                problem(rel, "not a regular file, directory or symlink")

    walk(root, "", frozenset({root}))
    return files, problems


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes surface as lone surrogates
        return False
    return True


# -- manifests -----------------------------------------------------------------------------


def _manifest(entries: dict[str, TreeEntry]) -> dict[str, Any]:
    return {
        "kind": TREE_KIND,
        "entries": {rel: {"digest": e.digest, "size": e.size, "mode": e.mode} for rel, e in entries.items()},
    }


def _check_rel_path(rel: Any) -> str | None:
    """Why ``rel`` is not a safe relative path, or None. Guards materialize against traversal."""
    if not isinstance(rel, str) or not rel:
        return "empty or non-string path"
    if rel.startswith("/") or "\\" in rel or "\x00" in rel:
        return f"unsafe path {rel!r}"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return f"unsafe path {rel!r}"
    return None


def _validate_manifest(value: Any, digest: str) -> dict[str, Any]:
    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"{digest} is not a tree manifest: {why}", field="digest")

    if not isinstance(value, dict) or value.get("kind") != TREE_KIND:
        raise bad(f"kind is not {TREE_KIND!r}")
    entries = value.get("entries")
    if not isinstance(entries, dict):
        raise bad("entries is not an object")
    dirs: set[str] = set()
    for rel, entry in entries.items():
        why = _check_rel_path(rel)
        if why:
            raise bad(why)
        if not isinstance(entry, dict):
            raise bad(f"entry {rel!r} is not an object")
        d, size, mode = entry.get("digest"), entry.get("size"), entry.get("mode")
        try:
            if not isinstance(d, str) or normalize_digest(d) != d:
                raise bad(f"entry {rel!r} has a malformed digest")
        except InvalidInput:
            raise bad(f"entry {rel!r} has a malformed digest") from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"entry {rel!r} has a malformed size")
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o777:
            raise bad(f"entry {rel!r} has a malformed mode")
        parts = rel.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    clash = dirs.intersection(entries)
    if clash:
        raise bad(f"{sorted(clash)[0]!r} is both a file and a directory")
    return value


def read_manifest(store: BlobStore, digest: str) -> dict[str, Any]:
    """Fetch and validate a tree manifest.

    IntegrityError if the stored bytes are corrupt; InvalidInput if the object is not a manifest.
    """
    digest = normalize_digest(digest)
    data = store.read_bytes(digest, verify=True)
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(f"{digest} is not a tree manifest: not JSON", field="digest") from None
    return _validate_manifest(value, digest)


def load_tree(store: BlobStore, digest: str) -> Tree:
    digest = normalize_digest(digest)
    return Tree.from_manifest(digest, read_manifest(store, digest))


# -- parallel helpers ----------------------------------------------------------------------


def _run_parallel(
    items: Iterable[T],
    fn: Callable[[T], Any],
    on_done: Callable[[T, Any], None] | None = None,
) -> None:
    """Run ``fn`` over items on a small pool; callbacks run in the caller's thread.

    The first failure cancels what has not started and is re-raised.
    """
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="shipyard-tree") as pool:
        futures: dict[Future[Any], T] = {pool.submit(fn, item): item for item in items}
        try:
            for future in as_completed(futures):
                result = future.result()
                if on_done is not None:
                    on_done(futures[future], result)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _collect(
    files: list[_SourceFile],
    store_or_hash: Callable[[str], tuple[str, int]],
    progress: Callable[[int], None] | None,
) -> dict[str, TreeEntry]:
    entries: dict[str, TreeEntry] = {}

    def done(src: _SourceFile, result: tuple[str, int]) -> None:
        digest, size = result
        entries[src.rel] = TreeEntry(digest=digest, size=size, mode=src.mode)
        if progress is not None:
            progress(size)

    _run_parallel(files, lambda src: store_or_hash(src.path), done)
    return dict(sorted(entries.items()))


# -- public operations ---------------------------------------------------------------------


def put_tree(
    store: BlobStore,
    directory: str | os.PathLike[str],
    progress: Callable[[int], None] | None = None,
) -> Tree:
    """Store every file under ``directory`` and then its manifest; returns the Tree.

    ``progress`` is called (in the caller's thread) with the byte count of each file as it
    finishes, i.e. increments, not a running total.
    """
    files, _ = _scan(os.fspath(directory))
    entries = _collect(files, lambda p: store.put_file(p), progress)
    digest, _ = store.put_bytes(canonical_json(_manifest(entries)))
    return Tree(
        digest=digest,
        entries=entries,
        total_size=sum(e.size for e in entries.values()),
        file_count=len(entries),
    )


def put_manifest(store: BlobStore, files: dict[str, tuple[str, int]], mode: int = MODE_FILE) -> Tree:
    """Store a tree over objects already in the store: ``{rel_path: (digest, size)}``."""
    entries: dict[str, TreeEntry] = {}
    for rel, (digest, size) in sorted(files.items()):
        why = _check_rel_path(rel)
        if why:
            raise InvalidInput(f"cannot build a tree: {why}", field="files")
        if not store.has(digest):
            raise NotFound(f"object {digest} of {rel!r} is not in the artifact store", field="files")
        entries[rel] = TreeEntry(digest=normalize_digest(digest), size=size, mode=mode)
    digest, _ = store.put_bytes(canonical_json(_manifest(entries)))
    return Tree(
        digest=digest, entries=entries, total_size=sum(e.size for e in entries.values()), file_count=len(entries)
    )


def tree_digest_of_directory(directory: str | os.PathLike[str]) -> str:
    """The digest ``put_tree`` would give ``directory``, computed without storing anything."""
    files, _ = _scan(os.fspath(directory))
    entries = _collect(files, hash_file, None)
    return hash_bytes(canonical_json(_manifest(entries)))


def put_path(store: BlobStore, path: str | os.PathLike[str]) -> tuple[str, int, bool]:
    """Store a file as a blob or a directory as a tree: (digest, size, is_tree)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        tree = put_tree(store, path)
        return tree.digest, tree.total_size, True
    if os.path.isfile(path):
        digest, size = store.put_file(path)
        return digest, size, False
    if os.path.lexists(path):
        raise InvalidInput(f"not a regular file or directory: {path}", field="path")
    raise NotFound(f"no such file or directory: {path}", field="path")


def _link_from_store(store: BlobStore, entry: TreeEntry, target: str) -> bool:
    """Hard-link the object into place if the store is local; False means "copy instead"."""
    local_path = getattr(store, "local_path", None)
    if local_path is None:
        return False
    source = local_path(entry.digest)
    if source is None:
        return False
    # Verify before linking: a link would expose a corrupt object under a trusted name.
    actual, _ = hash_file(source)
    if actual != entry.digest:
        raise IntegrityError(
            f"stored object {entry.digest} is corrupt (hashes to {actual})",
            field="digest",
            details={"expected": entry.digest, "actual": actual},
        )
    try:
        os.link(source, target)
    except OSError:  # other device, link count limit, filesystem without hard links
        return False
    return True


def materialize_tree(
    store: BlobStore,
    digest: str,
    dest_dir: str | os.PathLike[str],
    link: bool = True,
) -> Tree:
    """Write the tree's files into ``dest_dir``, verified; the directory appears whole or not at all.

    ``dest_dir`` must not exist or be an empty directory (else AlreadyExists). With ``link``
    and a local store, non-executable files are hard links to the store's objects: they are
    read-only and must not be modified, since the store shares their inode. Executable files
    and everything from remote stores are copied and given the manifest's mode.
    """
    tree = load_tree(store, digest)
    dest = os.path.abspath(os.fspath(dest_dir))
    if os.path.lexists(dest) and not (os.path.isdir(dest) and not os.listdir(dest)):
        raise AlreadyExists(f"destination exists and is not an empty directory: {dest}", field="path")
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    # Build beside dest (same filesystem) so the final rename is atomic.
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)[:100]}.", suffix=".partial", dir=parent)
    try:
        for rel in tree.entries:
            os.makedirs(os.path.join(staging, *rel.split("/")[:-1]), exist_ok=True)

        def write(item: tuple[str, TreeEntry]) -> None:
            rel, entry = item
            target = os.path.join(staging, *rel.split("/"))
            # Linking an executable would need a chmod on the shared object: copy those instead.
            if link and not entry.mode & 0o111 and _link_from_store(store, entry, target):
                return
            store.get_file(entry.digest, target, verify=True)
            os.chmod(target, entry.mode & 0o777)

        _run_parallel(tree.entries.items(), write)
        os.chmod(staging, DIR_MODE)  # mkdtemp made it 0o700
        # rename(2) replaces an empty directory atomically, and fails if one appeared meanwhile.
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return tree


def verify_tree(store: BlobStore, digest: str, directory: str | os.PathLike[str]) -> list[str]:
    """Relative paths where ``directory`` differs from the tree: changed, missing or extra files.

    An empty list means the directory's files match exactly. Only content is compared, not
    modes (hard-linked materializations are deliberately read-only).
    """
    tree = load_tree(store, digest)
    files, problems = _scan(os.fspath(directory), strict=False)
    actual = {f.rel: f for f in files}
    differing = set(problems)
    differing.update(rel for rel in tree.entries if rel not in actual)
    differing.update(rel for rel in actual if rel not in tree.entries)

    to_hash: list[_SourceFile] = []
    for rel, src in actual.items():
        entry = tree.entries.get(rel)
        if entry is None:
            continue
        try:
            same_size = os.path.getsize(src.path) == entry.size
        except OSError:
            same_size = False
        if same_size:
            to_hash.append(src)
        else:
            differing.add(rel)

    def done(src: _SourceFile, result: str | None) -> None:
        if result != tree.entries[src.rel].digest:
            differing.add(src.rel)

    def digest_of(src: _SourceFile) -> str | None:
        with contextlib.suppress(OSError):  # vanished or unreadable counts as differing
            return hash_file(src.path)[0]
        return None

    _run_parallel(to_hash, digest_of, done)
    return sorted(differing)
