"""Governance entities shared by the access, lifecycle, evaluation, audit and privacy services."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RoleGrant(BaseModel):
    principal: str
    role: str
    scope_type: str  # global | model | experiment
    scope: str | None = None
    granted_by: str | None = None
    granted_at: int


class Principal(BaseModel):
    id: str
    name: str
    kind: str  # user | service
    groups: list[str] = Field(default_factory=list)
    description: str | None = None
    created_by: str | None = None
    created_at: int
    disabled: bool = False
    grants: list[RoleGrant] = Field(default_factory=list)
    local_admin: bool = False  # embedded mode: the local OS user, who holds every permission


class ApiToken(BaseModel):
    id: str
    principal: str
    name: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None


class NewToken(BaseModel):
    """A freshly issued token: ``token`` is the only time the secret is ever shown."""

    token: str
    info: ApiToken


class ProtectedAlias(BaseModel):
    model: str  # a model name, or "*" for every model
    alias: str
    role: str
    require_stage: str | None = None
