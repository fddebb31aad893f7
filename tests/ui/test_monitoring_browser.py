"""The monitoring pages in a real browser: a monitor whose windows the service computed from drifted
traffic shows the drifted feature first with its histogram drawn; an alert is acknowledged with a
click (the store records who); a viewer is shown no action and the API refuses them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.monitoring.world import World

QUICK = {"multivariate": "never", "importance": False}
MONITOR = "clf-watch"


def drifted_monitor(client: Any) -> tuple[World, str]:
    """Two calm hours then two hours where x1 moves by 1.5 sd: the drift rule fires on hour 2."""
    world = World(client, rows=1000)
    client.create_monitor(MONITOR, model="clf/1", window="1h", options=QUICK)
    client.create_alert_rule("x-drift", MONITOR, "drift.share", "> 0.2", min_samples=100, severity="critical")
    for hour in range(2):
        world.log_hour(hour)
    for hour in range(2, 4):
        world.log_hour(hour, shift=1.5)
    run = client.run_monitor(MONITOR, now=world.end_of(3))
    assert len(run.alerts_fired) == 1
    return world, run.alerts_fired[0]


def html(dashboard: Any, token: str, path: str) -> httpx.Response:
    headers = {"authorization": "Bearer " + token, "accept": "text/html"}
    return httpx.get(dashboard.url + path, headers=headers, timeout=30)


def test_monitor_page_shows_the_drifted_feature_first_with_its_histogram(dashboard):
    world, _ = drifted_monitor(dashboard.client)
    latest = dashboard.client.monitor_windows(MONITOR)[-1]
    x1 = latest.metrics["drift"]["columns"]["x1"]
    assert x1["drifted"] and latest.start == world.start + 3 * 3_600_000

    page = dashboard.login(path="/monitoring")
    row = page.locator('[data-testid=monitor-row][data-monitor="clf-watch"]')
    assert row.locator("[data-testid=monitor-status]").inner_text() == "drift"
    assert row.locator("[data-testid=drifted-count]").inner_text().split() == ["1", "of", "3"]
    assert page.locator("#stat-open-alerts").inner_text() == "1"

    row.locator("a", has_text=MONITOR).click()
    page.wait_for_url(f"**/monitoring/{MONITOR}")
    # the latest window by default: what the store computed, the drifted feature first
    assert page.locator("#window-stats").get_attribute("data-window") == str(latest.start)
    assert page.locator("#stat-rows").inner_text() == "400"
    first = page.locator("[data-testid=drift-row]").first
    assert first.get_attribute("data-feature") == "x1"
    assert "drifted" in first.inner_text()
    assert f"{x1['value']:.4f}" in first.inner_text()
    assert page.locator("[data-testid=drift-row]").count() == 3  # x1, x2, region (the prediction apart)
    chart = page.locator("[data-testid=histogram]").first
    assert chart.get_attribute("data-column") == "x1"
    chart.locator("svg.main-svg").first.wait_for()  # drawn by plotly.js, bars included
    assert chart.locator("g.trace.bars").count() == 2  # reference and current
    assert page.locator("#chart-drift").locator("svg.main-svg").count() > 0
    assert page.locator("[data-testid=alert][data-rule=x-drift]").count() == 1

    # an earlier, calm window from the selector: nothing drifted there
    page.select_option("#window-select", str(world.start))
    page.wait_for_url(f"**/monitoring/{MONITOR}?window={world.start}")
    assert page.locator("#stat-drifted").inner_text().startswith("0")
    assert "drifted" not in page.locator("[data-testid=drift-row]").first.inner_text()


def test_acknowledge_a_firing_drift_alert_with_a_click(dashboard):
    _, alert_id = drifted_monitor(dashboard.client)
    token = dashboard.token("dana", "developer")
    page = dashboard.login(token, path="/monitoring/alerts")
    row = page.locator(f"#alert-{alert_id}")
    assert row.get_attribute("data-status") == "firing"
    assert "x1" in row.locator(".alert-evidence").inner_text()  # the evidence names the drifted feature
    assert "log ok" in row.locator("[data-testid=notifications]").inner_text()
    page.on("dialog", lambda dialog: dialog.accept("on it"))
    row.locator("[data-testid=acknowledge]").click()
    page.wait_for_selector(f'#alert-{alert_id}[data-status="acknowledged"]')

    alert = dashboard.client.get_alert(alert_id)
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == "dana"  # the logged-in user, not the server
    assert "dana" in page.locator(f"#alert-{alert_id} [data-testid=acknowledged-by]").inner_text()
    # acknowledged: no second Acknowledge, Resolve still offered
    assert page.locator(f"#alert-{alert_id} [data-testid=acknowledge]").count() == 0
    assert page.locator(f"#alert-{alert_id} [data-testid=resolve]").count() == 1


def test_a_viewer_sees_no_alert_actions_and_the_api_refuses_them(dashboard):
    _, alert_id = drifted_monitor(dashboard.client)
    token = dashboard.token("vera", "viewer")
    page = dashboard.login(token, path="/monitoring/alerts")
    row = page.locator(f"#alert-{alert_id}")
    assert row.get_attribute("data-status") == "firing"
    assert page.locator("[data-testid=acknowledge]").count() == 0
    assert page.locator("[data-testid=resolve]").count() == 0
    assert page.locator("#read-only-note").is_visible()

    headers = {"authorization": "Bearer " + token}
    for action in ("acknowledge", "resolve"):
        refused = httpx.post(f"{dashboard.url}/api/v1/alerts/{alert_id}/{action}", json={}, headers=headers)
        assert refused.status_code == 403
    assert dashboard.client.get_alert(alert_id).status == "firing"

    # the monitor page shows the viewer the alert without its buttons; bad ids and parameters are 4xx
    page_html = html(dashboard, token, f"/monitoring/{MONITOR}").text
    assert f'id="alert-{alert_id}"' in page_html and 'data-testid="acknowledge"' not in page_html
    assert html(dashboard, token, "/monitoring/no-such-monitor").status_code == 404
    assert html(dashboard, token, f"/monitoring/{MONITOR}?window=soon").status_code == 400
    assert html(dashboard, token, f"/monitoring/{MONITOR}?window=123").status_code == 404
    assert html(dashboard, token, "/monitoring/alerts?status=sleeping").status_code == 400
    # who may not read at all learns nothing, not even which monitors exist
    dashboard.client.create_principal("nobody")
    stranger = dashboard.client.create_token("nobody").token
    assert html(dashboard, stranger, "/monitoring").status_code == 403
    assert html(dashboard, stranger, "/monitoring/no-such-monitor").status_code == 403
    assert html(dashboard, stranger, f"/monitoring/{MONITOR}").status_code == 403
