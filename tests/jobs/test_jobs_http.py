"""Jobs over HTTP: a caller without Python runs a pipeline, batch-scores and reproduces on the server."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from shipyard import Client
from shipyard.core.settings import Settings
from tests.conftest import ThreadedServer


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_run_pipeline_batch_score_and_reproduce_over_http(home: Path, backend, request) -> None:
    store_uri = request.getfixturevalue("pg_uri") if backend == "postgres" else None
    settings = Settings.resolve(home=home / "server", store_uri=store_uri, remote_uri="")
    with ThreadedServer(settings) as server, Client(server.url, home=home) as client:
        api = httpx.Client(base_url=server.url + "/api/v1", timeout=120, headers=server.headers)

        ran = api.post("/jobs/run-pipeline", json={"target": "tests.reproduce.pipelines:repro", "params": {"rows": 80}})
        assert ran.status_code == 200, ran.text
        pipeline_run = ran.json()
        assert pipeline_run["status"] == "SUCCEEDED" and pipeline_run["params"]["rows"] == 80
        assert pipeline_run["created_by"] == "test-admin"  # the job runs as the authenticated caller
        assert client.get_version("repro", 1).source_run_id == pipeline_run["steps"][1]["run_id"]

        rng = np.random.default_rng(0)
        client.log_dataset(pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"]), name="to-score")
        scored = api.post(
            "/jobs/batch-score",
            json={"model": "models:/repro/1", "dataset": "to-score@1", "output": "scored", "executor": "inprocess"},
        )
        assert scored.status_code == 200, scored.text
        assert scored.json()["output_ref"] == "scored@1" and scored.json()["rows"] == 40
        assert client.get_dataset("scored@1").parents == ["to-score@1"]

        same = api.post("/jobs/reproduce", json={"model": "models:/repro/1"})
        assert same.status_code == 200, same.text
        assert same.json()["identical"] is True

        failed = api.post(
            "/jobs/run-pipeline", json={"target": "tests.reproduce.pipelines:repro", "params": {"rows": -1}}
        )
        assert failed.status_code == 422 and failed.json()["error"]["code"] == "pipeline_failed"
        missing = api.post("/jobs/run-pipeline", json={"target": "no.such.module:fn"})
        assert missing.status_code == 400 and "no.such.module" in missing.json()["error"]["message"]
        unknown = api.post(
            "/jobs/batch-score", json={"model": "models:/nope/1", "dataset": "to-score@1", "output": "x"}
        )
        assert unknown.status_code == 404
