"""The core flow through the SDK in all four deployments: records, outputs, tracking runs, cache, logs, lineage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard import Client
from shipyard.core.errors import NotFound
from shipyard.pipelines import PipelineStatus, StepStatus, run
from tests.pipelines import sample_pipelines as sp


def test_a_run_is_recorded_with_steps_tracking_runs_cache_logs_and_lineage(client: Client) -> None:
    first = client.run_pipeline(sp.training, {"rows": 40, "register_as": "churn"})
    assert first.status is PipelineStatus.SUCCEEDED
    assert [s.name for s in first.steps] == ["make_frame", "split", "train", "evaluate", "stats"]
    assert all(s.status is StepStatus.SUCCEEDED and s.attempts == 1 for s in first.steps)
    assert first.params == {"rows": 40, "c": 1.0, "register_as": "churn"}
    assert first.end_time is not None and first.end_time >= first.start_time

    # Inputs: upstream digests and values; outputs: digest and kind of each.
    train = first.step("train")
    split_step = first.step("split")
    assert train.inputs["train"]["digest"] == split_step.outputs["train"]["digest"]
    assert train.inputs["c"] == {"kind": "value", "value": 1.0}
    assert split_step.outputs["test"]["kind"] == "pandas"
    assert train.outputs["output"]["kind"] == "model"
    assert first.step("evaluate").outputs["output"]["kind"] == "json"
    assert 0.0 <= client.load_step_output(first.id, "evaluate") <= 1.0

    # Every transition is journaled.
    journal = [e.action for e in client.read_journal(entity_type="step_run", entity_id=train.id)]
    assert journal == ["step_run.started", "step_run.finished"]
    journal = [e.action for e in client.read_journal(entity_type="pipeline_run", entity_id=first.id)]
    assert journal == ["pipeline_run.started", "pipeline_run.finished"]

    # The pipeline run and each step have tracking runs; the steps' are nested and tagged.
    pipeline_run = client.get_run(first.run_id)
    assert pipeline_run.status == "FINISHED"
    assert pipeline_run.tags["shipyard.pipeline_run_id"] == first.id
    step_run = client.get_run(train.run_id)
    assert step_run.parent_run_id == first.run_id
    assert step_run.tags["shipyard.step"] == "train"
    assert step_run.tags["shipyard.pipeline_run_id"] == first.id
    assert "train_accuracy" in step_run.metrics
    assert step_run.environment["python"]

    # A model registered inside a step knows its step run and pipeline run.
    version = client.get_version("churn", 1)
    assert version.source_run_id == train.run_id
    assert client.get_run(version.source_run_id).tags["shipyard.pipeline_run_id"] == first.id
    assert client.step_run_of(version.source_run_id).pipeline_run_id == first.id
    with pytest.raises(NotFound):
        client.step_run_of(first.run_id)

    # Logs: print and logging of the step.
    logs = client.step_logs(first.id, "make_frame")
    assert "making 40 rows" in logs and "seeded with 0" in logs

    # Same code, same inputs: every step is a cache hit pointing at the first run's step.
    second = client.run_pipeline(sp.training, {"rows": 40})
    stats = second.step("stats")
    assert stats.status is StepStatus.CACHED
    assert stats.cached_from == first.step("stats").id
    assert stats.outputs == first.step("stats").outputs
    assert second.step("make_frame").status is StepStatus.CACHED
    assert second.step("train").status is StepStatus.SUCCEEDED  # register_as changed: train runs again
    assert "making 40 rows" in client.step_logs(second.id, "make_frame")  # the reused run's logs

    diff = client.diff_pipeline_runs(first.id, second.id)
    assert diff.definition is None
    assert diff.params["register_as"].a == "churn" and diff.params["register_as"].b is None
    by_name = {s.name: s for s in diff.steps}
    assert by_name["make_frame"].status.a == "SUCCEEDED" and by_name["make_frame"].status.b == "CACHED"
    assert by_name["train"].inputs["register_as"].b is None
    assert by_name["make_frame"].outputs == {}

    listed = client.pipeline_runs(name="training")
    assert [r.id for r in listed] == [second.id, first.id]
    definition = client.get_pipeline_definition(first.definition_digest)
    assert definition.structure["target"] == "tests.pipelines.sample_pipelines:training"


def test_outputs_of_every_kind_round_trip(client: Client) -> None:
    result = run(sp.kinds, {"rows": 6}, client=client)
    frame = client.load_step_output(result.id, "make_frame")
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["x", "y"] and len(frame) == 6
    array = client.load_step_output(result.id, "convert", "array")
    table = client.load_step_output(result.id, "convert", "table")
    assert isinstance(array, np.ndarray) and np.array_equal(array, frame["x"].to_numpy())
    assert isinstance(table, pa.Table) and table.to_pandas().equals(frame)
    assert client.load_step_output(result.id, "stats")["rows"] == 6
    with pytest.raises(NotFound, match="has no stored output 'nope'"):
        client.load_step_output(result.id, "convert", "nope")
