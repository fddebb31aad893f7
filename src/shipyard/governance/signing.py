"""ed25519 signing: key files, key ids, the exact messages Shipyard signs, and sign/verify.

Pure functions over ``cryptography``: nothing here touches the store, so the offline bundle
verifier uses this module as is. Every signed message starts with a domain tag naming what it is
(``shipyard-model-version:v1``, ``shipyard-journal-checkpoint:v1``, ``shipyard-evidence-bundle:v1``),
so a signature over one kind of statement can never be replayed as another.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shipyard.core.errors import InvalidInput

KEY_ENV = "SHIPYARD_SIGNING_KEY"
REQUIRE_ENV = "SHIPYARD_REQUIRE_SIGNATURES"
SERVER_OWNER = "server"
KEY_FILE = "signing-ed25519.pem"


# -- messages ----------------------------------------------------------------------------------


def version_message(name: str, version: int, digest: str) -> bytes:
    return b"shipyard-model-version:v1\n" + f"{name}\n{int(version)}\n{digest}".encode()


def checkpoint_message(seq: int, head_hash: str) -> bytes:
    return b"shipyard-journal-checkpoint:v1\n" + f"{int(seq)}\n{head_hash}".encode()


def bundle_message(manifest: bytes) -> bytes:
    return b"shipyard-evidence-bundle:v1\n" + manifest


# -- keys --------------------------------------------------------------------------------------


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(raw_public(public)).decode()


def key_id_of(public_b64: str) -> str:
    """First 32 hex characters of the SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(_b64decode(public_b64, "public_key")).hexdigest()[:32]


def parse_public_key(public_b64: str, field: str = "public_key") -> Ed25519PublicKey:
    if not isinstance(public_b64, str):
        raise InvalidInput(f"{field} must be a base64 string", field=field)
    raw = _b64decode(public_b64, field)
    if len(raw) != 32:
        raise InvalidInput(f"{field} must be 32 raw ed25519 bytes, base64-encoded (got {len(raw)} bytes)", field=field)
    return Ed25519PublicKey.from_public_bytes(raw)


def _b64decode(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InvalidInput(f"{field} is not valid base64", field=field) from None


def server_key_path(home: Path) -> Path:
    configured = os.environ.get(KEY_ENV)
    return Path(configured).expanduser() if configured else Path(home) / "keys" / KEY_FILE


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """An unencrypted PEM (PKCS#8) ed25519 private key."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no signing key at {path}", field="private_key_path") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{path} is not an unencrypted PEM private key: {exc}", field="private_key_path") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} holds a {type(key).__name__}, not an ed25519 key", field="private_key_path")
    return key


def load_or_create_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The key at ``path``, created (mode 0600) if missing. Creation is atomic: the new key is written
    to a temporary file and hard-linked into place, which fails if another process got there first —
    so racing processes all end up with the winner's key."""
    target = Path(path)
    if not target.exists():
        write_new_key(target)
    return load_private_key(target)


def write_new_key(target: Path, *, exclusive: bool = False) -> bool:
    """Write a fresh key to ``target`` unless one exists; True if this call created it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, tmp = tempfile.mkstemp(prefix=".key-", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, target)  # never replaces an existing key
        except FileExistsError:
            if exclusive:
                raise InvalidInput(f"{target} already exists; not overwriting a key", field="path") from None
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# -- sign and verify ---------------------------------------------------------------------------


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode()


def verify(public_b64: str, message: bytes, signature_b64: str) -> bool:
    """True if ``signature_b64`` is ``public_b64``'s signature of ``message``; False for anything else
    (a bad signature, malformed base64, a key of the wrong length)."""
    try:
        key = parse_public_key(public_b64)
        signature = base64.b64decode(signature_b64.encode(), validate=True)
        key.verify(signature, message)
    except (InvalidSignature, InvalidInput, binascii.Error, ValueError, AttributeError, UnicodeEncodeError):
        return False
    return True


def signatures_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")
