"""``shipyard batch-score``: score a dataset version on Dask partitions into a new dataset version."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli.main import app
from shipyard.core.errors import InvalidInput, NotFound
from shipyard.pipelines.batch import batch_score


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})


@pytest.fixture
def scored_world(client, tmp_path):
    """A registered model and a three-file dataset to score (tmp_path holds the files)."""
    train = _frame(300, 0)
    model = LogisticRegression().fit(train, (train.a + train.b > 0).astype(int))
    client.register_model(model, "scorer", input_example=train.head(3))
    client.set_alias("scorer", "champion", 1)
    folder = tmp_path / "customers"
    folder.mkdir()
    for i in range(3):
        _frame(100 + i, 10 + i).to_parquet(folder / f"part-{i}.parquet")
    source = client.log_dataset(folder, name="customers")
    return client, model, folder, source


@pytest.mark.parametrize("executor", ["inprocess", "dask"])
def test_scores_every_partition_and_records_lineage(scored_world, executor, mode) -> None:
    client, model, folder, source = scored_world
    if executor == "dask" and mode != "embedded-sqlite":
        pytest.skip("the Dask path is the same in every mode; one LocalCluster is enough")
    result = batch_score(
        client, "models:/scorer@champion", source.ref, "customers-scored", executor=executor, proba=True
    )
    assert result.model_uri == "models:/scorer/1" and result.input_ref == source.ref
    assert result.partitions == 3 and result.rows == 100 + 101 + 102

    scored = client.load_dataset(result.output_ref)
    expected = pd.concat([pd.read_parquet(folder / f"part-{i}.parquet") for i in range(3)], ignore_index=True)
    assert list(scored.columns) == ["a", "b", "prediction", "prediction_proba_0", "prediction_proba_1"]
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), model.predict(expected[["a", "b"]]))
    np.testing.assert_allclose(scored[["a", "b"]].to_numpy(), expected.to_numpy())

    output = client.get_dataset(result.output_ref)
    assert output.parents == [source.ref] and output.row_count == result.rows
    lineage = client.dataset_lineage(result.output_ref)
    assert [node.id for node in lineage.produced_by if node.type == "run"] == [result.run_id]
    assert result.run_id in {node.id for node in client.dataset_lineage(source.ref).used_by}
    run = client.get_run(result.run_id)
    assert run.params["model"] == "models:/scorer/1" and run.params["input"] == source.ref
    assert run.status == "FINISHED" and run.metrics["rows"] == result.rows


def test_bad_inputs_name_what_is_wrong(scored_world, mode) -> None:
    client, _, _, source = scored_world
    if mode != "embedded-sqlite":
        pytest.skip("errors come from the service layer, covered once")
    with pytest.raises(NotFound):
        batch_score(client, "models:/nope@champion", source.ref, "out", executor="inprocess")
    with pytest.raises(NotFound):
        batch_score(client, "models:/scorer/1", "customers@9", "out", executor="inprocess")
    with pytest.raises(InvalidInput, match="executor"):
        batch_score(client, "models:/scorer/1", source.ref, "out", executor="threads")
    with pytest.raises(InvalidInput, match="output dataset name"):
        batch_score(client, "models:/scorer/1", source.ref, "bad/name", executor="inprocess")
    # Refused before anything was recorded: no scoring run was started.
    assert client.search_runs(filter="params.input = 'customers@1'").runs == []
    blobs = client.log_dataset(_write_blob(client), name="blobs")
    with pytest.raises(InvalidInput, match="no tabular files"):
        batch_score(client, "models:/scorer/1", blobs.ref, "out", executor="inprocess")


def _write_blob(client):
    path = client.settings.home.parent / "blob.bin"
    path.write_bytes(b"\x00\x01 not a table")
    return path


def test_cli_batch_score(scored_world, mode) -> None:
    client, _, _, source = scored_world
    if mode != "embedded-sqlite":
        pytest.skip("the CLI is a thin adapter over the SDK")
    home = str(client.settings.home)
    result = CliRunner().invoke(
        app,
        ["--home", home, "--json", "batch-score", "models:/scorer/1", source.ref, "-o", "scored", "--executor",
         "inprocess"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["output_ref"] == "scored@1" and out["rows"] == 303
    with Client(home=home) as fresh:
        assert fresh.get_dataset("scored@1").row_count == 303
