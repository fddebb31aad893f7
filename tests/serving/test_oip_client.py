"""Open Inference Protocol compatibility: a client we did not write (``tritonclient[http]``) checks
health, reads metadata and infers against ``shipyard serve``'s app, served by uvicorn on a real port.

tritonclient sends no Content-Type and, by default, the binary tensor data extension (raw input
bytes after a JSON header, binary outputs); both JSON and binary tensors are exercised here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.cli.serve import build_app
from tests.conftest import free_port

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

X, Y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["sl", "sw", "pl", "pw"]
ROWS = X.iloc[[0, 60, 120, 7, 140]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LogisticRegression]]:
    """``models:/iris/1`` (a real sklearn model with a signature) served on a free loopback port."""
    client = Client(home=tmp_path_factory.mktemp("oip") / "home")
    model = LogisticRegression(max_iter=300).fit(X, Y)
    client.register_model(model, "iris", input_example=X.head(3))
    app = build_app(client, {"endpoints": [["iris", "models:/iris/1"]], "max_body_bytes": 1 << 20, "log": False})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "inference server did not start"
        time.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}", model
    finally:
        server.should_exit = True
        thread.join(10)
        client.close()


@pytest.fixture
def triton(served: tuple[str, LogisticRegression]) -> Iterator[Any]:
    c = httpclient.InferenceServerClient(url=served[0])
    yield c
    c.close()


def inputs_of(rows: pd.DataFrame, binary: bool) -> list[Any]:
    inputs = []
    for column in rows.columns:
        tensor = httpclient.InferInput(column, [len(rows)], "FP64")
        tensor.set_data_from_numpy(rows[column].to_numpy(dtype=np.float64), binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_health_and_metadata(triton: Any) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("iris")
    assert triton.is_model_ready("iris", model_version="1")
    assert not triton.is_model_ready("nope")
    assert not triton.is_model_ready("iris", model_version="7")
    server = triton.get_server_metadata()
    assert server["name"] == "shipyard" and isinstance(server["extensions"], list)
    meta = triton.get_model_metadata("iris")
    assert meta["name"] == "iris" and meta["versions"] == ["1"] and meta["platform"] == "shipyard-sklearn"
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        (c, "FP64", [-1]) for c in ("sl", "sw", "pl", "pw")
    ]
    assert [(t["name"], t["datatype"]) for t in meta["outputs"]] == [("predict", "INT64")]
    assert triton.get_model_metadata("iris", model_version="1")["name"] == "iris"


@pytest.mark.parametrize("binary", [True, False], ids=["binary-inputs", "json-inputs"])
def test_infer_matches_the_model(triton: Any, served: tuple[str, LogisticRegression], binary: bool) -> None:
    model = served[1]
    want = model.predict(ROWS)
    assert len(set(want.tolist())) == 3
    for version in ("", "1"):
        result = triton.infer("iris", inputs_of(ROWS, binary), model_version=version, request_id="req-7")
        np.testing.assert_array_equal(result.as_numpy("predict"), want)
        response = result.get_response()
        assert (response["model_name"], response["model_version"], response["id"]) == ("iris", "1", "req-7")


def test_requested_outputs_json_and_binary(triton: Any, served: tuple[str, LogisticRegression]) -> None:
    model = served[1]
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=False),
        httpclient.InferRequestedOutput("predict_proba", binary_data=True),
    ]
    result = triton.infer("iris", inputs_of(ROWS, True), outputs=outputs)
    by_name = {t["name"]: t for t in result.get_response()["outputs"]}
    assert by_name["predict"]["data"] == model.predict(ROWS).tolist()  # JSON, as asked
    assert "data" not in by_name["predict_proba"]  # raw bytes after the JSON header
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(ROWS))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(ROWS))


def test_errors_reach_the_client(triton: Any, served: tuple[str, LogisticRegression]) -> None:
    with pytest.raises(InferenceServerException) as err:
        triton.infer("nope", inputs_of(ROWS, True))
    assert err.value.status() == "404" and "nope" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        triton.infer("iris", inputs_of(ROWS, True), model_version="7")
    assert err.value.status() == "404" and "version" in err.value.message()
    with pytest.raises(InferenceServerException) as err:  # a signature column is missing
        triton.infer("iris", inputs_of(ROWS[["sl", "sw", "pl"]], True))
    assert err.value.status() == "422" and "pw" in err.value.message()
    with pytest.raises(InferenceServerException):
        triton.get_model_metadata("nope")

    url = f"http://{served[0]}/v2/models/iris/infer"
    header = b'{"inputs":[{"name":"sl","shape":[2],"datatype":"FP64","parameters":{"binary_data_size":16}}]}'
    for body, length in ((header + b"\0" * 8, len(header)), (header + b"\0" * 24, len(header)), (header, 999)):
        r = httpx.post(url, content=body, headers={"Inference-Header-Content-Length": str(length)})
        assert r.status_code == 400, r.text
        assert r.json()["error"]
