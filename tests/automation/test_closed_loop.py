"""The closed loop end to end, on both transports (in-process and Redis Streams).

A drifted window fires the monitor's drift alert; the loop's rules retrain (a pipeline on the
window's labelled rows), evaluate the new version against the champion, pass the governance gate
(with a policy: a review, approved by a reviewer; without one: straight through), canary it on the
endpoint with real predictions routed by a serving replica, and the judge promotes it — or, for a
release that fails on live rows, rolls it back. Each step is a firing of its own rule, journaled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from shipyard import Client
from shipyard.automation.engine import AutomationRunner
from shipyard.automation.recipes import install_closed_loop
from shipyard.core.context import acting_as
from shipyard.serving.app import create_inference_app
from shipyard.serving.runtime import ServingRuntime
from tests.monitoring.world import World, traffic

ENDPOINT = "clf-prod"
QUICK = {"multivariate": "never", "importance": False}
JUDGE = {"min_samples": 30, "error_rate_margin": 0.05, "latency_margin_ms": 200.0, "divergence_threshold": 0.9}
CANARY = {"steps": [50], "step_seconds": 0.3, "smoke_samples": 0, "judge": JUDGE}
POLICY = """\
description: A retrained clf needs one reviewer's approval.
applies_to: {models: [clf]}
approvals: {required: 1, roles: [reviewer]}
deployment: {strategies: [canary, shadow, direct]}
"""


@pytest.fixture(params=["inprocess", "redis"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    c = Client(home=tmp_path / "home")
    yield c
    c.close()


class Loop:
    """The world of a closed-loop test: model, endpoint, monitor, alert rule, the loop's rules, one replica."""

    def __init__(self, client: Client, transport: str, prefix: str, *, fault: bool, policy: bool):
        self.client = client
        self.world = World(client, rows=600)
        client.set_alias("clf", "champion", 1)
        client.ensure_endpoint(ENDPOINT, "models:/clf/1")
        client.create_monitor("m", model="clf/1", window="1h", options=QUICK)
        client.create_alert_rule("drift", "m", "drift.share", "> 0.2", min_samples=50)
        if policy:
            client.create_principal("rita")
            client.grant_role("rita", "reviewer")
            client.add_policy("clf-release", POLICY)
        rules = install_closed_loop(
            client,
            model="clf",
            endpoint=ENDPOINT,
            pipeline="tests.automation.loop_pipeline:retrain",
            dataset="train@1",
            label_column="target",
            params={"base": "train@1", "fault": fault},
            tolerance=0.1,
            deploy_options=CANARY,
        )
        assert {r.name for r in rules} >= {"closed-loop-retrain", "closed-loop-gate", "closed-loop-report"}
        services = client._backend.services  # type: ignore[attr-defined]
        self.runner = AutomationRunner(services, transport, prefix=prefix)
        self.runtime = ServingRuntime(client, [ENDPOINT], replica_id="r1")
        self.app = create_inference_app(self.runtime.start(background=False))
        self.http = TestClient(self.app)
        rng = np.random.default_rng(3)
        self.rows = traffic(rng, 400, shift=3.0).to_dict(orient="records")  # drifted live traffic
        self.sent = 0
        self.statuses: list[int] = []

    def drift(self) -> None:
        """Two hours of logged predictions, the second drifted and labelled, judged by the monitor."""
        self.world.log_hour(0, n=200)
        ids, labels = self.world.log_hour(1, n=200, shift=2.0)
        self.client.record_labels(dict(zip(ids, labels.tolist(), strict=True)))
        run = self.client.run_monitor("m", now=self.world.end_of(1))
        assert len(run.alerts_fired) == 1

    def run(self, until: str, timeout: float = 45.0, approve_as: str | None = None) -> None:
        """Engine rounds, replica steps and live traffic until rule ``until`` has fired."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.runner.run_once()
            if self.client.automation_firings(until):
                return
            if approve_as:
                for v in self.client.list_versions("clf"):
                    if v.stage == "in_review":
                        with acting_as(approve_as):
                            self.client.approve_version("clf", v.version, comment="looks good")
            self.runtime.step()
            endpoint = self.client.get_endpoint(ENDPOINT)
            if endpoint.deployment_id:
                for _ in range(40):
                    row = self.rows[self.sent % len(self.rows)]
                    self.sent += 1
                    response = self.http.post(f"/endpoints/{ENDPOINT}/predict", json={"records": [row]})
                    self.statuses.append(response.status_code)
            time.sleep(0.05)
        firings = [(f.rule, f.action, f.status, f.error) for f in self.client.automation_firings(limit=50)]
        raise AssertionError(f"{until} did not fire; firings: {firings}")

    def close(self) -> None:
        self.runtime.stop()
        self.app.state.shadows.close()
        self.runner.close()

    def outcomes(self) -> dict[str, tuple[str, dict[str, Any] | None, str | None]]:
        return {f.rule: (f.status, f.result, f.error) for f in self.client.automation_firings(limit=100)}


def _loop(client: Client, transport: str, request: pytest.FixtureRequest, **kwargs: Any) -> Loop:
    prefix = request.getfixturevalue("redis_prefix") if transport == "redis" else ""
    loop = Loop(client, transport, prefix, **kwargs)
    request.addfinalizer(loop.close)
    return loop


def test_the_loop_retrains_evaluates_gets_approval_canaries_and_promotes(
    client: Client, transport: str, request: pytest.FixtureRequest
) -> None:
    loop = _loop(client, transport, request, fault=False, policy=True)
    loop.drift()
    loop.run("closed-loop-report", approve_as="rita")

    out = loop.outcomes()
    retrain = out["closed-loop-retrain"]
    assert retrain[0] == "succeeded" and retrain[1] and retrain[1]["status"] == "SUCCEEDED"
    assert retrain[1]["params"]["dataset"].startswith("monitor-m-current@")  # the drifted window's rows
    evaluation = out["closed-loop-evaluate"][1]
    assert evaluation and evaluation["version"] == 2 and evaluation["champion_version"] == 1 and evaluation["passed"]
    gate = out["closed-loop-gate"][1]
    assert gate and gate["approval_required"] is True and gate["policies"]  # the policy asked for a review
    assert "closed-loop-deploy" not in out  # nothing deployed before the approval
    deployed = out["closed-loop-deploy-approved"][1]
    assert deployed and deployed["strategy"] == "canary" and deployed["model"] == "clf/2"
    report = out["closed-loop-report"]
    assert report[0] == "succeeded" and "clf/2" in report[1]["message"] and "promoted" in report[1]["message"]
    assert client.get_deployment(deployed["deployment_id"]).status == "promoted"
    assert client.get_endpoint(ENDPOINT).stable.label == "clf/2"
    assert loop.statuses.count(200) >= 30  # real predictions were routed through the rollout

    actions = [e.action for e in client.read_events(after=0, limit=1000)]
    for step in ("alert.fired", "pipeline_run.finished", "version.registered", "version.evaluated",
                 "version.submitted", "version.approved", "deployment.created", "deployment.promoted",
                 "automation.fired", "automation.action_succeeded"):  # fmt: skip
        assert step in actions, step
    assert "automation.action_failed" not in actions


def test_a_release_failing_on_live_rows_is_rolled_back_by_the_judge(
    client: Client, transport: str, request: pytest.FixtureRequest
) -> None:
    loop = _loop(client, transport, request, fault=True, policy=False)
    loop.drift()
    loop.run("closed-loop-report")

    out = loop.outcomes()
    gate = out["closed-loop-gate"][1]
    assert gate and gate["approval_required"] is False  # no policy: nothing to wait for
    deployed = out["closed-loop-deploy"][1]
    assert deployed and deployed["model"] == "clf/2"
    report = out["closed-loop-report"][1]
    assert report and "rolled_back" in report["message"]
    assert client.get_deployment(deployed["deployment_id"]).status == "rolled_back"
    assert client.get_endpoint(ENDPOINT).stable.label == "clf/1"
    assert 500 in loop.statuses or any(s >= 500 for s in loop.statuses)  # the judge saw real failures
