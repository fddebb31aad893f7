"""Rollouts end to end in each of the four ways Shipyard runs: embedded/remote x SQLite/PostgreSQL.

The serving replica (``ServingRuntime``) uses the same client as the operator, so in remote mode it
heartbeats, reports its observations and ticks the controller over HTTP. ``rt.step()`` is one round of
its control loop (flush, sync, hot swap, tick); requests go through the inference app in-process.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from shipyard.core.errors import Conflict, InvalidInput, NotFound
from shipyard.serving.app import create_inference_app
from shipyard.serving.runtime import ServingRuntime
from tests.deploy import models

# Small samples and short steps so a rollout takes a few seconds; margins wide enough that a good
# candidate passes quickly and a model failing on ~40% of the traffic fails at once.
JUDGE = {"min_samples": 20, "error_rate_margin": 0.15, "latency_margin_ms": 50.0, "divergence_threshold": 0.5}


def _rows() -> list[dict[str, Any]]:
    x, _ = models.iris()
    rows = [dict(zip(models.COLUMNS, map(float, r), strict=True)) for r in x.itertuples(index=False)]
    # interleave so every window of requests mixes wide and narrow sepals (Flaky fails on sepal_width < 3)
    return [rows[(i * 37) % len(rows)] for i in range(len(rows))]


ROWS = _rows()


class Rig:
    """An endpoint ``iris`` serving v1, one replica of it and an inference app in front."""

    def __init__(self, client: Any, candidate: Any):
        self.c = client
        x, _ = models.iris()
        client.register_model(models.good(), "iris", input_example=x.head(3))  # v1
        client.register_model(candidate, "iris", input_example=x.head(3))  # v2
        client.ensure_endpoint("iris", "models:/iris/1")
        self.rt = ServingRuntime(client, ["iris"], poll_interval=0.1)
        self.api = TestClient(create_inference_app(self.rt.start(background=False)))
        self.sent = 0

    def send(self, n: int) -> list[Any]:
        responses = []
        for _ in range(n):
            row = ROWS[self.sent % len(ROWS)]
            self.sent += 1
            responses.append(self.api.post("/endpoints/iris/predict", json={"records": [row]}))
        return responses

    def drive(self, deployment_id: str, per_round: int = 60, timeout: float = 15.0) -> Any:
        """Control-loop rounds with traffic in between, until the rollout finishes."""
        deadline = time.monotonic() + timeout
        while True:
            self.rt.step()
            d = self.c.get_deployment(deployment_id)
            if d.status not in ("loading", "running"):
                return d
            assert time.monotonic() < deadline, f"rollout still {d.status}: {d.phase}"
            self.send(per_round)
            time.sleep(0.05)

    def close(self) -> None:
        self.api.close()
        self.rt.stop()


@pytest.fixture
def rig_factory(client: Any):
    rigs: list[Rig] = []

    def make(candidate: Any) -> Rig:
        rig = Rig(client, candidate)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


def _canary(rig: Rig, **options: Any) -> Any:
    opts = {"steps": [25, 50], "step_seconds": 0.2, "judge": JUDGE, **options}
    return rig.c.deploy("iris", "models:/iris/2", "canary", **opts)


def test_good_canary_is_promoted_end_to_end(client: Any, rig_factory: Any) -> None:
    rig = rig_factory(models.good("tree"))
    d = _canary(rig)
    assert (d.status, d.strategy, d.baseline.label, d.candidate.label) == ("loading", "canary", "iris/1", "iris/2")
    assert client.get_endpoint("iris").deployment_id == d.id

    d = rig.drive(d.id)
    assert d.status == "promoted", d.outcome
    assert d.outcome == "all 2 canary steps passed the judge"
    assert [j.action for j in d.judgements if j.verdict == "pass"] == ["advance", "promote"]
    endpoint = client.get_endpoint("iris")
    assert endpoint.stable.label == "iris/2" and endpoint.deployment_id is None

    # the replica swaps to the new stable version on its next round
    rig.rt.step()
    assert {r.headers["X-Model-Version"] for r in rig.send(10)} == {"iris/2"}

    history = client.deployment_history("iris")
    assert [(h.strategy, h.status) for h in history] == [("canary", "promoted"), ("direct", "promoted")]
    assert history[1].candidate.label == "iris/1"
    assert history[0].id == d.id
    judged = history[0].judgements
    assert judged and all(j.checks for j in judged)
    final = judged[-1]
    assert (final.verdict, final.action, final.step, final.weight) == ("pass", "promote", 1, 0.5)
    names = {c.name for c in final.checks}
    assert {"error_rate", "latency", "prediction_divergence"} <= names
    for check in final.checks:
        assert check.verdict == "pass"
        assert check.n_baseline >= JUDGE["min_samples"] and check.n_candidate >= JUDGE["min_samples"]
        assert check.p_value is not None or (check.ci_low is not None and check.ci_high is not None), check
    assert any(c.p_value is not None for c in final.checks)
    assert any(c.ci_low is not None and c.ci_low <= c.ci_high for c in final.checks)


def test_flaky_canary_is_rolled_back_automatically(client: Any, rig_factory: Any) -> None:
    rig = rig_factory(models.fitted(models.Flaky))
    d = _canary(rig, steps=[50])
    d = rig.drive(d.id)
    assert d.status == "rolled_back", (d.status, d.outcome)
    assert d.outcome.startswith("judge failed"), d.outcome
    assert d.judgements[-1].verdict == "fail" and d.judgements[-1].action == "rollback"
    error_check = next(c for c in d.judgements[-1].checks if c.name == "error_rate")
    assert error_check.verdict == "fail"

    endpoint = client.get_endpoint("iris")
    assert endpoint.stable.label == "iris/1" and endpoint.deployment_id is None
    rig.rt.step()  # the replica drops the candidate
    responses = rig.send(40)
    assert {r.status_code for r in responses} == {200}
    assert {r.headers["X-Model-Version"] for r in responses} == {"iris/1"}
    history = client.deployment_history("iris")
    assert [(h.strategy, h.status) for h in history] == [("canary", "rolled_back"), ("direct", "promoted")]


def test_bad_input_gives_clear_errors(client: Any) -> None:
    x, _ = models.iris()
    client.register_model(models.good(), "iris", input_example=x.head(3))
    client.register_model(models.good("tree"), "iris", input_example=x.head(3))
    client.ensure_endpoint("iris", "models:/iris/1")

    with pytest.raises(InvalidInput, match="unknown strategy 'blue'") as exc:
        client.deploy("iris", "models:/iris/2", "blue")
    assert exc.value.field == "strategy"

    for steps, words in (
        ([50, 10], "increase"),
        ([0, 50], "(0, 100]"),
        ([], "at least one step"),
        ([100], "below 100"),
    ):
        with pytest.raises(InvalidInput, match="steps") as exc:
            client.deploy("iris", "models:/iris/2", "canary", steps=steps)
        assert exc.value.field == "steps"
        assert words in exc.value.message, exc.value.message

    with pytest.raises(InvalidInput, match="'split' does not apply to a canary") as exc:
        client.deploy("iris", "models:/iris/2", "canary", split=30)
    assert exc.value.field == "split"

    with pytest.raises(Conflict, match="no deployment in progress"):
        client.promote_deployment("iris")
    with pytest.raises(Conflict, match="no deployment in progress"):
        client.abort_deployment("iris")
    with pytest.raises(Conflict, match="no rollout to roll back"):
        client.rollback_deployment("iris")

    with pytest.raises(NotFound, match="no endpoint named 'nope'") as exc:
        client.promote_deployment("nope")
    assert exc.value.field == "endpoint"
    with pytest.raises(NotFound, match="nope"):
        client.deployment_status("nope")
    with pytest.raises(NotFound, match="nope"):
        client.deployment_history("nope")

    with pytest.raises(NotFound):
        client.deploy("iris", "models:/iris/99", "canary")
    with pytest.raises(NotFound):
        client.deploy("iris", "models:/no_such_model/1", "canary")

    with pytest.raises(Conflict, match="already serves iris/1") as exc:
        client.deploy("iris", "models:/iris/1", "canary")
    assert exc.value.field == "model"

    active = client.deploy("iris", "models:/iris/2", "canary", steps=[10])
    with pytest.raises(Conflict, match="already has a deployment in progress") as exc:
        client.deploy("iris", "models:/iris/2", "canary")
    assert active.id in exc.value.message
    # still loading (no replica has smoke-tested the candidate): it cannot be promoted yet
    with pytest.raises(Conflict, match="still loading"):
        client.promote_deployment("iris")
    aborted = client.abort_deployment("iris", reason="test")
    assert (aborted.id, aborted.status, aborted.outcome) == (active.id, "aborted", "test")
    assert client.get_endpoint("iris").stable.label == "iris/1"
    # nothing was left behind by the refused calls
    assert [h.status for h in client.deployment_history("iris")] == ["aborted", "promoted"]


def test_journal_records_the_rollout(client: Any, rig_factory: Any) -> None:
    rig = rig_factory(models.good("tree"))
    start = client.last_journal_seq()
    d = _canary(rig, steps=[50])
    d = rig.drive(d.id)
    assert d.status == "promoted", d.outcome

    entries = client.read_journal(after=start, limit=1000, entity_type="deployment", entity_id=d.id)
    actions = [e.action for e in entries]
    assert actions[0] == "deployment.created" and actions[-1] == "deployment.promoted", actions
    assert actions[1] == "deployment.started", actions
    assert set(actions[2:-1]) == {"deployment.judged"}, actions
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)

    created = entries[0].payload
    assert (created["endpoint"], created["strategy"], created["baseline"], created["candidate"]) == (
        "iris",
        "canary",
        "iris/1",
        "iris/2",
    )
    assert created["options"]["steps"] == [50.0]
    judged = [e.payload for e in entries if e.action == "deployment.judged"]
    assert judged[-1]["judgement"]["verdict"] == "pass" and judged[-1]["judgement"]["action"] == "promote"
    assert judged[-1]["judgement"]["checks"]
    assert entries[-1].payload["outcome"] == d.outcome
    # filtering by action gives the same entries
    only = client.read_journal(after=start, entity_id=d.id, action="deployment.judged")
    assert [e.seq for e in only] == [e.seq for e in entries if e.action == "deployment.judged"]
