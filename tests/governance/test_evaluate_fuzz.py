"""Fuzz the evaluation, fairness, explanation and model-card routes (schemathesis) against a store
that holds a real model and dataset, with the path pinned to that version so generated bodies reach
the services: no request may cause a server error; bad input is a 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from shipyard import Client
from shipyard.api.app import create_app
from shipyard.core.settings import Settings
from tests.governance.test_evaluate import register_credit

ROUTES = ("/evaluate", "/fairness", "/explain", "/evaluations", "/card")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    home: Path = tmp_path_factory.mktemp("fuzz-evaluations") / "home"
    client = Client(home=home)
    register_credit(client)
    client.explain_version("credit", 1, "credit@1", n_repeats=1, max_rows=50)
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

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def never_5xx(case: schemathesis.Case) -> None:
            if case.path_parameters and "name" in case.path_parameters:
                case.path_parameters["name"] = "credit"  # reach the services, not the 404 on the model
                if "version" in case.path_parameters:
                    case.path_parameters["version"] = 1
            response = case.call()
            assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:500])

        never_5xx()
        fuzzed += 1
    assert fuzzed >= 10
