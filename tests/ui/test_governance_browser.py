"""The governance pages: the audit journal's chain badge (verified, then broken after tampering), its
filters, the evidence bundle downloaded from the browser and verified offline, policies with the
violations they caused, and the inventory — each checked against the store."""

from __future__ import annotations

import re

import httpx
import pytest

from shipyard.core.errors import PolicyViolation
from shipyard.governance.verify_bundle import verify_bundle
from shipyard.store import schema as t
from tests.governance.test_lifecycle import engine_of
from tests.ui.test_models_browser import html, trained_version

STRICT = """
description: a bar the test model does not reach
applies_to: {models: [churn]}
rules:
  - metric: accuracy
    min: 0.95
    source: run
    gates: [review]
"""


def test_audit_page_shows_verified_and_names_a_tampered_entry(dashboard):
    client = dashboard.client
    trained_version(client)
    page = dashboard.login(path="/governance/audit")
    badge = page.locator("#chain-status")
    assert badge.get_attribute("data-status") == "verified" and badge.inner_text() == "verified"
    newest = int(page.locator("#audit-table tbody tr").first.get_attribute("data-seq"))
    assert newest == client.last_journal_seq()  # the newest entry first

    # rewrite one entry behind the store's back: the next look names it
    target = newest // 2
    with engine_of(client).begin() as conn:
        conn.execute(t.journal.update().where(t.journal.c.seq == target).values(actor="mallory"))
    page.click("#verify-now")
    page.wait_for_selector("#chain-status[data-status=broken]")
    assert client.verify_journal()["first_bad_seq"] == target  # the page says what the service says
    assert page.locator("#chain-status").get_attribute("data-seq") == str(target)
    assert f"broken at seq {target}" in page.locator("#chain-status").inner_text()


def test_audit_filters_and_pages(dashboard):
    client = dashboard.client
    trained_version(client)
    reviewer = dashboard.token("rita", "reviewer")
    client.submit_for_review("churn", 1, "please")
    approved = httpx.post(
        dashboard.url + "/api/v1/models/churn/versions/1/approve",
        json={"comment": "fine"},
        headers={"authorization": "Bearer " + reviewer},
    )
    assert approved.status_code == 200

    by_rita = html(dashboard, "/governance/audit?actor=rita").text
    actions = re.findall(r'data-journal-action="([^"]+)"', by_rita)
    assert actions == ["version.review"]
    on_model = html(dashboard, "/governance/audit?model=churn&action=version.").text
    assert set(re.findall(r'data-journal-action="([^"]+)"', on_model)) == {
        "version.registered",
        "version.signed",
        "version.submitted",
        "version.review",
    }
    # paging: the newest page holds the newest entries, "older" continues below them
    for i in range(40):
        client.set_model_tags("churn", {"round": str(i)})
    first = html(dashboard, "/governance/audit").text
    seqs = [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', first)]
    assert seqs == list(range(client.last_journal_seq(), client.last_journal_seq() - 50, -1))
    older = re.search(r'id="audit-older" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    next_seqs = [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', html(dashboard, older).text)]
    assert next_seqs[0] == seqs[-1] - 1 and len(next_seqs) == min(50, next_seqs[0])
    assert html(dashboard, "/governance/audit?before=soon").status_code == 400
    assert html(dashboard, "/governance/audit?model=nope").status_code == 404


def test_bundle_link_downloads_a_zip_that_verifies(dashboard, tmp_path):
    client = dashboard.client
    trained_version(client)
    reader = dashboard.token("vic", "viewer", model="churn")  # read on this model only, as the API requires
    page = dashboard.login(reader, path="/models/churn/1")
    with page.expect_download() as download:
        page.click("#bundle-link")
    path = tmp_path / "bundle.zip"
    download.value.save_as(path)
    result = verify_bundle(path, trusted_keys=[client.server_public_key().key_id])
    assert result["ok"], result
    assert (result["model"], result["version"]) == ("churn", 1)
    assert result["digest"] == client.get_version("churn", 1).digest

    outsider = dashboard.token("olga", "viewer", model="other")
    assert html(dashboard, "/governance/bundles/churn/1.zip", outsider).status_code == 403
    assert html(dashboard, "/governance/bundles/churn/9.zip").status_code == 404


def test_policies_page_shows_yaml_and_the_violation_with_its_rule(dashboard):
    client = dashboard.client
    trained_version(client)
    client.add_policy("strict", STRICT)
    with pytest.raises(PolicyViolation):
        client.submit_for_review("churn", 1)

    page = html(dashboard, "/governance/policies").text
    assert 'id="policy-churn-release"' in page and 'id="policy-strict"' in page
    assert "min: 0.95" in page  # the YAML as stored
    row = re.search(r'<tr data-model="churn" data-version="1">(.*?)</table></td>', page, re.S).group(1)
    assert "metric accuracy &gt;= 0.95" in row and "measured 0.9000" in row and "threshold 0.9500" in row

    version = html(dashboard, "/models/churn/1").text
    assert 'id="policy-decision" data-passed="false"' in version and "review gate: blocked" in version


def test_inventory_lists_models_with_risk_and_alerts_and_needs_global_read(dashboard):
    client = dashboard.client
    trained_version(client)
    client.set_risk_tier("churn", "high")
    client.submit_for_review("churn", 1)
    page = html(dashboard, "/governance").text
    assert 'data-model="churn"' in page and "risk-high" in page
    assert re.search(r'id="gov-in-review">1<', page)
    assert 'data-count="0"' in page  # no monitor, no open alert
    scoped = dashboard.token("vic", "viewer", model="churn")
    assert html(dashboard, "/governance", scoped).status_code == 403
