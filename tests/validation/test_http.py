"""The contracts REST API: bad specs and reports are 4xx JSON naming the problem, good ones round-trip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shipyard import Client
from shipyard.api.app import create_app
from shipyard.core.settings import Settings
from shipyard.data.validation import validate_frame
from shipyard.governance.bootstrap import issue_admin_token


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    seed = Client(home=tmp_path / "home")
    seed.log_dataset(pd.DataFrame({"age": [10, 20, 30], "region": ["eu", "us", "eu"]}), name="people")
    seed.close()
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


def test_bad_specs_are_400_naming_the_path(api: TestClient) -> None:
    body = _error(api.post("/api/v1/contracts/people", json={"spec": {"columns": {"age": {"min": "x"}}}}), 400)
    assert body["code"] == "invalid_input" and body["field"] == "spec.columns.age.min"
    assert body["message"].startswith("columns.age.min: expected a number")
    body = _error(api.post("/api/v1/contracts/people", json={"spec": {"colums": {}}}), 400)
    assert body["field"] == "spec.colums"
    _error(api.post("/api/v1/contracts/people", json={"spec": ["not", "a", "mapping"]}), 422)
    assert api.get("/api/v1/contracts/people/versions").json() == []


def test_contract_round_trip_and_404s(api: TestClient) -> None:
    created = api.post("/api/v1/contracts/people", json={"spec": {"columns": {"age": {"max": 100}}}})
    assert created.status_code == 200, created.text
    assert created.json()["version"] == 1
    got = api.get("/api/v1/contracts/people", params={"version": 1}).json()
    assert got["spec"] == {"columns": {"age": {"max": 100}}}
    assert _error(api.get("/api/v1/contracts/ghost"), 404)["field"] == "dataset"
    assert _error(api.get("/api/v1/contracts/people", params={"version": 5}), 404)["field"] == "version"
    inferred = api.get("/api/v1/validation/infer", params={"ref": "people@1"}).json()
    assert inferred["columns"]["region"]["allowed"] == ["eu", "us"]
    _error(api.get("/api/v1/validation/infer", params={"ref": "people@0"}), 400)
    _error(api.get("/api/v1/validation/reports/nope"), 404)


def test_reports_are_checked_before_they_are_stored(api: TestClient) -> None:
    api.post("/api/v1/contracts/people", json={"spec": {"columns": {"age": {"max": 100}}}})
    report = validate_frame(pd.DataFrame({"age": [1, 200]}), {"columns": {"age": {"max": 100}}})
    body = report.model_dump(mode="json")
    stored = api.post("/api/v1/validation/reports", json={"ref": "people@1", "contract_version": 1, "report": body})
    assert stored.status_code == 200, stored.text
    assert stored.json()["ref"] == "people@1" and stored.json()["passed"] is False

    too_many = {**body, "checks": [{**c, "failing_rows": [{"_row": i} for i in range(6)]} for c in body["checks"]]}
    error = _error(api.post("/api/v1/validation/reports", json={"ref": "people@1", "report": too_many}), 400)
    assert error["field"].endswith("failing_rows")
    lying = {**body, "passed": True}
    assert _error(api.post("/api/v1/validation/reports", json={"ref": "people@1", "report": lying}), 400)["field"] == (
        "report.passed"
    )
    other = {**body, "contract_digest": "sha256:" + "0" * 64}
    reports = "/api/v1/validation/reports"
    _error(api.post(reports, json={"ref": "people@1", "contract_version": 1, "report": other}), 409)
    _error(api.post(reports, json={"ref": "people@1", "contract_version": 7, "report": body}), 404)
    _error(api.post("/api/v1/validation/reports", json={"ref": "people@1", "report": {"passed": True}}), 422)
    listed = api.get("/api/v1/validation/reports", params={"ref": "people@1"}).json()
    assert len(listed) == 1
