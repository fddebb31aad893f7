"""The team deployment of docs/deploy.md, as far as one machine runs it: two `shipyard server`
processes sharing one PostgreSQL store, one S3-compatible artifact store (moto) and one signing key.
What one writes the other serves; nothing lives only in a server process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.core.settings import Settings
from shipyard.governance.bootstrap import issue_admin_token
from tests.artifacts.conftest import s3_bucket, s3_server  # noqa: F401 - fixtures
from tests.artifacts.helpers import S3Server
from tests.conftest import free_port


def _shipyard() -> list[str]:
    script = Path(sys.executable).with_name("shipyard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shipyard.cli.main"]


@pytest.fixture
def team(tmp_path: Path, pg_uri: str, s3_server: S3Server, s3_bucket: str, monkeypatch) -> Iterator[dict]:  # noqa: F811
    shared = {
        "SHIPYARD_STORE_URI": pg_uri,
        "SHIPYARD_ARTIFACT_URI": f"s3://{s3_bucket}/shipyard",
        "SHIPYARD_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "SHIPYARD_SIGNING_KEY": str(tmp_path / "keys" / "server-ed25519.pem"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name, value in shared.items():
        monkeypatch.setenv(name, value)
    token = issue_admin_token(Settings.resolve(home=tmp_path / "admin", remote_uri=""))
    env = {k: v for k, v in os.environ.items() if k not in ("SHIPYARD_URI", "SHIPYARD_TOKEN")}
    servers, urls = [], []
    try:
        for i in range(2):
            port = free_port()
            servers.append(
                subprocess.Popen(
                    [
                        *_shipyard(),
                        "--home",
                        str(tmp_path / f"replica-{i}"),
                        "server",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                        "--no-monitors",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for proc, url in zip(servers, urls, strict=True):
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield {"urls": urls, "token": token, "home": tmp_path}
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(15)


def test_two_servers_share_one_store_artifacts_and_key(team: dict) -> None:
    first, second = team["urls"]
    with Client(first, home=team["home"] / "a", token=team["token"]) as a:
        run = a.create_run(name="trained-via-a")
        a.log_metric(run.id, "auc", 0.93, synchronous=True)
        model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        version = a.register_model(model, "shared-model")
        a.end_run(run.id)
    with Client(second, home=team["home"] / "b", token=team["token"]) as b:
        assert b.get_run(run.id).metrics["auc"] == 0.93
        loaded = b.load_model(version.uri)  # bytes from S3 through the other server, digest and signature verified
        assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
        assert b.verify_version_signature("shared-model", version.version)["valid"]
        assert b.verify_journal()["ok"]
        assert {k.owner for k in b.list_signing_keys()} == {"server"}  # one key for every replica
        b.set_alias("shared-model", "production", version.version)
    with Client(first, home=team["home"] / "c", token=team["token"]) as c:
        assert c.get_version_by_alias("shared-model", "production").digest == version.digest
        journal = c.read_journal(after=0, limit=1000)
        assert [e.action for e in journal].count("alias.set") == 1 and c.verify_journal()["ok"]
