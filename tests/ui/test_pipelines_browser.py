"""The pipeline pages in a real browser: a run's steps and DAG, then the same run again from the cache;
and (over plain HTTP) a failed run's step, error and logs, the status filter and bad ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shipyard.client import fluent
from shipyard.pipelines import PipelineStatus, StepStatus
from shipyard.pipelines.entities import PipelineFailed
from shipyard.ui.pages.pipelines import STATUS_COLORS
from tests.pipelines import sample_pipelines as sp

STEPS = ["make_frame", "split", "train", "evaluate", "stats"]


@pytest.fixture(autouse=True)
def _no_fluent_leftovers() -> Iterator[None]:
    yield
    fluent.set_client(None)  # steps ran in this process through the dashboard's client


def html(dashboard: Any, path: str) -> httpx.Response:
    headers = {"authorization": "Bearer " + dashboard.admin_token, "accept": "text/html"}
    return httpx.get(dashboard.url + path, headers=headers)


def test_a_run_shows_every_step_and_its_dag_then_cache_hits_when_run_again(dashboard: Any) -> None:
    client = dashboard.client
    first = client.run_pipeline(sp.training, {"rows": 40})
    assert first.status is PipelineStatus.SUCCEEDED

    page = dashboard.login(path=f"/pipelines/{first.id}")
    assert page.locator("#run-status").inner_text() == "succeeded"
    rows = page.locator("#steps tbody tr")
    assert [rows.nth(i).get_attribute("data-step") for i in range(rows.count())] == STEPS
    for s in first.steps:  # what the page shows is what the store holds
        row = page.locator(f'#steps tr[data-step="{s.name}"]')
        assert row.locator(".step-status .badge").inner_text() == "succeeded"
        assert row.locator(f'a[href="/runs/{s.run_id}"]').count() == 1  # the step's training run
    # the DAG is drawn, one node per step, coloured by status, with the definition's edges
    page.wait_for_selector("#dag .main-svg")
    figure = json.loads(page.locator("#dag").get_attribute("data-figure"))
    nodes = figure["data"][1]
    assert [t.split("<br>")[0] for t in nodes["text"]] == STEPS
    assert set(nodes["marker"]["color"]) == {STATUS_COLORS[StepStatus.SUCCEEDED]}
    assert len([x for x in figure["data"][0]["x"] if x is None]) == 5  # five edges
    assert page.locator("#dag .scatterlayer .point").count() == len(STEPS)

    # Run again: every step is a cache hit, in the list and on the run's page.
    second = client.run_pipeline(sp.training, {"rows": 40})
    assert all(s.status is StepStatus.CACHED for s in second.steps)
    page.goto(dashboard.url + "/pipelines")
    newest = page.locator("#pipeline-runs tbody tr").first
    assert newest.get_attribute("data-run") == second.id
    assert newest.locator(".cache-hits").inner_text() == "5 / 5"
    assert page.locator(f'#pipeline-runs tr[data-run="{first.id}"] .cache-hits').inner_text() == "0 / 5"
    newest.locator("a").first.click()
    page.wait_for_url(f"**/pipelines/{second.id}")
    assert page.locator("#cache-hits").inner_text() == "5 / 5"
    assert page.locator("#steps .cache .badge.cached").count() == len(STEPS)
    figure = json.loads(page.locator("#dag").get_attribute("data-figure"))
    assert set(figure["data"][1]["marker"]["color"]) == {STATUS_COLORS[StepStatus.CACHED]}
    # a cache hit shows the logs of the step run it reused
    page.click('#steps tr[data-step="make_frame"] a:text("logs")')
    page.wait_for_selector("#step-logs")
    assert "making 40 rows" in page.locator("#step-logs").inner_text()


def test_a_failed_run_shows_the_failed_step_its_error_and_logs(dashboard: Any) -> None:
    client = dashboard.client
    client.run_pipeline(sp.training, {"rows": 20})
    with pytest.raises(PipelineFailed) as err:
        client.run_pipeline(sp.gated, {"rows": 10, "min_rows": 100})
    failed = client.get_pipeline_run(err.value.pipeline_run_id)

    listing = html(dashboard, "/pipelines?status=failed")
    assert listing.status_code == 200
    assert f'data-run="{failed.id}"' in listing.text and 'data-status="SUCCEEDED"' not in listing.text
    assert "at gate" in listing.text
    assert html(dashboard, "/pipelines?status=bogus").status_code == 400

    page = html(dashboard, f"/pipelines/{failed.id}")
    assert page.status_code == 200
    # the failed step's error and traceback are shown without asking, and its DAG node is red
    assert 'id="step-error"' in page.text and "10 rows &lt; 100" in page.text
    assert 'id="step-traceback"' in page.text and "ValidationFailed" in page.text
    statuses = {s.name: s.status.value for s in failed.steps}
    assert statuses["gate"] == "FAILED" and statuses["after_gate"] == "SKIPPED"
    for name, status in statuses.items():
        assert f'data-step="{name}" data-status="{status}"' in page.text
    assert STATUS_COLORS[StepStatus.FAILED] in page.text

    logs = html(dashboard, f"/pipelines/{failed.id}?step=make_frame")
    assert "making 10 rows" in logs.text
    assert html(dashboard, f"/pipelines/{failed.id}?step=nope").status_code == 404
    assert html(dashboard, "/pipelines/no-such-run").status_code == 404
