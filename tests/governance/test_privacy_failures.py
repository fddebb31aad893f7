"""An erasure that fails midway leaves a consistent store, and the next one completes it: a failure
before the switch changes no reference (the log, labels and old dataset version still read); a
failure while deleting old blobs leaves the erasure recorded as "purging", finished later."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.governance import erasure as erasure_module
from shipyard.governance.erasure import storage as erasure_storage
from shipyard.serving.prediction_log import read_predictions
from tests.governance.privacy_helpers import SUBJECT_EMAIL, customers, files_holding, ids_in, store_roots


@pytest.fixture(params=["sqlite", "postgres"])
def embedded(request: pytest.FixtureRequest, tmp_path: Path):
    store_uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    client = Client(home=tmp_path / "home", store_uri=store_uri)
    yield client
    client.close()


def _world(client: Client) -> list[str]:
    frame = customers()
    dataset = client.log_dataset(frame, "customers")
    client.load_dataset(dataset.ref)  # leaves a hard-linked copy in the home's cache
    model = LogisticRegression().fit(frame[["x", "z"]], frame["y"])
    client.register_model(model, "churn", data_refs=[dataset.ref])
    scored = frame[["user_id", "email", "x"]].copy()
    scored["prediction"] = model.predict(frame[["x", "z"]])
    ids = client.log_predictions(scored, "churn/1")
    client.record_labels({ids[7]: 1, ids[8]: 0})
    return ids


def test_a_failed_switch_changes_no_reference(embedded: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client = embedded
    ids = _world(client)
    services = client._backend.services

    def fail(*args, **kwargs):
        raise RuntimeError("the switch failed")

    monkeypatch.setattr(erasure_module.Eraser, "_switch", fail)
    with pytest.raises(RuntimeError, match="the switch failed"):
        client.erase_subject({"user_id": "7"})
    # nothing that existed moved: the log, the labels and the old version still read in full
    logged = read_predictions(services.db, services.artifacts)
    assert len(logged) == 40 and ids[7] in set(logged["prediction_id"])
    assert ids_in(services, "prediction_labels") == {ids[7], ids[8]}
    assert len(client.load_dataset("customers@1")) == 40
    assert client.list_erasures() == [] and "shipyard.erasure" not in client.get_version("churn", 1).tags
    # the version written before the switch is complete and consistent on its own
    assert len(client.load_dataset("customers@2")) == 39
    assert client.verify_journal()["ok"]

    monkeypatch.undo()
    done = client.erase_subject({"user_id": "7"})
    assert done.status == "complete" and done.predictions == 1 and done.labels == 1
    # the latest version already lacked the subject: no third version, the first is purged
    assert done.datasets[0].new_version is None and done.datasets[0].erased_versions == ["customers@1"]
    assert client.get_dataset("customers@1").tags["shipyard.erased_successor"] == "customers@2"
    assert client.get_dataset("customers").version == 2
    assert files_holding(store_roots(services), SUBJECT_EMAIL) == []
    assert client.verify_journal()["ok"]


def test_a_failed_purge_is_finished_by_the_next_erasure(embedded: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client = embedded
    ids = _world(client)
    services = client._backend.services

    def fail(*args, **kwargs):
        raise OSError("the disk is gone")

    monkeypatch.setattr(erasure_storage, "delete_blob", fail)  # purge looks it up in its own module
    first = client.erase_subject({"user_id": "7"})
    # the references switched in one transaction: the rows are gone from every read ...
    assert first.status == "purging"
    assert ids[7] not in set(read_predictions(services.db, services.artifacts)["prediction_id"])
    assert ids_in(services, "prediction_labels") == {ids[8]}
    # ... but the old blobs still hold the bytes until the deletions are retried
    assert files_holding([str(services.artifacts.root)], SUBJECT_EMAIL)

    monkeypatch.undo()
    client.erase_subject({"user_id": "3"})  # any later erasure (or retention run) finishes the first
    assert client.get_erasure(first.id).status == "complete"
    assert client.get_erasure(first.id).blobs_deleted >= 2
    assert files_holding(store_roots(services), SUBJECT_EMAIL) == []
    assert client.verify_journal()["ok"]
