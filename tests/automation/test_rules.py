"""Automation rules: the condition language (property tests), validation with line and field, versions,
enable/disable with permissions, idempotency on redelivery, and each action."""

from __future__ import annotations

import json
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard import Client
from shipyard.automation import conditions
from shipyard.automation.conditions import MISSING, evaluate, lookup, parse_condition, parse_expression, to_text
from shipyard.automation.engine import AutomationRunner, run_until_idle
from shipyard.automation.entities import Event
from shipyard.automation.rules import parse_rule
from shipyard.core.context import acting_as
from shipyard.core.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.serving.runtime import ServingRuntime

# -- the condition language ------------------------------------------------------------------------------

idents = st.text(string.ascii_letters + "_", min_size=1, max_size=6).filter(lambda s: s not in conditions.KEYWORDS)
paths = st.lists(idents, min_size=1, max_size=4).map(".".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=12),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))
comparisons = st.one_of(
    st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v}, paths, st.sampled_from(conditions.OPERATORS[:-1]), values
    ),
    paths.map(lambda f: {"field": f, "op": "exists"}),
)
trees = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=8,
)


@given(trees)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_a_condition_written_back_as_text_parses_to_the_same_tree(tree: dict[str, Any]) -> None:
    assert parse_expression(to_text(tree)) == tree
    assert parse_condition(tree) == tree  # the YAML form of the same tree is accepted as is


@given(st.text(max_size=60))
@settings(max_examples=500)
def test_garbage_gives_a_clean_error_never_another_exception(text: str) -> None:
    try:
        tree = parse_expression(text)
    except InvalidInput as exc:
        assert exc.field == "where" and exc.message.startswith("where")
    else:  # whatever parsed is a well-formed tree that evaluates without raising
        assert parse_expression(to_text(tree)) == tree
        evaluate(tree, lambda path: MISSING)


@given(
    st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    )
)
@settings(max_examples=300)
def test_any_yaml_value_as_a_condition_is_a_tree_or_a_clean_error(value: Any) -> None:
    try:
        tree = parse_condition(value)
    except InvalidInput:
        return
    if tree is not None:
        evaluate(tree, lambda path: lookup({"a": 1}, path))


@given(trees, st.dictionaries(st.sampled_from(["a", "b", "payload"]), values, max_size=3))
@settings(max_examples=200)
def test_evaluation_never_raises(tree: dict[str, Any], data: dict[str, Any]) -> None:
    assert evaluate(tree, lambda path: lookup(data, path)) in (True, False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payload.monitor == 'churn'", True),
        ("payload.value > 0.2 and payload.value <= 1", True),
        ("payload.value > 1 or context.alert.metric startswith 'drift.'", True),
        ("not payload.value < 0.5", True),
        ("payload.tags contains 'x' and payload.monitor in ['a', 'churn']", True),
        ("payload.missing exists", False),
        ("payload.missing == null", False),  # missing is not null: only `exists` looks at absence
        ("payload.monitor > 3", False),  # text against a number: false, not an error
        ("(payload.value > 0.9 or payload.value < 0.1) and payload.monitor == 'churn'", False),
        ('payload.items.1 == "b"', True),
    ],
)
def test_conditions_over_an_event(text: str, expected: bool) -> None:
    data = {
        "payload": {"monitor": "churn", "value": 0.6, "tags": ["x", "y"], "items": ["a", "b"]},
        "context": {"alert": {"metric": "drift.share"}},
    }
    assert evaluate(parse_expression(text), lambda p: lookup(data, p)) is expected


def test_the_list_form_and_the_expression_form_mean_the_same() -> None:
    listed = parse_condition(
        [{"field": "payload.monitor", "op": "==", "value": "churn"}, {"field": "payload.x", "op": "exists"}]
    )
    assert listed == parse_expression("payload.monitor == 'churn' and payload.x exists")
    assert parse_condition({"any": [{"not": "a == 1"}, "b exists"]}) == parse_expression("not a == 1 or b exists")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("payload.x = 1", "unexpected '= 1' at column 11"),
        ("payload.x ==", "expected a value at the end"),
        ("(a == 1", "expected ')'"),
        ([{"field": "a", "op": "~", "value": 1}], "where[0].op must be one of"),
        ([{"field": "a b", "op": "==", "value": 1}], "not a dotted path"),
        ([{"field": "a", "op": "=="}], "needs a value"),
        ({"field": "a", "op": "exists", "value": 1}, "takes no value"),
        ({"all": []}, "non-empty list"),
        (3, "not int"),
    ],
)
def test_bad_conditions_name_the_field_and_the_place(where: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace("[", r"\[").replace(")", r"\)")):
        parse_condition(where)


# -- rules --------------------------------------------------------------------------------------------------

RULE = """\
name: hello
description: greet new churn models
on: model.created
where: payload.after.name startswith "churn"
do:
  - notify: {message: "model {{ payload.after.name }} (seq {{ seq }})"}
  - notify: {message: "again: {{ results[0].message }}"}
"""


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("on: x\ndo: {notify: {message: m}}", "name", None),
        ("name: r\ndo: {notify: {message: m}}", "on", None),
        ("name: r\non: x\nwhen: y\ndo: {notify: {message: m}}", "when", 3),
        ("name: r\non: x\nwhere: a ==\ndo: {notify: {message: m}}", "where", 3),
        ("name: r\non: x\ndo:\n  - notify: {message: m}\n  - explode: {}\n", "do[1]", 5),
        ("name: r\non: x\ndo:\n  - notify: {message: 3}\n", "do[0].notify.message", 4),
        ("name: r\non: x\ndo:\n  - deploy: {endpoint: e}\n", "do[0].deploy.model", 4),
        ("name: r\non: x\ndo:\n  - deploy: {endpoint: e, model: m, strategy: yolo}\n", "do[0].deploy.strategy", 4),
        ("name: r\non: x\ndo:\n  - run_pipeline: {pipeline: p, colour: red}\n", "do[0].run_pipeline.colour", 4),
        ("name: r\non: x\ndo:\n  - notify: {message: '{{ oops'}\n", "do[0].notify.message", 4),
        ("name: r\non: x\ndo:\n  - notify: {message: m, url: ftp://x}\n", "do[0].notify.url", 4),
        ("name: r\non: [x\n", "text", 3),
        ("- just\n- a list\n", "text", 1),
        ("name: 'bad/name'\non: x\ndo: {notify: {message: m}}", "name", 1),
    ],
)
def test_invalid_rules_say_which_field_on_which_line(text: str, field: str, line: int | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule(text)
    assert caught.value.field == field, caught.value.message
    if line:
        assert caught.value.message.startswith(f"line {line}:"), caught.value.message


def test_on_is_a_key_not_a_yaml_boolean() -> None:
    spec = parse_rule("name: r\non: [deployment., alert.fired]\ndo: {notify: {message: 'yes'}}")
    assert spec["on"] == ["alert.fired", "deployment."] and spec["do"][0]["args"]["message"] == "yes"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    c = Client(home=tmp_path / "home")
    yield c
    c.close()


def test_saving_a_changed_rule_makes_a_new_version_and_keeps_the_old(client: Client) -> None:
    first = client.save_automation(RULE)
    assert (first.version, first.latest, first.enabled) == (1, 1, True)
    assert first.where_text == 'payload.after.name startswith "churn"'
    assert client.save_automation(RULE).version == 1  # the same text: no new version
    second = client.save_automation(RULE.replace("again", "twice"))
    assert second.version == 2
    assert "again" in client.get_automation("hello", version=1).text
    assert [r.version for r in client.list_automation_versions("hello")] == [2, 1]
    assert [r.name for r in client.list_automations()] == ["hello"]
    with pytest.raises(NotFound):
        client.get_automation("hello", version=7)
    with pytest.raises(InvalidInput, match="names the rule"):
        client.save_automation(RULE, name="other")
    actions = [e.action for e in client.read_events(after=0, limit=100)]
    assert actions.count("automation.saved") == 2


def test_a_rule_fires_once_per_event_even_when_the_event_is_delivered_again(client: Client) -> None:
    client.save_automation(RULE)
    client.create_model("churn-a")
    client.create_model("other")  # the condition leaves it out
    out = run_until_idle(client, quiet=0.1, timeout=30)
    fired = out["firings"]
    assert [(f.action_index, f.status) for f in sorted(fired, key=lambda f: f.action_index)] == [
        (0, "succeeded"),
        (1, "succeeded"),
    ]
    assert fired[0].result and fired[0].result["message"].startswith("again: model churn-a")  # results[0]
    created = next(e for e in client.read_events(after=0, limit=100) if e.action == "model.created")
    services = client._backend.services  # type: ignore[attr-defined]
    assert services.automations.engine.handle(created) == 0  # redelivered: nothing runs twice
    assert len(client.automation_firings()) == 2
    journal = [e.action for e in client.read_events(after=0, limit=100)]
    assert journal.count("automation.fired") == 1 and journal.count("automation.action_succeeded") == 2


def test_a_disabled_rule_does_not_fire_and_a_failed_action_stops_its_rule(client: Client) -> None:
    client.save_automation(RULE)
    client.disable_automation("hello")
    client.create_model("churn-a")
    run_until_idle(client, quiet=0.1, timeout=30)
    assert client.automation_firings() == []
    client.enable_automation("hello")
    client.save_automation(
        "name: broken\non: model.created\ndo:\n  - promote: {endpoint: nowhere}\n  - notify: {message: never}\n"
    )
    client.create_model("churn-b")
    run_until_idle(client, quiet=0.1, timeout=30)
    broken = client.automation_firings("broken")
    assert len(broken) == 1 and broken[0].status == "failed" and "nowhere" in (broken[0].error or "")
    assert len(client.automation_firings("hello")) == 2
    assert client.automation_firings(status="failed")[0].rule == "broken"
    failed = [e for e in client.read_events(after=0, limit=200) if e.action == "automation.action_failed"]
    assert failed and failed[0].payload and failed[0].payload["rule"] == "broken"


def test_a_template_naming_nothing_fails_the_action_not_the_engine(client: Client) -> None:
    client.save_automation("name: t\non: model.created\ndo: {notify: {message: '{{ payload.nope.deeper }}'}}")
    client.create_model("m")
    run_until_idle(client, quiet=0.1, timeout=30)
    (firing,) = client.automation_firings("t")
    assert firing.status == "failed" and "nope" in (firing.error or "")


def test_a_rule_never_fires_on_its_own_firings(client: Client) -> None:
    client.save_automation("name: echo\non: automation.\ndo: {notify: {message: '{{ action }}'}}")
    client.save_automation("name: first\non: model.created\ndo: {notify: {message: hi}}")
    client.create_model("m")
    out = run_until_idle(client, quiet=0.1, timeout=30)
    assert not out["timed_out"]
    echoes = client.automation_firings("echo")
    assert echoes and all(f.status == "succeeded" for f in echoes)
    # echo reacted to first's entries (and first's saving), never to its own
    assert {f.event_action for f in echoes} <= {"automation.saved", "automation.fired", "automation.action_succeeded"}


def test_deploying_rules_need_the_deploy_permission(client: Client) -> None:
    client.create_principal("wendy")
    client.grant_role("wendy", "developer")
    deploying = "name: d\non: version.approved\ndo: {rollback: {endpoint: e}}"
    with acting_as("wendy"):
        client.save_automation("name: n\non: model.created\ndo: {notify: {message: hi}}")  # writing is enough
        with pytest.raises(PermissionDenied, match="deploy"):
            client.save_automation(deploying)
    client.save_automation(deploying, enabled=False)
    with acting_as("wendy"), pytest.raises(PermissionDenied, match="deploy"):
        client.enable_automation("d")
    with acting_as("wendy"):
        client.disable_automation("n")


# -- actions ------------------------------------------------------------------------------------------------


def _event(client: Client, action: str) -> Event:
    return next(e for e in reversed(client.read_events(after=0, limit=1000)) if e.action == action)


def test_notify_posts_to_a_webhook(client: Client, receivers: Any) -> None:
    receiver = receivers()
    client.save_automation(
        "name: hook\non: model.created\n"
        f"do: {{notify: {{message: 'new {{{{ payload.after.name }}}}', url: '{receiver.url}'}}}}"
    )
    client.create_model("m1")
    run_until_idle(client, quiet=0.1, timeout=30)
    (firing,) = client.automation_firings("hook")
    assert firing.status == "succeeded" and firing.result and firing.result["delivered"] == receiver.url
    body = json.loads(receiver.requests[0][1])
    assert body["message"] == "new m1" and body["event"]["action"] == "model.created"


def test_evaluate_request_review_deploy_promote_and_rollback_actions(client: Client) -> None:
    from sklearn.base import clone

    from tests.monitoring.world import World

    world = World(client, rows=300)
    train = client.load_dataset("train@1")
    features = train[["x1", "x2", "region"]]
    refit = clone(world.model).set_params(logisticregression__C=0.05).fit(features, train["target"])
    second = client.register_model(refit, "clf", input_example=features.head(3))
    client.set_alias("clf", "champion", 1)
    client.ensure_endpoint("e", "models:/clf/1")
    client.save_automation(
        """\
name: chain
on: alias.set
where: payload.alias == "staging"
do:
  - evaluate: {model: clf, version: 2, dataset: train, label_column: target, tolerance: 0.2}
  - request_review: {model: clf, version: "{{ results[0].version }}"}
  - deploy: {endpoint: e, model: clf, version: 2, strategy: bluegreen, options: {auto: false}}
  - rollback: {endpoint: e, reason: automated}
  - deploy: {endpoint: e, model: "models:/clf/2", strategy: bluegreen, options: {auto: false}}
"""
    )
    client.save_automation("name: ship\non: alias.set\nwhere: payload.alias == 'go'\ndo: {promote: {endpoint: e}}")
    client.set_alias("clf", "staging", 2)
    services = client._backend.services  # type: ignore[attr-defined]
    AutomationRunner(services).run_once()
    firings = sorted(client.automation_firings("chain"), key=lambda f: f.action_index)
    assert [f.status for f in firings] == ["succeeded"] * 5, [f.error for f in firings]
    evaluation = firings[0].result or {}
    assert evaluation["dataset"] == "train@1" and evaluation["champion_version"] == 1 and evaluation["passed"]
    assert firings[1].result == {
        "model": "clf", "version": 2, "approval_required": False, "stage": "draft", "policies": []
    }  # fmt: skip
    assert firings[2].result and firings[2].result["strategy"] == "bluegreen"
    assert firings[3].result and firings[3].result["status"] == "rolled_back"
    deployment = (firings[4].result or {})["deployment_id"]
    runtime = ServingRuntime(client, ["e"], replica_id="r1")
    runtime.start(background=False)
    try:
        for _ in range(200):  # the replica loads the candidate and passes its smoke test
            runtime.step()
            if client.get_deployment(deployment).status != "loading":
                break
            time.sleep(0.02)
        client.set_alias("clf", "go", 2)
        out = run_until_idle(client, quiet=0.1, timeout=30)
    finally:
        runtime.stop()
    assert not out["timed_out"]
    (promoted,) = client.automation_firings("ship")
    assert promoted.status == "succeeded" and promoted.result and promoted.result["status"] == "promoted"
    assert client.get_endpoint("e").stable.label == "clf/2"
    assert second.version == 2


def test_run_pipeline_records_the_run_and_a_failure_keeps_its_id(client: Client) -> None:
    client.log_dataset(__import__("pandas").DataFrame({"a": [1, 2, 3]}), "d")
    client.save_automation(
        """\
name: p
on: model.created
do:
  - run_pipeline: {pipeline: "tests.monitoring.retrain:retrain", params: {data: "{{ 'd@1' }}"}}
  - run_pipeline: {pipeline: "tests.monitoring.retrain:retrain", params: {data: "nope@1"}}
"""
    )
    client.create_model("m")
    run_until_idle(client, quiet=0.1, timeout=30)
    ok, failed = sorted(client.automation_firings("p"), key=lambda f: f.action_index)
    assert ok.status == "succeeded" and ok.result and ok.result["status"] == "SUCCEEDED"
    assert client.get_pipeline_run(ok.result["pipeline_run_id"]).params["data"] == "d@1"
    assert failed.status == "failed" and failed.result and failed.result.get("pipeline_run_id")
    with pytest.raises(InvalidInput, match="window_param needs an alert"):
        from shipyard.automation.actions import run_pipeline

        run_pipeline(
            client._backend.services, {"pipeline": "x:y", "window_param": "d"}, _event(client, "model.created")
        )  # type: ignore[attr-defined]


def test_versions_firings_and_redelivery_on_postgresql(pg_uri: str, tmp_path: Path) -> None:
    client = Client(home=tmp_path / "pg-home", store_uri=pg_uri)
    try:
        client.save_automation(RULE)
        assert client.save_automation(RULE.replace("again", "twice")).version == 2
        client.disable_automation("hello")
        client.enable_automation("hello")
        client.create_model("churn-pg")
        out = run_until_idle(client, quiet=0.1, timeout=30)
        assert sorted(f.status for f in out["firings"]) == ["succeeded", "succeeded"]
        assert {f.rule_version for f in out["firings"]} == {2}
        created = _event(client, "model.created")
        assert client._backend.services.automations.engine.handle(created) == 0  # type: ignore[attr-defined]
        assert len(client.automation_firings()) == 2
    finally:
        client.close()
