"""The inference server verifies what it loads: a replica (``ServingRuntime``) and ``shipyard serve URI``
(``EndpointTable``) refuse a version whose stored object or signed digest was changed in storage."""

from __future__ import annotations

import os

import pytest
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

from shipyard import Client
from shipyard.core.errors import IntegrityError, ShipyardError
from shipyard.serving.app import create_inference_app
from shipyard.serving.endpoints import EndpointTable
from shipyard.serving.runtime import ServingRuntime
from shipyard.store import schema as t
from tests.governance.test_signing import X, Y, engine, model, version_id, weights_object


def test_a_replica_serves_an_intact_signed_version(client: Client) -> None:
    client.register_model(model(), "churn", input_example=X.head(2))
    client.ensure_endpoint("churn", "models:/churn/1")
    runtime = ServingRuntime(client, ["churn"], poll_interval=0.1)
    try:
        api = TestClient(create_inference_app(runtime.start(background=False)))
        response = api.post("/endpoints/churn/predict", json={"records": X.head(2).to_dict(orient="records")})
        assert response.status_code == 200, response.text
    finally:
        runtime.stop()


def test_a_replica_refuses_a_tampered_object(client: Client) -> None:
    v = client.register_model(model(), "churn", input_example=X.head(2))
    client.ensure_endpoint("churn", "models:/churn/1")
    path = weights_object(client, v.digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    runtime = ServingRuntime(client, ["churn"], poll_interval=0.1)
    try:
        with pytest.raises(
            ShipyardError, match=r"cannot be served.*model churn/1: object .* does not match its digest"
        ):
            runtime.start(background=False)
    finally:
        runtime.stop()


def test_serve_refuses_a_version_whose_digest_was_changed(client: Client) -> None:
    client.register_model(model(), "churn")
    other = client.register_model(LogisticRegression(C=0.01, max_iter=200).fit(X, Y), "other-model")
    with engine(client).begin() as conn:
        conn.execute(
            t.model_versions.update()
            .where(t.model_versions.c.id == version_id(client, "churn", 1))
            .values(digest=other.digest)
        )
    with pytest.raises(IntegrityError, match="model churn/1: signature does not match digest"):
        EndpointTable.from_uris(client, [(None, "models:/churn/1")])
