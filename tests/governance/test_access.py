"""Identities and access: principals, role grants, API tokens and protected aliases, through the SDK
(embedded and remote, SQLite and PostgreSQL) and the CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.core.context import acting_as
from shipyard.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from shipyard.services import Services
from shipyard.store import schema as t


def _model(client: Client, name: str = "churn") -> None:
    estimator = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    client.register_model(estimator, name)


def test_principals_grants_and_tokens(client: Client) -> None:
    alice = client.create_principal("alice", groups=["risk", "risk"])
    assert alice.kind == "user" and alice.groups == ["risk"] and alice.grants == []
    bot = client.create_principal("ci-bot", kind="service")
    assert bot.kind == "service"

    client.grant_role("alice", "reviewer")
    client.grant_role("alice", "deployer", model="churn")
    again = client.grant_role("alice", "reviewer")  # idempotent
    assert again.scope_type == "global"
    grants = {(g.role, g.scope_type, g.scope) for g in client.get_principal("alice").grants}
    assert grants == {("reviewer", "global", None), ("deployer", "model", "churn")}
    assert [p.name for p in client.list_principals()] >= ["alice", "ci-bot"]

    issued = client.create_token("alice", name="laptop", expires_in_days=30)
    assert issued.token.startswith("shp_") and issued.info.principal == "alice"
    listed = client.list_tokens("alice")
    assert [tk.id for tk in listed] == [issued.info.id]
    assert issued.token not in str([tk.model_dump() for tk in listed])  # the secret is never listed
    revoked = client.revoke_token(issued.info.id)
    assert revoked.revoked_at is not None

    client.revoke_role("alice", "deployer", model="churn")
    assert {g.role for g in client.get_principal("alice").grants} == {"reviewer"}
    with pytest.raises(NotFound, match="holds no deployer role"):
        client.revoke_role("alice", "deployer", model="churn")


def test_bad_input_names_the_field(client: Client) -> None:
    client.create_principal("bob")
    with pytest.raises(InvalidInput) as err:
        client.grant_role("bob", "superuser")
    assert err.value.field == "role" and "viewer" in err.value.message
    with pytest.raises(InvalidInput) as err:
        client.create_principal("eve", kind="robot")
    assert err.value.field == "kind"
    with pytest.raises(NotFound) as err:
        client.grant_role("nobody", "viewer")
    assert err.value.field == "name"
    with pytest.raises(InvalidInput) as err:
        client.create_token("bob", expires_in_days=-1)
    assert err.value.field == "expires_in_days"
    with pytest.raises(NotFound):
        client.grant_role("bob", "viewer", experiment="no-such-experiment")


def test_tokens_are_stored_as_salted_hashes_and_expire(home: Path) -> None:
    services = Services(_settings(home))
    try:
        access = services.access
        access.create_principal("alice")
        first = access.create_token("alice")
        second = access.create_token("alice")
        secret = first.token.split("_", 2)[2]
        with services.db.read() as conn:
            rows = conn.execute(sa.select(t.api_tokens)).all()
        stored = " ".join(f"{r.id} {r.salt} {r.hash}" for r in rows)
        assert secret not in stored and first.token not in stored
        assert hashlib.sha256(secret.encode()).hexdigest() not in stored  # salted, not a bare hash
        assert len({r.salt for r in rows}) == 2
        assert access.authenticate(first.token) == "alice" and access.authenticate(second.token) == "alice"

        for bad in ("", "shp_", "Bearer x", first.token[:-1] + ("A" if first.token[-1] != "A" else "B")):
            with pytest.raises(Unauthenticated):
                access.authenticate(bad)
        with services.db.write() as tx:  # an expired token
            tx.conn.execute(t.api_tokens.update().where(t.api_tokens.c.id == second.info.id).values(expires_at=1))
        with pytest.raises(Unauthenticated, match="expired"):
            access.authenticate(second.token)
        access.update_principal("alice", disabled=True)
        with pytest.raises(Unauthenticated, match="disabled"):
            access.authenticate(first.token)
        assert access.roles_of("alice") == []
    finally:
        services.close()


def test_roles_and_scopes_embedded(home: Path) -> None:
    client = Client(home=home)
    try:
        services = client._backend.services
        assert client.whoami().local_admin  # embedded mode: the OS user holds every permission
        client.create_principal("dana")
        client.grant_role("dana", "developer", model="churn")
        client.grant_role("dana", "viewer")
        access = services.access
        assert access.roles_of("dana") == ["viewer"]
        assert access.roles_of("dana", model="churn") == ["viewer", "developer"]
        assert access.has_permission("dana", "write", model="churn")
        assert not access.has_permission("dana", "write", model="fraud")
        assert not access.has_permission("dana", "write")
        with acting_as("dana"), pytest.raises(PermissionDenied, match="lacks the 'admin' permission"):
            client.create_principal("mallory")
        with acting_as("dana"):
            own = client.create_token("dana")  # anyone may issue their own token
            assert client.whoami().name == "dana" and not client.whoami().local_admin
            with pytest.raises(PermissionDenied):
                client.create_token("someone-else")
            assert [tk.id for tk in client.list_tokens("dana")] == [own.info.id]
            with pytest.raises(PermissionDenied):
                client.list_tokens()  # everyone's tokens: admin only
    finally:
        client.close()


def test_protected_alias_only_by_role_and_only_to_approved(client: Client) -> None:
    _model(client)
    _model(client)
    client.set_alias("churn", "staging", 1)  # unprotected aliases move freely
    client.protect_alias("production", role="deployer", require_stage="approved")
    assert [(p.model, p.alias, p.role) for p in client.list_protected_aliases()] == [("*", "production", "deployer")]
    with pytest.raises(PermissionDenied, match="version 2 is draft"):
        client.set_alias("churn", "production", 2)  # an admin may move it, but only to an approved version
    _set_stage(client, "churn", 2, "approved")
    assert "production" in client.set_alias("churn", "production", 2).aliases
    client.unprotect_alias("production")
    assert client.list_protected_aliases() == []


def test_protected_alias_refuses_other_roles(home: Path) -> None:
    client = Client(home=home)
    try:
        _model(client)
        _set_stage(client, "churn", 1, "approved")
        client.protect_alias("production", model="churn", role="deployer")
        for name, role in (("dev", "developer"), ("ops", "deployer")):
            client.create_principal(name)
            client.grant_role(name, role)
        with acting_as("dev"), pytest.raises(PermissionDenied, match="does not hold the 'deployer' role"):
            client.set_alias("churn", "production", 1)
        with acting_as("ops"):
            assert client.set_alias("churn", "production", 1).aliases == ["production"]
        with acting_as("dev"), pytest.raises(PermissionDenied):
            client.delete_alias("churn", "production")
        moves = client.alias_history("churn", "production")
        assert [(m.actor, m.to_version) for m in moves] == [("ops", 1)]
    finally:
        client.close()


def _set_stage(client: Client, name: str, version: int, stage: str) -> None:
    """Put a version in a lifecycle stage directly (the approval workflow has its own tests)."""
    db = client._backend.services.db if not client.is_remote else None
    if db is None:
        from shipyard.store.database import Database

        db = Database(client.server_settings.store_uri)  # type: ignore[attr-defined]
    with db.write() as tx:
        model_id = tx.conn.execute(sa.select(t.registered_models.c.id).where(t.registered_models.c.name == name))
        tx.conn.execute(
            t.model_versions.update()
            .where(t.model_versions.c.model_id == model_id.scalar_one(), t.model_versions.c.version == version)
            .values(stage=stage)
        )


def _settings(home: Path):
    from shipyard.core.settings import Settings

    return Settings.resolve(home=home, remote_uri="")
