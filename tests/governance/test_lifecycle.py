"""The model version lifecycle through the SDK (embedded and remote, SQLite and PostgreSQL): submit,
N-of-M approval with separation of duties, rejection and resubmission, retirement, invalid
transitions, and the deployment gate; role- and group-restricted reviews and digest binding embedded
with ``acting_as``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.core.context import acting_as
from shipyard.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, PolicyViolation
from shipyard.core.ids import new_id
from shipyard.core.time import now_ms
from shipyard.registry.entities import ModelVersion
from shipyard.store import schema as t

TWO_REVIEWERS = """
description: churn models need two reviewers
applies_to:
  models: ["churn*"]
approvals:
  required: 2
  roles: [reviewer]
"""


# ------------------------------------------------------------------------------------------------
# helpers (also used by test_policies*.py)


def register(client: Client, name: str = "churn", seed: float = 0.0, **kwargs: Any) -> ModelVersion:
    """A tiny fitted model registered as the next version of ``name`` (``seed`` changes its digest)."""
    estimator = LogisticRegression(C=1.0 + seed).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    return client.register_model(estimator, name, **kwargs)


def reviewers(client: Client, *names: str, groups: dict[str, list[str]] | None = None) -> None:
    """Principals holding the global reviewer role (with optional groups)."""
    for name in names:
        client.create_principal(name, groups=(groups or {}).get(name))
        client.grant_role(name, "reviewer")


@contextmanager
def as_user(client: Client, name: str) -> Iterator[Client]:
    """A client acting as ``name``: embedded through acting_as, remote through an API token of theirs."""
    if not client.is_remote:
        with acting_as(name):
            yield client
        return
    token = client.create_token(name, name=f"t-{new_id()[:8]}").token
    other = Client(uri=client.settings.remote_uri, home=client.settings.home, token=token)
    try:
        yield other
    finally:
        other.close()


def engine_of(client: Client) -> sa.Engine:
    """The store's engine, to write evidence other parts produce or to tamper with rows directly."""
    if client.is_remote:
        return sa.create_engine(client.server_settings.store_uri)  # type: ignore[attr-defined]
    return client._backend.services.db.engine  # type: ignore[union-attr]


def add_evaluation(client: Client, version_id: str, kind: str, result: dict[str, Any]) -> None:
    """Store a result about a version as the evaluation service does (that API belongs to another part)."""
    with engine_of(client).begin() as conn:
        conn.execute(
            t.version_evaluations.insert().values(
                id=new_id(), version_id=version_id, kind=kind, result=result, created_by="test", created_at=now_ms()
            )
        )


def journal_of(client: Client, name: str) -> list[Any]:
    model_id = client.get_model(name).id
    with engine_of(client).connect() as conn:
        return conn.execute(
            sa.select(t.journal).where(t.journal.c.entity_type == "model", t.journal.c.entity_id == model_id)
        ).all()


# ------------------------------------------------------------------------------------------------
# every mode


def test_two_of_three_reviewers_then_deploy(client: Client) -> None:
    reviewers(client, "alice", "bob", "carol")
    client.create_principal("dave")
    client.grant_role("dave", "developer")
    v1 = register(client)
    assert v1.stage == "draft"
    client.add_policy("two-reviewers", TWO_REVIEWERS)

    # under a policy, an unapproved version does not deploy
    with pytest.raises(PolicyViolation) as err:
        client.deploy("churn-live", "models:/churn/1", "direct")
    rules = {v["rule"]: v for v in err.value.details["violations"]}
    assert rules["approved"]["value"] == "draft" and rules["approvals"]["threshold"] == 2
    assert "approved" in err.value.message and "measured draft" in err.value.message

    status = client.submit_for_review("churn", 1, "ready for review")
    assert status.stage == "in_review" and status.required == 2 and status.approvals == []
    assert status.may_approve == ["alice", "bob", "carol"]

    # the author/submitter may not approve their own version
    with pytest.raises(PermissionDenied, match="separation of duties"):
        client.approve_version("churn", 1)
    # a developer is not a reviewer
    with as_user(client, "dave") as dave, pytest.raises(PermissionDenied, match="review"):
        dave.approve_version("churn", 1)

    with as_user(client, "alice") as alice:
        status = alice.approve_version("churn", 1, "metrics look fine")
        assert status.stage == "in_review" and status.approvals == ["alice"]
        assert status.may_approve == ["bob", "carol"]
        with pytest.raises(Conflict, match="one vote per reviewer"):
            alice.approve_version("churn", 1)
    with as_user(client, "bob") as bob:
        status = bob.approve_version("churn", 1, "agreed")
    assert status.stage == "approved" and status.approvals == ["alice", "bob"]
    assert client.get_version("churn", 1).stage == "approved"

    deployment = client.deploy("churn-live", "models:/churn/1", "direct")
    assert deployment.status == "promoted"
    assert client.get_version("churn", 1).stage == "deployed"

    reviews = client.list_reviews("churn", 1)
    assert [(r.decision, r.counts) for r in reviews] == [("submit", False), ("approve", True), ("approve", True)]
    assert all(r.digest == v1.digest for r in reviews)

    entries = journal_of(client, "churn")
    transitions = [
        (e.action, e.payload.get("from"), e.payload.get("to")) for e in entries if "from" in (e.payload or {})
    ]
    assert transitions == [
        ("version.submitted", "draft", "in_review"),
        ("version.approved", "in_review", "approved"),
        ("version.stage", "approved", "deployed"),
    ]
    submitted = next(e for e in entries if e.action == "version.submitted")
    assert submitted.payload["comment"] == "ready for review" and submitted.payload["version"] == 1
    approved = next(e for e in entries if e.action == "version.approved")
    assert approved.actor == "bob" and approved.payload["approvers"] == ["alice", "bob"]
    decisions = client.list_policy_decisions("churn", 1)
    assert [(d.gate, d.passed) for d in decisions] == [
        ("deploy", False),
        ("review", True),
        ("approve", True),
        ("deploy", True),
    ]


def test_rejection_and_resubmission(client: Client) -> None:
    reviewers(client, "alice", "bob")
    register(client)
    client.add_policy("two-reviewers", TWO_REVIEWERS)
    client.submit_for_review("churn", 1)
    with as_user(client, "alice") as alice:
        alice.approve_version("churn", 1)
    with as_user(client, "bob") as bob:
        status = bob.reject_version("churn", 1, "no holdout evaluation")
    assert status.stage == "rejected" and status.rejected_by == "bob"

    status = client.submit_for_review("churn", 1, "added the evaluation")
    assert status.stage == "in_review" and status.round == 2
    assert status.approvals == []  # the first round's approval no longer counts
    with as_user(client, "alice") as alice:
        status = alice.approve_version("churn", 1)  # a new round: alice may vote again
    assert status.approvals == ["alice"] and status.stage == "in_review"
    with as_user(client, "bob") as bob:
        assert bob.approve_version("churn", 1).stage == "approved"
    rounds = [(r.round, r.decision, r.counts) for r in client.list_reviews("churn", 1)]
    assert rounds == [
        (1, "submit", False),
        (1, "approve", False),
        (1, "reject", False),
        (2, "submit", False),
        (2, "approve", True),
        (2, "approve", True),
    ]


def test_invalid_transitions_name_the_stage(client: Client) -> None:
    reviewers(client, "alice")
    register(client)
    with pytest.raises(Conflict) as err:
        client.approve_version("churn", 1)
    assert err.value.field == "stage" and "it is draft" in err.value.message
    assert err.value.details["allowed"] == ["submit", "retire"]
    with pytest.raises(Conflict, match="it is draft"):
        client.reject_version("churn", 1)
    client.submit_for_review("churn", 1)
    with pytest.raises(Conflict, match="it is in_review"):
        client.submit_for_review("churn", 1)
    with as_user(client, "alice") as alice:
        alice.approve_version("churn", 1)
    with pytest.raises(Conflict, match="it is approved") as err:
        client.submit_for_review("churn", 1)
    assert err.value.details["allowed"] == ["deploy", "retire"]
    with as_user(client, "alice") as alice, pytest.raises(Conflict, match="it is approved"):
        alice.reject_version("churn", 1)
    status = client.retire_version("churn", 1, "superseded")
    assert status.stage == "retired"
    with pytest.raises(Conflict, match="final"):
        client.retire_version("churn", 1)
    with pytest.raises(NotFound):
        client.submit_for_review("churn", 9)
    with pytest.raises(NotFound):
        client.review_status("nope", 1)
    with pytest.raises(InvalidInput) as err:
        client.submit_for_review("churn", 0)
    assert err.value.field == "version"


def test_deploys_without_policy_and_default_rule(client: Client) -> None:
    register(client, "iris")
    deployment = client.deploy("iris-live", "models:/iris/1", "canary")
    assert deployment.status == "promoted"  # no policy applies: anything deploys, as before
    assert client.get_version("iris", 1).stage == "draft"  # only approved versions become deployed
    # the default review rule: one approval by a reviewer, the author excluded
    status = client.submit_for_review("iris", 1)
    assert status.required == 1 and status.rules.roles == [["reviewer"]] and status.rules.policies == []
    reviewers(client, "alice")
    with as_user(client, "alice") as alice:
        assert alice.approve_version("iris", 1).stage == "approved"


def test_override_by_admin_is_journaled(client: Client) -> None:
    register(client)
    client.add_policy("two-reviewers", TWO_REVIEWERS)
    with pytest.raises(InvalidInput) as err:
        client.deploy("churn-live", "models:/churn/1", "direct", override_justification="  ")
    assert err.value.field == "override_justification"
    deployment = client.deploy(
        "churn-live", "models:/churn/1", "direct", override_justification="incident 42: hotfix approved by the CRO"
    )
    assert deployment.status == "promoted"
    decisions = client.list_policy_decisions("churn", 1)
    assert decisions[-1].override and decisions[-1].justification == "incident 42: hotfix approved by the CRO"
    assert not decisions[-1].passed
    override = [e for e in journal_of(client, "churn") if e.action == "policy.override"]
    assert len(override) == 1
    assert override[0].payload["justification"] == "incident 42: hotfix approved by the CRO"
    assert {v["rule"] for v in override[0].payload["violations"]} == {"approved", "approvals"}


# ------------------------------------------------------------------------------------------------
# embedded, acting as other principals


@pytest.fixture
def local(home: Path) -> Iterator[Client]:
    c = Client(home=home)
    yield c
    c.close()


def test_submitter_and_author_may_not_approve(local: Client) -> None:
    reviewers(local, "alice", "bob", "carol")
    local.grant_role("alice", "developer")
    with acting_as("alice"):
        register(local)  # alice is the author
    with acting_as("bob"):
        local.submit_for_review("churn", 1)  # bob is the submitter
        with pytest.raises(PermissionDenied, match="submitted it"):
            local.approve_version("churn", 1)
    with acting_as("alice"), pytest.raises(PermissionDenied, match="registered this version"):
        local.approve_version("churn", 1)
    with acting_as("alice"), pytest.raises(PermissionDenied, match="registered this version"):
        local.reject_version("churn", 1)
    me = local.whoami().name  # the local OS user, an admin in embedded mode, may approve too
    assert local.review_status("churn", 1).may_approve == sorted({"carol", me})
    with acting_as("carol"):
        assert local.approve_version("churn", 1).stage == "approved"


def test_role_and_group_restricted_approvals(local: Client) -> None:
    register(local, "credit")
    local.add_policy(
        "credit-risk",
        """
applies_to: {models: [credit]}
approvals:
  required: 2
  roles: [reviewer]
  groups: [risk, audit]
""",
    )
    local.create_principal("ann", groups=["risk"])
    local.grant_role("ann", "reviewer", model="credit")  # a reviewer of this model only
    local.create_principal("ben", groups=["marketing"])
    local.grant_role("ben", "reviewer")
    local.create_principal("cat", groups=["audit"])
    local.grant_role("cat", "deployer")
    local.create_principal("dan", groups=["audit"])
    local.grant_role("dan", "reviewer")
    local.submit_for_review("credit", 1)
    assert {"ann", "dan"} <= set(local.review_status("credit", 1).may_approve)
    with acting_as("ben"), pytest.raises(PermissionDenied, match="groups risk, audit"):
        local.approve_version("credit", 1)
    with acting_as("cat"), pytest.raises(PermissionDenied, match="roles reviewer"):
        local.approve_version("credit", 1)
    with acting_as("ann"):
        assert local.approve_version("credit", 1).approvals == ["ann"]
    with acting_as("dan"):
        assert local.approve_version("credit", 1).stage == "approved"

    # a model-scoped reviewer grant does not reach other models
    register(local, "credit-v2")
    local.add_policy("credit-2", "applies_to: {models: [credit-v2]}\napprovals: {required: 1}\n")
    local.submit_for_review("credit-v2", 1)
    with acting_as("ann"), pytest.raises(PermissionDenied, match="roles reviewer"):
        local.approve_version("credit-v2", 1)

    # roles: [] lets membership decide alone: a deployer in the audit group may approve
    register(local, "credit-v3")
    local.add_policy("credit-3", "applies_to: {models: [credit-v3]}\napprovals: {roles: [], groups: [audit]}\n")
    local.submit_for_review("credit-v3", 1)
    assert local.review_status("credit-v3", 1).may_approve == ["cat", "dan"]
    with acting_as("ben"), pytest.raises(PermissionDenied, match="groups audit"):
        local.approve_version("credit-v3", 1)
    with acting_as("cat"):
        assert local.approve_version("credit-v3", 1).stage == "approved"


def test_approvals_are_bound_to_the_digest(local: Client) -> None:
    reviewers(local, "alice", "bob", "carol")
    v1 = register(local)
    local.add_policy("two-reviewers", TWO_REVIEWERS)
    local.submit_for_review("churn", 1)
    with acting_as("alice"):
        local.approve_version("churn", 1)
    with acting_as("bob"):
        local.approve_version("churn", 1)
    assert local.review_status("churn", 1).stage == "approved"
    # the version's content changes under the approvals (a tampered row): they no longer count
    engine = local._backend.services.db.engine  # type: ignore[union-attr]
    other = "sha256:" + "0" * 64
    with engine.begin() as conn:
        conn.execute(t.model_versions.update().where(t.model_versions.c.id == v1.id).values(digest=other))
    status = local.review_status("churn", 1)
    assert status.approvals == [] and status.digest == other
    with pytest.raises(PolicyViolation) as err:
        local._backend.services.governance.deploy_gate("churn", 1, "direct")  # type: ignore[union-attr]
    approvals = next(v for v in err.value.details["violations"] if v["rule"] == "approvals")
    assert approvals["value"] == 0 and approvals["threshold"] == 2


def test_override_needs_an_admin(local: Client) -> None:
    reviewers(local, "alice")
    local.create_principal("dora")
    local.grant_role("dora", "deployer")
    register(local)
    local.add_policy("two-reviewers", TWO_REVIEWERS)
    with acting_as("dora"), pytest.raises(PermissionDenied, match="admin"):
        local.deploy("churn-live", "models:/churn/1", "direct", override_justification="trust me")
    with acting_as("dora"), pytest.raises(PolicyViolation):
        local.deploy("churn-live", "models:/churn/1", "direct")
    local.submit_for_review("churn", 1)
    with acting_as("alice"), pytest.raises(PermissionDenied, match="admin"):
        local.approve_version("churn", 1, override_justification="because")
