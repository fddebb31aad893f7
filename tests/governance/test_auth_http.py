"""The server's authentication and the permission matrix, route by route.

Every route of the API is called by a caller without a token, with a bad token, and by a principal
holding each role: a caller without the permission gets 401 or 403 and nothing else — never data,
not even a validation error about the body.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.api.app import create_app
from shipyard.api.operations import OPERATIONS
from shipyard.core.settings import Settings
from shipyard.governance.roles import ROLE_PERMISSIONS, ROLES

API = "/api/v1"
BLOB = "sha256:" + "0" * 64


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An authenticating app and one token per role (plus "nobody", a principal without roles)."""
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    seed = Client(home=settings.home)  # embedded: the local admin creates the principals
    tokens: dict[str, str] = {}
    for role in (*ROLES, None):
        name = role or "nobody"
        seed.create_principal(name)
        if role:
            seed.grant_role(name, role)
        tokens[name] = seed.create_token(name).token
    seed.close()
    app = create_app(settings, require_auth=True)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http, tokens
    app.state.services.close()


def _routes() -> list[tuple[str, str, str, str]]:
    """(method, concrete path, permission, name) for every generated route and the blob routes."""
    routes = []
    for op in OPERATIONS:
        path = re.sub(r"{\w+}", "1", op.path)
        routes.append((op.method, API + path, op.required_permission, f"{op.service}.{op.name}"))
    routes += [
        ("HEAD", f"{API}/blobs/{BLOB}", "read", "blobs.head"),
        ("GET", f"{API}/blobs/{BLOB}", "read", "blobs.get"),
        ("PUT", f"{API}/blobs/{BLOB}", "write", "blobs.put"),
    ]
    return routes


def _call(http: TestClient, method: str, path: str, token: str | None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if method in ("GET", "HEAD", "DELETE"):
        return http.request(method, path, headers=headers)
    if path.endswith("/blobs/" + BLOB):
        return http.request(method, path, headers=headers, content=b"x")
    return http.request(method, path, headers=headers, json={})


def test_every_route_refuses_a_caller_without_credentials(server) -> None:
    http, _ = server
    http.app.state.auth_limiter.max_failures = 10**9  # this test fails on purpose, hundreds of times
    for method, path, _permission, name in _routes():
        for token in (None, "shp_0000_nope", "not-a-token"):
            response = _call(http, method, path, token)
            assert response.status_code == 401, (name, token, response.status_code, response.text)
            if method != "HEAD":
                assert response.json()["error"]["code"] == "unauthenticated"
            assert response.headers["www-authenticate"] == "Bearer"


def test_permission_matrix_route_by_route(server) -> None:
    """Each role against each route: 403 exactly when the role lacks the route's permission."""
    http, tokens = server
    checked = 0
    for method, path, permission, name in _routes():
        for principal, token in tokens.items():
            granted = permission == "authenticated" or permission in ROLE_PERMISSIONS.get(principal, ())
            response = _call(http, method, path, token)
            if granted:
                assert response.status_code not in (401, 403) or _refused_by_service(response, permission), (
                    name,
                    principal,
                    response.status_code,
                    response.text,
                )
            else:
                assert response.status_code == 403, (name, principal, response.status_code, response.text)
                if method != "HEAD":
                    error = response.json()["error"]
                    assert error["code"] == "permission_denied" and permission in error["message"]
                    assert set(response.json()) == {"error"}  # nothing but the refusal
            checked += 1
    assert checked == len(_routes()) * len(tokens) > 6 * 100


def _refused_by_service(response, permission: str) -> bool:
    """A permitted caller may still be refused by a finer rule inside the service (e.g. another's tokens)."""
    if response.status_code != 403:
        return False
    return response.json()["error"].get("details", {}).get("permission") != permission


def test_scoped_grants_apply_to_their_model_only(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    with Client(home=settings.home) as seed:
        for name in ("churn", "fraud"):
            seed.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name)
        seed.create_principal("dana")
        seed.grant_role("dana", "developer", model="churn")
        token = seed.create_token("dana").token
    app = create_app(settings, require_auth=True)
    headers = {"authorization": f"Bearer {token}"}
    with TestClient(app, raise_server_exceptions=False, headers=headers) as http:
        ok = http.patch(f"{API}/models/churn", json={"description": "mine"})
        assert ok.status_code == 200 and ok.json()["description"] == "mine"
        assert http.get(f"{API}/models/churn/versions/1").status_code == 200
        refused = http.patch(f"{API}/models/fraud", json={"description": "not mine"})
        assert refused.status_code == 403 and "on model 'fraud'" in refused.json()["error"]["message"]
        assert http.get(f"{API}/models/fraud").status_code == 403
        assert http.get(f"{API}/models").status_code == 403  # listing every model needs a global grant
    app.state.services.close()


def test_actor_is_the_authenticated_principal(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    with Client(home=settings.home) as seed:
        seed.create_principal("erin")
        seed.grant_role("erin", "developer")
        token = seed.create_token("erin").token
    app = create_app(settings, require_auth=True)
    headers = {"authorization": f"Bearer {token}", "x-shipyard-actor": "someone-else"}
    with TestClient(app, raise_server_exceptions=False, headers=headers) as http:
        assert http.post(f"{API}/experiments", json={"name": "exp"}).status_code == 200
        entries = http.get(f"{API}/journal", params={"after": 0}).json()
        assert entries[-1]["actor"] == "erin"  # a self-declared actor header is ignored
        assert http.get(f"{API}/auth/whoami").json()["name"] == "erin"
    app.state.services.close()


def test_failed_authentication_is_rate_limited_and_tokens_never_logged(
    server, caplog: pytest.LogCaptureFixture
) -> None:
    http, tokens = server
    caplog.set_level(logging.DEBUG)
    secret = tokens["viewer"]
    assert http.get(f"{API}/models", headers={"authorization": f"Bearer {secret}"}).status_code == 200
    wrong = secret[:-4] + "zzzz"
    for _ in range(10):
        assert http.get(f"{API}/models", headers={"authorization": f"Bearer {wrong}"}).status_code == 401
    limited = http.get(f"{API}/models", headers={"authorization": f"Bearer {secret}"})
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert http.get("/health").status_code == 200  # liveness stays open
    for text in (secret, wrong, secret.split("_", 2)[2]):
        assert text not in caplog.text
        assert text not in limited.text


def test_revoked_and_expired_tokens_stop_at_once(server) -> None:
    http, tokens = server
    admin = {"authorization": f"Bearer {tokens['admin']}"}
    viewer = {"authorization": f"Bearer {tokens['viewer']}"}
    assert http.get(f"{API}/models", headers=viewer).status_code == 200
    token_id = tokens["viewer"].split("_")[1]
    [listed] = [tk for tk in http.get(f"{API}/tokens", headers=admin).json() if tk["id"] == token_id]
    assert listed["last_used_at"] is not None  # a token's use is recorded (at most once a minute)
    assert http.delete(f"{API}/tokens/{token_id}", headers=admin).status_code == 200
    refused = http.get(f"{API}/models", headers=viewer)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]


def test_open_server_acts_as_its_local_admin(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    app = create_app(settings, require_auth=False)
    with TestClient(app, raise_server_exceptions=False) as http:
        me = http.get(f"{API}/auth/whoami").json()
        assert me["local_admin"] and me["name"] == settings.actor
        assert http.post(f"{API}/principals", json={"name": "x"}).status_code == 200
    app.state.services.close()


def test_sdk_reads_the_token_from_env_or_login_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from shipyard.cli.main import app as cli
    from tests.conftest import ThreadedServer

    monkeypatch.setenv("SHIPYARD_CONFIG_DIR", str(tmp_path / "config"))
    settings = Settings.resolve(home=tmp_path / "server", remote_uri="")
    with ThreadedServer(settings) as srv:
        monkeypatch.delenv("SHIPYARD_TOKEN")
        with Client(srv.url, home=tmp_path) as anonymous, pytest.raises(Exception, match="authentication required"):
            anonymous.list_models()
        runner = CliRunner()
        bad = runner.invoke(cli, ["--uri", srv.url, "login", "--token", "shp_x_y"])
        assert bad.exit_code == 1 and "invalid API token" in bad.output and "shp_x_y" not in bad.output
        good = runner.invoke(cli, ["--uri", srv.url, "login", "--token", srv.token])
        assert good.exit_code == 0, good.output
        assert "as test-admin" in good.output and srv.token not in good.output
        credentials = tmp_path / "config" / "credentials.json"
        assert oct(credentials.stat().st_mode & 0o777) == "0o600"
        with Client(srv.url, home=tmp_path) as logged_in:
            assert logged_in.whoami().name == "test-admin"
        who = runner.invoke(cli, ["--uri", srv.url, "--json", "whoami"])
        assert who.exit_code == 0 and '"test-admin"' in who.output
        assert runner.invoke(cli, ["--uri", srv.url, "logout"]).exit_code == 0
        with Client(srv.url, home=tmp_path) as after, pytest.raises(Exception, match="authentication required"):
            after.whoami()


def test_cli_user_token_and_grant_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli.main import app as cli

    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    made = runner.invoke(cli, [*home, "access", "user", "create", "ops", "--role", "deployer", "--token"])
    assert made.exit_code == 0, made.output
    token = re.search(r"shp_\w+_[\w-]+", made.output).group(0)
    assert runner.invoke(cli, [*home, "access", "grant", "ops", "reviewer", "--model", "churn"]).exit_code == 0
    listed = runner.invoke(cli, [*home, "access", "user", "list"])
    assert "deployer" in listed.output and "reviewer@churn" in listed.output
    tokens = runner.invoke(cli, [*home, "--json", "access", "token", "list", "ops"])
    assert token.split("_")[1] in tokens.output and token not in tokens.output
    bad = runner.invoke(cli, [*home, "access", "grant", "ops", "king"])
    assert bad.exit_code == 1 and "role must be one of" in bad.output and "Traceback" not in bad.output
