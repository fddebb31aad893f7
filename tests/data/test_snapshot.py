"""Snapshots: the digest is the artifact tree's digest, stable, and the stat cache skips unchanged files."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard import Client
from shipyard.artifacts import ArtifactStore, load_tree, tree_digest_of_directory
from shipyard.core.errors import InvalidInput, NotFound
from shipyard.data.snapshot import snapshot_path
from shipyard.data.statcache import StatCache

PAST_NS = 1_600_000_000 * 10**9  # 2020: far from "now", so entries are never racy


def _tree(root: Path, files: dict[str, bytes], mtime_ns: int | None = PAST_NS) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if mtime_ns is not None:
            os.utime(path, ns=(mtime_ns, mtime_ns))
    return root


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


@pytest.fixture
def cache(tmp_path: Path, store: ArtifactStore):
    c = StatCache(tmp_path / "cache" / "statcache.sqlite", store.root)
    yield c
    c.close()


def test_unchanged_directory_hashes_nothing_and_one_change_hashes_one(
    tmp_path: Path, store: ArtifactStore, cache: StatCache
) -> None:
    src = _tree(tmp_path / "src", {f"part-{i:03d}.bin": os.urandom(1000 + i) for i in range(50)})
    cold = snapshot_path(src, store, cache)
    assert (cold.hashed_files, cold.file_count, cold.cached_files) == (50, 50, 0)
    assert cold.digest == tree_digest_of_directory(src)

    warm = snapshot_path(src, store, cache)
    assert (warm.hashed_files, warm.hashed_bytes, warm.digest) == (0, 0, cold.digest)

    changed = src / "part-007.bin"
    changed.write_bytes(b"new content")
    os.utime(changed, ns=(PAST_NS + 5, PAST_NS + 5))
    one = snapshot_path(src, store, cache)
    assert (one.hashed_files, one.hashed_bytes) == (1, len(b"new content"))
    assert one.digest != cold.digest and one.digest == tree_digest_of_directory(src)
    assert one.entries["part-007.bin"].size == 11
    assert snapshot_path(src, store, cache).hashed_files == 0

    # Every file is in the store: the tree loads and materialises from it.
    tree = load_tree(store, one.digest)
    assert tree.file_count == 50 and all(store.has(e.digest) for e in tree.entries.values())


def test_added_and_removed_files_change_the_digest_without_rehashing_others(
    tmp_path: Path, store: ArtifactStore, cache: StatCache
) -> None:
    src = _tree(tmp_path / "src", {"a": b"1", "b/c": b"2"})
    first = snapshot_path(src, store, cache)
    _tree(src, {"b/d": b"3"})
    (src / "a").unlink()
    second = snapshot_path(src, store, cache)
    assert second.hashed_files == 1 and sorted(second.files) == ["b/c", "b/d"]
    assert second.digest != first.digest


def test_recently_modified_files_are_not_trusted(tmp_path: Path, store: ArtifactStore, cache: StatCache) -> None:
    # A file written "now" could be rewritten within the same timestamp tick: it is hashed again.
    src = _tree(tmp_path / "src", {"fresh": b"x"}, mtime_ns=None)
    snapshot_path(src, store, cache)
    assert snapshot_path(src, store, cache).hashed_files == 1
    os.utime(src / "fresh", ns=(PAST_NS, PAST_NS))
    snapshot_path(src, store, cache)
    assert snapshot_path(src, store, cache).hashed_files == 0


def test_cache_is_per_store_and_survives_missing_objects(tmp_path: Path, store: ArtifactStore) -> None:
    src = _tree(tmp_path / "src", {"a": b"alpha", "b": b"beta"})
    cache = StatCache(tmp_path / "statcache.sqlite", store.root)
    snapshot_path(src, store, cache)
    other_store = ArtifactStore(tmp_path / "other")
    other = StatCache(tmp_path / "statcache.sqlite", other_store.root)
    assert snapshot_path(src, other_store, other).hashed_files == 2  # another store has none of the objects
    # An object removed from the store behind the cache's back is stored again, not trusted.
    digest = load_tree(store, snapshot_path(src, store, cache).digest).entries["a"].digest
    path = store.local_path(digest)
    os.chmod(path, 0o644)
    os.unlink(path)
    again = snapshot_path(src, store, cache)
    assert again.hashed_files == 1 and store.has(digest)
    cache.close()
    other.close()


def test_single_file_and_bad_paths(tmp_path: Path, store: ArtifactStore) -> None:
    f = tmp_path / "one.csv"
    f.write_bytes(b"a\n1\n")
    snap = snapshot_path(f, store)
    assert snap.files == ["one.csv"] and snap.size == 4
    with pytest.raises(NotFound, match="no such file or directory"):
        snapshot_path(tmp_path / "nope", store)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="not a regular file"):
        snapshot_path(fifo, store)
    outside = tmp_path / "dir"
    outside.mkdir()
    (outside / "escape").symlink_to(f)
    with pytest.raises(InvalidInput, match="outside the directory"):
        snapshot_path(outside, store)


def test_unreadable_file_is_a_clear_error(tmp_path: Path, store: ArtifactStore) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    src = _tree(tmp_path / "src", {"secret": b"x"})
    os.chmod(src / "secret", 0)
    with pytest.raises(InvalidInput, match="not readable"):
        snapshot_path(src, store)


def test_client_counts_hashing_through_log_dataset(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {f"f{i}": os.urandom(100) for i in range(20)})
    with Client(home=tmp_path / "home") as client:
        v1 = client.log_dataset(src, name="blobs")
        assert client.last_snapshot.hashed_files == 20
        assert client.log_dataset(src, name="blobs").id == v1.id
        assert client.last_snapshot.hashed_files == 0
        assert (tmp_path / "home" / "cache" / "statcache.sqlite").is_file()


def test_same_frame_gives_the_same_digest_across_homes(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": range(1000), "b": [f"s{i % 7}" for i in range(1000)]})
    with Client(home=tmp_path / "h1") as one, Client(home=tmp_path / "h2") as two:
        assert one.log_dataset(df, name="d").digest == two.log_dataset(df.copy(), name="other").digest


_names = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
_trees = st.dictionaries(
    st.lists(_names, min_size=1, max_size=3).map("/".join), st.binary(max_size=300), min_size=1, max_size=12
)


def _no_file_dir_clash(files: dict[str, bytes]) -> bool:
    dirs = {"/".join(rel.split("/")[:i]) for rel in files for i in range(1, rel.count("/") + 1)}
    return not dirs & set(files)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=_trees.filter(_no_file_dir_clash), workers=st.integers(1, 8))
def test_digest_is_stable_and_matches_artifact_trees(files: dict[str, bytes], workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = _tree(root / "src", files)
        store = ArtifactStore(root / "store")
        cache = StatCache(root / "cache.sqlite", store.root)
        first = snapshot_path(src, store, cache, workers=workers)
        cached = snapshot_path(src, store, cache, workers=workers)
        uncached = snapshot_path(src, ArtifactStore(root / "store2"), None, workers=1)
        cache.close()
        assert first.digest == cached.digest == uncached.digest == tree_digest_of_directory(src)
        assert cached.hashed_files == 0 and first.size == sum(len(v) for v in files.values())
        assert sorted(first.files) == sorted(files)


def test_the_shipyard_home_inside_the_directory_is_not_snapshotted(tmp_path: Path) -> None:
    project = _tree(tmp_path / "project", {"data/a.csv": b"x\n1\n"})
    with Client(home=project / ".shipyard") as client:
        client.log_dataset(pd.DataFrame({"a": [1]}), name="frame")  # puts objects and a database in the home
        v = client.log_dataset(project, name="project")
        assert v.file_count == 1 and client.last_snapshot.files == ["data/a.csv"]


def test_copy_falls_back_when_the_kernel_cannot_copy(
    tmp_path: Path, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks and a ragged end
    src = _tree(tmp_path / "src", {"big.bin": data, "empty": b""})
    snap = snapshot_path(src, store, None)
    for rel, expected in (("big.bin", data), ("empty", b"")):
        assert store.read_bytes(snap.entries[rel].digest) == expected


def test_a_file_changing_during_the_snapshot_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shipyard.data.snapshot as snapmod

    src = _tree(tmp_path / "src", {"a.csv": b"x\n1\n", "b.csv": b"x\n2\n"})
    real = snapmod._ingest_local

    def ingest_then_append(store: ArtifactStore, f: object) -> tuple[str, int]:
        result = real(store, f)
        with open(f.path, "ab") as handle:  # type: ignore[attr-defined]
            handle.write(b"3\n")
        return result

    monkeypatch.setattr(snapmod, "_ingest_local", ingest_then_append)
    with Client(home=tmp_path / "home") as client:
        with pytest.raises(InvalidInput, match="changed while it was being snapshotted"):
            client.log_dataset(src, name="moving")
        assert client.list_datasets() == []
        monkeypatch.setattr(snapmod, "_ingest_local", real)
        v = client.log_dataset(src, name="moving")
        assert v.row_count == 4 and client.last_snapshot.hashed_files == 2  # nothing was cached from the failure


def test_a_write_between_hashing_and_copying_never_names_a_wrong_object(
    tmp_path: Path, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shipyard.data.snapshot as snapmod

    src = _tree(tmp_path / "src", {"a.bin": b"original content"})
    real_copy = snapmod._copy

    def write_then_copy(source: int, dest: int, size: int, buf: memoryview) -> int:
        (src / "a.bin").write_bytes(b"ORIGINAL CONTENT")  # same size, new bytes, after the hash was taken
        return real_copy(source, dest, size, buf)

    monkeypatch.setattr(snapmod, "_copy", write_then_copy)
    with pytest.raises(InvalidInput, match="changed while it was being snapshotted"):
        snapshot_path(src, store, None)
    for content in (b"original content", b"ORIGINAL CONTENT"):
        assert not store.has("sha256:" + hashlib.sha256(content).hexdigest())


def test_the_profile_describes_the_stored_bytes_not_a_later_edit(tmp_path) -> None:
    """Embedded stores are profiled from the stored objects, so a source edited right after the snapshot
    cannot leave a version whose profile disagrees with its content."""
    import pandas as pd

    from shipyard import Client
    from shipyard.data.snapshot import snapshot_path

    source = tmp_path / "table"
    source.mkdir()
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(source / "part.parquet")
    with Client(home=tmp_path / "home") as client:
        snap = snapshot_path(source, client.artifacts)
        pd.DataFrame({"x": [100] * 10}).to_parquet(source / "part.parquet")  # edited after the snapshot
        version = client._register(snap, "edited", source.as_uri(), str(source), None, None, None, None, True)
        assert version.row_count == 3 and version.profile["columns"]["x"]["max"] == 3
        assert client.load_dataset(version.ref)["x"].tolist() == [1, 2, 3]
