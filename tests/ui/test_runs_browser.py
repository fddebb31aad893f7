"""The runs pages: search with the SDK's filter language, pages, one run, runs compared — and who may see them."""

from __future__ import annotations

import html
import json
import re
import time

import httpx
import numpy as np
import pytest

from shipyard.tracking.entities import MetricPoint


def _runs(client, experiment: str = "ui-runs") -> dict[str, str]:
    """Three finished runs with params and metrics; returns name → id."""
    client.create_experiment(experiment)
    made = {}
    for name, auc, model in (("logreg", 0.95, "logreg"), ("forest", 0.92, "rf"), ("stump", 0.71, "tree")):
        run = client.create_run(experiment, name, capture_environment=False)
        client.log_params(run.id, {"model": model, "seed": 7})
        losses = [MetricPoint(key="loss", value=1.0 / (step + 1) + auc, step=step) for step in range(20)]
        client.log_batch(run.id, metrics=[*losses, MetricPoint(key="roc_auc", value=auc, step=0)], synchronous=True)
        client.end_run(run.id)
        made[name] = run.id
    return made


def _get(dashboard, path: str, token: str | None = None, **params) -> httpx.Response:
    headers = {"authorization": "Bearer " + (token or dashboard.admin_token), "accept": "text/html"}
    return httpx.get(dashboard.url + path, params=params or None, headers=headers, timeout=30)


def _figures(page_html: str) -> list[dict]:
    return [json.loads(html.unescape(raw)) for raw in re.findall(r"data-figure='([^']*)'", page_html)]


def test_find_runs_by_filter_then_compare_two(dashboard):
    ids = _runs(dashboard.client)
    page = dashboard.login(path="/runs")
    page.fill("#run-filter", "metrics.roc_auc > 0.9 and params.seed = '7'")
    page.click("#run-search-submit")
    page.wait_for_load_state("networkidle")
    rows = page.locator("#runs-table tbody tr[data-run-id]")
    shown = {rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())}
    expected = dashboard.client.search_runs(["ui-runs"], filter="metrics.roc_auc > 0.9 and params.seed = '7'")
    assert shown == {r.id for r in expected.runs} == {ids["logreg"], ids["forest"]}

    assert page.locator("#compare-button").is_disabled()
    page.check(f"tr[data-run-id='{ids['logreg']}'] .run-select")
    page.check(f"tr[data-run-id='{ids['forest']}'] .run-select")
    page.click("#compare-button")
    page.wait_for_url("**/runs/compare?ids=*")
    page.wait_for_selector("#compare-charts .js-plotly-plot")
    assert set(page.url.split("ids=")[1].split(",")) == {ids["logreg"], ids["forest"]}
    # the differing param is highlighted, the shared one is not
    assert "diff" in page.locator("#compare-params tr[data-param='model']").get_attribute("class")
    assert "same" in page.locator("#compare-params tr[data-param='seed']").get_attribute("class")
    assert page.locator("#compare-charts .chart[data-metric='loss'].js-plotly-plot").count() == 1


def test_a_bad_filter_shows_the_parsers_message_not_a_500(dashboard):
    page = dashboard.login(path="/runs")
    page.fill("#run-filter", "metrics.roc_auc >")
    page.click("#run-search-submit")
    page.wait_for_load_state("networkidle")
    message = page.locator("#filter-error").inner_text()
    assert "expected a value after '>'" in message
    assert page.locator("#run-filter").input_value() == "metrics.roc_auc >"  # kept for fixing
    answer = _get(dashboard, "/runs", filter="params.x = ")
    assert answer.status_code == 400 and "invalid filter" in answer.text


def test_a_viewer_without_read_permission_gets_403(dashboard):
    ids = _runs(dashboard.client)
    outsider = dashboard.token("outsider", "viewer", model="some-model")  # reads one model, not runs
    page = dashboard.login(outsider, path="/runs")
    assert "lacks the 'read' permission" in page.locator("#error-message").inner_text()
    assert page.locator("#runs-table").count() == 0
    for path in (
        "/runs",
        f"/runs/{ids['logreg']}",
        f"/runs/compare?ids={ids['logreg']},{ids['forest']}",
        "/runs/no-such-run",
    ):
        answer = _get(dashboard, path, outsider)
        assert answer.status_code == 403, path
        assert ids["logreg"] not in answer.text

    # a reader of one experiment sees that experiment's runs only
    dashboard.client.create_principal("scoped")
    exp = dashboard.client.get_experiment("ui-runs")
    dashboard.client.grant_role("scoped", "viewer", experiment=exp.id)
    scoped = dashboard.client.create_token("scoped").token
    assert _get(dashboard, "/runs", scoped, experiment="ui-runs").status_code == 200
    assert _get(dashboard, f"/runs/{ids['logreg']}", scoped).status_code == 200
    assert _get(dashboard, "/runs", scoped).status_code == 403
    assert _get(dashboard, "/runs", dashboard.token("reader", "viewer")).status_code == 200


def test_order_by_and_page_tokens(dashboard):
    ids = _runs(dashboard.client)
    first = _get(dashboard, "/runs", experiment="ui-runs", order_by="metrics.roc_auc DESC", max="2")
    assert first.status_code == 200
    assert re.findall(r'data-run-id="(\w+)"', first.text) == [ids["logreg"], ids["forest"]]
    next_url = html.unescape(re.search(r'<a href="([^"]+)" id="runs-next"', first.text).group(1))
    second = _get(dashboard, next_url)
    assert re.findall(r'data-run-id="(\w+)"', second.text) == [ids["stump"]]
    assert 'id="runs-next"' not in second.text
    back = html.unescape(re.search(r'<a href="([^"]+)" id="runs-prev"', second.text).group(1))
    assert re.findall(r'data-run-id="(\w+)"', _get(dashboard, back).text) == [ids["logreg"], ids["forest"]]


def test_run_page_shows_what_the_store_holds(dashboard):
    import pandas as pd

    client = dashboard.client
    ids = _runs(client)
    child = client.create_run("ui-runs", "child", parent_run_id=ids["logreg"])
    client.end_run(child.id)
    answer = _get(dashboard, f"/runs/{ids['logreg']}")
    assert answer.status_code == 200
    text = answer.text
    assert 'id="run-name">logreg<' in text
    assert "logreg" in text and ">0.950000<" in text  # the latest roc_auc
    assert f'href="/runs/{child.id}"' in text  # its child run
    assert "Python" in text or "No environment captured" in text
    loss_chart = [f for f in _figures(text) if f["layout"]["title"]["text"] == "loss"]
    assert len(loss_chart) == 1 and len(loss_chart[0]["data"][0]["x"]) == 20

    # artifacts download through the blob API; datasets the run wrote are linked
    run = client.create_run("ui-runs", "with-files", capture_environment=False)
    logged = client.log_text(run.id, "hello artifact", "notes/readme.txt")
    client.log_dataset(pd.DataFrame({"a": [1, 2, 3]}), "ui-run-output", run_id=run.id)
    client.end_run(run.id)
    text = _get(dashboard, f"/runs/{run.id}").text
    assert f'href="/api/v1/blobs/{logged.digest}"' in text
    blob = httpx.get(
        f"{dashboard.url}/api/v1/blobs/{logged.digest}", headers={"authorization": "Bearer " + dashboard.admin_token}
    )
    assert blob.content == b"hello artifact"
    assert 'href="/datasets/ui-run-output/1"' in text
    assert _get(dashboard, "/runs/0123456789abcdef").status_code == 404


@pytest.mark.parametrize("cap", [2000])
def test_compare_a_150k_step_metric_stays_fast_and_keeps_its_extremes(dashboard, cap):
    client = dashboard.client
    client.create_experiment("long")
    rng = np.random.default_rng(3)
    values = rng.normal(size=150_000)
    values[123_456] = 40.0  # a spike and a dip that must survive downsampling
    values[4_321] = -40.0
    long_run = client.create_run("long", "long", capture_environment=False)
    client.log_batch(long_run.id, metrics=[("loss", float(v), step) for step, v in enumerate(values)], synchronous=True)
    short_run = client.create_run("long", "short", capture_environment=False)
    client.log_batch(short_run.id, metrics=[("loss", 0.5, step) for step in range(10)], synchronous=True)

    _get(dashboard, "/runs")  # warm the server up (templates, first connection)
    started = time.perf_counter()
    answer = _get(dashboard, f"/runs/compare?ids={long_run.id},{short_run.id}")
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200
    (figure,) = [f for f in _figures(answer.text) if f["layout"]["title"]["text"] == "loss"]
    long_trace, short_trace = figure["data"]
    assert len(long_trace["x"]) <= cap and len(long_trace["y"]) <= cap
    assert max(long_trace["y"]) == 40.0 and min(long_trace["y"]) == -40.0
    assert long_trace["x"][0] == 0 and long_trace["x"][-1] == 149_999
    assert len(short_trace["x"]) == 10
    assert elapsed < 2.0, f"compare page took {elapsed:.2f}s"
    assert len(answer.content) < 400_000


def test_a_developer_renames_and_deletes_a_run_a_viewer_cannot(dashboard):
    ids = _runs(dashboard.client)
    run_id = ids["stump"]
    page = dashboard.login(dashboard.token("dev", "developer"), path=f"/runs/{run_id}")
    page.on("dialog", lambda dialog: dialog.accept("stump-renamed" if dialog.type == "prompt" else None))
    page.click("#run-rename")
    page.wait_for_function("document.getElementById('run-name').textContent === 'stump-renamed'")
    assert dashboard.client.get_run(run_id).name == "stump-renamed"
    page.click("#run-delete")
    page.wait_for_selector("#run-restore")
    assert dashboard.client.get_run(run_id).lifecycle == "deleted"
    # a deleted run leaves the table unless deleted runs are asked for
    assert run_id not in _get(dashboard, "/runs", experiment="ui-runs").text
    assert run_id in _get(dashboard, "/runs", experiment="ui-runs", deleted="1").text

    viewer = dashboard.token("watcher", "viewer")
    text = _get(dashboard, f"/runs/{ids['logreg']}", viewer).text
    assert 'id="run-actions"' not in text and 'id="run-rename"' not in text
    refused = httpx.patch(
        f"{dashboard.url}/api/v1/runs/{ids['logreg']}",
        json={"name": "nope"},
        cookies={"shipyard_token": viewer},
        headers={"x-shipyard-csrf": "1"},
    )
    assert refused.status_code == 403
    assert dashboard.client.get_run(ids["logreg"]).name == "logreg"
