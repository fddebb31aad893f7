"""Fuzz the lifecycle and policy routes (schemathesis) against a store holding a real model, a policy
and a risk tier, with the path pinned to them so generated bodies reach the services: no request may
cause a server error; bad input is a 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard import Client
from shipyard.api.app import create_app
from shipyard.core.settings import Settings
from tests.governance.test_lifecycle import register

ROUTES = ("/submit", "/approve", "/reject", "/retire", "/review", "/policies", "/risk-tier", "/policy-")
POLICY = """
applies_to: {models: [churn]}
rules:
  - metric: accuracy
    min: 0.5
    gates: [review, approve, deploy]
risk_tiers:
  high: {approvals: 2, strategies: [shadow, canary], shadow_before: [canary]}
"""


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    home: Path = tmp_path_factory.mktemp("fuzz-lifecycle") / "home"
    client = Client(home=home)
    register(client)
    register(client, seed=1.0)
    client.add_policy("quality", POLICY)
    client.set_risk_tier("churn", "high")
    client.close()
    app = create_app(Settings.resolve(home=home, remote_uri=""), require_auth=False)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.services.close()


def test_generated_requests_never_cause_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    fuzzed = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if not any(part in operation.path for part in ROUTES):
            continue
        pinned = "quality" if operation.path.startswith("/api/v1/policies") else "churn"

        @given(case=operation.as_strategy(), version=st.sampled_from([1, 2]), pinned=st.just(pinned))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def never_5xx(case: schemathesis.Case, version: int, pinned: str) -> None:
            if case.path_parameters and "name" in case.path_parameters:
                # reach the services, not the 404 on the model or policy
                case.path_parameters["name"] = pinned
                if "version" in case.path_parameters:
                    case.path_parameters["version"] = version
            response = case.call()
            assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:500])

        never_5xx()
        fuzzed += 1
    assert fuzzed >= 14
