"""The audit log of a model: who registered, signed, moved aliases, deployed and rolled back each version,
when and with what evidence, read from the journal (SDK on every backend, CLI table and JSON Lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli.main import app
from shipyard.core.context import acting_as
from shipyard.core.errors import InvalidInput, NotFound
from tests.governance.test_signing import X, Y, model


def _lifecycle(client: Client) -> None:
    client.register_model(model(), "churn", input_example=X.head(2))
    client.register_model(LogisticRegression(C=0.1, max_iter=200).fit(X, Y), "churn", input_example=X.head(2))
    client.register_model(model(), "other")
    client.set_alias("churn", "production", 2)
    client.ensure_endpoint("churn", "models:/churn/1")
    client.ensure_endpoint("other", "models:/other/1")
    client.deploy("churn", "models:/churn/2", "direct")
    client.rollback_deployment("churn", reason="p99 latency doubled")


def test_the_log_answers_who_did_what_to_each_version(client: Client) -> None:
    _lifecycle(client)
    entries = client.audit_log("churn")
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    actions = [(e.action, e.version) for e in entries]
    for expected in [
        ("version.registered", 1),
        ("version.signed", 1),
        ("version.registered", 2),
        ("alias.set", 2),
        ("endpoint.created", 1),
        ("deployment.created", 2),
        ("deployment.rolled_back", 2),
    ]:
        assert expected in actions, (expected, actions)
    assert all(e.actor and e.ts and e.hash for e in entries)
    assert not any("other" in e.entity_id for e in entries)  # the other model's endpoint is not in it
    rollback = next(e for e in entries if e.action == "deployment.rolled_back")
    assert "rolled back from churn/2 to churn/1: p99 latency doubled" in rollback.summary
    assert "p99 latency doubled" in (rollback.evidence.get("reason"), rollback.evidence.get("outcome"))
    registered = next(e for e in entries if e.action == "version.registered" and e.version == 2)
    assert registered.evidence["after"]["digest"] == client.get_version("churn", 2).digest
    journal = {e.seq: e.hash for e in client.read_journal(limit=1000)}
    assert all(journal[e.seq] == e.hash for e in entries)

    only_two = client.audit_log("churn", 2)
    assert only_two and {e.version for e in only_two} == {2}
    assert [e.action for e in only_two][:2] == ["version.registered", "version.signed"]


def test_bad_names_and_versions_are_refused(client: Client) -> None:
    client.register_model(model(), "churn")
    with pytest.raises(NotFound) as err:
        client.audit_log("nope")
    assert err.value.field == "model"
    with pytest.raises(NotFound) as err:
        client.audit_log("churn", 7)
    assert err.value.field == "version"
    with pytest.raises(InvalidInput) as err:
        client.audit_log("churn", 0)
    assert err.value.field == "version"


def test_governance_entries_of_other_services_appear_with_their_evidence(tmp_path: Path) -> None:
    client = Client(home=tmp_path / "home")
    try:
        client.register_model(model(), "churn")
        services = client._backend.services
        model_id = client.get_model("churn").id
        with acting_as("reviewer-rita"), services.db.write() as tx:  # as the review workflow journals them
            tx.journal("version.approved", "model", model_id, {"version": 1, "comment": "metrics meet policy"})
            tx.journal("version.evaluated", "model", model_id, {"version": 1, "kind": "fairness", "passed": True})
        entries = client.audit_log("churn", 1)
        approved = next(e for e in entries if e.action == "version.approved")
        assert approved.actor == "reviewer-rita" and approved.summary.endswith(": metrics meet policy")
        evaluated = next(e for e in entries if e.action == "version.evaluated")
        assert evaluated.evidence["kind"] == "fairness" and evaluated.summary == "version 1 evaluated: fairness"
    finally:
        client.close()


def test_the_cli_prints_a_table_and_exports_json_lines(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    client = Client(home=home)
    try:
        _lifecycle(client)
        total = len(client.audit_log("churn"))
    finally:
        client.close()
    runner = CliRunner()
    shown = runner.invoke(app, ["--home", home, "audit", "log", "--model", "churn"])
    assert shown.exit_code == 0, shown.output
    assert "registered version 2" in shown.stdout and "rolled back from churn/2 to churn/1" in shown.stdout
    exported = runner.invoke(app, ["--home", home, "audit", "log", "-m", "churn", "--jsonl"])
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(lines) == total and {"seq", "ts", "actor", "action", "version", "summary", "evidence"} <= set(lines[0])
    one = runner.invoke(app, ["--home", home, "--json", "audit", "log", "-m", "churn", "-v", "1"])
    assert {e["version"] for e in json.loads(one.stdout)} == {1}
    missing = runner.invoke(app, ["--home", home, "audit", "log", "-m", "nope"])
    assert missing.exit_code == 1 and "not found" in missing.stderr and "Traceback" not in missing.output


def test_a_real_review_shows_who_submitted_and_who_approved(tmp_path: Path) -> None:
    client = Client(home=tmp_path / "home")
    try:
        with acting_as("alice"):
            client.register_model(model(), "churn")
            client.submit_for_review("churn", 1, comment="ready")
        client.create_principal("bob")
        client.grant_role("bob", "reviewer")
        with acting_as("bob"):
            client.approve_version("churn", 1, comment="looks good")
        entries = {e.action: e for e in client.audit_log("churn", 1)}
        assert entries["version.registered"].actor == "alice"
        assert entries["version.submitted"].summary == "version 1 submitted for review (draft → in_review): ready"
        assert entries["version.approved"].actor == "bob"
        assert entries["version.approved"].summary == "version 1 approved by bob (in_review → approved): looks good"
        assert entries["version.approved"].evidence["digest"] == client.get_version("churn", 1).digest
    finally:
        client.close()
