"""The contract gate inside a real pipeline: a failing contract stops the run and the report is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.client import fluent
from shipyard.pipelines import PipelineFailed, PipelineStatus, StepStatus
from tests.validation import gated_pipeline as gp


@pytest.fixture
def embedded(home: Path) -> Iterator[Client]:
    client = Client(home=home)
    yield client
    client.close()
    fluent.set_client(None)


def test_a_failing_contract_stops_the_pipeline_with_its_report(embedded: Client) -> None:
    with pytest.raises(PipelineFailed) as err:
        embedded.run_pipeline(gp.gated_people, {"bad": True})
    assert "age.max" in err.value.message
    record = embedded.get_pipeline_run(err.value.pipeline_run_id)
    assert record.status is PipelineStatus.FAILED
    gate = record.step("validate")
    assert gate.status is StepStatus.FAILED
    assert gate.error["code"] == "validation_failed"
    report = gate.error["report"]
    assert report["passed"] is False
    failed = [c for c in report["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["age.max"]
    assert failed[0]["failing_rows"] == [{"_row": 2, "age": 150, "id": 3}]
    assert record.step("use").status is StepStatus.SKIPPED

    fine = embedded.run_pipeline(gp.gated_people, {"bad": False})
    assert fine.status is PipelineStatus.SUCCEEDED
    assert embedded.load_step_output(fine.id, "use") == 6
