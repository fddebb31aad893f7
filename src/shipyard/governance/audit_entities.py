"""What the audit service returns: signing keys, journal checkpoints, audit log entries, bundles."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class SigningKey(BaseModel):
    key_id: str  # first 32 hex characters of SHA-256 of the raw public key
    owner: str  # "server" or the principal who registered it
    public_key: str  # base64 of the 32 raw ed25519 bytes
    created_at: int
    revoked_at: int | None = None


class Checkpoint(BaseModel):
    """A signed statement "the journal up to ``seq`` had head hash ``hash``", for an outside party to keep."""

    seq: int
    hash: str
    key_id: str
    public_key: str
    signature: str
    created_at: int


class AuditEntry(BaseModel):
    """One journal entry about a model: who did what to which version, when, with what evidence."""

    seq: int
    ts: int
    actor: str
    action: str
    version: int | None = None
    summary: str
    evidence: Any = None  # the journal payload, as recorded
    entity_type: str
    entity_id: str
    hash: str | None = None


class Bundle(BaseModel):
    """An evidence bundle stored in the artifact store: download it by ``digest``."""

    digest: str
    size: int
    model: str
    version: int
    files: list[str]
    checkpoint_seq: int
