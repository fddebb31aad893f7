"""ArtifactStore on a local root (and the generic fsspec path via memory://): round trips,
dedup, digest stability, verification of reads and rejection of bad uploads."""

from __future__ import annotations

import io
import os
import stat

import pytest

from shipyard.artifacts import ArtifactStore
from shipyard.core.errors import IntegrityError, InvalidInput, NotFound

from .helpers import corrupt, object_files, sha, tmp_files

HELLO = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_digest_is_stable_and_matches_sha256(store: ArtifactStore) -> None:
    assert store.put_bytes(b"hello") == (HELLO, 5)
    assert store.put_bytes(b"") == (sha(b""), 0)


def test_layout_is_two_hex_chars_then_the_rest(store: ArtifactStore, root: str) -> None:
    digest, _ = store.put_bytes(b"hello")
    hex_digest = digest.removeprefix("sha256:")
    path = os.path.join(root, "objects", hex_digest[:2], hex_digest[2:])
    assert object_files(root) == [path]
    assert store.local_path(digest) == path
    # Objects are immutable; read-only files keep hard links handed out from being written through.
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444


def test_round_trip_bytes_file_and_stream(store: ArtifactStore, tmp_path) -> None:
    src = tmp_path / "model.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)  # crosses chunk boundaries
    src.write_bytes(payload)

    digest, size = store.put_file(str(src))
    assert (digest, size) == (sha(payload), len(payload))
    assert store.has(digest)
    assert store.size(digest) == len(payload)
    assert store.verify(digest)
    assert store.read_bytes(digest) == payload
    with store.open(digest) as f:
        assert f.read() == payload

    dest = tmp_path / "out" / "copy.bin"
    store.get_file(digest, str(dest))
    assert dest.read_bytes() == payload
    assert stat.S_IMODE(dest.stat().st_mode) & 0o200  # a normal writable file, not the object

    assert store.put_stream(io.BytesIO(payload)) == (digest, len(payload))
    assert store.put_stream(io.BytesIO(payload), expected_digest=digest) == (digest, len(payload))


def test_identical_content_is_stored_once(store: ArtifactStore, root: str, tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same content")
    b.write_bytes(b"same content")
    results = {store.put_file(str(a)), store.put_file(str(b)), store.put_bytes(b"same content")}
    results.add(store.put_stream(io.BytesIO(b"same content")))
    assert len(results) == 1
    assert len(object_files(root)) == 1
    assert tmp_files(root) == []


def test_digest_accepts_bare_hex_and_rejects_garbage(store: ArtifactStore) -> None:
    store.put_bytes(b"hello")
    bare = HELLO.removeprefix("sha256:")
    assert store.has(bare)
    assert store.read_bytes(bare.upper()) == b"hello"
    with pytest.raises(InvalidInput):
        store.has("sha256:nothex")
    with pytest.raises(InvalidInput):
        store.read_bytes("../../etc/passwd")


def test_missing_objects_raise_not_found(store: ArtifactStore, tmp_path) -> None:
    missing = sha(b"never stored")
    assert not store.has(missing)
    for call in (store.open, store.read_bytes, store.size, store.verify, store.local_path):
        with pytest.raises(NotFound):
            call(missing)
    with pytest.raises(NotFound):
        store.get_file(missing, str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    with pytest.raises(NotFound):
        store.put_file(str(tmp_path / "no-such-file"))
    with pytest.raises(InvalidInput):
        store.put_file(str(tmp_path))


def test_corrupt_object_is_detected_on_read(store: ArtifactStore, tmp_path) -> None:
    digest, _ = store.put_bytes(b"precious weights")
    corrupt(store.local_path(digest) or "", b"precious weighty")  # same size, different bytes

    assert store.verify(digest) is False
    with pytest.raises(IntegrityError) as err:
        store.read_bytes(digest)
    assert digest in err.value.message
    assert store.read_bytes(digest, verify=False) == b"precious weighty"

    dest_dir = tmp_path / "dest"
    with pytest.raises(IntegrityError) as err:
        store.get_file(digest, str(dest_dir / "w.bin"))
    assert digest in err.value.message
    assert os.listdir(dest_dir) == []  # neither the destination nor its temp file survive


def test_get_file_does_not_clobber_existing_destination_on_failure(store: ArtifactStore, tmp_path) -> None:
    digest, _ = store.put_bytes(b"v2")
    corrupt(store.local_path(digest) or "")
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"v1")
    with pytest.raises(IntegrityError):
        store.get_file(digest, str(dest))
    assert dest.read_bytes() == b"v1"


def test_put_stream_with_wrong_digest_leaves_nothing(store: ArtifactStore, root: str) -> None:
    wrong = sha(b"something else")
    with pytest.raises(IntegrityError):
        store.put_stream(io.BytesIO(b"actual upload"), expected_digest=wrong)
    assert object_files(root) == []
    assert tmp_files(root) == []
    assert not store.has(sha(b"actual upload"))


def test_put_stream_wrong_digest_does_not_touch_existing_object(store: ArtifactStore, root: str) -> None:
    digest, _ = store.put_bytes(b"original")
    with pytest.raises(IntegrityError):
        store.put_stream(io.BytesIO(b"impostor"), expected_digest=digest)
    assert store.read_bytes(digest) == b"original"
    assert len(object_files(root)) == 1


def test_file_url_root_is_local(tmp_path) -> None:
    store = ArtifactStore(f"file://{tmp_path}/s")
    digest, _ = store.put_bytes(b"x")
    assert store.is_local
    assert store.local_path(digest) == os.path.join(str(tmp_path), "s", "objects", digest[7:9], digest[9:])


def test_fresh_store_instance_sees_existing_objects(root: str) -> None:
    digest, _ = ArtifactStore(root).put_bytes(b"persisted")
    assert ArtifactStore(root).read_bytes(digest) == b"persisted"


def test_sweep_tmp_removes_only_old_leftovers(store: ArtifactStore, root: str) -> None:
    stale = os.path.join(root, "tmp", "put-crashed.part")
    with open(stale, "wb") as f:
        f.write(b"half")
    os.utime(stale, (0, 0))
    fresh = os.path.join(root, "tmp", "put-live.part")
    with open(fresh, "wb") as f:
        f.write(b"in progress")
    assert store.sweep_tmp() == 1
    assert tmp_files(root) == ["put-live.part"]


# -- generic fsspec path (tmp key then mv), exercised with the in-memory filesystem ---------


def test_memory_root_round_trip_and_dedup(memory_root: str, tmp_path) -> None:
    import fsspec

    store = ArtifactStore(memory_root)
    assert not store.is_local
    src = tmp_path / "f"
    src.write_bytes(b"data" * 1000)
    digest, size = store.put_file(str(src))
    assert (digest, size) == (sha(b"data" * 1000), 4000)
    assert store.put_bytes(b"data" * 1000) == (digest, size)
    assert store.put_stream(io.BytesIO(b"data" * 1000), expected_digest=digest) == (digest, size)
    assert store.local_path(digest) is None
    assert store.size(digest) == 4000
    store.get_file(digest, str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == b"data" * 1000

    fs = fsspec.filesystem("memory")
    base = memory_root.removeprefix("memory://")
    objects = [p for p in fs.find(f"/{base}") if "/objects/" in p]
    assert objects == [f"/{base}/objects/{digest[7:9]}/{digest[9:]}"]
    assert fs.find(f"/{base}/tmp") == []  # the tmp key was moved, not copied

    with pytest.raises(IntegrityError):
        store.put_stream(io.BytesIO(b"other"), expected_digest=sha(b"not other"))
    fs.pipe_file(objects[0], b"corrupted")
    with pytest.raises(IntegrityError):
        store.read_bytes(digest)
    with pytest.raises(NotFound):
        store.open(sha(b"absent"))
