"""``shipyard review …`` and ``shipyard policy …`` on an embedded home: transitions, status, policies,
dry-run checks, and a blocked transition printing one line per violated rule."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import Result

from shipyard import Client
from shipyard.core.context import acting_as
from tests.governance.conftest import Invoke
from tests.governance.test_lifecycle import register, reviewers

POLICY = """
name: churn-quality
applies_to: {models: ["churn*"]}
approvals: {required: 2}
rules:
  - metric: accuracy
    min: 0.9
    gates: [approve, deploy]
"""


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def test_review_and_policy_commands(cli: Invoke, sdk: Client, tmp_path: Path) -> None:
    reviewers(sdk, "alice", "bob")
    register(sdk)
    policy_file = tmp_path / "quality.yaml"
    policy_file.write_text(POLICY)

    added = json.loads(ok(cli("policy", "add", str(policy_file), json=True)).stdout)
    assert (added["name"], added["version"], added["enabled"]) == ("churn-quality", 1, True)
    listed = ok(cli("policy", "list")).stdout
    assert "churn-quality" in listed and "churn*" in listed
    assert "min: 0.9" in ok(cli("policy", "show", "churn-quality", "--version", "1")).stdout

    check = cli("policy", "check", "churn", "1", "--gate", "deploy")
    assert check.exit_code == 1
    assert "metric accuracy >= 0.9" in check.stdout and "would be blocked by 3 rule(s)" in check.stdout

    status = json.loads(ok(cli("review", "submit", "churn", "1", "-m", "first look", json=True)).stdout)
    assert status["stage"] == "in_review" and status["required"] == 2
    with acting_as("alice"):
        ok(cli("review", "approve", "churn", "1", "-m", "fine by me"))
    text = ok(cli("review", "status", "churn", "1")).stdout
    assert "1 of 2: alice" in text and "bob" in text and "churn-quality@1" in text

    # the second approval would complete it: the approve gate blocks, one line per violated rule
    with acting_as("bob"):
        blocked = cli("review", "approve", "churn", "1")
    assert blocked.exit_code == 1 and blocked.stdout == ""
    lines = blocked.stderr.strip().splitlines()
    assert lines == ["blocked at approve: metric accuracy >= 0.9 [churn-quality@1]: measured none, threshold 0.9"]
    with acting_as("bob"):
        as_json = cli("review", "approve", "churn", "1", json=True)
    assert as_json.exit_code == 1
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == "policy_violation" and error["details"]["violations"][0]["threshold"] == 0.9

    # a non-admin override is refused; the admin's is recorded
    with acting_as("bob"):
        refused = cli("review", "approve", "churn", "1", "--override", "looks fine")
    assert refused.exit_code == 1 and "admin" in refused.stderr
    sdk.create_principal("olga")
    sdk.grant_role("olga", "admin")
    with acting_as("olga"):
        approved = ok(cli("review", "approve", "churn", "1", "--override", "offline evaluation attached", json=True))
    assert json.loads(approved.stdout)["stage"] == "approved"
    decisions = json.loads(ok(cli("policy", "decisions", "churn", json=True)).stdout)
    assert decisions[-1]["override"] and decisions[-1]["justification"] == "offline evaluation attached"
    assert "override" in ok(cli("policy", "decisions", "churn")).stdout

    history = json.loads(ok(cli("review", "history", "churn", "1", json=True)).stdout)
    assert [h["decision"] for h in history] == ["submit", "approve", "approve"]
    retired = ok(cli("review", "retire", "churn", "1", "-m", "replaced"))
    assert "retired" in retired.stdout

    ok(cli("policy", "disable", "churn-quality"))
    assert json.loads(ok(cli("policy", "list", json=True)).stdout)[0]["enabled"] is False
    ok(cli("policy", "enable", "churn-quality"))
    assert "risk tier high" in ok(cli("policy", "risk", "churn", "high")).stdout
    assert json.loads(ok(cli("policy", "risk", "churn", "none", json=True)).stdout)["risk_tier"] is None


def test_errors_are_one_line(cli: Invoke, sdk: Client, tmp_path: Path) -> None:
    register(sdk)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - fairness: demographic_parity_difference\n    max: small\n")
    result = cli("policy", "add", str(bad))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: policy rules[0].max: must be a finite number, not 'small' [field: rules[0].max]"
    ]
    result = cli("review", "approve", "churn", "1")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "it is draft" in line and "submit, retire" in line
    result = cli("policy", "check", "churn", "1", "--gate", "ship")
    assert result.exit_code == 1 and "[field: gate]" in result.stderr


def test_deploy_create_is_gated_and_admins_override(cli: Invoke, sdk: Client, tmp_path: Path) -> None:
    register(sdk)
    policy_file = tmp_path / "quality.yaml"
    policy_file.write_text(POLICY)
    ok(cli("policy", "add", str(policy_file)))
    refused = cli("deploy", "create", "churn-live", "--model", "models:/churn/1", "--strategy", "direct")
    assert refused.exit_code == 1 and refused.stdout == ""
    [line] = refused.stderr.strip().splitlines()
    assert "blocked at the deploy gate by 3 rule(s)" in line and "metric accuracy >= 0.9" in line
    deployed = cli(
        "deploy", "create", "churn-live", "--model", "models:/churn/1", "--strategy", "direct", "--override", "demo day"
    )
    assert deployed.exit_code == 0, deployed.stderr
    decisions = json.loads(ok(cli("policy", "decisions", "churn", "--version", "1", json=True)).stdout)
    assert [(d["gate"], d["override"]) for d in decisions] == [("deploy", False), ("deploy", True)]
