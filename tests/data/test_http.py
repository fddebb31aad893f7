"""The dataset API over plain HTTP: versions from uploaded trees, 4xx JSON errors, nothing half-written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.api.app import create_app
from shipyard.core.hashing import canonical_json
from shipyard.core.settings import Settings
from shipyard.governance.bootstrap import issue_admin_token

API = "/api/v1"


@pytest.fixture
def api(tmp_path: Path) -> TestClient:
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    token = issue_admin_token(settings)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False, headers={"authorization": f"Bearer {token}"}) as client:
        yield client
    app.state.services.close()


def _put(api: TestClient, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    response = api.put(f"{API}/blobs/{digest}", content=data)
    assert response.status_code < 300, response.text
    return digest


def _upload_tree(api: TestClient, files: dict[str, bytes]) -> str:
    entries = {rel: {"digest": _put(api, data), "size": len(data), "mode": 0o644} for rel, data in files.items()}
    return _put(api, canonical_json({"kind": "shipyard.tree/v1", "entries": entries}))


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["message"]
    return body


def test_create_and_read_versions_over_http(api: TestClient) -> None:
    digest = _upload_tree(api, {"a.bin": b"hello", "b.bin": b"world!"})
    body = {"digest": digest, "format": "files", "file_count": 2, "size": 11, "tags": {"k": "v"}}
    created = api.post(f"{API}/datasets/blobs/versions", json=body)
    assert created.status_code == 200, created.text
    v = created.json()
    assert (v["ref"], v["digest"], v["tags"], v["schema"]) == ("blobs@1", digest, {"k": "v"}, None)
    assert api.post(f"{API}/datasets/blobs/versions", json=body).json()["id"] == v["id"]  # same content

    assert api.get(f"{API}/datasets/blobs/versions/1").json()["id"] == v["id"]
    assert api.get(f"{API}/dataset-versions/resolve", params={"ref": "blobs@latest"}).json()["version"] == 1
    assert [d["name"] for d in api.get(f"{API}/datasets").json()] == ["blobs"]
    assert api.get(f"{API}/datasets/blobs").json()["latest_version"] == 1
    assert api.get(f"{API}/datasets/blobs/as-of", params={"time": "2999-01-01"}).json()["ref"] == "blobs@1"
    diff = api.get(f"{API}/dataset-versions/diff", params={"ref_a": "blobs@1", "ref_b": "blobs"}).json()
    assert diff["identical"] is True
    lineage = api.get(f"{API}/dataset-versions/lineage", params={"ref": "blobs@1"}).json()
    assert lineage["used_by"] == [] and lineage["digest"] == digest

    journal = api.get(f"{API}/journal", params={"after": 0}).json()
    actions = [e["action"] for e in (journal["entries"] if isinstance(journal, dict) else journal)]
    assert "dataset.created" in actions and actions.count("dataset_version.created") == 1


def test_bad_requests_are_4xx_and_write_nothing(api: TestClient) -> None:
    digest = _upload_tree(api, {"a.bin": b"hello"})
    missing = "sha256:" + "0" * 64
    url = f"{API}/datasets/x/versions"
    ok = {"digest": digest, "format": "files", "file_count": 1, "size": 5}
    assert _error(api.post(url, json={**ok, "digest": missing}), 404)["field"] == "digest"
    assert _error(api.post(url, json={**ok, "digest": "nonsense"}), 400)["field"] == "digest"
    assert _error(api.post(url, json={**ok, "format": "xlsx"}), 400)["field"] == "format"
    assert _error(api.post(url, json={**ok, "file_count": 3}), 400)["field"] == "digest"
    assert _error(api.post(url, json={**ok, "row_count": -1}), 400)["field"] == "row_count"
    assert _error(api.post(url, json={**ok, "profile": {"columns": []}}), 400)["field"] == "profile"
    assert _error(api.post(url, json={**ok, "parents": ["ghost@1"]}), 404)["field"] == "dataset"
    assert _error(api.post(url, json={**ok, "run_id": "nope"}), 404)["field"] == "consumer_id"
    blob = _put(api, b"not a manifest")
    assert _error(api.post(url, json={**ok, "digest": blob}), 400)["field"] == "digest"
    assert _error(api.get(f"{API}/datasets/x"), 404)["field"] == "dataset"  # nothing was created

    api.post(url, json=ok)
    assert _error(api.get(f"{API}/datasets/x/versions/9"), 404)["field"] == "version"
    assert _error(api.get(f"{API}/dataset-versions/resolve", params={"ref": "x@-1"}), 400)["field"] == "ref"
    assert _error(api.get(f"{API}/datasets/x/as-of", params={"time": "soon"}), 400)
    usage = {"ref": "x@1", "consumer_type": "run", "consumer_id": "nope"}
    assert _error(api.post(f"{API}/dataset-versions/usages", json=usage), 404)["field"] == "consumer_id"
    usage["consumer_type"] = "spreadsheet"
    assert _error(api.post(f"{API}/dataset-versions/usages", json=usage), 400)["field"] == "consumer_type"
    usage.update(consumer_type="run", role="sideways")
    assert _error(api.post(f"{API}/dataset-versions/usages", json=usage), 400)["field"] == "role"
