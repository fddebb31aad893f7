"""The fluent API records lineage from context; a snapshot killed mid-way leaves no version behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import shipyard
from shipyard import Client
from shipyard.core.context import consuming


@pytest.fixture
def fluent(tmp_path: Path) -> Iterator[Client]:
    client = Client(home=tmp_path / "home")
    shipyard.set_client(client)
    yield client
    shipyard.set_client(None)
    client.close()


def test_fluent_log_and_load_record_the_active_run(fluent: Client) -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    with shipyard.start_run(name="prepare") as producer:
        v = shipyard.log_dataset(df, name="features")
    with shipyard.start_run(name="train") as consumer:
        loaded = shipyard.data.load("features@1")
        again = shipyard.load_dataset("features", as_="arrow")
    pd.testing.assert_frame_equal(loaded, df)
    assert again.num_rows == 3
    lineage = fluent.dataset_lineage(v.ref)
    assert [(n.id, n.role) for n in lineage.produced_by] == [(producer.id, "output")]
    assert [(n.id, n.role) for n in lineage.used_by] == [(consumer.id, "input")]

    # Outside a run nothing is recorded; record=False never records.
    shipyard.load_dataset("features@1")
    with shipyard.start_run(name="peek"):
        shipyard.load_dataset("features@1", record=False)
    assert len(fluent.dataset_lineage(v.ref).used_by) == 1


def test_consumers_from_context_are_recorded(fluent: Client) -> None:
    fluent.log_dataset(pd.DataFrame({"a": [1]}), name="ctx")
    run = fluent.create_run(name="step-run", capture_environment=False)
    with consuming(("run", run.id)):
        shipyard.load_dataset("ctx@1")
    assert [n.name for n in fluent.dataset_lineage("ctx@1").used_by] == ["step-run"]


SNAPSHOT_FOREVER = textwrap.dedent(
    """
    import sys
    from shipyard import Client

    client = Client(home=sys.argv[1])
    print("ready", flush=True)
    client.log_dataset(sys.argv[2], name="big")
    print("done", flush=True)
    """
)


def test_sigkill_mid_snapshot_leaves_no_version(tmp_path: Path) -> None:
    home, src = tmp_path / "home", tmp_path / "src"
    src.mkdir()
    for i in range(400):
        (src / f"f{i:03d}.bin").write_bytes(os.urandom(256 * 1024))
    script = tmp_path / "snap.py"
    script.write_text(SNAPSHOT_FOREVER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(home), str(src)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        objects = home / "artifacts" / "objects"
        deadline = time.monotonic() + 30
        # Kill once some objects are stored but (100 MB later) long before the manifest could be.
        while time.monotonic() < deadline and (not objects.exists() or len(list(objects.rglob("*"))) < 20):
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    with Client(home=home) as client:
        assert client.list_datasets() == []
        # Every object under its real name is complete: its content hashes to its name.
        for path in objects.rglob("*"):
            if path.is_file():
                digest = "sha256:" + path.parent.name + path.name
                assert client.artifacts.verify(digest), path
        v = client.log_dataset(src, name="big")
        assert (v.version, v.file_count) == (1, 400)
        assert client.last_snapshot.hashed_files == 400  # nothing was cached from the killed attempt


def test_pipeline_steps_appear_in_lineage_by_name(fluent: Client) -> None:
    from tests.data import lineage_pipeline

    result = fluent.run_pipeline(lineage_pipeline.publish_then_consume, {"rows": 4})
    assert result.status.value == "SUCCEEDED", result
    lineage = fluent.dataset_lineage("pipe-out@1")
    produced = {(n.type, n.name) for n in lineage.produced_by}
    assert ("step_run", "publish_then_consume/publish") in produced
    assert ("pipeline_run", "publish_then_consume") in produced
    assert any(t == "run" for t, _ in produced)  # the step's tracking run
    used = {(n.type, n.name) for n in lineage.used_by}
    assert ("step_run", "publish_then_consume/consume") in used
