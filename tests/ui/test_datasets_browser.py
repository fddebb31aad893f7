"""The datasets pages: the list, a dataset's versions, one version's schema, profile, checks, lineage and diff."""

from __future__ import annotations

import html
import json
import re

import httpx
import pandas as pd


def _datasets(client) -> tuple:
    """Two versions of ``ui-customers`` (v2 older customers, one more column), a contract, reports."""
    v1 = client.log_dataset(pd.DataFrame({"age": [20, 30, 40, 50], "region": ["n", "s", "n", "e"]}), "ui-customers")
    client.create_experiment("ui-data")
    run = client.create_run("ui-data", "prepare", capture_environment=False)
    newer = {"age": [60, 70, 80, 90, 95], "region": ["n", "s", "s", "w", "w"], "score": [0.1, 0.5, 0.2, 0.9, 1.0]}
    v2 = client.log_dataset(
        pd.DataFrame(newer),
        "ui-customers",
        parents=[v1.ref],
        run_id=run.id,
    )
    client.end_run(run.id)
    client.set_contract("ui-customers", {"columns": {"age": {"max": 85}}})
    client.validate_dataset(v1.ref)
    client.validate_dataset(v2.ref)  # fails: two customers are older than 85
    return v1, v2, run


def _get(dashboard, path: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": "Bearer " + (token or dashboard.admin_token), "accept": "text/html"}
    return httpx.get(dashboard.url + path, headers=headers, timeout=30)


def test_open_a_version_and_see_schema_and_histograms(dashboard):
    v1, v2, _ = _datasets(dashboard.client)
    page = dashboard.login(path="/datasets")
    page.click("#datasets-table a:text('ui-customers')")
    page.wait_for_url("**/datasets/ui-customers")
    versions = page.locator("#versions-table tbody tr[data-version]")
    assert [versions.nth(i).get_attribute("data-version") for i in range(versions.count())] == ["2", "1"]
    page.click("#versions-table a:text('ui-customers@2')")
    page.wait_for_url("**/datasets/ui-customers/2")
    page.wait_for_selector("#column-chart.js-plotly-plot")

    stored = dashboard.client.get_dataset("ui-customers@2")
    rows = page.locator("#schema-table tbody tr")
    assert [rows.nth(i).get_attribute("data-column") for i in range(rows.count())] == stored.columns
    assert page.locator("#stat-rows").inner_text() == str(stored.row_count)
    # every profiled column has its histogram (numeric bins or top values)
    assert page.locator("#schema-table svg.histogram").count() == len(stored.columns)
    assert page.locator("#schema-table svg.histogram[data-column='age'] rect").count() == len(
        stored.profile["columns"]["age"]["histogram"]["counts"]
    )
    # the failed validation shows the failing check
    assert "failed" in page.locator("#validation-reports").inner_text()
    assert "age.max" in page.locator("#validation-reports").inner_text()

    # pick another column: its chart is drawn
    page.click("#schema-table tr[data-column='score'] td:first-child a")
    page.wait_for_selector("#column-chart[data-column='score'].js-plotly-plot")


def test_version_page_shows_lineage_and_diff(dashboard):
    v1, v2, run = _datasets(dashboard.client)
    text = _get(dashboard, "/datasets/ui-customers/2?against=1&column=age").text
    # lineage: derived from v1, written by the run
    lineage = text[text.index('id="lineage-section"') :]
    assert 'href="/datasets/ui-customers/1"' in lineage
    assert f'href="/runs/{run.id}"' in lineage
    # the diff (through the dataset diff service) names the added column and the changed one
    diff = dashboard.client.diff_datasets(v1.ref, v2.ref)
    section = text[text.index('id="diff-columns"') : text.index("</table>", text.index('id="diff-columns"'))]
    for change in diff.columns:
        assert f">{change.name}</a>" in section and change.change in section
    # the chosen column's chart overlays both versions
    (raw,) = re.findall(r'id="column-chart"[^>]*data-figure=\'([^\']*)\'', text)
    figure = json.loads(html.unescape(raw))
    assert [trace["name"] for trace in figure["data"]] == [v1.ref, v2.ref]
    assert abs(sum(figure["data"][1]["y"]) - 1.0) < 1e-9
    # v1 passed its contract
    assert "passed" in _get(dashboard, "/datasets/ui-customers/1").text


def test_bad_addresses_and_permissions(dashboard):
    _datasets(dashboard.client)
    assert _get(dashboard, "/datasets/ui-customers/x").status_code == 400
    assert _get(dashboard, "/datasets/ui-customers/9").status_code == 404
    assert _get(dashboard, "/datasets/nope").status_code == 404
    assert _get(dashboard, "/datasets/ui-customers/1?against=0").status_code == 400
    assert _get(dashboard, "/datasets/ui-customers/1?column=nope").status_code == 404
    listed = _get(dashboard, "/datasets?q=customers")
    assert listed.status_code == 200 and 'data-dataset="ui-customers"' in listed.text
    assert 'data-dataset="ui-customers"' not in _get(dashboard, "/datasets?q=zzz").text

    outsider = dashboard.token("outsider", "viewer", model="some-model")
    for path in ("/datasets", "/datasets/ui-customers", "/datasets/ui-customers/1", "/datasets/nope/1"):
        answer = _get(dashboard, path, outsider)
        assert answer.status_code == 403, path
        assert "ui-customers@" not in answer.text
    assert _get(dashboard, "/datasets/ui-customers/1", dashboard.token("reader", "viewer")).status_code == 200
