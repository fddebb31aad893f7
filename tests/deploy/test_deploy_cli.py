"""``shipyard deploy …`` and ``shipyard feedback`` through typer's CliRunner, on an embedded SQLite home.

A ``ServingRuntime`` on an SDK client of the same home plays the serving replica: ``rt.step()`` is one
round of its control loop, and requests go through the inference app in-process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from shipyard import Client
from shipyard.cli.main import app
from shipyard.serving.app import create_inference_app
from shipyard.serving.runtime import ServingRuntime
from tests.deploy import models

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_STORE_URI", "SHIPYARD_ARTIFACT_URI", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # wide tables: cells are not wrapped or cut


@pytest.fixture
def sdk(home: Path) -> Iterator[Client]:
    client = Client(home=home)
    yield client
    client.close()


@pytest.fixture
def cli(home: Path) -> Invoke:
    """``cli("deploy", "list")`` runs ``shipyard --home HOME deploy list``; ``json=True`` adds ``--json``."""
    runner = CliRunner()

    def invoke(*args: str, json: bool = False) -> Result:
        options = ["--home", str(home)] + (["--json"] if json else [])
        return runner.invoke(app, [*options, *args], catch_exceptions=False)

    return invoke


def parse(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def assert_one_line_error(result: Result, *fragments: str, code: int = 1) -> str:
    """Failed with ``code``, one ``error:`` line on stderr naming the problem, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


X, _ = models.iris()
ROWS = [dict(zip(models.COLUMNS, map(float, r), strict=True)) for r in X.itertuples(index=False)]


class Replica:
    """One serving replica of the endpoint ``iris`` and the inference app in front of it."""

    def __init__(self, client: Client):
        self.client = client
        self.rt = ServingRuntime(client, ["iris"], poll_interval=0.1)
        self.api = TestClient(create_inference_app(self.rt.start(background=False)))
        self.sent = 0

    def send(self, n: int) -> list[Any]:
        responses = []
        for _ in range(n):
            row = ROWS[(self.sent * 37) % len(ROWS)]
            self.sent += 1
            responses.append(self.api.post("/endpoints/iris/predict", json={"records": [row]}))
        return responses

    def until(self, deployment_id: str, statuses: tuple[str, ...], traffic: int = 0, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self.rt.step()
            d = self.client.get_deployment(deployment_id)
            if d.status in statuses:
                return d
            assert time.monotonic() < deadline, (d.status, d.phase)
            self.send(traffic)
            time.sleep(0.05)

    def close(self) -> None:
        self.api.close()
        self.rt.stop()


@pytest.fixture
def iris(sdk: Client) -> Client:
    """Model ``iris``: v1 logistic, v2 tree, v3 Flaky (fails on sepal_width < 3)."""
    sdk.register_model(models.good(), "iris", input_example=X.head(3))
    sdk.register_model(models.good("tree"), "iris", input_example=X.head(3))
    sdk.register_model(models.fitted(models.Flaky), "iris", input_example=X.head(3))
    return sdk


@pytest.fixture
def replica_of(sdk: Client) -> Iterator[Callable[[], Replica]]:
    replicas: list[Replica] = []

    def make() -> Replica:
        replicas.append(Replica(sdk))
        return replicas[-1]

    yield make
    for r in replicas:
        r.close()


CANARY = ("--strategy", "canary", "--steps", "5,25,50", "--step-seconds", "1", "--min-samples", "20")


def test_create_new_endpoint_is_direct_then_canary(cli: Invoke, iris: Client) -> None:
    out = ok(cli("deploy", "create", "iris", "--model", "models:/iris/1"))
    assert "direct" in out and "promoted" in out and "first version of the endpoint" in out
    assert iris.get_endpoint("iris").stable.label == "iris/1"

    out = ok(cli("deploy", "create", "iris", "-m", "models:/iris/2", *CANARY))
    for text in ("canary", "iris/1", "iris/2", "loading", "smoke-testing"):
        assert text in out, (text, out)
    d = iris.get_deployment(iris.get_endpoint("iris").deployment_id)
    assert d.id in out
    assert d.config["steps"] == [5.0, 25.0, 50.0]
    assert d.config["step_seconds"] == 1.0
    assert d.config["judge"]["min_samples"] == 20

    listed = parse(cli("deploy", "list", json=True))
    assert [(e["name"], e["stable"]["version"], e["deployment_id"]) for e in listed] == [("iris", 1, d.id)]
    out = ok(cli("deploy", "list"))
    assert "iris/1" in out and d.id in out


def test_status_promote_and_rollback_after_promotion(
    cli: Invoke, iris: Client, replica_of: Callable[[], Replica]
) -> None:
    ok(cli("deploy", "create", "iris", "--model", "models:/iris/1"))
    replica = replica_of()
    created = parse(cli("deploy", "create", "iris", "-m", "models:/iris/2", *CANARY, json=True))
    assert (created["strategy"], created["status"]) == ("canary", "loading")
    d = replica.until(created["id"], ("running",))
    assert d.weight == 0.05
    replica.rt.step()  # the replica routes the 5% step from its next round on
    replica.send(200)
    replica.rt.step()  # flush the observations

    report = parse(cli("deploy", "status", "iris", json=True))
    assert report["endpoint"]["name"] == "iris"
    assert report["deployment"]["id"] == d.id and report["deployment"]["status"] == "running"
    variants = {v["variant"]: v for v in report["variants"]}
    assert set(variants) == {"baseline", "candidate"}
    assert variants["baseline"]["model"] == "iris/1" and variants["candidate"]["model"] == "iris/2"
    assert variants["baseline"]["requests"] + variants["candidate"]["requests"] == 200
    assert variants["candidate"]["requests"] > 0 and variants["candidate"]["errors"] == 0
    assert [(r["id"], r["live"]) for r in report["replicas"]] == [(replica.rt.replica_id, True)]
    assert report["judgement"]["checks"]

    out = ok(cli("deploy", "status", "iris"))
    for text in ("endpoint iris: serves iris/1", "baseline", "candidate", "running", replica.rt.replica_id):
        assert text in out, (text, out)
    assert "judge now:" in out

    promoted = parse(cli("deploy", "promote", "iris", "--reason", "looks good", json=True))
    assert (promoted["id"], promoted["status"], promoted["outcome"]) == (d.id, "promoted", "looks good")
    assert iris.get_endpoint("iris").stable.label == "iris/2"
    replica.rt.step()
    assert {r.headers["X-Model-Version"] for r in replica.send(5)} == {"iris/2"}

    # nothing in progress: rollback undoes the last promotion with a new direct deployment
    out = ok(cli("deploy", "rollback", "iris"))
    assert "rolled back to iris/1" in out and "direct" in out
    assert iris.get_endpoint("iris").stable.label == "iris/1"
    history = parse(cli("deploy", "history", "iris", json=True))
    assert [(h["strategy"], h["status"], h["candidate"]["version"]) for h in history] == [
        ("direct", "promoted", 1),
        ("canary", "promoted", 2),
        ("direct", "promoted", 1),
    ]
    assert history[0]["phase"] == f"rollback of deployment {d.id}"
    out = ok(cli("deploy", "history", "iris"))
    assert d.id in out and "looks good" in out
    assert len(parse(cli("deploy", "history", "iris", "--limit", "1", json=True))) == 1


def test_rollback_and_abort_while_active(cli: Invoke, iris: Client) -> None:
    ok(cli("deploy", "create", "iris", "--model", "models:/iris/1"))
    first = parse(cli("deploy", "create", "iris", "-m", "models:/iris/2", "--step-seconds", "1", json=True))
    # promote refuses while the candidate is still loading
    assert_one_line_error(cli("deploy", "promote", "iris"), "still loading")
    rolled = parse(cli("deploy", "rollback", "iris", "-r", "changed my mind", json=True))
    assert (rolled["id"], rolled["status"], rolled["outcome"]) == (first["id"], "rolled_back", "changed my mind")
    assert iris.get_endpoint("iris").deployment_id is None

    second = parse(cli("deploy", "create", "iris", "-m", "models:/iris/2", "-s", "shadow", json=True))
    out = ok(cli("deploy", "abort", "iris"))
    assert second["id"] in out and "aborted" in out and "aborted by an operator" in out
    endpoint = iris.get_endpoint("iris")
    assert endpoint.stable.label == "iris/1" and endpoint.deployment_id is None

    history = parse(cli("deploy", "history", "iris", json=True))
    assert [(h["id"], h["strategy"], h["status"]) for h in history] == [
        (second["id"], "shadow", "aborted"),
        (first["id"], "canary", "rolled_back"),
        (history[2]["id"], "direct", "promoted"),
    ]
    # rolled back / aborted rollouts are not promotions: nothing to undo
    assert_one_line_error(cli("deploy", "rollback", "iris"), "no rollout to roll back")
    assert_one_line_error(cli("deploy", "abort", "iris"), "no deployment in progress")


def test_smoke_file_failure_fails_the_rollout_before_any_traffic(
    cli: Invoke, iris: Client, replica_of: Callable[[], Replica], tmp_path: Path
) -> None:
    ok(cli("deploy", "create", "iris", "--model", "models:/iris/1"))
    replica = replica_of()
    narrow = [r for r in ROWS if r["sepal_width"] < 3.0][:5]
    smoke = tmp_path / "smoke.json"
    smoke.write_text(json.dumps(narrow))
    created = parse(
        cli("deploy", "create", "iris", "-m", "models:/iris/3", *CANARY, "--smoke-file", str(smoke), json=True)
    )
    digest = created["config"]["smoke_file"]
    assert digest.startswith("sha256:")
    assert iris.artifacts.read_bytes(digest) == smoke.read_bytes()  # uploaded

    d = replica.until(created["id"], ("failed", "running", "promoted", "rolled_back"), traffic=20)
    assert d.status == "failed", (d.status, d.outcome)
    assert "smoke test" in d.outcome and "iris/3" in d.outcome and replica.rt.replica_id in d.outcome
    assert "feature store unreachable" in d.outcome
    endpoint = iris.get_endpoint("iris")
    assert endpoint.stable.label == "iris/1" and endpoint.deployment_id is None

    # the candidate never answered a request
    assert replica.sent > 0
    replica.rt.step()
    responses = replica.send(20)
    assert {r.status_code for r in responses} == {200}
    assert {r.headers["X-Model-Version"] for r in responses} == {"iris/1"}
    report = parse(cli("deploy", "status", "iris", json=True))
    assert report["deployment"]["status"] == "failed"
    assert all(v["variant"] != "candidate" or v["requests"] == 0 for v in report["variants"])
    out = ok(cli("deploy", "status", "iris"))
    assert "failed" in out and "smoke test" in out

    # a smoke file that works lets the same candidate start (it only fails on narrow sepals)
    wide = tmp_path / "wide.json"
    wide.write_text(json.dumps([r for r in ROWS if r["sepal_width"] >= 3.0][:5]))
    again = parse(
        cli("deploy", "create", "iris", "-m", "models:/iris/3", *CANARY, "--smoke-file", str(wide), json=True)
    )
    assert replica.until(again["id"], ("running", "failed")).status == "running"

    missing = tmp_path / "missing.json"
    ok(cli("deploy", "abort", "iris"))
    assert_one_line_error(
        cli("deploy", "create", "iris", "-m", "models:/iris/2", "--smoke-file", str(missing)), "missing.json"
    )


def test_feedback_pairs_and_file(cli: Invoke, iris: Client, replica_of: Callable[[], Replica], tmp_path: Path) -> None:
    ok(cli("deploy", "create", "iris", "--model", "models:/iris/1"))
    replica = replica_of()
    created = parse(cli("deploy", "create", "iris", "-m", "models:/iris/2", *CANARY, json=True))
    replica.until(created["id"], ("running",))
    replica.rt.step()
    ids = [r.headers["X-Prediction-Id"] for r in replica.send(40)]
    replica.rt.step()  # flush: the routed prediction ids reach the store

    out = ok(cli("feedback", f"{ids[0]}=1", f"{ids[1]}=0", "--metric", "reward"))
    assert "recorded 2 feedback value(s) for metric 'reward'" in out

    lines = [json.dumps({"prediction_id": pid, "value": i % 2}) for i, pid in enumerate(ids[2:10])]
    lines.insert(3, "")  # blank lines are skipped
    lines.append(json.dumps({"prediction_id": ids[10], "value": 4.5, "metric": "revenue"}))
    jsonl = tmp_path / "feedback.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    result = parse(cli("feedback", "--file", str(jsonl), json=True))
    assert result == {"accepted": 9, "unknown": []}

    # ids no rollout routed are stored anyway, and named
    result = cli("feedback", "not-a-prediction=1")
    assert result.exit_code == 0
    assert "recorded 1 feedback value(s)" in result.stdout
    assert "1 id(s) were not routed by a rollout" in result.stderr and "not-a-prediction" in result.stderr

    report = parse(cli("deploy", "status", "iris", json=True))
    reward_n = sum(v["feedback"].get("reward", {}).get("n", 0) for v in report["variants"])
    revenue_n = sum(v["feedback"].get("revenue", {}).get("n", 0) for v in report["variants"])
    assert (reward_n, revenue_n) == (10, 1)

    # sending a value again replaces it
    ok(cli("feedback", f"{ids[0]}=0.5"))
    report = parse(cli("deploy", "status", "iris", json=True))
    assert sum(v["feedback"]["reward"]["n"] for v in report["variants"] if "reward" in v["feedback"]) == 10

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prediction_id": ids[0], "value": 1}) + "\n{oops\n")
    assert_one_line_error(cli("feedback", "--file", str(bad)), "bad.jsonl:2", "not JSON")


@pytest.fixture(scope="module")
def error_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Invoke, Client]]:
    """One home for all error cases (shared: each case checks that it changed nothing)."""
    home = tmp_path_factory.mktemp("errors") / "home"
    client = Client(home=home)
    client.register_model(models.good(), "iris", input_example=X.head(3))
    client.register_model(models.good("tree"), "iris", input_example=X.head(3))
    client.ensure_endpoint("iris", "models:/iris/1")
    runner = CliRunner()

    def invoke(*args: str, json: bool = False) -> Result:
        return runner.invoke(app, ["--home", str(home), *(["--json"] if json else []), *args], catch_exceptions=False)

    yield invoke, client
    client.close()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("deploy", "create", "iris", "-m", "models:/iris/2", "--steps", "5,abc"), ("--steps", "5,abc")),
        (("deploy", "create", "iris", "-m", "models:/iris/2", "--steps", "50,10"), ("steps", "increase")),
        (("deploy", "create", "iris", "-m", "models:/iris/2", "--steps", "0,50"), ("steps",)),
        (("deploy", "create", "iris", "-m", "models:/iris/2", "-s", "blue"), ("unknown strategy 'blue'", "canary")),
        (("deploy", "create", "iris", "-m", "models:/iris/2", "--split", "20"), ("split", "canary")),
        (("deploy", "create", "iris", "-m", "models:/iris/9"), ("9",)),
        (("deploy", "create", "iris", "-m", "models:/iris/1"), ("already serves iris/1",)),
        (("deploy", "status", "nope"), ("no endpoint named 'nope'",)),
        (("deploy", "history", "nope"), ("no endpoint named 'nope'",)),
        (("deploy", "promote", "nope"), ("no endpoint named 'nope'",)),
        (("deploy", "promote", "iris"), ("no deployment in progress", "iris")),
        (("deploy", "rollback", "iris"), ("no rollout to roll back",)),
        (("feedback", "abc"), ("PREDICTION_ID=NUMBER", "'abc'")),
        (("feedback", "abc=high"), ("PREDICTION_ID=NUMBER", "'abc=high'")),
        (("feedback", "=1"), ("PREDICTION_ID=NUMBER", "'=1'")),
        (("feedback",), ("non-empty list",)),
    ],
)
def test_errors_are_one_line(
    error_cli: tuple[Invoke, Client], args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    cli, client = error_cli
    assert_one_line_error(cli(*args), *fragments)
    assert_one_line_error(cli(*args, json=True), *fragments)
    # nothing changed
    assert client.get_endpoint("iris").deployment_id is None
    assert len(client.deployment_history("iris")) == 1
