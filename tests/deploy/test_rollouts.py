"""Every rollout strategy end to end in one process: store, controller, replica runtimes, router, app.

Replicas are :class:`ServingRuntime` objects stepped by hand (``rt.step()`` = one round of the
control loop), so each test is deterministic about when the store is read and written.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from shipyard import Client
from shipyard.serving.app import create_inference_app
from shipyard.serving.router import sticky_point
from shipyard.serving.runtime import ServingRuntime
from tests.deploy import models

X, Y = models.iris()
# Wide latency margin: these tests check the mechanics, and a shared CI machine makes latency noisy.
JUDGE = {"min_samples": 30, "error_rate_margin": 0.05, "latency_margin_ms": 50.0, "divergence_threshold": 0.5}


def record(i: int) -> dict[str, Any]:
    return {"records": [dict(zip(models.COLUMNS, X.iloc[i % len(X)].tolist(), strict=True))]}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with five versions of "iris" and an endpoint serving v1, registered once per module."""
    home = tmp_path_factory.mktemp("deploy") / "home"
    client = Client(home=home)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # models that raise have no inferable output signature
        client.register_model(models.good(), "iris", input_example=X.head(3))  # v1
        client.register_model(models.good("tree"), "iris", input_example=X.head(3))  # v2
        client.register_model(models.fitted(models.Flaky), "iris", input_example=X.head(3))  # v3
        client.register_model(models.fitted(models.Faulty), "iris", input_example=X.head(3))  # v4
        client.register_model(models.fitted(models.Constant), "iris", input_example=X.head(3))  # v5
    client.ensure_endpoint("iris", "models:/iris/1")
    client.close()
    return home


@pytest.fixture
def sdk(template: Path, tmp_path: Path) -> Iterator[Client]:
    shutil.copytree(template, tmp_path / "home")
    client = Client(home=tmp_path / "home")
    yield client
    client.close()


class Replica:
    """A runtime plus an HTTP client on its app."""

    def __init__(self, client: Client, replica_id: str | None = None):
        self.runtime = ServingRuntime(client, ["iris"], replica_id=replica_id)
        self.app = create_inference_app(self.runtime.start(background=False))
        self.http = TestClient(self.app)

    def predict(self, i: int = 0, **kwargs: Any) -> Any:
        return self.http.post("/endpoints/iris/predict", json=record(i), **kwargs)

    def settle(self, timeout: float = 20.0) -> None:
        """Step until this replica runs the endpoint's current revision (loads happen in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            self.runtime.step()
            plan = self.runtime._plans["iris"]
            if self.runtime._applied.get("iris") == plan.revision:
                return
            assert time.monotonic() < deadline, f"replica did not apply revision {plan.revision}"
            time.sleep(0.02)

    def close(self) -> None:
        self.runtime.stop()
        self.app.state.shadows.close()


@pytest.fixture
def replica(sdk: Client) -> Iterator[Replica]:
    r = Replica(sdk, "r1")
    yield r
    r.close()


def drive(
    sdk: Client,
    replicas: list[Replica],
    deployment_id: str,
    *,
    per_round: int = 60,
    rounds: int = 200,
    on_response: Callable[[Any], None] | None = None,
    headers: Callable[[int], dict[str, str]] | None = None,
) -> Any:
    """Send traffic and step every replica until the rollout finishes."""
    sent = 0
    for _ in range(rounds):
        for r in replicas:
            r.runtime.step()
        d = sdk.get_deployment(deployment_id)
        if d.status not in ("loading", "running"):
            return d
        for r in replicas:
            for _ in range(per_round):
                response = r.predict(sent, headers=headers(sent) if headers else None)
                sent += 1
                if on_response:
                    on_response(response)
        time.sleep(0.05)
    raise AssertionError(f"rollout did not finish: {sdk.get_deployment(deployment_id).phase}")


# ----------------------------------------------------------------------------------------------
# canary


def test_canary_of_a_good_version_is_promoted_step_by_step(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/2", "canary", steps=[25, 60], step_seconds=0.2, judge=JUDGE)
    assert d.status == "loading" and d.baseline.label == "iris/1" and d.candidate.label == "iris/2"
    answered: Counter[str] = Counter()
    d = drive(sdk, [replica], d.id, on_response=lambda r: answered.update([r.headers["x-model-version"]]))
    assert d.status == "promoted", d.outcome
    assert [j.action for j in d.judgements if j.verdict == "pass"] == ["advance", "promote"]
    passed = d.judgements[-1]
    assert {c.name for c in passed.checks} >= {"error_rate", "latency", "prediction_divergence"}
    assert all(c.p_value is not None and c.ci_low is not None for c in passed.checks)
    assert answered["iris/1"] > 0 and answered["iris/2"] > 0  # both answered during the canary
    replica.runtime.step()
    assert sdk.get_endpoint("iris").stable.label == "iris/2"
    assert replica.predict().headers["x-model-version"] == "iris/2"
    assert [h.strategy for h in sdk.deployment_history("iris")] == ["canary", "direct"]


def test_canary_of_a_failing_version_is_rolled_back_with_evidence(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/3", "canary", steps=[25], step_seconds=0.2, judge=JUDGE)
    statuses: Counter[tuple[str, int]] = Counter()
    d = drive(
        sdk, [replica], d.id, on_response=lambda r: statuses.update([(r.headers["x-model-version"], r.status_code)])
    )
    assert d.status == "rolled_back" and d.outcome.startswith("judge failed")
    failing = [c for c in d.judgements[-1].checks if c.verdict == "fail"]
    assert failing[0].name == "error_rate" and failing[0].p_value < 0.01 and failing[0].ci_low > 0
    # only the candidate ever failed, and a failed request is a 500 with the model's message
    assert statuses[("iris/1", 500)] == 0 and statuses[("iris/3", 500)] > 0
    replica.runtime.step()
    responses = [replica.predict(i) for i in range(50)]
    assert {(r.status_code, r.headers["x-model-version"]) for r in responses} == {(200, "iris/1")}


def test_too_little_traffic_extends_the_step_instead_of_deciding(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/3", "canary", steps=[10], step_seconds=0.05, judge={"min_samples": 500})
    for _ in range(8):
        replica.runtime.step()
        for i in range(10):
            replica.predict(i)
        time.sleep(0.06)
    d = sdk.get_deployment(d.id)
    assert d.status == "running" and d.judgements
    assert {j.verdict for j in d.judgements} == {"inconclusive"} and {j.action for j in d.judgements} == {"extend"}
    assert "more" in d.judgements[-1].summary  # it says how much more data it needs


def test_a_candidate_that_fails_its_smoke_test_never_gets_traffic(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/4", "canary", steps=[50], step_seconds=0.1)
    seen: Counter[str] = Counter()
    d = drive(sdk, [replica], d.id, on_response=lambda r: seen.update([r.headers["x-model-version"]]))
    assert d.status == "failed" and "smoke test" in d.outcome and "feature store unreachable" in d.outcome
    assert set(seen) <= {"iris/1"}
    assert sdk.get_endpoint("iris").stable.label == "iris/1"


def test_a_restarted_server_resumes_the_rollout_where_it_was(sdk: Client) -> None:
    first = Replica(sdk, "before-crash")
    d = sdk.deploy("iris", "models:/iris/2", "canary", steps=[20, 60], step_seconds=0.2, judge=JUDGE)
    for _ in range(60):
        first.runtime.step()
        if sdk.get_deployment(d.id).step == 1:
            break
        for i in range(60):
            first.predict(i)
        time.sleep(0.05)
    assert sdk.get_deployment(d.id).step == 1
    first.runtime._stop.set()  # "killed": no goodbye, no final flush
    second = Replica(sdk, "after-restart")  # loads the plan from the store: 40/60 between v1 and v2
    try:
        assert {v.name: v.weight for v in second.runtime._endpoints["iris"].router.variants} == {
            "baseline": pytest.approx(0.4),
            "candidate": pytest.approx(0.6),
        }
        d = drive(sdk, [second], d.id)
        assert d.status == "promoted"
    finally:
        second.close()


# ----------------------------------------------------------------------------------------------
# shadow


def test_shadow_answers_are_compared_and_logged_never_returned(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/5", "shadow", step_seconds=0.1, judge=JUDGE)
    for _ in range(30):
        replica.runtime.step()
        if sdk.get_deployment(d.id).status == "running":
            break
    replica.runtime.step()
    responses = [replica.predict(i) for i in range(150)]
    assert replica.app.state.shadows.drain()
    assert {r.headers["x-model-version"] for r in responses} == {"iris/1"}  # the primary always answers
    listing = replica.http.get("/endpoints").json()
    assert listing["endpoints"][0]["shadow"] == {"model": "iris/5", "sample": 1.0}
    assert listing["endpoints"][0]["versions"][0]["variant"] == "baseline"
    assert listing["shadow_queue"]["done"] == 150 and listing["shadow_queue"]["dropped"] == 0
    replica.runtime.step()
    status = sdk.deployment_status("iris")
    assert status.deployment.status == "running" and status.shadow is not None
    assert status.shadow.compared == 150
    truth = Counter(int(p) for p in models.good().predict(X.iloc[:150]))
    assert status.shadow.agreement_rate == pytest.approx(truth[2] / 150)  # Constant always says 2
    assert status.shadow.judgement.verdict == "fail"  # its predictions diverge
    assert any(c.name == "prediction_divergence" and c.verdict == "fail" for c in status.shadow.judgement.checks)
    # a shadow waits for a person: promote it
    d = sdk.promote_deployment("iris", "reviewed the shadow report")
    assert d.status == "promoted"
    replica.runtime.step()
    assert replica.predict().headers["x-model-version"] == "iris/5"


# ----------------------------------------------------------------------------------------------
# blue-green


def test_blue_green_switches_all_at_once_and_rolls_back_instantly(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/2", "bluegreen", hold_seconds=60)
    replica.runtime.step()  # green loads and passes its smoke test
    for _ in range(50):
        replica.runtime.step()
        if sdk.get_deployment(d.id).status == "running":
            break
    replica.runtime.step()
    assert {replica.predict(i).headers["x-model-version"] for i in range(20)} == {"iris/2"}
    assert replica.runtime._endpoints["iris"].router.variants[0].served.label == "iris/2"
    assert "sha256" in str(replica.runtime._loaded)  # blue stays loaded ...
    blue = sdk.get_endpoint("iris").stable.digest
    assert blue in replica.runtime._loaded
    t0 = time.perf_counter()
    sdk.rollback_deployment("iris", "green misbehaves")
    replica.runtime.step()  # ... so switching back needs no load
    assert time.perf_counter() - t0 < 1.0
    assert {replica.predict(i).headers["x-model-version"] for i in range(20)} == {"iris/1"}


def test_blue_green_is_promoted_when_the_hold_elapses(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/2", "bluegreen", hold_seconds=0.2)
    d = drive(sdk, [replica], d.id, per_round=5)
    assert d.status == "promoted" and "hold elapsed" in d.outcome


def test_a_manual_blue_green_keeps_both_slots_until_an_operator_decides(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/2", "bluegreen", hold_seconds=0.05, auto=False)
    for _ in range(40):
        replica.runtime.step()
        if sdk.get_deployment(d.id).status == "running":
            break
    time.sleep(0.2)  # well past the hold
    for _ in range(5):
        replica.runtime.step()
    assert sdk.get_deployment(d.id).status == "running"  # still switched, blue still warm
    assert sdk.promote_deployment("iris").status == "promoted"


# ----------------------------------------------------------------------------------------------
# A/B


def test_ab_assignment_is_sticky_across_replicas_and_restarts(sdk: Client) -> None:
    d = sdk.deploy("iris", "models:/iris/2", "ab", key="x-user", step_seconds=30)
    a, b = Replica(sdk, "a"), Replica(sdk, "b")
    try:
        for _ in range(30):
            a.runtime.step()
            b.runtime.step()
            if sdk.get_deployment(d.id).status == "running":
                break
        a.runtime.step()
        b.runtime.step()
        users = [f"user-{i}" for i in range(120)]
        first = {u: a.predict(i, headers={"x-user": u}).headers["x-model-version"] for i, u in enumerate(users)}
        again = {u: b.predict(i, headers={"x-user": u}).headers["x-model-version"] for i, u in enumerate(users)}
        assert first == again
        c = Replica(sdk, "c")  # a restarted worker
        try:
            assert {u: c.predict(0, headers={"x-user": u}).headers["x-model-version"] for u in users} == first
        finally:
            c.close()
        expected = {u: "iris/2" if sticky_point(d.id, u) >= 0.5 else "iris/1" for u in users}
        assert first == expected
        assert 35 < Counter(first.values())["iris/2"] < 85  # about half
    finally:
        a.close()
        b.close()


def test_ab_test_declares_the_better_variant_from_feedback(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy(
        "iris", "models:/iris/2", "ab", key="x-user", step_seconds=0.05, max_samples=5000, judge={"min_samples": 10_000}
    )
    rng = __import__("random").Random(7)

    def reward(response: Any) -> None:
        # the candidate converts 30% of the time, the baseline 10%
        p = 0.3 if response.headers["x-model-version"] == "iris/2" else 0.1
        sdk.record_feedback({response.headers["x-prediction-id"]: float(rng.random() < p)})

    d = drive(sdk, [replica], d.id, per_round=40, rounds=120, on_response=reward, headers=lambda i: {"x-user": f"u{i}"})
    assert d.status == "promoted" and d.outcome.startswith("A/B winner: candidate")
    last = d.judgements[-1]
    assert last.sequential is not None and last.sequential.decision == "candidate_better"
    assert last.sequential.p_value < 0.05 and last.sequential.ci_low > 0


# ----------------------------------------------------------------------------------------------
# rolling


def test_rolling_update_replaces_replicas_batch_by_batch(sdk: Client) -> None:
    replicas = [Replica(sdk, f"r{i}") for i in range(3)]
    try:
        for r in replicas:
            r.runtime.step()
        d = sdk.deploy("iris", "models:/iris/2", "rolling", max_unavailable=1)
        batches = []
        for _ in range(40):
            for r in replicas:
                r.runtime.step()
            current = sdk.get_deployment(d.id)
            if current.replicas.get("batch") and current.replicas["batch"] not in batches:
                batches.append(current.replicas["batch"])
                # while a batch is switching, the others still answer with the old version
                serving = {r.runtime.replica_id: r.predict().headers["x-model-version"] for r in replicas}
                done = set(current.replicas.get("done", []))
                assert all(
                    serving[rid] == "iris/1" for rid in serving if rid not in done | set(current.replicas["batch"])
                )
            if current.status == "promoted":
                break
        assert batches == [["r0"], ["r1"], ["r2"]]
        assert sdk.get_deployment(d.id).status == "promoted"
        for r in replicas:
            r.runtime.step()
        assert {r.predict().headers["x-model-version"] for r in replicas} == {"iris/2"}
    finally:
        for r in replicas:
            r.close()


def test_rolling_update_restores_every_replica_when_one_fails_readiness(sdk: Client) -> None:
    replicas = [Replica(sdk, f"r{i}") for i in range(3)]
    broken = replicas[1].runtime

    def refuse(ref: Any, plan: Any) -> None:  # this replica's host cannot load the new version
        broken._states[ref.digest] = "failed: out of memory while loading"

    try:
        for r in replicas:
            r.runtime.step()
        broken._load_now = refuse  # type: ignore[method-assign]
        d = sdk.deploy("iris", "models:/iris/2", "rolling", max_unavailable=1)
        for _ in range(40):
            for r in replicas:
                r.runtime.step()
            if sdk.get_deployment(d.id).status != "running":
                break
        d = sdk.get_deployment(d.id)
        assert d.status == "rolled_back" and "r1 failed its readiness check: out of memory" in d.outcome
        for r in replicas:
            r.runtime.step()
        assert {r.predict().headers["x-model-version"] for r in replicas} == {"iris/1"}  # r0 switched back
    finally:
        for r in replicas:
            r.close()


# ----------------------------------------------------------------------------------------------
# operator verbs


def test_abort_keeps_the_baseline_and_rollback_undoes_a_promotion(sdk: Client, replica: Replica) -> None:
    d = sdk.deploy("iris", "models:/iris/2", "canary", steps=[50], step_seconds=30)
    assert sdk.abort_deployment("iris", "wrong ticket").status == "aborted"
    assert sdk.get_endpoint("iris").stable.label == "iris/1"
    d = sdk.deploy("iris", "models:/iris/2", "direct")
    assert d.status == "loading" and sdk.get_endpoint("iris").stable.label == "iris/1"  # loads before it switches
    d = drive(sdk, [replica], d.id, per_round=1)
    assert d.status == "promoted" and sdk.get_endpoint("iris").stable.label == "iris/2"
    replica.settle()
    assert replica.predict().headers["x-model-version"] == "iris/2"
    undone = sdk.rollback_deployment("iris", "regression found later")
    assert undone.strategy == "direct" and undone.candidate.label == "iris/1"
    replica.settle()
    assert replica.predict().headers["x-model-version"] == "iris/1"


def test_racing_replicas_create_an_endpoint_once(tmp_path: Path, template: Path) -> None:
    shutil.copytree(template, tmp_path / "home")
    clients = [Client(home=tmp_path / "home") for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    results: list[Any] = []

    def ensure(c: Client) -> None:
        barrier.wait()
        results.append(c.ensure_endpoint("fresh", "models:/iris/2"))

    threads = [threading.Thread(target=ensure, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert len(results) == 6 and {e.stable.label for e in results} == {"iris/2"}
        assert [d.strategy for d in clients[0].deployment_history("fresh")] == ["direct"]
    finally:
        for c in clients:
            c.close()


def test_repeated_looks_at_one_step_spend_alpha_so_the_total_stays_within_it(sdk: Client, replica: Replica) -> None:
    # a 0.01 pp margin keeps the error-rate check inconclusive, so the step is judged again and again
    judge = {"min_samples": 30, "error_rate_margin": 0.0001, "latency_margin_ms": 50.0}
    d = sdk.deploy("iris", "models:/iris/2", "canary", steps=[50], step_seconds=0.05, judge=judge)
    for _ in range(60):
        replica.runtime.step()
        for i in range(20):
            replica.predict(i)
        judged = sdk.get_deployment(d.id).judgements
        if sum(any("more_samples_needed" not in c.details for c in j.checks) for j in judged) >= 4:
            break
        time.sleep(0.06)
    judgements = sdk.get_deployment(d.id).judgements
    assert judgements and {j.verdict for j in judgements} == {"inconclusive"}
    looks = 0
    for j in judgements:
        has_data = any("more_samples_needed" not in c.details for c in j.checks)
        looks += has_data
        assert j.alpha == pytest.approx(0.025 * 6 / (math.pi**2 * (looks + (not has_data)) ** 2))
    assert looks >= 4
    assert sum(0.025 * 6 / (math.pi**2 * k**2) for k in range(1, 10_000)) < 0.025
