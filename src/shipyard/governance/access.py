"""Identities and access: principals (users, service accounts), API tokens, role grants, protected aliases.

A token is ``shp_<id>_<secret>``: the id is public and finds the row, the secret is 32 random bytes
stored only as a salted SHA-256 (a random 256-bit secret needs no slow hash; the salt keeps equal
secrets from showing). Tokens are shown once, can expire and can be revoked.

Embedded mode acts as the local OS user, who holds every permission (``local_admin``); a server
passes ``local_admin=None`` and every caller's roles come from ``role_grants``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import sqlalchemy as sa

from shipyard.core.context import current_actor
from shipyard.core.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from shipyard.core.ids import new_id
from shipyard.core.names import check_name
from shipyard.core.time import now_ms
from shipyard.governance.entities import ApiToken, NewToken, Principal, ProtectedAlias, RoleGrant
from shipyard.governance.roles import PERMISSIONS, ROLES, SCOPE_TYPES, permissions_of
from shipyard.store import schema as t
from shipyard.store.database import Database, Tx

TOKEN_PREFIX = "shp_"
PRINCIPAL_KINDS = ("user", "service")
STAGES = ("draft", "in_review", "approved", "rejected", "deployed", "retired")


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str]:
    """Split ``shp_<id>_<secret>``; raises Unauthenticated for anything else (never echoing it)."""
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        raise Unauthenticated("malformed API token (expected shp_<id>_<secret>)")
    token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not token_id or not secret:
        raise Unauthenticated("malformed API token (expected shp_<id>_<secret>)")
    return token_id, secret


class AccessService:
    def __init__(self, db: Database, local_admin: str | None = None):
        self.db = db
        self.local_admin = local_admin

    # ----------------------------------------------------------------------------------------------
    # Principals

    def create_principal(
        self, name: str, kind: str = "user", groups: list[str] | None = None, description: str | None = None
    ) -> Principal:
        """Create a user or a service account (admin)."""
        self.require("admin")
        check_name(name, "name")
        if kind not in PRINCIPAL_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(PRINCIPAL_KINDS)}, not {kind!r}", field="kind")
        groups = sorted({check_name(g, "groups") for g in groups or []})
        with self.db.write() as tx:
            if tx.conn.execute(sa.select(t.principals.c.id).where(t.principals.c.name == name)).first():
                raise AlreadyExists(f"principal {name!r} already exists", field="name")
            pid = new_id()
            tx.conn.execute(
                t.principals.insert().values(
                    id=pid,
                    name=name,
                    kind=kind,
                    groups=groups,
                    description=description,
                    created_by=tx.actor,
                    created_at=now_ms(),
                )
            )
            tx.journal("principal.created", "principal", name, {"kind": kind, "groups": groups})
        return self.get_principal(name)

    def get_principal(self, name: str) -> Principal:
        with self.db.read() as conn:
            row = self._principal_row(conn, name)
            return self._principal(conn, row)

    def list_principals(self) -> list[Principal]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.principals).order_by(t.principals.c.name)).all()
            return [self._principal(conn, row) for row in rows]

    def update_principal(self, name: str, groups: list[str] | None = None, disabled: bool | None = None) -> Principal:
        """Change a principal's groups, or disable (every token stops working) and re-enable it (admin)."""
        self.require("admin")
        with self.db.write() as tx:
            row = self._principal_row(tx.conn, name)
            values: dict[str, Any] = {}
            if groups is not None:
                values["groups"] = sorted({check_name(g, "groups") for g in groups})
            if disabled is not None:
                values["disabled_at"] = now_ms() if disabled else None
            if values:
                tx.conn.execute(t.principals.update().where(t.principals.c.id == row.id).values(**values))
                payload = {k: (bool(v) if k == "disabled_at" else v) for k, v in values.items()}
                tx.journal("principal.updated", "principal", name, payload)
        return self.get_principal(name)

    def whoami(self) -> Principal:
        """The calling identity with its roles (embedded: the local OS user, an admin)."""
        actor = current_actor()
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.principals).where(t.principals.c.name == actor)).first()
            if row is not None:
                principal = self._principal(conn, row)
            else:
                principal = Principal(id="", name=actor, kind="user", groups=[], created_at=0, grants=[])
        if actor == self.local_admin:
            principal.local_admin = True
        return principal

    def _principal_row(self, conn: sa.Connection, name: str) -> sa.Row:
        row = conn.execute(sa.select(t.principals).where(t.principals.c.name == name)).first()
        if row is None:
            raise NotFound(f"principal {name!r} not found", field="name")
        return row

    def _principal(self, conn: sa.Connection, row: sa.Row) -> Principal:
        grants = conn.execute(
            sa.select(t.role_grants).where(t.role_grants.c.principal_id == row.id).order_by(t.role_grants.c.id)
        ).all()
        return Principal(
            id=row.id,
            name=row.name,
            kind=row.kind,
            groups=list(row.groups or []),
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            disabled=row.disabled_at is not None,
            grants=[_grant(row.name, g) for g in grants],
        )

    # ----------------------------------------------------------------------------------------------
    # Role grants

    def grant_role(
        self, principal: str, role: str, model: str | None = None, experiment: str | None = None
    ) -> RoleGrant:
        """Grant a role globally, or on one registered model or experiment (admin)."""
        self.require("admin")
        scope_type, scope = _scope(role, model, self._experiment_id(experiment))
        with self.db.write() as tx:
            row = self._principal_row(tx.conn, principal)
            existing = tx.conn.execute(
                sa.select(t.role_grants).where(
                    t.role_grants.c.principal_id == row.id,
                    t.role_grants.c.role == role,
                    t.role_grants.c.scope_type == scope_type,
                    t.role_grants.c.scope == scope,
                )
            ).first()
            if existing is not None:
                return _grant(principal, existing)
            tx.conn.execute(
                t.role_grants.insert().values(
                    principal_id=row.id,
                    role=role,
                    scope_type=scope_type,
                    scope=scope,
                    granted_by=tx.actor,
                    granted_at=now_ms(),
                )
            )
            tx.journal("role.granted", "principal", principal, {"role": role, "scope_type": scope_type, "scope": scope})
            created = tx.conn.execute(
                sa.select(t.role_grants).where(
                    t.role_grants.c.principal_id == row.id,
                    t.role_grants.c.role == role,
                    t.role_grants.c.scope_type == scope_type,
                    t.role_grants.c.scope == scope,
                )
            ).one()
        return _grant(principal, created)

    def revoke_role(self, principal: str, role: str, model: str | None = None, experiment: str | None = None) -> None:
        """Withdraw a grant made with the same role and scope (admin)."""
        self.require("admin")
        scope_type, scope = _scope(role, model, self._experiment_id(experiment))
        with self.db.write() as tx:
            row = self._principal_row(tx.conn, principal)
            deleted = tx.conn.execute(
                t.role_grants.delete().where(
                    t.role_grants.c.principal_id == row.id,
                    t.role_grants.c.role == role,
                    t.role_grants.c.scope_type == scope_type,
                    t.role_grants.c.scope == scope,
                )
            ).rowcount
            if not deleted:
                where = "globally" if scope_type == "global" else f"on {scope_type} {scope!r}"
                raise NotFound(f"{principal!r} holds no {role} role {where}", field="role")
            tx.journal("role.revoked", "principal", principal, {"role": role, "scope_type": scope_type, "scope": scope})

    def _experiment_id(self, experiment: str | None) -> str | None:
        """Grants on an experiment are kept by id (names can change); accept either."""
        if experiment is None:
            return None
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(t.experiments.c.id).where(
                    sa.or_(t.experiments.c.id == experiment, t.experiments.c.name == experiment)
                )
            ).scalar()
        if found is None:
            raise NotFound(f"experiment {experiment!r} not found", field="experiment")
        return str(found)

    def roles_of(self, principal: str, model: str | None = None, experiment: str | None = None) -> list[str]:
        """The roles ``principal`` holds globally plus those on ``model`` / ``experiment``."""
        if principal == self.local_admin:
            return ["admin"]
        scopes = [sa.and_(t.role_grants.c.scope_type == "global")]
        if model is not None:
            scopes.append(sa.and_(t.role_grants.c.scope_type == "model", t.role_grants.c.scope == model))
        if experiment is not None:
            scopes.append(sa.and_(t.role_grants.c.scope_type == "experiment", t.role_grants.c.scope == experiment))
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.role_grants.c.role)
                .join(t.principals, t.principals.c.id == t.role_grants.c.principal_id)
                .where(t.principals.c.name == principal, t.principals.c.disabled_at.is_(None), sa.or_(*scopes))
            ).all()
        return sorted({r.role for r in rows}, key=ROLES.index)

    def groups_of(self, principal: str) -> list[str]:
        with self.db.read() as conn:
            groups = conn.execute(sa.select(t.principals.c.groups).where(t.principals.c.name == principal)).scalar()
        return list(groups or [])

    def has_permission(
        self, principal: str, permission: str, model: str | None = None, experiment: str | None = None
    ) -> bool:
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        return permission in permissions_of(self.roles_of(principal, model=model, experiment=experiment))

    def require(self, permission: str, model: str | None = None, experiment: str | None = None) -> str:
        """Raise PermissionDenied unless the current actor holds ``permission``; returns the actor."""
        actor = current_actor()
        if not self.has_permission(actor, permission, model=model, experiment=experiment):
            where = f" on model {model!r}" if model else f" on experiment {experiment!r}" if experiment else ""
            raise PermissionDenied(
                f"{actor!r} lacks the {permission!r} permission{where}",
                field="permission",
                details={"permission": permission, "actor": actor, "model": model, "experiment": experiment},
            )
        return actor

    def require_role(self, role: str, model: str | None = None) -> str:
        """Raise PermissionDenied unless the current actor holds ``role`` (or admin) on ``model``."""
        actor = current_actor()
        roles = self.roles_of(actor, model=model)
        if role not in roles and "admin" not in roles:
            where = f" on model {model!r}" if model else ""
            raise PermissionDenied(
                f"{actor!r} does not hold the {role!r} role{where}",
                field="role",
                details={"role": role, "actor": actor, "model": model},
            )
        return actor

    # ----------------------------------------------------------------------------------------------
    # Tokens

    def create_token(self, principal: str, name: str = "default", expires_in_days: float | None = None) -> NewToken:
        """Issue an API token for ``principal``; the secret is in this answer only (admin, or yourself)."""
        if principal != current_actor():
            self.require("admin")
        check_name(name, "name")
        if expires_in_days is not None and not (0 < expires_in_days <= 3650):
            raise InvalidInput("expires_in_days must be between 0 and 3650", field="expires_in_days")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        created = now_ms()
        expires = None if expires_in_days is None else created + int(expires_in_days * 86_400_000)
        with self.db.write() as tx:
            row = self._principal_row(tx.conn, principal)
            tx.conn.execute(
                t.api_tokens.insert().values(
                    id=token_id,
                    principal_id=row.id,
                    name=name,
                    salt=salt,
                    hash=hash_secret(salt, secret),
                    created_by=tx.actor,
                    created_at=created,
                    expires_at=expires,
                )
            )
            tx.journal(
                "token.created", "principal", principal, {"token_id": token_id, "name": name, "expires_at": expires}
            )
        return NewToken(
            token=f"{TOKEN_PREFIX}{token_id}_{secret}",
            info=ApiToken(id=token_id, principal=principal, name=name, created_at=created, expires_at=expires),
        )

    def list_tokens(self, principal: str | None = None) -> list[ApiToken]:
        """Tokens (never their secrets): your own, or anyone's for an admin."""
        actor = current_actor()
        if principal != actor:
            self.require("admin")
        query = sa.select(t.api_tokens, t.principals.c.name.label("principal_name")).join(
            t.principals, t.principals.c.id == t.api_tokens.c.principal_id
        )
        if principal is not None:
            query = query.where(t.principals.c.name == principal)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(t.api_tokens.c.created_at)).all()
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke a token by its id (its owner or an admin); it stops working at once."""
        with self.db.write() as tx:
            row = tx.conn.execute(
                sa.select(t.api_tokens, t.principals.c.name.label("principal_name"))
                .join(t.principals, t.principals.c.id == t.api_tokens.c.principal_id)
                .where(t.api_tokens.c.id == token_id)
            ).first()
            if row is None:
                raise NotFound(f"token {token_id!r} not found", field="token_id")
            if row.principal_name != tx.actor:
                self.require("admin")
            if row.revoked_at is None:
                tx.conn.execute(t.api_tokens.update().where(t.api_tokens.c.id == token_id).values(revoked_at=now_ms()))
                tx.journal("token.revoked", "principal", row.principal_name, {"token_id": token_id})
        return self.list_tokens_by_id(token_id)

    def list_tokens_by_id(self, token_id: str) -> ApiToken:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.api_tokens, t.principals.c.name.label("principal_name"))
                .join(t.principals, t.principals.c.id == t.api_tokens.c.principal_id)
                .where(t.api_tokens.c.id == token_id)
            ).one()
        return _token(row)

    def authenticate(self, token: str) -> str:
        """The principal a token belongs to; Unauthenticated for any bad token, without saying which part."""
        token_id, secret = parse_token(token)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.api_tokens, t.principals.c.name.label("principal_name"), t.principals.c.disabled_at)
                .join(t.principals, t.principals.c.id == t.api_tokens.c.principal_id)
                .where(t.api_tokens.c.id == token_id)
            ).first()
        # compare against a dummy when the id is unknown, so timing does not reveal valid ids
        expected = row.hash if row is not None else hash_secret("0" * 32, "")
        supplied = hash_secret(row.salt if row is not None else "0" * 32, secret)
        if row is None or not hmac.compare_digest(expected, supplied):
            raise Unauthenticated("invalid API token")
        if row.revoked_at is not None:
            raise Unauthenticated("this API token was revoked")
        if row.expires_at is not None and row.expires_at <= now_ms():
            raise Unauthenticated("this API token has expired")
        if row.disabled_at is not None:
            raise Unauthenticated(f"principal {row.principal_name!r} is disabled")
        return str(row.principal_name)

    def touch_token(self, token_id: str) -> None:
        """Record use (at most once a minute per token, so reads stay cheap)."""
        cutoff = now_ms() - 60_000
        with self.db.engine.begin() as conn:
            conn.execute(
                t.api_tokens.update()
                .where(
                    t.api_tokens.c.id == token_id,
                    sa.or_(t.api_tokens.c.last_used_at.is_(None), t.api_tokens.c.last_used_at < cutoff),
                )
                .values(last_used_at=now_ms())
            )

    # ----------------------------------------------------------------------------------------------
    # Protected aliases

    def protect_alias(
        self, alias: str, role: str = "deployer", require_stage: str | None = "approved", model: str = "*"
    ) -> ProtectedAlias:
        """Only ``role`` may move ``alias`` (on ``model``, or every model), and only to a version in
        ``require_stage`` or later (approved also admits deployed) (admin)."""
        self.require("admin")
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
        if require_stage is not None and require_stage not in STAGES:
            raise InvalidInput(f"require_stage must be one of {', '.join(STAGES)}", field="require_stage")
        with self.db.write() as tx:
            tx.conn.execute(
                t.protected_aliases.delete().where(
                    t.protected_aliases.c.model == model, t.protected_aliases.c.alias == alias
                )
            )
            tx.conn.execute(
                t.protected_aliases.insert().values(
                    model=model,
                    alias=alias,
                    role=role,
                    require_stage=require_stage,
                    created_by=tx.actor,
                    created_at=now_ms(),
                )
            )
            tx.journal("alias.protected", "alias", f"{model}@{alias}", {"role": role, "require_stage": require_stage})
        return ProtectedAlias(model=model, alias=alias, role=role, require_stage=require_stage)

    def unprotect_alias(self, alias: str, model: str = "*") -> None:
        self.require("admin")
        with self.db.write() as tx:
            deleted = tx.conn.execute(
                t.protected_aliases.delete().where(
                    t.protected_aliases.c.model == model, t.protected_aliases.c.alias == alias
                )
            ).rowcount
            if not deleted:
                raise NotFound(f"alias {alias!r} is not protected on {model!r}", field="alias")
            tx.journal("alias.unprotected", "alias", f"{model}@{alias}", {})

    def list_protected_aliases(self) -> list[ProtectedAlias]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.protected_aliases).order_by(t.protected_aliases.c.alias)).all()
        return [ProtectedAlias(model=r.model, alias=r.alias, role=r.role, require_stage=r.require_stage) for r in rows]

    def guard_alias(self, tx: Tx, model: str, alias: str, version: sa.Row | None) -> None:
        """Registry alias guard: a protected alias moves only by its role, only to a version far enough along."""
        protection = self.alias_protection(tx.conn, model, alias)
        if protection is None:
            return
        self.require_role(protection.role, model=model)
        if version is not None and protection.require_stage is not None:
            allowed = STAGES[STAGES.index(protection.require_stage) :]
            if protection.require_stage == "approved":
                allowed = ("approved", "deployed")
            if version.stage not in allowed:
                raise PermissionDenied(
                    f"@{alias} of {model!r} is protected: it may only point at a version that is "
                    f"{protection.require_stage}, and version {version.version} is {version.stage}",
                    field="version",
                    details={"alias": alias, "require_stage": protection.require_stage, "stage": version.stage},
                )

    def alias_protection(self, conn: sa.Connection, model: str, alias: str) -> ProtectedAlias | None:
        """The protection in force for ``model@alias`` (a model-specific rule wins over ``*``)."""
        rows = conn.execute(
            sa.select(t.protected_aliases).where(
                t.protected_aliases.c.alias == alias, t.protected_aliases.c.model.in_([model, "*"])
            )
        ).all()
        if not rows:
            return None
        row = next((r for r in rows if r.model == model), rows[0])
        return ProtectedAlias(model=row.model, alias=row.alias, role=row.role, require_stage=row.require_stage)


def _scope(role: str, model: str | None, experiment: str | None) -> tuple[str, str]:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
    if model and experiment:
        raise InvalidInput("grant a role on a model or on an experiment, not both", field="experiment")
    if model:
        return "model", model
    if experiment:
        return "experiment", experiment
    return "global", ""


def _grant(principal: str, row: sa.Row) -> RoleGrant:
    assert row.scope_type in SCOPE_TYPES
    return RoleGrant(
        principal=principal,
        role=row.role,
        scope_type=row.scope_type,
        scope=row.scope or None,
        granted_by=row.granted_by,
        granted_at=row.granted_at,
    )


def _token(row: sa.Row) -> ApiToken:
    return ApiToken(
        id=row.id,
        principal=row.principal_name,
        name=row.name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )
