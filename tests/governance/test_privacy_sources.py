"""Erasure reaches every place a subject's raw rows are kept: predictions served by a real endpoint
(and labels sent against their request id), a monitor's stored reference sample and windows segmented
by the subject's value, and a model version's stored input example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from starlette.testclient import TestClient

from shipyard import Client
from shipyard.cli.serve import build_app
from shipyard.serving.prediction_log import read_predictions
from tests.governance.privacy_helpers import SUBJECT_EMAIL, customers, files_holding, ids_in, store_roots
from tests.monitoring.world import World

QUICK = {"multivariate": "never", "importance": False}


@pytest.fixture(params=["sqlite", "postgres"])
def embedded(request: pytest.FixtureRequest, tmp_path: Path):
    store_uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    client = Client(home=tmp_path / "home", store_uri=store_uri)
    yield client
    client.close()


def test_served_predictions_are_erased(embedded: Client) -> None:
    client = embedded
    frame = customers()
    # a pipeline over x and z that ignores the other columns it is sent (as a real service would)
    model = make_pipeline(ColumnTransformer([("xz", "passthrough", ["x", "z"])]), LogisticRegression())
    model.fit(frame, frame["y"])
    client.register_model(model, "churn", input_example=frame[["user_id", "email", "x", "z"]].head(2))
    app = build_app(client, {"endpoints": [["scoring", "models:/churn/1"]], "max_body_bytes": 1 << 20})
    log = app.state.prediction_log
    try:
        with TestClient(app) as http:
            first = http.post("/endpoints/scoring/predict", json={"records": frame.iloc[5:10, :4].to_dict("records")})
            other = http.post("/endpoints/scoring/predict", json={"records": frame.iloc[20:22, :4].to_dict("records")})
            assert first.status_code == other.status_code == 200, first.text
        assert log.flush(timeout=30)
    finally:
        log.close()
    request_id, other_id = first.headers["x-prediction-id"], other.headers["x-prediction-id"]
    # labels by row id and by request id (a label may name the request the server answered)
    client.record_labels({f"{request_id}-2": 1, f"{request_id}-3": 0, request_id: 1, other_id: 0})

    services = client._backend.services
    done = client.erase_subject({"email": SUBJECT_EMAIL})
    assert (done.predictions, done.segments_rewritten) == (1, 1)
    logged = read_predictions(services.db, services.artifacts, endpoint="scoring")
    assert sorted(logged["prediction_id"]) == sorted(
        [f"{request_id}-{i}" for i in (0, 1, 3, 4)] + [f"{other_id}-{i}" for i in (0, 1)]
    )
    assert SUBJECT_EMAIL not in "".join(logged["inputs"])
    # the subject's row label and the request's label go; the others stay
    assert ids_in(services, "prediction_labels") == {f"{request_id}-3", other_id}
    assert files_holding(store_roots(services), SUBJECT_EMAIL) == []


def test_monitor_reference_sample_and_segment_windows(tmp_path: Path) -> None:
    client = Client(home=tmp_path / "home")
    try:
        world = World(client, rows=300)
        train = client.load_dataset("train@1")
        row = train[train["region"] == "apac"].iloc[0]
        client.create_monitor("watch", model="clf/1", window="1h", segment_by=["region"], options=QUICK)
        world.log_hour(0, n=120)
        run = client.run_monitor("watch", now=world.end_of(0))
        assert "region=apac" in {w.segment for w in run.windows}

        # one training row, named by two keys (a float compared as text, exactly)
        subject = {"region": "apac", "x1": repr(float(row["x1"]))}
        done = client.erase_subject(subject)
        assert [(m.monitor, m.reference_rows, m.windows) for m in done.monitors] == [("watch", 1, 0)]
        assert done.datasets[0].rows == 1 and done.datasets[0].new_version == "train@2"
        assert [(m.model, m.version) for m in done.model_versions] == [("clf", 1)]
        services = client._backend.services
        from shipyard.monitoring.reference import sample_from_bytes

        monitor = client.get_monitor("watch")
        sample = sample_from_bytes(services.artifacts.read_bytes(monitor.reference["sample"]))
        assert len(sample) == 299 and not np.isclose(sample["x1"], row["x1"], rtol=0, atol=0).any()

        # a window segmented by the subject's own value is about the subject alone: it goes
        everyone = client.erase_subject({"region": "apac"})
        assert everyone.monitors[0].windows == 1
        windows = client.monitor_windows("watch", segment=None)
        assert "region=apac" not in {w.segment for w in windows} and "" in {w.segment for w in windows}
        assert everyone.monitors[0].key_in_bins == ["region"]  # reported: the bins keep "apac" as a category
        assert client.verify_journal()["ok"]
    finally:
        client.close()


def test_stored_input_examples_lose_the_subject_and_flag_the_version(tmp_path: Path) -> None:
    client = Client(home=tmp_path / "home")
    try:
        frame = customers()
        client.log_dataset(frame, "customers")  # its profile's top values name every email
        model = make_pipeline(ColumnTransformer([("xz", "passthrough", ["x", "z"])]), LogisticRegression())
        model.fit(frame, frame["y"])
        example = pd.DataFrame(frame.iloc[6:9][["user_id", "email", "x", "z"]]).reset_index(drop=True)
        client.register_model(model, "churn", input_example=example)
        done = client.erase_subject({"user_id": "7"})
        assert [(m.model, m.version, m.reasons) for m in done.model_versions] == [("churn", 1, ["input example"])]
        stored = client.get_version("churn", 1)
        assert stored.tags["shipyard.erasure"] == done.id
        assert [r[0] for r in stored.input_example["data"]] == [6, 8]
        # SQLite overwrote what was deleted (the example's row, the old profile) and truncated its log
        for name in ("shipyard.db", "shipyard.db-wal"):
            path = tmp_path / "home" / name
            assert not path.exists() or SUBJECT_EMAIL.encode() not in path.read_bytes()
    finally:
        client.close()


def test_an_object_store_artifact_root(tmp_path: Path) -> None:
    """With artifacts in an fsspec object store (here memory://), blobs are read through Arrow in memory
    and deleted through the filesystem; the new version is profiled from downloaded copies."""
    import uuid

    import fsspec

    root = f"memory://privacy-{uuid.uuid4().hex}"
    client = Client(home=tmp_path / "home", artifact_uri=root)
    try:
        frame = customers()
        client.log_dataset(frame, "customers")
        model = LogisticRegression().fit(frame[["x", "z"]], frame["y"])
        client.register_model(model, "churn", data_refs=["customers@1"])
        scored = frame[["user_id", "email", "x"]].copy()
        scored["prediction"] = model.predict(frame[["x", "z"]])
        client.log_predictions(scored, "churn/1")
        fs = fsspec.filesystem("memory")

        def holding() -> list[str]:
            import io

            import pyarrow.parquet as pq

            found = []
            for path in fs.find(root.removeprefix("memory://")):
                data = fs.cat_file(path)
                if SUBJECT_EMAIL.encode() in data or (
                    data[:4] == b"PAR1" and SUBJECT_EMAIL in str(pq.read_table(io.BytesIO(data)).to_pydict())
                ):
                    found.append(path)
            return found

        assert len(holding()) == 2  # the dataset file and the batch log
        done = client.erase_subject({"email": SUBJECT_EMAIL})
        assert (done.predictions, done.datasets[0].new_version, done.blobs_deleted) == (1, "customers@2", 2)
        assert client.get_dataset("customers@2").row_count == len(frame) - 1
        assert len(client.load_dataset("customers@2")) == len(frame) - 1
        assert holding() == []
    finally:
        client.close()
