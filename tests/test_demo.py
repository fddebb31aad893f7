"""The main job: `shipyard demo` runs the lifecycle end to end, and can run again on the same home."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from shipyard import Client
from shipyard.demo import DATASET, MODEL_NAME, run_demo


def test_demo_runs_end_to_end_twice(tmp_path: Path) -> None:
    out = io.StringIO()
    first = run_demo(tmp_path / "home", console=Console(file=out, width=200))
    assert first["runs"] == 6
    assert first["champion_accuracy"] > 0.9
    assert first["cached_steps"] == 4  # the second pipeline run inside the demo is served from the cache
    # the challenger's canary is promoted by the judge; the faulty release is rolled back on live errors
    assert (first["deploy_canary"], first["deploy_faulty_canary"]) == ("promoted", "rolled_back")
    assert first["deploy_faulty_outcome"].startswith("judge failed: fail: error_rate")
    # monitoring: the drift from hour 8 is found on the size features, fires the drift alert (and the
    # accuracy alert on the labelled drifted hours)
    assert "breast-cancer-batch-drift" in first["monitor_alerts"]
    assert {"mean radius", "worst radius"} <= set(first["monitor_drifted"])
    # the closed loop: the alert retrained, the new version beat the tolerance against the champion, went
    # through review under the release policy, and its canary on live traffic was promoted by the judge
    assert not first["loop_timed_out"] and first["loop_failed"] == []
    assert first["loop_retraining_run"] and first["loop_deployment"] == "promoted"
    assert first["loop_serving"] == f"{MODEL_NAME}/{first['loop_version']}"
    assert {"closed-loop-retrain", "closed-loop-evaluate", "closed-loop-gate", "closed-loop-report"} <= set(
        first["loop_rules"]
    )
    assert Path(first["monitor_report"]).read_text().startswith("<!doctype html>")
    # governance: the champion went through review under the release policy, approved by two reviewers
    # (the author's own approval refused), and its audit trail, chain and evidence bundle verify
    assert (first["governance_stage"], first["governance_policy_version"]) == ("approved", 1)
    actions = first["audit_actions"]
    assert actions.index("version.registered") < actions.index("version.submitted") < actions.index("version.approved")
    assert actions.index("version.approved") < actions.index("alias.set") and "version.signed" in actions
    assert first["audit_journal_ok"] and first["audit_bundle_ok"]
    text = out.getvalue()
    assert "separation of duties" in text and "bundle OK" in text
    assert "champion" in text and first["digest"] in text and "Lineage of the champion" in text

    client = Client(home=tmp_path / "home")
    champion = client.get_version_by_alias(MODEL_NAME, "champion")
    assert champion.version == first["version"] and champion.digest == first["digest"]
    assert champion.stage == "deployed"  # approved, then live on the endpoint
    assert client.review_status(MODEL_NAME, champion.version).approvals == ["rita", "sam"]
    # Lineage: dataset version → pipeline run → the register step's tracking run → the model version.
    assert champion.data_refs == [f"{DATASET}@1"] == [first["dataset"]]
    step_run = client.get_step_run_by_run_id(champion.source_run_id)
    assert step_run.name == "register" and step_run.pipeline_run_id == first["pipeline_run_id"]
    used_by = {node.type for node in client.dataset_lineage(first["dataset"]).used_by}
    assert {"model_version", "pipeline_run", "step_run"} <= used_by
    assert client.validation_reports(first["dataset"])[0].passed
    sweep = client.get_run(first["parent_run_id"])
    best = client.get_run(first["best_run_id"])
    assert best.parent_run_id == sweep.id
    assert best.metrics["roc_auc"] == max(
        r.metrics["roc_auc"] for r in client.search_runs(filter=f"parent_run_id = '{sweep.id}'").runs
    )
    client.close()

    second = run_demo(tmp_path / "home", console=Console(file=io.StringIO()))
    # Same data, same code: the dataset version is reused and the whole pipeline comes from the cache.
    assert second["dataset"] == first["dataset"]
    assert second["version"] == first["version"] and second["digest"] == first["digest"]
    # the drift alert fires again on the fresh monitor, and the loop runs again: a new version, promoted
    assert second["loop_deployment"] == "promoted" and second["loop_version"] > first["loop_version"]

    _check_served_dashboard(tmp_path / "home")


def _check_served_dashboard(home: Path) -> None:
    """The demo's last step serves the store: dashboard, live traffic, the loop armed; Ctrl-C stops it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    code = "import sys; from shipyard.demo.serve import serve_demo; serve_demo(sys.argv[1], port=0)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    process = subprocess.Popen([sys.executable, "-c", code, str(home)], env=env, stdout=subprocess.PIPE, text=True)
    address = home / "dashboard.txt"
    try:
        deadline = time.monotonic() + 60
        while not address.exists():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.2)
        url, token = address.read_text().split()
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/", follow_redirects=False).status_code == 303  # a session is needed
            login = http.post("/login", data={"token": token, "next": "/automations"}, follow_redirects=False)
            assert login.status_code == 303 and "shipyard_token" in login.cookies
            page = http.get("/automations")  # the client keeps the session cookie
            assert page.status_code == 200 and "closed-loop-retrain" in page.text
            # the trickle of live traffic reaches the endpoint's prediction log
            headers = {"authorization": f"Bearer {token}"}
            before = _predictions(http, headers)
            deadline = time.monotonic() + 30
            while _predictions(http, headers) <= before:
                assert time.monotonic() < deadline, "no live traffic"
                time.sleep(1)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert "open http://127.0.0.1:" in (process.stdout.read() if process.stdout else "")
    finally:
        if process.poll() is None:
            process.kill()


def _predictions(http, headers) -> int:
    """Rows in the endpoint's prediction log segments."""
    answer = http.get("/api/v1/prediction-segments", params={"endpoint": "breast-cancer"}, headers=headers)
    assert answer.status_code == 200, answer.text
    return sum(int(s["rows"]) for s in answer.json())
