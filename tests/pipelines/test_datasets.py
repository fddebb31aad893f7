"""Dataset versions read by steps — passed as DatasetRef or loaded inside — are inputs of the step and pipeline run."""

from __future__ import annotations

import pandas as pd

from shipyard import Client
from shipyard.pipelines import StepStatus, run
from tests.pipelines import sample_pipelines as sp


def _used_by(client: Client, ref: str) -> set[tuple[str, str]]:
    return {(node.type, node.id) for node in client.dataset_lineage(ref).used_by}


def test_a_dataset_ref_input_is_resolved_recorded_and_part_of_the_cache_key(client: Client) -> None:
    v1 = client.log_dataset(pd.DataFrame({"n": range(5)}), name="numbers")
    first = run(sp.uses_dataset, {"ref": "numbers@latest"}, client=client)
    step = first.step("read_dataset")
    assert step.inputs["ref"] == {"kind": "dataset", "ref": "numbers@latest", "version_id": v1.id}
    assert client.load_step_output(first.id, "read_dataset") == 5
    used = _used_by(client, "numbers@1")
    assert ("step_run", step.id) in used and ("pipeline_run", first.id) in used

    assert run(sp.uses_dataset, {"ref": "numbers@latest"}, client=client).step("read_dataset").status is (
        StepStatus.CACHED
    )
    client.log_dataset(pd.DataFrame({"n": range(8)}), name="numbers")
    third = run(sp.uses_dataset, {"ref": "numbers@latest"}, client=client)
    assert third.step("read_dataset").status is StepStatus.SUCCEEDED  # a new version, a new cache key
    assert client.load_step_output(third.id, "read_dataset") == 8


def test_a_dataset_loaded_inside_a_step_is_an_input_of_the_step_and_pipeline_run(embedded: Client) -> None:
    embedded.log_dataset(pd.DataFrame({"n": range(3)}), name="numbers")
    for executor in ("inprocess", "process"):
        result = run(sp.loads_dataset, {"ref": "numbers@1"}, client=embedded, executor=executor, no_cache=True)
        step = result.step("load_inside")
        used = _used_by(embedded, "numbers@1")
        assert ("step_run", step.id) in used and ("pipeline_run", result.id) in used
        assert ("run", step.run_id) in used


def test_an_unknown_dataset_version_is_refused_before_a_run_is_recorded(embedded: Client) -> None:
    import pytest

    from shipyard.core.errors import NotFound

    embedded.log_dataset(pd.DataFrame({"n": range(5)}), name="numbers")
    with pytest.raises(NotFound, match="no version 9"):
        run(sp.uses_dataset, {"ref": "numbers@9"}, client=embedded)
    with pytest.raises(NotFound, match="'nothing' not found"):
        run(sp.uses_dataset, {"ref": "nothing@1"}, client=embedded)
    assert embedded.pipeline_runs() == []
