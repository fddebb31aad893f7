"""The deployment pages in a real browser: watch a canary take real traffic, read the judge's verdicts,
promote it as a deployer; a viewer sees no button and the API refuses them."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from starlette.testclient import TestClient

from shipyard.serving.app import create_inference_app
from shipyard.serving.runtime import ServingRuntime
from tests.deploy import models

X, _ = models.iris()
# Wide margins: the test is about what the page shows, and a shared machine makes latency noisy.
JUDGE = {"min_samples": 30, "error_rate_margin": 0.2, "latency_margin_ms": 50.0, "divergence_threshold": 0.5}


class Replica:
    """A serving replica stepped by hand (one control-loop round per ``step``) with an HTTP client."""

    def __init__(self, client: Any):
        self.runtime = ServingRuntime(client, ["iris"], replica_id="ui-r1")
        self.app = create_inference_app(self.runtime.start(background=False))
        self.http = TestClient(self.app)

    def predict(self, i: int) -> None:
        row = dict(zip(models.COLUMNS, X.iloc[i % len(X)].tolist(), strict=True))
        assert self.http.post("/endpoints/iris/predict", json={"records": [row]}).status_code == 200

    def close(self) -> None:
        self.runtime.stop()
        self.app.state.shadows.close()


@pytest.fixture
def canary(dashboard: Any) -> Iterator[tuple[Any, Replica]]:
    """iris v1 served, v2 going out as a canary (25% then 60%) with a replica taking traffic."""
    client = dashboard.client
    client.register_model(models.good(), "iris", input_example=X.head(3))
    client.register_model(models.good("tree"), "iris", input_example=X.head(3))
    client.ensure_endpoint("iris", "models:/iris/1")
    replica = Replica(client)
    d = client.deploy("iris", "models:/iris/2", "canary", steps=[25, 60], step_seconds=0.5, judge=JUDGE)
    try:
        yield d, replica
    finally:
        replica.close()


def drive_until(client: Any, replica: Replica, deployment_id: str, done: Any, rounds: int = 200) -> Any:
    """Send traffic and step the replica (which ticks the controller) until ``done(deployment)``."""
    sent = 0
    for _ in range(rounds):
        replica.runtime.step()
        d = client.get_deployment(deployment_id)
        if done(d):
            return d
        for _ in range(40):
            replica.predict(sent)
            sent += 1
        time.sleep(0.05)
    raise AssertionError(f"the canary did not get there: {client.get_deployment(deployment_id).phase}")


def html(dashboard: Any, token: str, path: str) -> httpx.Response:
    return httpx.get(dashboard.url + path, headers={"authorization": "Bearer " + token, "accept": "text/html"})


def test_watch_a_canary_then_promote_it_as_a_deployer(dashboard: Any, canary: tuple[Any, Replica]) -> None:
    client = dashboard.client
    d, replica = canary
    # The judge passes step 1 on real traffic and moves the canary to 60%; no more ticks after that, so the
    # rollout waits at step 2 while we look at it (only replicas tick the controller).
    d = drive_until(client, replica, d.id, lambda d: d.step == 1 or d.status != "running" and d.status != "loading")
    assert d.status == "running" and d.step == 1, d.phase
    passed = [j for j in d.judgements if j.verdict == "pass"]
    assert [j.action for j in passed] == ["advance"]

    viewer = dashboard.token("vera", "viewer")
    deployer = dashboard.token("dora", "deployer")
    scoped = dashboard.token("mo", "deployer", model="iris")

    # The list: what the endpoint serves, its split and the active canary.
    listing = html(dashboard, viewer, "/deployments")
    assert listing.status_code == 200
    row = re.search(r'<tr data-endpoint="iris">.*?</tr>', listing.text, re.S).group(0)
    assert "iris/1" in row and "canary" in row and "running" in row and "60%" in row and "40%" in row
    assert html(dashboard, viewer, "/deployments/nope").status_code == 404

    # A viewer reads everything but is offered no action, and the API refuses them.
    page = dashboard.login(viewer, "/deployments/iris")
    expect(page.locator("#deployment-status")).to_have_text("running")
    assert page.locator("#deploy-promote").count() == 0 and page.locator("#deploy-actions").count() == 0
    assert "data-action=" not in html(dashboard, viewer, "/deployments/iris").text  # no action at all
    refused = httpx.post(dashboard.url + "/api/v1/endpoints/iris/promote", json={},
                         headers={"authorization": "Bearer " + viewer})
    assert refused.status_code == 403
    # Promote is a global-scope operation: a deployer on the model only is refused by the server, so the page
    # does not offer the button either.
    assert 'id="deploy-promote"' not in html(dashboard, scoped, "/deployments/iris").text
    assert httpx.post(dashboard.url + "/api/v1/endpoints/iris/promote", json={},
                      headers={"authorization": "Bearer " + scoped}).status_code == 403
    assert client.get_deployment(d.id).status == "running"

    # A deployer sees the canary in progress: steps, the traffic split, the judge's verdicts with evidence.
    # (The page reloads itself every few seconds while the rollout runs: expect() retries across reloads.)
    page = dashboard.login(deployer, "/deployments/iris")
    expect(page.locator("#deployment-page")).to_have_attribute("data-refresh", "5")
    expect(page.locator("[data-testid=step-1]")).to_have_attribute("data-state", "done")
    expect(page.locator("[data-testid=step-2]")).to_have_attribute("data-state", "current")
    expect(page.locator("#traffic-split")).to_contain_text("60%")
    advance = page.locator("[data-testid=judgement][data-judgement-action=advance]")
    expect(advance).to_have_count(1)
    expect(advance).to_have_attribute("data-verdict", "pass")
    error_rate = advance.locator("[data-testid=check-error_rate]")
    expect(error_rate.locator(".badge")).to_have_text("pass")
    evidence = passed[0].checks[0]
    expect(error_rate.locator(".p-value")).to_have_text(f"{evidence.p_value:.3g}")  # as the service stored it
    expect(advance.locator("[data-testid=check-latency]")).to_have_count(1)
    expect(page.locator("#split-chart .main-svg").first).to_be_attached()  # plotly drew the split
    expect(page.locator('#replicas tr[data-replica="ui-r1"]')).to_have_count(1)  # the replica that took the traffic
    expect(page.locator("#deploy-abort")).to_be_visible()
    expect(page.locator("#deploy-rollback")).to_be_visible()

    # Promote: confirm, give a reason, and the store says promoted.
    page.on("dialog", lambda dialog: dialog.accept("verdicts look good"))
    page.click("#deploy-promote")
    expect(page.locator("#deployment-status")).to_have_text("promoted", timeout=15_000)  # after the reload
    promoted = client.get_deployment(d.id)
    assert promoted.status == "promoted" and promoted.outcome == "verdicts look good"
    assert client.get_endpoint("iris").stable.label == "iris/2"
    expect(page.locator("#endpoint-stable")).to_contain_text("iris/2")
    expect(page.locator("#deployment-outcome")).to_have_text("verdicts look good")
    assert page.locator("#deploy-promote").count() == 0  # nothing left to promote
    assert page.locator("#deployment-page").get_attribute("data-refresh") is None
    history = page.locator("#history tbody tr").all_inner_texts()
    assert "promoted" in history[0] and "verdicts look good" in history[0]
    last = client.read_journal(entity_type="deployment", entity_id=d.id)[-1]
    assert (last.action, last.actor) == ("deployment.promoted", "dora")  # the deployer's own session acted


def test_watch_the_judge_promote_a_canary_without_a_click(dashboard: Any, canary: tuple[Any, Replica]) -> None:
    """The page left open on a running canary follows it (it reloads itself) until the judge, fed real
    traffic, promotes the candidate on its own."""
    client = dashboard.client
    d, replica = canary
    viewer = dashboard.token("vera", "viewer")
    page = dashboard.login(viewer, "/deployments/iris")
    expect(page.locator("#deployment-status")).to_have_text(re.compile("loading|running"))
    expect(page.locator("#deployment-page")).to_have_attribute("data-refresh", "5")
    promoted = drive_until(client, replica, d.id, lambda d: d.status not in ("loading", "running"))
    assert promoted.status == "promoted", promoted.outcome
    # no navigation by the test: the page's own refresh brings the verdicts and the new stable version
    expect(page.locator("#deployment-status")).to_have_text("promoted", timeout=20_000)
    expect(page.locator("#endpoint-stable")).to_contain_text("iris/2")
    expect(page.locator("[data-testid=judgement][data-judgement-action=promote]")).to_have_count(1)
    assert page.locator("#deployment-page").get_attribute("data-refresh") is None  # nothing left to follow


def _observations(deployment_id: str, variant: str, n: int, shift: float, seed: int, **extra: Any) -> dict[str, Any]:
    rng = random.Random(seed)
    return {
        "deployment_id": deployment_id, "step": 0, "variant": variant, "requests": n, "errors": 0,
        "latencies": [10.0 + shift + rng.random() for _ in range(n)],
        "predictions": [rng.choice([0, 1, 2]) for _ in range(n)], **extra,
    }  # fmt: skip


def test_shadow_and_ab_evidence_is_shown_as_the_service_stores_it(dashboard: Any) -> None:
    """Replica observations recorded straight into the store (no traffic): the pages show the shadow
    comparison, the A/B test's sequential result, and 404 for deployments of another endpoint."""
    client = dashboard.client
    client.register_model(models.good(), "iris", input_example=X.head(3))
    client.register_model(models.good("tree"), "iris", input_example=X.head(3))
    started = {}
    for endpoint, strategy in (("iris", "shadow"), ("iris-ab", "ab")):
        client.ensure_endpoint(endpoint, "models:/iris/1")
        d = client.deploy(endpoint, "models:/iris/2", strategy, step_seconds=0.0, judge=JUDGE)
        ready = {d.baseline.digest: "ready", d.candidate.digest: "ready"}
        client.sync_replica("fake-replica", endpoint, versions=ready, serving=list(ready))
        assert client.advance_deployment(endpoint).status == "running"
        started[strategy] = d
    shadow, ab = started["shadow"], started["ab"]
    client.record_deployment_samples("fake-replica", [
        _observations(shadow.id, "baseline", 200, 0.0, 1),
        _observations(shadow.id, "shadow", 200, 3.0, 2, compared=200, agreed=190, abs_diff=10.0),
        _observations(ab.id, "baseline", 100, 0.0, 3),
        _observations(ab.id, "candidate", 100, 0.0, 4),
    ], routes=[{"prediction_id": f"p{i}", "deployment_id": ab.id, "variant": ("baseline", "candidate")[i % 2]}
               for i in range(200)])  # fmt: skip
    client.record_feedback([{"prediction_id": f"p{i}", "value": float(i % 2) * 0.5 + 0.1} for i in range(200)])
    time.sleep(0.01)
    client.advance_deployment("iris")
    client.advance_deployment("iris-ab")

    status = client.deployment_status("iris")
    page = html(dashboard, dashboard.admin_token, "/deployments/iris").text
    assert 'id="shadow"' in page and 'id="shadow-checks"' in page
    assert f"{100 * status.shadow.agreement_rate:.1f}%" in page  # 95.0%
    assert "gets a copy of 100% of requests" in page  # the shadow answers nobody
    assert 'data-variant="shadow"' in page and "+3." in page  # its latency delta against the baseline
    page = html(dashboard, dashboard.admin_token, "/deployments/iris-ab").text
    result = client.get_deployment(ab.id).judgements[-1].sequential
    assert 'id="ab-result"' in page and f"verdict-{result.decision}" in page
    assert "reward: mean" in page  # the feedback each variant got
    assert html(dashboard, dashboard.admin_token, f"/deployments/iris?deployment={ab.id}").status_code == 404
    assert html(dashboard, dashboard.admin_token, "/deployments/iris?deployment=nope").status_code == 404
    listing = html(dashboard, dashboard.admin_token, "/deployments").text
    row = re.search(r'<tr data-endpoint="iris">.*?</tr>', listing, re.S).group(0)
    assert "shadow" in row and "running" in row and "gets a copy" in row
