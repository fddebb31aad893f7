"""Small shared helpers for the artifact tests: inspecting a local store root on disk."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from typing import Any


def object_files(root: str) -> list[str]:
    """Every file under ``root/objects`` (what a reader could see as an object)."""
    found = []
    for dirpath, _, names in os.walk(os.path.join(root, "objects")):
        found.extend(os.path.join(dirpath, n) for n in names)
    return sorted(found)


def tmp_files(root: str) -> list[str]:
    tmp = os.path.join(root, "tmp")
    return sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_tree(base: str, files: dict[str, bytes], order: list[str] | None = None) -> None:
    for rel in order or list(files):
        path = os.path.join(base, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(files[rel])


def read_tree(base: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(base):
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            with open(path, "rb") as f:
                out[rel] = f.read()
    return out


def corrupt(path: str, data: bytes = b"garbage") -> None:
    """Overwrite a stored object in place (objects are read-only, so make it writable first)."""
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(data)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"client_kwargs": {"endpoint_url": self.endpoint_url}}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name
