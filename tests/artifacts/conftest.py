"""Fixtures for the artifact tests: local store roots and a real S3 endpoint (moto server)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard.artifacts import ArtifactStore

from .helpers import S3Server


@pytest.fixture
def root(tmp_path: Any) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def store(root: str) -> ArtifactStore:
    return ArtifactStore(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server in its own process, so the store talks real HTTP to a separate endpoint."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/", timeout=1).close()
                    break
                except (urllib.error.URLError, OSError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("moto server did not start") from None
                    time.sleep(0.1)
            yield S3Server(endpoint_url=url)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture
def s3_store(s3_server: S3Server, s3_bucket: str) -> ArtifactStore:
    return ArtifactStore(f"s3://{s3_bucket}/artifacts", storage_options=s3_server.storage_options)


@pytest.fixture
def memory_root() -> Iterator[str]:
    root = f"memory://shipyard-test-{uuid.uuid4().hex}"
    yield root
    import fsspec

    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture(autouse=True)
def _no_stray_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own SHIPYARD_S3_ENDPOINT_URL must not leak into these tests.
    monkeypatch.delenv("SHIPYARD_S3_ENDPOINT_URL", raising=False)
