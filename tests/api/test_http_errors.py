"""The REST API answers bad input with 4xx JSON naming the problem — never a 500, never a half-written change."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.api.app import create_app
from shipyard.api.operations import OPERATIONS
from shipyard.core.settings import Settings
from shipyard.governance.bootstrap import issue_admin_token


@pytest.fixture
def api(tmp_path: Path) -> TestClient:
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    token = issue_admin_token(settings)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False, headers={"authorization": f"Bearer {token}"}) as client:
        yield client
    app.state.services.close()


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["message"]
    return body


def test_unknown_entities_are_404(api: TestClient) -> None:
    assert _error(api.get("/api/v1/runs/nope"), 404)["field"] == "run_id"
    assert _error(api.get("/api/v1/experiments/nope"), 404)["field"] == "experiment"
    assert _error(api.get("/api/v1/models/nope"), 404)["field"] == "model"
    api.post("/api/v1/models", json={"name": "m"})
    assert _error(api.get("/api/v1/models/m/versions/3"), 404)["field"] == "version"
    assert _error(api.get("/api/v1/models/m/aliases/champion"), 404)["field"] == "alias"
    assert _error(api.get("/api/v1/resolve", params={"uri": "models:/m@champion"}), 404)


def test_conflicts_and_duplicates_are_409(api: TestClient) -> None:
    api.post("/api/v1/experiments", json={"name": "e"})
    assert _error(api.post("/api/v1/experiments", json={"name": "e"}), 409)["field"] == "name"
    run = api.post("/api/v1/runs", json={"experiment": "e"}).json()
    api.post(f"/api/v1/runs/{run['id']}/params", json={"params": {"lr": 0.1}})
    body = _error(api.post(f"/api/v1/runs/{run['id']}/params", json={"params": {"lr": 0.2}}), 409)
    assert body["field"] == "params.lr"
    api.patch(f"/api/v1/runs/{run['id']}", json={"status": "FINISHED"})
    _error(api.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": [{"key": "m", "value": 1}]}), 409)


def test_invalid_values_name_the_field(api: TestClient) -> None:
    run = api.post("/api/v1/runs", json={}).json()
    bad_metric = _error(
        api.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": [{"key": "m", "value": "x"}]}), 422
    )
    assert bad_metric["field"] == "points.0.value"
    missing = _error(api.post("/api/v1/experiments", json={}), 422)
    assert missing["field"] == "name"
    long_name = _error(api.post("/api/v1/experiments", json={"name": "x" * 300}), 400)
    assert "250" in long_name["message"]
    bad_key = _error(api.post(f"/api/v1/runs/{run['id']}/params", json={"params": {"../etc": 1}}), 400)
    assert bad_key["field"] == "param key"
    bad_status = _error(api.patch(f"/api/v1/runs/{run['id']}", json={"status": "DONE"}), 422)
    assert bad_status["field"] == "status"


def test_malformed_filter_is_400_with_position(api: TestClient) -> None:
    body = _error(api.post("/api/v1/runs/search", json={"filter": "metrics.a > > 1"}), 400)
    assert body["code"] == "invalid_filter" and "column" in body["message"]


def test_blob_upload_verifies_digest(api: TestClient) -> None:
    data = b"some bytes"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert api.put(f"/api/v1/blobs/{digest}", content=data).json()["stored"] is True
    assert api.head(f"/api/v1/blobs/{digest}").status_code == 200
    assert api.get(f"/api/v1/blobs/{digest}").content == data
    wrong = "sha256:" + "0" * 64
    _error(api.put(f"/api/v1/blobs/{wrong}", content=data), 409)
    assert api.head(f"/api/v1/blobs/{wrong}").status_code == 404
    _error(api.get("/api/v1/blobs/not-a-digest"), 400)


def test_registering_an_unknown_tree_is_refused_and_writes_nothing(api: TestClient) -> None:
    body = _error(
        api.post("/api/v1/models/m/versions", json={"digest": "sha256:" + "a" * 64, "flavor": "sklearn"}), 404
    )
    assert body["field"] == "digest"
    assert _error(api.get("/api/v1/models/m"), 404)  # the model was not created half-way
    blob = b"not a manifest"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    api.put(f"/api/v1/blobs/{digest}", content=blob)
    assert api.post("/api/v1/models/m/versions", json={"digest": digest, "flavor": "sklearn"}).status_code in (400, 409)
    assert api.get("/api/v1/models/m").status_code == 404


def test_openapi_is_served(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert "/api/v1/runs/search" in spec["paths"]
    assert api.get("/docs").status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
WRITE_OPERATIONS = [op for op in OPERATIONS if op.method != "GET"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    op_index=st.integers(0, len(WRITE_OPERATIONS) - 1),
    body=st.dictionaries(st.text(max_size=12), json_values, max_size=4) | json_values,
    segment=st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s and s not in (".", "..")),
)
def test_arbitrary_bodies_never_cause_a_server_error(api: TestClient, op_index: int, body, segment: str) -> None:
    op = WRITE_OPERATIONS[op_index]
    path = op.path
    for name in ("run_id", "experiment", "name", "version", "alias", "key", "id_or_name"):
        path = path.replace("{" + name + "}", quote(segment, safe=""))
    response = api.request(op.method, "/api/v1" + path, json=body)
    assert response.status_code < 500, (op.name, body, response.text)
    if response.status_code >= 400:
        assert "error" in response.json()
