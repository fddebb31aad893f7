"""A process killed with SIGKILL mid-registration or mid-upload leaves a consistent store; the next one works."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from shipyard import Client

REGISTER_FOREVER = textwrap.dedent(
    """
    import sys
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from shipyard import Client

    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=100).fit(X[:, :4], y)
    client = Client(home=sys.argv[1], store_uri=sys.argv[2] or None)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        run = client.create_run(name=f"r{i}", capture_environment=False)
        client.log_model(run.id, model, registered_model_name="crashy")
        client.end_run(run.id)
    """
)

UPLOAD_FOREVER = textwrap.dedent(
    """
    import os, sys
    from shipyard import Client

    client = Client(home=sys.argv[1], store_uri=sys.argv[2] or None)
    run = client.create_run(name="uploader", capture_environment=False)
    print(run.id, flush=True)
    i = 0
    while True:
        i += 1
        path = os.path.join(sys.argv[3], f"big-{i}.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(24 * 1024 * 1024))
        client.log_artifact(run.id, path, f"files/big-{i}.bin")
    """
)


def _kill_after(script: str, args: list[str], min_s: float, max_s: float) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the child is set up
    time.sleep(random.uniform(min_s, max_s))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _check_registry_consistent(client: Client) -> None:
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True)
    if not client.list_models():  # killed before the first registration finished: nothing to check
        return
    versions = client.list_versions("crashy")
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    for v in versions:
        model = client.load_model(f"models:/crashy/{v.version}")  # every registered tree is complete
        assert np.isin(model.predict(X[:5, :4]), [0, 1]).all()


def test_sigkill_during_version_registration(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    for _ in range(4):
        _kill_after(REGISTER_FOREVER, [home, ""], 0.5, 2.5)
    client = Client(home=home)
    _check_registry_consistent(client)
    with _sqlite(home) as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    before = len(client.list_versions("crashy")) if client.list_models() else 0
    run = client.create_run(capture_environment=False)
    from sklearn.dummy import DummyClassifier

    version = client.log_model(run.id, DummyClassifier().fit([[0]], [1]), registered_model_name="crashy")
    assert version.version == before + 1
    client.close()


def test_sigkill_during_version_registration_postgres(tmp_path: Path, pg_uri: str) -> None:
    home = str(tmp_path / "home")
    for _ in range(2):
        _kill_after(REGISTER_FOREVER, [home, pg_uri], 0.5, 2.5)
    client = Client(home=home, store_uri=pg_uri)
    _check_registry_consistent(client)
    client.close()


def test_sigkill_during_artifact_upload(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for _ in range(3):
        _kill_after(UPLOAD_FOREVER, [home, "", str(scratch)], 0.3, 1.5)
    client = Client(home=home)
    runs = client.search_runs(filter="name = 'uploader'").runs
    assert runs
    for run in runs:
        for artifact in client.list_artifacts(run.id):
            # Every recorded artifact points at a complete, verifiable object.
            assert client.artifacts.has(artifact.digest)
            assert client.artifacts.verify(artifact.digest)
    objects = Path(home) / "artifacts" / "objects"
    for obj in objects.rglob("*"):
        if obj.is_file():
            assert client.artifacts.verify("sha256:" + obj.parent.name + obj.name), obj
    fresh = scratch / "after.bin"
    fresh.write_bytes(b"the next process works")
    run = client.create_run(capture_environment=False)
    assert client.log_artifact(run.id, fresh).size == len(b"the next process works")
    client.close()


class _sqlite:
    def __init__(self, home: str):
        self.engine = sa.create_engine(f"sqlite:///{home}/shipyard.db")

    def __enter__(self) -> sa.Connection:
        self.conn = self.engine.connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
        self.engine.dispose()
