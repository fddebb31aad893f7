"""The model pages in a real browser: submitting a version for review and approving it with a comment,
what a viewer is (not) offered and the API refusing them, the lineage graph and the policy status.

Reviewers, policies and reviews are set up as in tests/governance (reviewer principals, a YAML policy,
``submit_for_review``), through the dashboard's embedded SDK client.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pandas as pd
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.registry.entities import ModelVersion
from tests.governance.test_lifecycle import add_evaluation

POLICY = """
description: churn models need two reviewers, a decent accuracy and a valid signature
applies_to: {models: ["churn*"]}
approvals: {required: 2, roles: [reviewer]}
rules:
  - metric: accuracy
    min: 0.5
    source: run
    gates: [review, approve, deploy]
  - signature: valid
    gates: [review, approve, deploy]
"""


def trained_version(client: Client, name: str = "churn", policy: bool = True) -> ModelVersion:
    """A dataset version read by a tracked run that registers ``name``: the lineage dataset → run → version."""
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    client.create_experiment(f"{name}-training")
    run = client.create_run(f"{name}-training", name="train")
    data = client.log_dataset(frame, name=f"{name}-data")
    client.record_dataset_usage(data.ref, "run", run.id)
    client.log_metric(run.id, "accuracy", 0.9)
    version = client.log_model(run.id, LogisticRegression().fit(frame[["x"]], frame["y"]), registered_model_name=name)
    client.end_run(run.id)
    if policy:
        client.add_policy("churn-release", POLICY)
    assert isinstance(version, ModelVersion)
    return version


def html(dashboard: Any, path: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": "Bearer " + (token or dashboard.admin_token), "accept": "text/html"}
    return httpx.get(dashboard.url + path, headers=headers, timeout=30)


def test_submit_in_the_browser_then_a_reviewer_approves_with_a_comment(dashboard):
    client = dashboard.client
    trained_version(client)
    reviewer = dashboard.token("rita", "reviewer")

    # the admin submits it (write) and, as its submitter, is then not allowed to approve it
    page = dashboard.login(path="/models/churn/1")
    page.on("dialog", lambda dialog: dialog.accept("ready for review"))
    page.click("#submit-review")
    page.wait_for_selector("#version-stage[data-stage=in_review]")
    assert client.get_version("churn", 1).stage == "in_review"
    assert client.list_reviews("churn", 1)[-1].comment == "ready for review"
    assert page.locator("#approve-version").is_disabled()
    assert "separation of duties" in page.locator("#vote-reason").inner_text()
    # ...and the server says the same to a direct call
    refused = httpx.post(
        dashboard.url + "/api/v1/models/churn/versions/1/approve",
        json={"comment": "mine"},
        headers={"authorization": "Bearer " + dashboard.admin_token},
    )
    assert refused.status_code == 403 and "separation of duties" in refused.json()["error"]["message"]

    # the review gate's decision, rule by rule, with measured values and thresholds
    rules = {row.get_attribute("data-rule"): row for row in page.locator("#policy-rules tbody tr").all()}
    assert set(rules) == {"metric accuracy >= 0.5", "signature valid"}
    assert all(row.get_attribute("data-passed") == "true" for row in rules.values())
    assert "0.9000" in rules["metric accuracy >= 0.5"].inner_text()
    # the lineage: the dataset version → the training run → this version, drawn by plotly
    kinds = [row.get_attribute("data-kind") for row in page.locator("#lineage-table tbody tr").all()]
    assert kinds == ["dataset", "run", "version"]
    page.wait_for_selector("#lineage-graph .main-svg")
    assert page.locator("#lineage-table a:has-text('churn-data@1')").get_attribute("href") == "/datasets/churn-data/1"

    # a reviewer approves with a comment; the SDK sees the vote
    page = dashboard.login(reviewer, path="/models/churn/1")
    assert page.locator("#review-summary").get_attribute("data-required") == "2"
    assert "rita" in page.locator("#review-eligible").inner_text()
    page.on("dialog", lambda dialog: dialog.accept("metrics and lineage checked"))
    page.click("#approve-version")
    page.wait_for_selector("#review-approvals .badge:has-text('rita')")
    status = client.review_status("churn", 1)
    assert status.approvals == ["rita"] and status.stage == "in_review"  # one of the two required
    vote = client.list_reviews("churn", 1)[-1]
    assert (vote.reviewer, vote.decision, vote.comment) == ("rita", "approve", "metrics and lineage checked")
    # one vote per reviewer: the buttons are now disabled with the reason
    assert page.locator("#approve-version").is_disabled()
    assert "already voted" in page.locator("#vote-reason").inner_text()


def test_a_viewer_is_offered_no_review_and_the_api_refuses_it(dashboard):
    client = dashboard.client
    trained_version(client)
    client.submit_for_review("churn", 1, "please review")
    viewer = dashboard.token("vic", "viewer")

    page = dashboard.login(viewer, path="/models/churn/1")
    assert page.locator("#version-stage").get_attribute("data-stage") == "in_review"
    assert page.locator("#approve-version").count() == 0
    assert page.locator("#reject-version").count() == 0
    assert page.locator("#submit-review").count() == 0
    assert page.locator("#bundle-link").count() == 1  # reading evidence is allowed

    for action in ("approve", "reject", "submit"):
        refused = httpx.post(
            f"{dashboard.url}/api/v1/models/churn/versions/1/{action}",
            json={"comment": "sneaky"},
            headers={"authorization": "Bearer " + viewer},
        )
        assert refused.status_code == 403, action
    assert client.review_status("churn", 1).approvals == []


def test_model_pages_show_the_store_and_name_bad_addresses(dashboard):
    client = dashboard.client
    version = trained_version(client, policy=False)
    client.set_risk_tier("churn", "high")
    client.set_alias("churn", "champion", 1)

    listing = html(dashboard, "/models?risk=high")
    assert listing.status_code == 200 and 'data-model="churn"' in listing.text and "@champion" in listing.text
    assert 'data-model="churn"' not in html(dashboard, "/models?risk=low").text

    detail = html(dashboard, "/models/churn")
    assert detail.status_code == 200 and version.digest[:19] in detail.text
    assert "/governance/bundles/churn/1.zip" in detail.text

    client.deploy("churn-live", "models:/churn/1", "direct")  # no policy: anything deploys
    add_evaluation(client, version.id, "fairness", {"metrics": {"demographic_parity_difference": 0.125}})
    page = html(dashboard, "/models/churn/1")
    assert version.digest in page.text and f'href="/runs/{version.source_run_id}"' in page.text
    lineage = page.text.split('id="lineage-table"')[1].split("</table>")[0]
    assert re.findall(r'data-kind="(\w+)"', lineage) == ["dataset", "run", "version", "endpoint"]
    assert 'href="/deployments/churn-live"' in lineage and "stable version" in lineage
    evaluations = page.text.split('id="evaluations-card"')[1].split("</section>")[0]
    assert "fairness" in evaluations and "demographic_parity_difference" in evaluations and "0.1250" in evaluations
    assert "never submitted" in page.text and "no policy (one reviewer)" in page.text
    assert 'sandbox=""' in page.text and "&lt;h1&gt;Model card: churn version 1" in page.text  # the card, escaped

    card = html(dashboard, "/models/churn/1/card")
    assert card.status_code == 200 and "sandbox" in card.headers["content-security-policy"]

    assert html(dashboard, "/models/nope").status_code == 404
    assert html(dashboard, "/models/churn/7").status_code == 404
    assert html(dashboard, "/models/churn/seven").status_code == 400
    # a role on another model gives no read on this one
    outsider = dashboard.token("olga", "viewer", model="other")
    assert html(dashboard, "/models/churn/1", outsider).status_code == 403
