"""Property-based fuzzing of the whole HTTP API from its OpenAPI description (schemathesis), as an
authenticated admin and as an anonymous caller: no generated request may cause a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from shipyard.api.app import OPEN_PATHS, create_app
from shipyard.core.settings import Settings
from shipyard.governance.bootstrap import issue_admin_token

TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    home: Path = tmp_path_factory.mktemp("fuzz") / "home"
    server_settings = Settings.resolve(home=home, remote_uri="")
    TOKEN["admin"] = issue_admin_token(server_settings)
    app = create_app(server_settings, require_auth=True)
    app.state.auth_limiter.max_failures = 10**9  # anonymous cases fail authentication on purpose
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.services.close()


def test_no_generated_request_causes_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    admin = {"authorization": f"Bearer {TOKEN['admin']}"}
    fuzzed = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def never_5xx(case: schemathesis.Case) -> None:
            for headers in (admin, {}):
                response = case.call(headers=headers)
                assert response.status_code < 500, (
                    case.method,
                    case.formatted_path,
                    response.status_code,
                    response.text[:500],
                )
                if not headers and case.path not in OPEN_PATHS:
                    assert response.status_code == 401, (case.method, case.formatted_path)  # never data

        never_5xx()
        fuzzed += 1
    assert fuzzed > 100
