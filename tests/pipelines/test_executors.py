"""The process pool runs independent steps in parallel; the Dask executor runs a pipeline on a LocalCluster."""

from __future__ import annotations

import time

import pytest

from shipyard import Client
from shipyard.pipelines import PipelineFailed, PipelineStatus, StepStatus, run
from tests.pipelines import sample_pipelines as sp


def test_process_executor_runs_independent_steps_at_the_same_time(embedded: Client) -> None:
    result = run(sp.parallel, {"seconds": 1.5}, client=embedded, executor="process", max_workers=2)
    a = embedded.load_step_output(result.id, "nap")
    b = embedded.load_step_output(result.id, "nap_2")
    assert a["pid"] != b["pid"]
    assert max(a["start"], b["start"]) < min(a["end"], b["end"]), (a, b)  # the time windows overlap
    first, second = result.step("nap"), result.step("nap_2")
    assert max(first.start_time, second.start_time) < min(first.end_time, second.end_time)


def test_process_executor_records_like_in_process(embedded: Client) -> None:
    result = run(sp.training, {"rows": 30, "register_as": "proc"}, client=embedded, executor="process")
    assert result.executor == "process" and result.status is PipelineStatus.SUCCEEDED
    train = result.step("train")
    assert embedded.get_version("proc", 1).source_run_id == train.run_id
    assert "train_accuracy" in embedded.get_run(train.run_id).metrics
    assert "making 30 rows" in embedded.step_logs(result.id, "make_frame")
    again = run(sp.training, {"rows": 30}, client=embedded, executor="process")
    assert again.step("split").status is StepStatus.CACHED


def test_dask_executor_on_a_local_cluster(sqlite_client: Client) -> None:
    result = run(sp.kinds, {"rows": 7}, client=sqlite_client, executor="dask", max_workers=2)
    assert result.executor == "dask" and result.status is PipelineStatus.SUCCEEDED
    assert [s.status for s in result.steps] == [StepStatus.SUCCEEDED] * 3
    assert sqlite_client.load_step_output(result.id, "stats")["rows"] == 7
    assert "rows" in sqlite_client.get_run(result.step("stats").run_id).metrics
    # Cache keys use the workers' environment; here it is this very venv, so an in-process run of the
    # same pipeline reuses every output the cluster computed.
    again = run(sp.kinds, {"rows": 7}, client=sqlite_client)
    assert [s.status for s in again.steps] == [StepStatus.CACHED] * 3


def test_dask_executor_kills_an_attempt_over_its_timeout(sqlite_client: Client) -> None:
    started = time.monotonic()
    with pytest.raises(PipelineFailed, match="timed out after 1s"):
        run(sp.timing_out, {"seconds": 60}, client=sqlite_client, executor="dask", max_workers=1)
    assert time.monotonic() - started < 45


def test_process_workers_reach_the_store_in_every_deployment(client: Client) -> None:
    result = run(sp.kinds, {"rows": 4}, client=client, executor="process")
    assert [s.status for s in result.steps] == [StepStatus.SUCCEEDED] * 3
    assert client.load_step_output(result.id, "convert", "array").shape == (4,)
    assert "rows" in client.get_run(result.step("stats").run_id).metrics
    assert "making 4 rows" in client.step_logs(result.id, "make_frame")
