"""Predictions served by the inference app land in the prediction log, findable by their prediction ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

from shipyard import Client
from shipyard.cli.serve import build_app
from shipyard.serving.prediction_log import read_predictions


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_served_predictions_are_logged_with_their_ids(tmp_path: Path, backend: str, request) -> None:
    store_uri = request.getfixturevalue("pg_uri") if backend == "postgres" else None
    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["sl", "sw", "pl", "pw"]
    client = Client(home=tmp_path / "home", store_uri=store_uri)
    model = LogisticRegression(max_iter=300).fit(X, y)
    client.register_model(model, "iris", input_example=X.head(3))
    app = build_app(client, {"endpoints": [["flowers", "models:/iris/1"]], "max_body_bytes": 1 << 20})
    log = app.state.prediction_log
    try:
        with TestClient(app) as http:
            rows = X.head(4).to_dict(orient="records")
            answer = http.post("/endpoints/flowers/predict", json={"records": rows})
            assert answer.status_code == 200, answer.text
            request_id = answer.headers["x-prediction-id"]
        assert log.flush(timeout=30)
        logged = read_predictions(client._backend.services.db, client.artifacts, endpoint="flowers")
        assert list(logged["prediction_id"]) == [f"{request_id}-{i}" for i in range(4)]
        assert set(logged["model"]) == {"iris"} and set(logged["version"]) == {1}
        assert list(logged["prediction"]) == [float(p) for p in model.predict(X.head(4))]
        assert log.stats["dropped"] == 0
    finally:
        log.close()
        client.close()
