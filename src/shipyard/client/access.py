"""The SDK's identity and access calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

from typing import Any

from shipyard.governance.entities import ApiToken, NewToken, Principal, ProtectedAlias, RoleGrant


class AccessMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def whoami(self) -> Principal:
        """The identity this client acts as, with its role grants."""
        return self._call("access", "whoami")

    def create_principal(
        self, name: str, kind: str = "user", groups: list[str] | None = None, description: str | None = None
    ) -> Principal:
        """Create a user (``kind="user"``) or a service account (``kind="service"``); admin only."""
        return self._call("access", "create_principal", name=name, kind=kind, groups=groups, description=description)

    def list_principals(self) -> list[Principal]:
        return self._call("access", "list_principals")

    def get_principal(self, name: str) -> Principal:
        return self._call("access", "get_principal", name=name)

    def update_principal(self, name: str, groups: list[str] | None = None, disabled: bool | None = None) -> Principal:
        return self._call("access", "update_principal", name=name, groups=groups, disabled=disabled)

    def grant_role(
        self, principal: str, role: str, model: str | None = None, experiment: str | None = None
    ) -> RoleGrant:
        """Grant ``role`` (viewer, developer, reviewer, deployer, admin) globally or on a model/experiment."""
        return self._call("access", "grant_role", principal=principal, role=role, model=model, experiment=experiment)

    def revoke_role(self, principal: str, role: str, model: str | None = None, experiment: str | None = None) -> None:
        self._call("access", "revoke_role", principal=principal, role=role, model=model, experiment=experiment)

    def create_token(self, principal: str, name: str = "default", expires_in_days: float | None = None) -> NewToken:
        """Issue an API token; ``.token`` holds the secret, shown this once only."""
        return self._call("access", "create_token", principal=principal, name=name, expires_in_days=expires_in_days)

    def list_tokens(self, principal: str | None = None) -> list[ApiToken]:
        return self._call("access", "list_tokens", principal=principal)

    def revoke_token(self, token_id: str) -> ApiToken:
        return self._call("access", "revoke_token", token_id=token_id)

    def protect_alias(
        self, alias: str, role: str = "deployer", require_stage: str | None = "approved", model: str = "*"
    ) -> ProtectedAlias:
        """Only ``role`` may move ``alias``, and only to a version at ``require_stage`` (or later)."""
        return self._call("access", "protect_alias", alias=alias, role=role, require_stage=require_stage, model=model)

    def unprotect_alias(self, alias: str, model: str = "*") -> None:
        self._call("access", "unprotect_alias", alias=alias, model=model)

    def list_protected_aliases(self) -> list[ProtectedAlias]:
        return self._call("access", "list_protected_aliases")
