"""The SDK registry suite; every test runs embedded and remote, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.errors import Conflict, IntegrityError, InvalidInput, NotFound


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def models(data):
    X, y = data
    small = LogisticRegression(max_iter=200).fit(X.iloc[:, :5], y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(X, y)
    return small, pipe


def test_log_model_register_alias_and_load(client, data, models) -> None:
    X, y = data
    _, pipe = models
    run = client.create_run()
    client.log_params(run.id, {"C": 0.5})
    client.log_dataset(X.head(50), name="fraud-train")
    client.log_dataset(X.head(60), name="fraud-train")
    version = client.log_model(
        run.id, pipe, input_example=X.head(3), registered_model_name="fraud", data_refs=["fraud-train@1"]
    )
    assert version.data_refs == ["fraud-train@1"]
    assert version.version == 1 and version.model_name == "fraud"
    assert version.digest.startswith("sha256:") and len(version.digest) == 71
    assert version.flavor == "sklearn"
    assert version.source_run_id == run.id
    assert version.signature["inputs"]["type"] == "columns"
    assert [c["name"] for c in version.signature["inputs"]["columns"]] == list(X.columns)
    assert version.input_example is not None
    assert version.environment["python"]["version"].startswith("3.")
    assert version.code_commit == (client.get_run(run.id).environment["git"] or {}).get("commit")
    client.end_run(run.id)

    client.set_alias("fraud", "champion", 1)
    expected = pipe.predict(X.head(20))
    for uri in ("models:/fraud@champion", "models:/fraud/1", "models:/fraud/latest", f"runs:/{run.id}/model"):
        loaded = client.load_model(uri)
        assert np.array_equal(loaded.predict(X.head(20)), expected), uri
    assert client.get_version_by_alias("fraud", "champion").digest == version.digest


def test_versions_increment_and_identical_content_keeps_its_digest(client, models, tmp_path) -> None:
    small, _ = models
    v1 = client.register_model(small, "m")
    v2 = client.register_model(small, "m")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.digest == v2.digest  # same content, same identity
    assert [v.version for v in client.list_versions("m")] == [1, 2]
    assert client.get_model("m").latest_version == 2


def test_register_from_directory_and_from_run_uri(client, models, tmp_path) -> None:
    from shipyard.registry.flavors import save_model

    small, _ = models
    target = tmp_path / "saved"
    save_model(small, target)
    version = client.register_model(str(target), "from-dir", description="saved by hand")
    assert version.flavor == "sklearn" and version.description == "saved by hand"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "weights.bin").write_bytes(b"\x00\x01")
    assert client.register_model(str(raw), "files-only").flavor == "files"
    with pytest.raises(InvalidInput):
        client.register_model(str(tmp_path / "missing"), "x")
    run = client.create_run()
    client.log_model(run.id, small)
    from_run = client.register_model(f"runs:/{run.id}/model", "from-run")
    assert from_run.source_run_id == run.id
    with pytest.raises(NotFound):
        client.register_model(f"runs:/{run.id}/nope", "x")


def test_aliases_move_atomically_and_keep_history(client, models) -> None:
    small, _ = models
    for _ in range(3):
        client.register_model(small, "ranker")
    client.set_alias("ranker", "champion", 1)
    client.set_alias("ranker", "challenger", 2)
    client.set_alias("ranker", "champion", 2)
    client.set_alias("ranker", "champion", 2)  # no move: no history entry
    client.set_alias("ranker", "champion", 3)
    assert client.get_model("ranker").aliases == {"champion": 3, "challenger": 2}
    assert client.get_version("ranker", 2).aliases == ["challenger"]
    history = client.alias_history("ranker", "champion")
    assert [(h.from_version, h.to_version) for h in history] == [(None, 1), (1, 2), (2, 3)]
    assert all(h.actor for h in history)
    client.delete_alias("ranker", "challenger")
    assert client.get_model("ranker").aliases == {"champion": 3}
    with pytest.raises(NotFound):
        client.get_version_by_alias("ranker", "challenger")
    with pytest.raises(InvalidInput):
        client.set_alias("ranker", "3", 1)
    with pytest.raises(InvalidInput):
        client.set_alias("ranker", "bad alias", 1)


def test_unknown_model_version_alias_errors(client) -> None:
    with pytest.raises(NotFound):
        client.get_model("ghost")
    with pytest.raises(NotFound):
        client.load_model("models:/ghost/1")
    client.create_model("empty", description="no versions yet", tags={"owner": "me"})
    with pytest.raises(NotFound):
        client.get_version("empty", 7)
    with pytest.raises(NotFound):
        client.load_model("models:/empty@champion")
    with pytest.raises(NotFound):
        client.load_model("models:/empty")
    with pytest.raises(InvalidInput):
        client.load_model("s3://not-a-model-uri")
    with pytest.raises(InvalidInput):
        client.get_version("empty", 0)
    from shipyard.core.errors import AlreadyExists

    with pytest.raises(AlreadyExists):
        client.create_model("empty")


def test_models_with_versions_cannot_be_deleted_but_empty_ones_can(client, models) -> None:
    small, _ = models
    client.register_model(small, "keep")
    with pytest.raises(Conflict):
        client.delete_model("keep")
    client.create_model("drop")
    client.delete_model("drop")
    with pytest.raises(NotFound):
        client.get_model("drop")


def test_version_metadata_is_immutable_except_description_and_tags(client, models) -> None:
    small, _ = models
    v = client.register_model(small, "imm")
    client.update_version("imm", 1, description="reviewed")
    client.set_version_tags("imm", 1, {"stage": "qa"})
    again = client.get_version("imm", 1)
    assert again.description == "reviewed" and again.tags == {"stage": "qa"}
    assert again.digest == v.digest


def _object_file(client, digest: str) -> Path:
    root = Path(getattr(client, "server_home", client.settings.home)) / "artifacts"
    hex_digest = digest.split(":")[1]
    return root / "objects" / hex_digest[:2] / hex_digest[2:]


def test_tampered_model_is_refused(client, models) -> None:
    from shipyard.artifacts import read_manifest

    small, _ = models
    version = client.register_model(small, "guarded")
    manifest = read_manifest(client.artifacts, version.digest)
    model_file = next(e["digest"] for p, e in manifest["entries"].items() if p != "shipyard-model.json")
    path = _object_file(client, model_file)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered weights")
    with pytest.raises(IntegrityError):
        client.load_model("models:/guarded/1")


def test_data_lineage_of_a_version_comes_from_its_run_and_explicit_refs(client, data, models) -> None:
    X, y = data
    small, _ = models
    train = client.log_dataset(X.iloc[:, :5].assign(label=y), name="lineage-train")
    extra = client.log_dataset(X.head(10), name="lineage-extra")
    run = client.create_run()
    loaded = client.load_dataset(train.ref, consumers=[("run", run.id)])
    assert len(loaded) == len(X)
    version = client.log_model(run.id, small, registered_model_name="lineage", data_refs=["lineage-extra"])
    # The explicit ref is pinned to the version it named; the run's load is found on its own.
    assert version.data_refs == [extra.ref, train.ref]
    used_by = {(node.type, node.name) for node in client.dataset_lineage(train.ref).used_by}
    assert ("model_version", "lineage/1") in used_by and ("run", client.get_run(run.id).name) in used_by
    with pytest.raises(NotFound):
        client.log_model(run.id, small, registered_model_name="lineage", data_refs=["no-such-data@1"])
    with pytest.raises(InvalidInput):
        client.log_model(run.id, small, registered_model_name="lineage", data_refs=["s3://bucket/train.csv"])
    assert [v.version for v in client.list_versions("lineage")] == [1]
