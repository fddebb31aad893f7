"""The inference server end to end: real registered models, each protocol, headers, every error class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from starlette.testclient import TestClient

from shipyard import Client
from shipyard.registry.flavors import PythonModel
from shipyard.serving.app import create_inference_app
from shipyard.serving.endpoints import EndpointTable
from shipyard.serving.protocols import encode_v2_tensors
from tests.conftest import free_port


class Boom(PythonModel):
    """Doubles ``income``; fails on negative incomes, like a model with an internal assertion."""

    def predict(self, model_input: Any) -> Any:
        if (model_input["income"] < 0).any():
            raise ValueError("negative income is not supported")
        return (model_input["income"] * 2).to_numpy()


class Log:
    def __init__(self, fail: bool = False):
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def record(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if self.fail:
            raise RuntimeError("log is down")


X, Y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["sl", "sw", "pl", "pw"]
BOOM_EXAMPLE = pd.DataFrame({"count": [1, 2, 3], "income": [1.0, 2.0, 3.0]})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, dict[str, Any]]]:
    client = Client(home=tmp_path_factory.mktemp("serving") / "home")
    iris = LogisticRegression(max_iter=300).fit(X, Y)
    client.register_model(LogisticRegression(max_iter=300, C=0.1).fit(X, Y), "iris", input_example=X.head(3))
    v2 = client.register_model(iris, "iris", input_example=X.head(3))
    client.set_alias("iris", "champion", v2.version)
    ridge = Ridge().fit(X.to_numpy(), Y.to_numpy())
    client.register_model(ridge, "ridge", input_example=X.to_numpy()[:3])
    client.register_model(Boom(), "boom", input_example=BOOM_EXAMPLE)
    yield client, {"iris": iris, "ridge": ridge}
    client.close()


@pytest.fixture(scope="module")
def table(registry: tuple[Client, dict[str, Any]]) -> EndpointTable:
    client, _ = registry
    return EndpointTable.from_uris(
        client, [(None, "models:/iris@champion"), ("reg", "models:/ridge/1"), (None, "models:/boom/1")]
    )


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def api(table: EndpointTable, log: Log) -> Iterator[TestClient]:
    with TestClient(create_inference_app(table, max_body_bytes=64 * 1024, prediction_log=log)) as client:
        yield client


@pytest.fixture
def models(registry: tuple[Client, dict[str, Any]]) -> dict[str, Any]:
    return registry[1]


ROWS = X.iloc[[0, 60, 120, 7, 140]]


def check_ids(response: httpx.Response, version: str) -> str:
    pid = response.headers["x-prediction-id"]
    assert len(pid) == 32
    assert response.headers["x-model-version"] == version
    return pid


# ----------------------------------------------------------------------------------------------
# every protocol answers like model.predict


def test_each_protocol_predicts_like_the_model(api: TestClient, models: dict[str, Any]) -> None:
    want = models["iris"].predict(ROWS).tolist()
    assert len(set(want)) == 3
    bodies = [
        ("/endpoints/iris/predict", {"records": ROWS.to_dict("records")}),
        ("/endpoints/iris/predict", {"columns": ROWS.to_dict("list")}),
        ("/endpoints/iris/invocations", {"dataframe_split": ROWS.to_dict("split")}),
        ("/endpoints/iris/invocations", {"dataframe_records": ROWS.to_dict("records")}),
        ("/endpoints/iris/invocations", {"instances": ROWS.to_dict("records")}),
        ("/endpoints/iris/invocations", {"inputs": ROWS.to_dict("list")}),
    ]
    ids = set()
    for path, body in bodies:
        r = api.post(path, json=body)
        assert r.status_code == 200, r.text
        pid = check_ids(r, "iris/2")
        assert r.json() == {"id": pid, "model_version": "iris/2", "predictions": want}
        ids.add(pid)
    for path in ("/v2/models/iris/infer", "/v2/models/iris/versions/2/infer"):
        r = api.post(path, json={"inputs": encode_v2_tensors(ROWS)})
        assert r.status_code == 200, r.text
        pid = check_ids(r, "iris/2")
        body = r.json()
        assert (body["model_name"], body["model_version"], body["id"]) == ("iris", "2", pid)
        assert body["outputs"] == [{"name": "predict", "shape": [5], "datatype": "INT64", "data": want}]
        ids.add(pid)
    assert len(ids) == len(bodies) + 2


def test_v2_tensor_model_and_requested_outputs(api: TestClient, models: dict[str, Any]) -> None:
    rows = ROWS.to_numpy()
    r = api.post("/v2/models/reg/infer", json={"id": "req-1", "inputs": encode_v2_tensors(rows, "x")})
    assert r.status_code == 200, r.text
    pid = check_ids(r, "ridge/1")
    body = r.json()
    assert body["id"] == "req-1" and body["parameters"]["prediction_id"] == pid  # OIP echoes the caller's id
    assert body["model_name"] == "reg" and body["model_version"] == "1"
    np.testing.assert_allclose(body["outputs"][0]["data"], models["ridge"].predict(rows))
    r = api.post("/endpoints/reg/predict", json={"records": rows.tolist()})
    np.testing.assert_allclose(r.json()["predictions"], models["ridge"].predict(rows))

    r = api.post(
        "/v2/models/iris/infer",
        json={"inputs": encode_v2_tensors(ROWS), "outputs": [{"name": "predict"}, {"name": "predict_proba"}]},
    )
    outputs = {t["name"]: t for t in r.json()["outputs"]}
    assert outputs["predict_proba"]["shape"] == [5, 3]
    np.testing.assert_allclose(np.reshape(outputs["predict_proba"]["data"], (5, 3)), models["iris"].predict_proba(ROWS))
    r = api.post(
        "/v2/models/reg/infer", json={"inputs": encode_v2_tensors(rows), "outputs": [{"name": "predict_proba"}]}
    )
    assert r.status_code == 400 and r.json()["field"] == "predict_proba"
    r = api.post("/v2/models/iris/infer", json={"inputs": encode_v2_tensors(ROWS), "outputs": [{"name": "embed"}]})
    assert r.status_code == 400 and "embed" in r.json()["error"]


def test_mlflow_invocations_on_a_single_endpoint_server(table: EndpointTable, models: dict[str, Any]) -> None:
    with TestClient(create_inference_app([table.get("iris")])) as one:
        r = one.post("/invocations", json={"dataframe_split": ROWS.to_dict("split")})
        assert r.status_code == 200 and r.json()["predictions"] == models["iris"].predict(ROWS).tolist()
        check_ids(r, "iris/2")


def test_invocations_with_several_endpoints_names_them(api: TestClient) -> None:
    r = api.post("/invocations", json={"dataframe_split": ROWS.to_dict("split")})
    assert r.status_code == 400
    assert "/endpoints/{name}/invocations" in r.json()["error"] and "iris" in r.json()["error"]


def test_health_and_metadata(api: TestClient) -> None:
    assert api.get("/v2/health/live").json() == {"live": True}
    assert api.get("/v2/health/ready").json() == {"ready": True}
    assert api.get("/v2").json()["name"] == "shipyard"
    meta = api.get("/v2/models/iris").json()
    assert meta["name"] == "iris" and meta["versions"] == ["2"] and meta["platform"] == "shipyard-sklearn"
    assert meta["inputs"][0] == {"name": "sl", "datatype": "FP64", "shape": [-1]}
    assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
    assert api.get("/v2/models/reg/versions/1").json()["inputs"] == [
        {"name": "input", "datatype": "FP64", "shape": [-1, 4]}
    ]
    assert api.get("/v2/models/iris/ready").json() == {"name": "iris", "version": "2", "ready": True}
    assert api.get("/v2/models/iris/versions/2/ready").status_code == 200
    assert [e["name"] for e in api.get("/endpoints").json()["endpoints"]] == ["iris", "reg", "boom"]


# ----------------------------------------------------------------------------------------------
# errors


def test_unknown_endpoints_versions_and_routes_are_404(api: TestClient) -> None:
    for method, path in (
        ("GET", "/v2/models/nope"),
        ("GET", "/v2/models/iris/versions/1"),  # registered, but not served here
        ("GET", "/v2/models/iris/versions/1/ready"),
        ("POST", "/v2/models/iris/versions/7/infer"),
        ("POST", "/v2/models/nope/infer"),
        ("POST", "/endpoints/nope/predict"),
        ("GET", "/no/such/route"),
    ):
        r = api.request(method, path, json={"records": []})
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]
    assert "version '1'" in api.get("/v2/models/iris/versions/1").json()["error"]
    assert api.get("/v2/models/iris/infer").status_code == 405


def test_bad_requests_are_4xx_naming_the_field(api: TestClient) -> None:
    def post(path: str, status: int, field: str | None, **kwargs: Any) -> dict[str, Any]:
        r = api.post(path, **kwargs)
        assert r.status_code == status, (path, r.text)
        assert r.headers["x-prediction-id"]
        body = r.json()
        assert set(body) <= {"error", "field"} and body["error"]
        if field:
            assert body["field"] == field and field.lower() in body["error"].lower(), body
        return body

    raw = {"headers": {"content-type": "application/json"}}
    post("/endpoints/iris/predict", 400, "body", content=b'{"records": [', **raw)
    post("/endpoints/iris/predict", 400, "body", content=b"", **raw)
    post("/endpoints/iris/predict", 415, "content-type", content=b"{}", headers={"content-type": "text/csv"})
    post("/endpoints/iris/predict", 415, "content-type", data={"records": "x"})
    post("/endpoints/iris/predict", 413, "body", content=b"[" + b" " * 70_000 + b"]", **raw)
    record = ROWS.to_dict("records")[0]
    post("/endpoints/iris/predict", 422, "pw", json={"records": [{k: v for k, v in record.items() if k != "pw"}]})
    post("/endpoints/iris/predict", 422, "sw", json={"records": [{**record, "sw": "wide"}]})
    post("/endpoints/iris/invocations", 400, None, json={"instances": [record], "inputs": [record]})
    shape = post("/endpoints/reg/predict", 422, None, json={"records": [[1.0, 2.0]]})
    assert shape["field"] == "shape[1]" and "dimension 1 has size 2" in shape["error"]
    tensor = {"name": "sl", "shape": [3], "datatype": "FP64", "data": [1.0, 2.0]}
    post("/v2/models/iris/infer", 400, "sl", json={"inputs": [tensor]})
    # non-finite values where the signature forbids them: count is a long column
    post("/endpoints/boom/predict", 422, "count", content=b'{"records": [{"count": Infinity, "income": 1}]}', **raw)
    post("/endpoints/boom/predict", 422, "count", content=b'{"records": [{"count": NaN, "income": 1}]}', **raw)
    ok = api.post("/endpoints/boom/predict", content=b'{"records": [{"count": 1, "income": NaN}]}', **raw)
    assert ok.status_code == 200 and ok.json()["predictions"] == [None]  # NaN is a double like any other


def test_a_model_that_raises_is_a_500_with_its_message(api: TestClient, log: Log) -> None:
    r = api.post("/endpoints/boom/predict", json={"records": [{"count": 1, "income": -1.0}]})
    assert r.status_code == 500
    assert "negative income is not supported" in r.json()["error"] and "boom/1" in r.json()["error"]
    check_ids(r, "boom/1")
    assert log.calls == []


# ----------------------------------------------------------------------------------------------
# prediction log


def test_each_prediction_is_logged_with_its_id_and_version(api: TestClient, log: Log) -> None:
    r = api.post("/endpoints/boom/predict", json={"columns": {"count": [1, 2], "income": [1.5, 2.5]}})
    assert r.status_code == 200
    (call,) = log.calls
    assert call["request_id"] == r.headers["x-prediction-id"]
    assert (call["endpoint"], call["model"], call["version"], call["variant"], call["routing"]) == (
        "boom",
        "boom",
        1,
        "stable",
        {"rule": "single", "variant": "stable"},
    )
    assert call["inputs"] == [{"count": 1, "income": 1.5}, {"count": 2, "income": 2.5}]
    assert call["outputs"] == [3.0, 5.0]
    assert call["latency_ms"] >= 0


def test_a_failing_prediction_log_never_fails_a_prediction(table: EndpointTable) -> None:
    broken = Log(fail=True)
    with TestClient(create_inference_app(table, prediction_log=broken)) as api:
        r = api.post("/endpoints/reg/predict", json={"records": [[1.0, 2.0, 3.0, 4.0]]})
    assert r.status_code == 200 and len(broken.calls) == 1
    assert broken.calls[0]["inputs"] == [{"input": [1.0, 2.0, 3.0, 4.0]}]


# ----------------------------------------------------------------------------------------------
# `shipyard serve`


def test_serve_command_starts_and_answers(registry: tuple[Client, dict[str, Any]]) -> None:
    from shipyard.cli.main import app

    client, _ = registry
    port = free_port()
    registered = any(c.name == "serve" for c in app.registered_commands)
    command = ["-m", "shipyard.cli.main", "serve"] if registered else ["-m", "shipyard.cli.serve"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(client.settings.home)
    proc = subprocess.Popen(
        [sys.executable, *command, "models:/iris@champion", "--name", "flowers", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parent,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "shipyard serve did not start"
            time.sleep(0.05)
        r = httpx.post(f"{url}/v2/models/flowers/infer", json={"inputs": encode_v2_tensors(ROWS)}, timeout=10)
        assert r.status_code == 200 and r.headers["x-model-version"] == "iris/2"
        assert json.loads(r.text)["model_name"] == "flowers"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()


def test_serve_creates_endpoints_from_uris_and_checks_names(registry: tuple[Client, dict[str, Any]]) -> None:
    from shipyard.cli.serve import resolve_endpoints
    from shipyard.core.errors import InvalidInput, NotFound

    client, _ = registry
    assert resolve_endpoints(client, ["models:/iris@champion", "models:/ridge/1"], ["iris-ep", "ridge-ep"]) == [
        ("iris-ep", "iris/2"),
        ("ridge-ep", "ridge/1"),
    ]
    assert client.get_endpoint("iris-ep").stable.version == 2
    # an existing endpoint keeps serving its own deployment; the URI only names it
    assert resolve_endpoints(client, ["models:/iris/1"], ["iris-ep"]) == [
        ("iris-ep", "iris/2 (the endpoint exists; models:/iris/1 not deployed)")
    ]
    assert resolve_endpoints(client, ["iris-ep"], None) == [("iris-ep", "iris/2")]
    with pytest.raises(InvalidInput, match="one name per URI"):
        resolve_endpoints(client, ["models:/iris/1", "models:/iris/2"], ["a"])
    with pytest.raises(InvalidInput, match="given twice"):
        resolve_endpoints(client, ["iris-ep", "iris-ep"], None)
    with pytest.raises(NotFound):
        resolve_endpoints(client, ["models:/iris@nope"], None)
    with pytest.raises(NotFound, match="no endpoint named 'nope'"):
        resolve_endpoints(client, ["nope"], None)
