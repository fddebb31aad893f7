"""Policies as code: YAML validation naming the bad field, versioning and enabling, every rule kind
passing and failing with its measured value and threshold, risk tiers (approvals, allowed
strategies, shadow before canary), and the gates at review and approval."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from shipyard import Client
from shipyard.core.context import acting_as
from shipyard.core.errors import InvalidInput, NotFound, PolicyViolation
from shipyard.governance.policies import load_policy
from shipyard.store import schema as t
from tests.governance.test_lifecycle import TWO_REVIEWERS, add_evaluation, as_user, engine_of, register, reviewers

# ------------------------------------------------------------------------------------------------
# YAML


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("applies_to: [churn]", "applies_to", "mapping"),
        ("colour: red", "colour", "unknown field"),
        ("approvals: {required: 0}", "approvals.required", "between 1 and"),
        ("approvals: {required: two}", "approvals.required", "whole number"),
        ("approvals: {roles: [boss]}", "approvals.roles[0]", "unknown value 'boss'"),
        ("approvals: {roles: []}", "approvals.roles", "needs approvals.groups"),
        ("applies_to: {risk_tiers: [extreme]}", "applies_to.risk_tiers[0]", "low, medium, high"),
        ("rules: [{metric: accuracy}]", "rules[0].min", "needs min or max"),
        ("rules: [{metric: accuracy, min: high}]", "rules[0].min", "must be a finite number"),
        ("rules: [{metric: accuracy, max: .inf}]", "rules[0].max", "finite"),
        ("rules:\n  - metric: auc\n    min: 0.5\n  - fairness: dpd\n    max: nope", "rules[1].max", "number"),
        ("rules: [{metric: acc, min: 0.9, max: 0.1}]", "rules[0].min", "above max"),
        ("rules: [{metric: acc, min: 0.9, source: oracle}]", "rules[0].source", "unknown source"),
        ("rules: [{metric: acc, min: 0.9, gates: [ship]}]", "rules[0].gates[0]", "review, approve, deploy"),
        ("rules: [{signature: maybe}]", "rules[0].signature", "'valid'"),
        ("rules: [{model_card: complete, min_score: 2}]", "rules[0].min_score", "between 0 and 1"),
        ("rules: [{metric: a, min: 1, fairness: b}]", "rules[0]", "exactly one rule kind"),
        ("rules: [{weather: sunny}]", "rules[0]", "exactly one rule kind"),
        ("rules: [{signature: valid, threshold: 3}]", "rules[0].threshold", "unknown field"),
        ("deployment: {strategies: [yolo]}", "deployment.strategies[0]", "canary"),
        ("risk_tiers: {extreme: {approvals: 2}}", "risk_tiers.extreme", "unknown risk tier"),
        ("risk_tiers: {high: {approvals: 2, colour: red}}", "risk_tiers.high.colour", "unknown field"),
        ("risk_tiers: {high: {shadow_before: [shadow]}}", "risk_tiers.high.shadow_before", "shadow"),
        ("rules: {metric: acc}", "rules", "list"),
        ("- just\n- a list", "text", "mapping"),
        ("rules: [\n", "text", "not valid YAML at line"),
        ("", "text", "empty"),
    ],
)
def test_yaml_errors_name_the_field(text: str, field: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        load_policy(text)
    assert err.value.field == field, err.value.message
    assert fragment in err.value.message
    if field != "text":
        assert field in err.value.message


def test_a_full_policy_parses_to_its_canonical_spec() -> None:
    spec = load_policy(
        """
name: credit
applies_to: {models: ["credit*"], risk_tiers: [high, medium]}
approvals: {required: 2, groups: [risk]}
rules:
  - metric: auc
    min: 0.8
    source: evaluation
  - fairness: disparate_impact_ratio
    min: 0.8
    gate: deploy
  - data_validation: passed
    gates: [review]
  - model_card: complete
  - signature: valid
  - reproducibility: verified
    name: bit-identical rebuild
deployment: {strategies: [canary, shadow, bluegreen]}
risk_tiers:
  high: {approvals: 3, strategies: [shadow, canary], shadow_before: [canary]}
"""
    )
    assert spec["approvals"] == {"required": 2, "roles": ["reviewer"], "groups": ["risk"]}
    names = [(r["name"], r["gates"]) for r in spec["rules"]]
    assert names == [
        ("metric auc >= 0.8", ["approve", "deploy"]),
        ("fairness disparate_impact_ratio >= 0.8", ["deploy"]),
        ("data_validation passed", ["review"]),
        ("model_card complete", ["approve", "deploy"]),
        ("signature valid", ["approve", "deploy"]),
        ("bit-identical rebuild", ["approve", "deploy"]),
    ]
    assert spec["risk_tiers"]["high"] == {
        "strategies": ["shadow", "canary"],
        "shadow_before": ["canary"],
        "approvals": 3,
    }


# ------------------------------------------------------------------------------------------------
# storage, every mode


def test_policies_are_versioned_and_can_be_disabled(client: Client) -> None:
    first = client.add_policy("two-reviewers", TWO_REVIEWERS)
    assert (first.version, first.enabled) == (1, True) and first.spec["approvals"]["required"] == 2
    assert client.add_policy("two-reviewers", TWO_REVIEWERS).version == 1  # same text, same version
    second = client.add_policy("two-reviewers", TWO_REVIEWERS.replace("required: 2", "required: 3"))
    assert second.version == 2 and second.digest != first.digest
    assert client.get_policy("two-reviewers").version == 2
    assert client.get_policy("two-reviewers", 1).spec["approvals"]["required"] == 2
    assert [p.version for p in client.list_policy_versions("two-reviewers")] == [1, 2]
    assert [(p.name, p.version) for p in client.list_policies()] == [("two-reviewers", 2)]
    with pytest.raises(NotFound) as err:
        client.get_policy("two-reviewers", 7)
    assert err.value.field == "version"
    with pytest.raises(InvalidInput) as err:
        client.add_policy("other", "name: something-else\n")
    assert err.value.field == "name"
    with pytest.raises(InvalidInput) as err:
        client.add_policy("bad", "rules: [{metric: acc, max: low}]")
    assert err.value.field == "rules[0].max"

    register(client)
    with pytest.raises(PolicyViolation):
        client.deploy("churn-live", "models:/churn/1", "direct")
    assert client.set_policy_enabled("two-reviewers", False).enabled is False
    assert client.review_status("churn", 1).required == 1  # back to the default rule
    assert client.deploy("churn-live", "models:/churn/1", "direct").status == "promoted"
    assert client.set_policy_enabled("two-reviewers", True).enabled is True
    assert client.check_version("churn", 1).policies == ["two-reviewers@2"]


def test_rules_pass_and_fail_with_value_and_threshold(client: Client, tmp_path: Path) -> None:
    # evidence: a source run with metrics, a validated dataset, evaluation and fairness results
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 0, 1, 1]})
    client.log_dataset(frame, "churn-data")
    client.set_contract("churn-data", client.infer_contract("churn-data@1"))
    assert client.validate_dataset("churn-data@1").passed
    client.create_experiment("churn")
    run = client.create_run("churn", "train")
    client.log_metric(run.id, "accuracy", 0.93, synchronous=True)
    client.log_metric(run.id, "log_loss", 0.7, synchronous=True)
    from sklearn.linear_model import LogisticRegression

    client.log_model(run.id, LogisticRegression().fit(frame[["x"]], frame["y"]), "model")
    client.end_run(run.id)
    good = client.register_model(f"runs:/{run.id}/model", "churn", data_refs=["churn-data@1"])
    add_evaluation(client, good.id, "evaluation", {"metrics": {"auc": 0.91}})
    add_evaluation(client, good.id, "fairness", {"metrics": {"demographic_parity_difference": 0.04}})
    add_evaluation(client, good.id, "reproducibility", {"identical": True})
    key_path = tmp_path / "signing.key"
    client.generate_signing_key(key_path)
    if not client.verify_version_signature("churn", good.version)["valid"]:
        client.sign_version("churn", good.version, key_path)

    policy = """
applies_to: {models: [churn]}
approvals: {required: 1}
rules:
  - metric: accuracy
    min: 0.9
    source: run
  - metric: log_loss
    max: 0.5
  - metric: auc
    min: 0.85
  - data_validation: passed
  - fairness: demographic_parity_difference
    max: 0.1
  - fairness: disparate_impact_ratio
    min: 0.8
  - signature: valid
  - reproducibility: verified
"""
    client.add_policy("evidence", policy)
    check = client.check_version("churn", good.version, gate="approve")
    results = {r.rule: r for r in check.results}
    assert results["metric accuracy >= 0.9"].passed and results["metric accuracy >= 0.9"].value == 0.93
    assert results["metric auc >= 0.85"].passed and results["metric auc >= 0.85"].value == 0.91
    assert results["data_validation passed"].passed
    assert results["data_validation passed"].value == {"churn-data@1": "passed"}
    assert results["fairness demographic_parity_difference <= 0.1"].passed
    assert results["signature valid"].passed, results["signature valid"].message
    assert results["reproducibility verified"].passed
    failed = {(v.rule, v.value, v.threshold) for v in check.violations}
    assert failed == {
        ("metric log_loss <= 0.5", 0.7, 0.5),
        ("fairness disparate_impact_ratio >= 0.8", None, 0.8),
    }

    # a second version whose evidence fails every rule
    client.log_dataset(pd.DataFrame({"x": [1.0, 99.0], "y": [0, 5]}), "churn-data")
    assert not client.validate_dataset("churn-data@2").passed
    bad = register(client, "churn", seed=1.0, data_refs=["churn-data@2"])
    add_evaluation(client, bad.id, "evaluation", {"metrics": {"auc": 0.7, "accuracy": 0.5, "log_loss": 0.4}})
    add_evaluation(client, bad.id, "fairness", {"metrics": {"disparate_impact_ratio": 0.6}})
    add_evaluation(client, bad.id, "reproducibility", {"identical": False})
    with engine_of(client).begin() as conn:  # its signature (if any) no longer matches its digest
        conn.execute(
            t.model_versions.update().where(t.model_versions.c.id == bad.id).values(digest="sha256:" + "1" * 64)
        )
    check = client.check_version("churn", bad.version, gate="approve")
    results = {r.rule: r for r in check.violations}
    assert results["metric accuracy >= 0.9"].value is None  # source: run, and it has no run
    assert "source run" in results["metric accuracy >= 0.9"].message
    assert results["metric auc >= 0.85"].value == 0.7 and results["metric auc >= 0.85"].threshold == 0.85
    assert results["data_validation passed"].value == {"churn-data@2": "failed"}
    assert results["fairness disparate_impact_ratio >= 0.8"].value == 0.6
    assert results["fairness demographic_parity_difference <= 0.1"].value is None
    assert results["signature valid"].value == "invalid"
    assert results["reproducibility verified"].value is False
    assert "metric log_loss <= 0.5" not in results  # the evaluation's 0.4 is preferred over nothing

    # the approve gate blocks with all of them listed, and the decision is stored
    client.submit_for_review("churn", bad.version)
    reviewers(client, "alice")
    with as_user(client, "alice") as alice, pytest.raises(PolicyViolation) as err:
        alice.approve_version("churn", bad.version)
    listed = {v["rule"]: v for v in err.value.details["violations"]}
    assert set(listed) == set(results)
    assert listed["metric auc >= 0.85"]["value"] == 0.7 and listed["metric auc >= 0.85"]["threshold"] == 0.85
    assert "metric auc >= 0.85 [evidence@1]: measured 0.7, threshold 0.85" in err.value.message
    assert client.review_status("churn", bad.version).approvals == []  # the blocked vote was not recorded
    assert client.list_policy_decisions("churn", bad.version)[-1].gate == "approve"


def test_review_gate_and_model_card(client: Client) -> None:
    register(client)
    client.add_policy(
        "cards",
        """
applies_to: {models: [churn]}
rules:
  - model_card: complete
    gates: [review]
  - model_card: complete
    min_score: 0.5
    gates: [review]
""",
    )
    check = client.check_version("churn", 1, gate="review")
    complete, score = check.results
    assert (complete.kind, complete.gate, complete.passed) == ("model_card", "review", False)
    assert complete.value.startswith("missing ") and "intended_use" in complete.value
    assert (score.rule, score.value, score.threshold, score.passed) == ("model_card score >= 0.5", 0.0, 0.5, False)
    with pytest.raises(PolicyViolation, match="model_card complete") as err:
        client.submit_for_review("churn", 1)
    assert {v["rule"] for v in err.value.details["violations"]} == {"model_card complete", "model_card score >= 0.5"}
    assert client.get_version("churn", 1).stage == "draft"

    for section in ("intended_use", "limitations", "ethical_considerations"):
        client.set_card_section("churn", section, f"the {section} of the churn model")
    check = client.check_version("churn", 1, gate="review")
    assert [r.passed for r in check.results] == [False, True] and check.results[1].value == 0.5

    status = client.submit_for_review("churn", 1, override_justification="card facts follow in ticket 7")
    assert status.stage == "in_review"
    decision = client.list_policy_decisions("churn", 1)[-1]
    assert decision.override and decision.gate == "review" and not decision.passed


# ------------------------------------------------------------------------------------------------
# risk tiers, embedded


@pytest.fixture
def local(home: Path) -> Iterator[Client]:
    c = Client(home=home)
    yield c
    c.close()


HIGH_RISK = """
applies_to: {risk_tiers: [high]}
approvals: {required: 1}
risk_tiers:
  high:
    approvals: 2
    strategies: [direct, shadow, canary]
    shadow_before: [canary]
"""


def _approve(local: Client, name: str, version: int, *names: str) -> None:
    local.submit_for_review(name, version)
    for reviewer in names:
        with acting_as(reviewer):
            local.approve_version(name, version)
    assert local.get_version(name, version).stage == "approved"


def test_high_risk_needs_more_approvals_allowed_strategies_and_a_shadow_first(local: Client) -> None:
    reviewers(local, "alice", "bob")
    local.add_policy("high-risk", HIGH_RISK)
    register(local, "fraud")
    with pytest.raises(InvalidInput) as err:
        local.set_risk_tier("fraud", "extreme")
    assert err.value.field == "tier"
    assert local.review_status("fraud", 1).rules.policies == []  # no tier yet: the policy does not apply
    assert local.set_risk_tier("fraud", "high").risk_tier == "high"
    assert local.review_status("fraud", 1).required == 2
    _approve(local, "fraud", 1, "alice", "bob")
    local.deploy("fraud-live", "models:/fraud/1", "direct")
    assert local.get_version("fraud", 1).stage == "deployed"

    register(local, "fraud", seed=1.0)
    _approve(local, "fraud", 2, "alice", "bob")
    with pytest.raises(PolicyViolation) as err:
        local.deploy("fraud-live", "models:/fraud/2", "bluegreen")
    strategy = err.value.details["violations"][0]
    assert strategy["rule"] == "allowed strategies" and strategy["value"] == "bluegreen"
    assert strategy["threshold"] == ["direct", "shadow", "canary"]
    with pytest.raises(PolicyViolation, match="shadow before canary") as err:
        local.deploy("fraud-live", "models:/fraud/2", "canary")
    shadow = err.value.details["violations"][0]
    assert shadow["value"] == 0 and "shadow deployment of this version before a canary" in shadow["message"]
    assert local.check_version("fraud", 2, strategy="canary").passed is False

    # a shadow of version 2 runs and is promoted: now a canary of it (to another endpoint) may go
    local.deploy("fraud-live", "models:/fraud/2", "shadow")
    digest = local.get_version("fraud", 2).digest
    local.sync_replica("replica-1", "fraud-live", host="h", pid=1, versions={digest: "ready"})
    assert local.advance_deployment("fraud-live").status == "running"
    local.promote_deployment("fraud-live", "shadow agreed with the baseline")
    assert local.get_version("fraud", 2).stage == "deployed"
    assert local.check_version("fraud", 2, strategy="canary").passed
    local.deploy("fraud-eu", "models:/fraud/2", "canary")

    # a model of another tier is not bound by it
    register(local, "toy")
    local.set_risk_tier("toy", "low")
    local.deploy("toy-live", "models:/toy/1", "bluegreen")


def test_policy_decisions_are_journaled(local: Client) -> None:
    register(local)
    local.add_policy("two-reviewers", TWO_REVIEWERS)
    with pytest.raises(PolicyViolation):
        local.deploy("churn-live", "models:/churn/1", "direct")
    engine = local._backend.services.db.engine  # type: ignore[union-attr]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.journal).where(t.journal.c.action == "policy.evaluated")).all()
    assert len(rows) == 1 and rows[0].payload["gate"] == "deploy" and rows[0].payload["passed"] is False
    assert {v["rule"] for v in rows[0].payload["violations"]} == {"approved", "approvals"}
