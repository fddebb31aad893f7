"""Registry entities: registered models, their immutable versions, aliases."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelVersion(BaseModel):
    id: str
    model_name: str
    version: int
    digest: str
    flavor: str
    source_run_id: str | None = None
    source_uri: str | None = None
    signature: dict[str, Any] | None = None
    input_example: dict[str, Any] | None = None
    code_commit: str | None = None
    environment: dict[str, Any] | None = None
    data_refs: list[str] = Field(default_factory=list)
    description: str | None = None
    status: str = "READY"
    stage: str = "draft"  # governance lifecycle: draft, in_review, approved, rejected, deployed, retired
    aliases: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    created_by: str | None = None
    created_at: int
    updated_at: int

    @property
    def uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


class RegisteredModel(BaseModel):
    id: str
    name: str
    description: str | None = None
    created_by: str | None = None
    created_at: int
    updated_at: int
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] = Field(default_factory=dict)
    latest_version: int | None = None
    risk_tier: str | None = None  # governance: low | medium | high


class AliasMove(BaseModel):
    """One entry of an alias's history, read from the journal."""

    seq: int
    ts: int
    actor: str
    alias: str
    from_version: int | None = None
    to_version: int | None = None
