"""The privacy API over raw HTTP on an authenticating server: JSON bodies (numbers accepted as values),
4xx answers naming the field, and the permissions: erasure and policy changes need an admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.api.app import create_app
from shipyard.core.settings import Settings
from tests.governance.privacy_helpers import SUBJECT_EMAIL, customers

API = "/api/v1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    seed = Client(home=settings.home)  # embedded: the local admin sets up the world and the principals
    frame = customers()
    seed.log_dataset(frame, "customers")
    model = LogisticRegression().fit(frame[["x", "z"]], frame["y"])
    seed.register_model(model, "churn", data_refs=["customers@1"])
    scored = frame[["user_id", "email", "x"]].copy()
    scored["prediction"] = model.predict(frame[["x", "z"]])
    seed.log_predictions(scored, "churn/1")
    headers = {}
    for role in ("admin", "developer", "viewer"):
        seed.create_principal(f"a-{role}")
        seed.grant_role(f"a-{role}", role)
        headers[role] = {"authorization": f"Bearer {seed.create_token(f'a-{role}').token}"}
    seed.close()
    app = create_app(settings, require_auth=True)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http, headers
    app.state.services.close()


def test_erasure_and_retention_over_http(server) -> None:
    http, headers = server
    admin = headers["admin"]
    body = {"subject": {"user_id": 7, "email": SUBJECT_EMAIL}, "dry_run": True}
    plan = http.post(f"{API}/privacy/erasures", json=body, headers=admin)
    assert plan.status_code == 200, plan.text
    assert plan.json()["predictions"] == 1 and plan.json()["id"] is None
    done = http.post(f"{API}/privacy/erasures", json={**body, "dry_run": False}, headers=admin)
    assert done.status_code == 200, done.text
    erasure_id = done.json()["id"]
    assert http.get(f"{API}/privacy/erasures/{erasure_id}", headers=admin).json()["status"] == "complete"
    assert [e["id"] for e in http.get(f"{API}/privacy/erasures", headers=admin).json()] == [erasure_id]
    assert SUBJECT_EMAIL not in http.get(f"{API}/privacy/erasures", headers=admin).text

    unknown = http.post(f"{API}/privacy/erasures", json={"subject": {"nope": "1"}}, headers=admin)
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "subject.nope"
    missing = http.get(f"{API}/privacy/erasures/nope", headers=admin)
    assert missing.status_code == 404

    policy = http.post(f"{API}/retention", json={"target": "labels", "max_age_days": 30}, headers=admin)
    assert policy.status_code == 200 and policy.json()["max_age_ms"] == 30 * 86_400_000
    bad = http.post(f"{API}/retention", json={"target": "metrics", "max_age_days": 30}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "target"
    run = http.post(f"{API}/retention/enforce", json={}, headers=admin)
    assert run.status_code == 200 and set(run.json()["cutoffs"]) == {"labels"}
    assert http.delete(f"{API}/retention/labels", headers=admin).status_code in (200, 204)
    assert http.delete(f"{API}/retention/labels", headers=admin).status_code == 404


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_only_admins_erase_or_change_retention(server, role: str) -> None:
    http, headers = server
    caller = headers[role]
    denied = [
        http.post(f"{API}/privacy/erasures", json={"subject": {"user_id": "7"}}, headers=caller),
        http.get(f"{API}/privacy/erasures", headers=caller),
        http.post(f"{API}/retention", json={"target": "labels", "max_age_days": 1}, headers=caller),
        http.delete(f"{API}/retention/labels", headers=caller),
        http.post(f"{API}/retention/enforce", json={}, headers=caller),
    ]
    assert [r.status_code for r in denied] == [403] * 5
    assert http.get(f"{API}/retention", headers=caller).status_code == 200  # reading policies is "read"
    # nothing was erased
    admin = headers["admin"]
    assert (
        http.post(f"{API}/privacy/erasures", json={"subject": {"user_id": "7"}, "dry_run": True}, headers=admin).json()[
            "predictions"
        ]
        == 1
    )
