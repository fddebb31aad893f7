"""The pipeline API over HTTP: bad input gives 4xx JSON naming the problem; reads return the recorded run."""

from __future__ import annotations

from pathlib import Path

import httpx

from shipyard import Client
from shipyard.core.settings import Settings
from shipyard.pipelines import run
from tests.conftest import ThreadedServer
from tests.pipelines import sample_pipelines as sp


def test_pipeline_api_errors_and_reads(home: Path) -> None:
    settings = Settings.resolve(home=home / "server", remote_uri="")
    with ThreadedServer(settings) as server, Client(server.url, home=home) as client:
        done = run(sp.kinds, {"rows": 4}, client=client)
        api = httpx.Client(base_url=server.url + "/api/v1", headers=server.headers)

        got = api.get(f"/pipeline-runs/{done.id}").json()
        assert got["status"] == "SUCCEEDED" and [s["name"] for s in got["steps"]] == ["make_frame", "convert", "stats"]
        assert api.get("/pipeline-runs", params={"name": "kinds"}).json()[0]["id"] == done.id
        assert api.get(f"/step-runs/by-run/{done.steps[0].run_id}").json()["name"] == "make_frame"
        logs = api.get(f"/pipeline-runs/{done.id}/steps/make_frame/logs").json()["text"]
        assert "making 4 rows" in logs and "seeded with 0" in logs
        assert "HTTP Request" not in logs  # the SDK's own request logging is not the step's output

        missing = api.get("/pipeline-runs/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        bad = api.post("/pipeline-runs", json={"name": "x", "structure": {"steps": []}})
        assert bad.status_code == 400 and "non-empty list of steps" in bad.json()["error"]["message"]
        cyclic = api.post(
            "/pipeline-runs",
            json={
                "name": "x",
                "structure": {
                    "steps": [
                        {
                            "name": "a",
                            "code_digest": done.steps[0].code_digest,
                            "inputs": {"v": {"kind": "output", "step": "a", "output": "output"}},
                        }
                    ]
                },
            },
        )
        assert cyclic.status_code == 400 and "not an earlier step" in cyclic.json()["error"]["message"]
        finished = api.post(f"/pipeline-runs/{done.id}/finish", json={"status": "FAILED"})
        assert finished.status_code == 409 and "already ended SUCCEEDED" in finished.json()["error"]["message"]
        restart = api.post(f"/step-runs/{done.steps[0].id}/start", json={})
        assert restart.status_code == 409
        bad_executor = api.post(
            "/pipeline-runs", json={"name": "x", "structure": got_structure(client, done), "executor": "gpu"}
        )
        assert bad_executor.status_code == 400 and "unknown executor 'gpu'" in bad_executor.json()["error"]["message"]
        api.close()


def got_structure(client: Client, done) -> dict:
    return client.get_pipeline_definition(done.definition_digest).structure
