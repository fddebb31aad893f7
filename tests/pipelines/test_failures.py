"""Failure isolation, resume from the cache, retries, timeouts, cache invalidation, and errors from steps."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.core.errors import InvalidInput
from shipyard.pipelines import PipelineFailed, PipelineStatus, StepStatus, run
from tests.pipelines import sample_pipelines as sp


def test_a_failed_gate_fails_the_run_skips_downstream_and_a_rerun_resumes_from_cache(embedded: Client) -> None:
    with pytest.raises(PipelineFailed) as err:
        embedded.run_pipeline(sp.gated, {"rows": 10, "min_rows": 100})
    failed = err.value.run
    assert err.value.step == "gate"
    assert "failed at step 'gate': ValidationFailed: 10 rows < 100" in err.value.message
    assert failed.id in err.value.message and err.value.pipeline_run_id == failed.id

    record = embedded.get_pipeline_run(failed.id)
    assert record.status is PipelineStatus.FAILED
    assert record.error["step"] == "gate"
    gate = record.step("gate")
    assert gate.status is StepStatus.FAILED
    assert gate.error["type"] == "tests.pipelines.sample_pipelines.ValidationFailed"
    assert gate.error["report"] == {"rows": 10, "min_rows": 100}
    assert gate.error["code"] == "validation_failed"
    assert "Traceback" in gate.error["traceback"]
    assert "ValidationFailed" in embedded.step_logs(failed.id, "gate")
    assert record.step("after_gate").status is StepStatus.SKIPPED
    assert record.step("make_frame").status is StepStatus.SUCCEEDED
    assert record.step("stats").status is StepStatus.SUCCEEDED  # independent branch finished
    assert embedded.get_run(gate.run_id).status == "FAILED"
    assert embedded.get_run(record.run_id).status == "FAILED"

    resumed = embedded.run_pipeline(sp.gated, {"rows": 10, "min_rows": 5})
    assert resumed.status is PipelineStatus.SUCCEEDED
    assert resumed.step("make_frame").status is StepStatus.CACHED
    assert resumed.step("make_frame").cached_from == record.step("make_frame").id
    assert resumed.step("stats").status is StepStatus.CACHED
    assert resumed.step("gate").status is StepStatus.SUCCEEDED
    assert embedded.load_step_output(resumed.id, "after_gate") == 20


def test_no_cache_forces_every_step_to_run(sqlite_client: Client) -> None:
    first = sqlite_client.run_pipeline(sp.kinds, {"rows": 5})
    forced = sqlite_client.run_pipeline(sp.kinds, {"rows": 5}, no_cache=True)
    assert all(s.status is StepStatus.SUCCEEDED for s in forced.steps)
    assert forced.step("make_frame").cache_key == first.step("make_frame").cache_key
    changed = sqlite_client.run_pipeline(sp.kinds, {"rows": 6})
    assert changed.step("make_frame").status is StepStatus.SUCCEEDED  # a different value, a different key


def test_a_code_change_invalidates_the_cache_of_that_step_only(
    sqlite_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = textwrap.dedent(
        """
        from shipyard.pipelines import pipeline, step

        @step
        def base() -> int:
            return 10

        @step
        def scale(x: int) -> int:
            return x * FACTOR

        @pipeline
        def flow():
            scale(base())
        """
    )
    module = tmp_path / "editable_flow.py"
    module.write_text(source.replace("FACTOR", "2"))
    monkeypatch.syspath_prepend(str(tmp_path))
    first = run("editable_flow:flow", client=sqlite_client)
    assert sqlite_client.load_step_output(first.id, "scale") == 20

    module.write_text(source.replace("FACTOR", "3"))
    importlib.reload(sys.modules["editable_flow"])
    second = run("editable_flow:flow", client=sqlite_client)
    assert second.step("base").status is StepStatus.CACHED
    assert second.step("scale").status is StepStatus.SUCCEEDED
    assert second.step("scale").code_digest != first.step("scale").code_digest
    assert second.definition_digest != first.definition_digest
    assert sqlite_client.load_step_output(second.id, "scale") == 30
    diff = sqlite_client.diff_pipeline_runs(first.id, second.id)
    scale = next(s for s in diff.steps if s.name == "scale")
    assert scale.code_digest is not None and scale.outputs["output"].a != scale.outputs["output"].b
    assert diff.definition is not None


@pytest.mark.parametrize("executor", ["inprocess", "process"])
def test_retries_with_backoff_then_success(sqlite_client: Client, tmp_path: Path, executor: str) -> None:
    result = run(
        sp.retrying, {"marker_dir": str(tmp_path / "m"), "fail_times": 2}, client=sqlite_client, executor=executor
    )
    flaky = result.step("flaky")
    assert flaky.status is StepStatus.SUCCEEDED and flaky.attempts == 3
    assert sqlite_client.load_step_output(result.id, "flaky") == 3

    with pytest.raises(PipelineFailed, match="RuntimeError: flaky attempt 3"):
        run(sp.retrying, {"marker_dir": str(tmp_path / "n"), "fail_times": 5}, client=sqlite_client)
    failed = sqlite_client.pipeline_runs(name="retrying", limit=1)[0]
    assert failed.step("flaky").attempts == 3 and failed.step("flaky").error["attempts"] == 3


@pytest.mark.parametrize("executor", ["inprocess", "process"])
def test_a_step_over_its_timeout_is_stopped(sqlite_client: Client, executor: str) -> None:
    with pytest.raises(PipelineFailed, match="timed out after 1s") as err:
        run(sp.timing_out, {"seconds": 30}, client=sqlite_client, executor=executor)
    slow = err.value.run.step("slow")
    assert slow.status is StepStatus.FAILED
    assert slow.end_time - slow.start_time < 15_000


def test_an_unserialisable_output_names_the_step_and_output(sqlite_client: Client) -> None:
    with pytest.raises(PipelineFailed) as err:
        run(sp.unserialisable, client=sqlite_client)
    error = err.value.run.step("opaque").error
    assert error["type"] == "shipyard.core.errors.InvalidInput"
    assert "step 'opaque' output 'output': cannot store a tests.pipelines.sample_pipelines.Opaque" in error["message"]


def test_bad_calls_fail_before_anything_is_recorded(sqlite_client: Client) -> None:
    with pytest.raises(InvalidInput, match="unknown executor 'threads'"):
        run(sp.training, client=sqlite_client, executor="threads")
    with pytest.raises(InvalidInput, match="no parameter 'rowz'"):
        run(sp.training, {"rowz": 1}, client=sqlite_client)
    with pytest.raises(InvalidInput, match="cannot import module"):
        run("nowhere.at.all:pipe", client=sqlite_client)
    with pytest.raises(InvalidInput, match="address is only used by the dask executor"):
        run(sp.training, client=sqlite_client, address="tcp://127.0.0.1:1")
    assert sqlite_client.pipeline_runs() == []


def test_calling_a_pipeline_runs_it_with_the_default_client(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    monkeypatch.delenv("SHIPYARD_URI", raising=False)
    monkeypatch.delenv("SHIPYARD_STORE_URI", raising=False)
    result = sp.kinds(rows=3)
    assert result.status is PipelineStatus.SUCCEEDED
    with Client(home=home) as client:
        assert client.load_step_output(result.id, "stats")["rows"] == 3


def test_ctrl_c_in_a_step_marks_the_run_failed_and_propagates(sqlite_client: Client) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(sp.interrupting, client=sqlite_client)
    [record] = sqlite_client.pipeline_runs(name="interrupting")
    assert record.status is PipelineStatus.FAILED and record.error["type"] == "builtins.KeyboardInterrupt"
    assert record.step("make_frame").status is StepStatus.SUCCEEDED
    assert record.step("interrupted").status is StepStatus.FAILED
    assert record.step("stats").status is StepStatus.SKIPPED  # never started; the run is over
    assert sqlite_client.get_run(record.run_id).status == "KILLED"
    assert sqlite_client.get_run(record.step("interrupted").run_id).status == "FAILED"
