"""ArtifactStore against a real S3 endpoint (moto in server mode, spoken to over HTTP)."""

from __future__ import annotations

import io
import os

import pytest

from shipyard.artifacts import (
    ArtifactStore,
    materialize_tree,
    put_tree,
    tree_digest_of_directory,
    verify_tree,
)
from shipyard.core.errors import IntegrityError, NotFound

from .helpers import S3Server, read_tree, sha, write_tree


def _keys(server: S3Server, bucket: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_put_get_round_trip(s3_store: ArtifactStore, s3_server: S3Server, s3_bucket: str, tmp_path) -> None:
    payload = os.urandom(2 * 1024 * 1024 + 3)
    src = tmp_path / "model.bin"
    src.write_bytes(payload)

    digest, size = s3_store.put_file(str(src))
    assert (digest, size) == (sha(payload), len(payload))
    assert _keys(s3_server, s3_bucket) == [f"artifacts/objects/{digest[7:9]}/{digest[9:]}"]
    assert s3_store.has(digest)
    assert s3_store.size(digest) == len(payload)
    assert s3_store.verify(digest)
    assert s3_store.local_path(digest) is None
    assert s3_store.read_bytes(digest) == payload

    dest = tmp_path / "out" / "model.bin"
    s3_store.get_file(digest, str(dest))
    assert dest.read_bytes() == payload

    assert s3_store.put_stream(io.BytesIO(b"streamed"), expected_digest=sha(b"streamed")) == (
        sha(b"streamed"),
        8,
    )
    assert s3_store.read_bytes(sha(b"streamed")) == b"streamed"


def test_dedup(s3_store: ArtifactStore, s3_server: S3Server, s3_bucket: str, tmp_path) -> None:
    (tmp_path / "a").write_bytes(b"same")
    (tmp_path / "b").write_bytes(b"same")
    results = {
        s3_store.put_file(str(tmp_path / "a")),
        s3_store.put_file(str(tmp_path / "b")),
        s3_store.put_bytes(b"same"),
        s3_store.put_stream(io.BytesIO(b"same")),
    }
    assert results == {(sha(b"same"), 4)}
    assert len(_keys(s3_server, s3_bucket)) == 1


def test_bad_upload_leaves_nothing(s3_store: ArtifactStore, s3_server: S3Server, s3_bucket: str) -> None:
    with pytest.raises(IntegrityError):
        s3_store.put_stream(io.BytesIO(b"actual"), expected_digest=sha(b"declared"))
    assert _keys(s3_server, s3_bucket) == []


def test_corruption_is_detected(
    s3_store: ArtifactStore, s3_server: S3Server, s3_bucket: str, tmp_path
) -> None:
    digest, _ = s3_store.put_bytes(b"precious")
    key = f"artifacts/objects/{digest[7:9]}/{digest[9:]}"
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"tampered")

    assert s3_store.verify(digest) is False
    with pytest.raises(IntegrityError):
        s3_store.read_bytes(digest)
    with pytest.raises(IntegrityError):
        s3_store.get_file(digest, str(tmp_path / "x.bin"))
    assert os.listdir(tmp_path) == []
    with pytest.raises(NotFound):
        s3_store.read_bytes(sha(b"never stored"))


def test_tree_round_trip(s3_store: ArtifactStore, tmp_path) -> None:
    files = {
        "model/weights.bin": os.urandom(10_000),
        "model/config.json": b"{}",
        "README": b"hi",
        "dup": b"hi",
    }
    src = str(tmp_path / "src")
    write_tree(src, files)

    tree = put_tree(s3_store, src)
    assert tree.digest == tree_digest_of_directory(src)
    assert tree.file_count == 4
    dest = str(tmp_path / "dest")
    materialize_tree(s3_store, tree.digest, dest)
    assert read_tree(dest) == files
    assert verify_tree(s3_store, tree.digest, dest) == []
    assert os.stat(os.path.join(dest, "README")).st_nlink == 1  # nothing local to hard-link from


def test_endpoint_from_environment(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_S3_ENDPOINT_URL", s3_server.endpoint_url)
    store = ArtifactStore(f"s3://{s3_bucket}/via-env")
    digest, _ = store.put_bytes(b"env")
    assert (
        s3_server.client()
        .get_object(Bucket=s3_bucket, Key=f"via-env/objects/{digest[7:9]}/{digest[9:]}")["Body"]
        .read()
        == b"env"
    )
