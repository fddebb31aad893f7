"""Erasure across the shapes stored data takes: CSV, JSON lines and multi-file Parquet datasets, a
dataset (and a log segment) holding only the subject, and log rows whose inputs were not flattened
into columns (mixed types: only the JSON ``inputs`` column names the key)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.serving.prediction_log import PredictionLog, read_predictions
from tests.governance.privacy_helpers import files_holding, store_roots

SECRET = "subject-a-7c1e"


@pytest.fixture
def client(tmp_path: Path):
    c = Client(home=tmp_path / "home")
    yield c
    c.close()


def test_dataset_formats_and_a_dataset_of_only_the_subject(client: Client, tmp_path: Path) -> None:
    people = pd.DataFrame({"uid": [SECRET, "b", "c"], "v": [1, 2, 3]})
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    people.to_csv(src / "people.csv", index=False)
    (src / "people.jsonl").write_text(people.to_json(orient="records", lines=True))
    people.iloc[:1].to_parquet(src / "dir" / "part-0.parquet")
    people.iloc[1:].to_parquet(src / "dir" / "part-1.parquet")
    client.log_dataset(src / "people.csv", "csv")
    client.log_dataset(src / "people.jsonl", "jsonl")
    client.log_dataset(src / "dir", "multi")
    client.log_dataset(people.iloc[:1], "only")

    done = client.erase_subject({"uid": SECRET})
    assert {d.dataset: (d.rows, d.new_version) for d in done.datasets} == {
        "csv": (1, "csv@2"),
        "jsonl": (1, "jsonl@2"),
        "multi": (1, "multi@2"),
        "only": (1, "only@2"),
    }
    for name in ("csv", "jsonl", "multi"):
        version = client.get_dataset(name)
        assert version.row_count == 2 and version.format == client.get_dataset(f"{name}@1").format
        assert client.load_dataset(name).to_dict("records") == [{"uid": "b", "v": 2}, {"uid": "c", "v": 3}]
    assert client.get_dataset("multi").file_count == 2  # the untouched part is shared, not copied
    assert client.get_dataset("only").row_count == 0 and len(client.load_dataset("only")) == 0
    assert files_holding(store_roots(client._backend.services), SECRET) == []


def test_whole_segments_and_unflattened_inputs(client: Client) -> None:
    client.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
    client.log_predictions(pd.DataFrame({"uid": [SECRET, SECRET], "prediction": [0, 1]}), "m/1")  # all the subject
    services = client._backend.services
    with PredictionLog(services.db, services.artifacts) as log:
        # "uid" holds a string and a number in one segment: not flattened, only in the JSON inputs
        log.record(
            endpoint="live", model="m", version=1, variant=None, request_id="r1",
            inputs=[{"uid": SECRET}, {"uid": 17}, {"uid": "b"}], outputs=[0, 1, 0], latency_ms=1.0,
        )  # fmt: skip
    assert "in.uid" not in read_predictions(services.db, services.artifacts, endpoint="live").columns

    done = client.erase_subject({"uid": SECRET})
    assert (done.predictions, done.segments_deleted, done.segments_rewritten) == (3, 1, 1)
    left = read_predictions(services.db, services.artifacts)
    assert list(left["prediction_id"]) == ["r1-1", "r1-2"]
    assert files_holding(store_roots(services), SECRET) == []
    # a number given as text finds the JSON number
    assert client.erase_subject({"uid": "17.0"}, dry_run=True).predictions == 1
