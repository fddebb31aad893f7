"""A runner killed with SIGKILL mid-pipeline: the run reads FAILED afterwards and completed steps are reused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import sqlalchemy as sa

from shipyard import Client
from shipyard.pipelines import PipelineStatus, StepStatus, run
from shipyard.store import schema as t
from tests.pipelines import sample_pipelines as sp

RUNNER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from shipyard import Client
    from shipyard.pipelines import run
    client = Client(home=sys.argv[2], store_uri=sys.argv[3] or None)
    run("tests.pipelines.sample_pipelines:blocking", {"path": sys.argv[4]}, client=client)
    """
)
ROOT = str(Path(__file__).resolve().parents[2])


def _kill_mid_run(home: Path, store_uri: str | None, gate: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, ROOT, str(home), store_uri or "", str(gate)])
    started = Path(str(gate) + ".started")
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None, "the runner exited early"
        assert time.monotonic() < deadline, "the blocking step never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_sigkill_mid_pipeline_leaves_a_failed_run_whose_finished_steps_are_reused(
    embedded: Client, home: Path, tmp_path: Path
) -> None:
    store_uri = embedded.settings.store_uri
    gate = tmp_path / "gate"
    _kill_mid_run(home, store_uri, gate)

    [killed] = embedded.pipeline_runs(name="blocking")
    assert killed.status is PipelineStatus.FAILED
    assert killed.error["type"] == "RunnerLost"
    assert killed.step("make_frame").status is StepStatus.SUCCEEDED
    assert killed.step("stats").status is StepStatus.SUCCEEDED
    waiting = killed.step("wait_for_file")
    assert waiting.status is StepStatus.FAILED and waiting.error["type"] == "RunnerLost"
    assert embedded.get_run(waiting.run_id).status == "FAILED"
    assert embedded.get_run(killed.run_id).status == "FAILED"
    actions = [e.action for e in embedded.read_journal(entity_type="pipeline_run", entity_id=killed.id)]
    assert actions == ["pipeline_run.started", "pipeline_run.finished"]

    gate.touch()
    resumed = run(sp.blocking, {"path": str(gate)}, client=embedded)
    assert resumed.status is PipelineStatus.SUCCEEDED
    assert resumed.step("make_frame").status is StepStatus.CACHED
    assert resumed.step("make_frame").cached_from == killed.step("make_frame").id
    assert resumed.step("stats").status is StepStatus.CACHED
    assert resumed.step("wait_for_file").status is StepStatus.SUCCEEDED


def test_a_run_without_heartbeat_from_another_host_is_failed_when_read(sqlite_client: Client) -> None:
    done = run(sp.kinds, {"rows": 3}, client=sqlite_client)
    structure = sqlite_client.get_pipeline_definition(done.definition_digest).structure
    remote = sqlite_client._call(
        "pipelines", "create_pipeline_run", name="kinds", structure=structure, owner="elsewhere:123"
    )
    assert sqlite_client.get_pipeline_run(remote.id).status is PipelineStatus.RUNNING  # fresh heartbeat
    engine = sa.create_engine(sqlite_client.settings.store_uri)
    with engine.begin() as conn:
        conn.execute(t.pipeline_runs.update().where(t.pipeline_runs.c.id == remote.id).values(heartbeat_at=1))
    engine.dispose()
    lost = sqlite_client.get_pipeline_run(remote.id)
    assert lost.status is PipelineStatus.FAILED and "elsewhere:123" in lost.error["message"]
    assert {s.status for s in lost.steps} == {StepStatus.SKIPPED}
    assert sqlite_client.get_pipeline_run(done.id).status is PipelineStatus.SUCCEEDED
