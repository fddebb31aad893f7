"""SHA-256 helpers. Digests are written ``sha256:<64 hex>`` everywhere a user sees them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, BinaryIO

from shipyard.core.errors import InvalidInput

CHUNK = 1024 * 1024
PREFIX = "sha256:"
_HEX = re.compile(r"^[0-9a-f]{64}$")


def hash_bytes(data: bytes) -> str:
    return PREFIX + hashlib.sha256(data).hexdigest()


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """Digest and size of a stream, read in chunks so large files never sit whole in memory."""
    h = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        h.update(chunk)
        size += len(chunk)
    return PREFIX + h.hexdigest(), size


def hash_file(path: str) -> tuple[str, int]:
    with open(path, "rb") as f:
        return hash_stream(f)


def hash_chunks(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return PREFIX + h.hexdigest()


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, so equal values hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def normalize_digest(digest: str) -> str:
    """Accept ``sha256:<hex>`` or bare hex; return the prefixed form or raise naming the problem."""
    value = digest.strip().lower()
    hex_part = value[len(PREFIX) :] if value.startswith(PREFIX) else value
    if not _HEX.match(hex_part):
        raise InvalidInput(f"not a SHA-256 digest: {digest!r}", field="digest")
    return PREFIX + hex_part


def hex_of(digest: str) -> str:
    return normalize_digest(digest)[len(PREFIX) :]
