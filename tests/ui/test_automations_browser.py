"""The automations pages in a real browser: rules and firings as the store has them, the switch, and
what a role may not do is neither shown nor accepted by the server."""

from __future__ import annotations

import httpx

from shipyard.automation.engine import run_until_idle

NOTIFY = "name: greet\non: model.created\ndo: {notify: {message: 'new {{ payload.after.name }}'}}\n"
DEPLOYING = "name: ship\non: version.approved\ndo: {rollback: {endpoint: prod}}\n"


def _world(dashboard) -> None:
    client = dashboard.client
    client.save_automation(NOTIFY)
    client.save_automation(DEPLOYING, enabled=False)
    client.create_model("churn")
    run_until_idle(client, quiet=0.1, timeout=30)


def test_the_page_shows_rules_and_firings_and_enables_a_rule(dashboard):
    _world(dashboard)
    page = dashboard.login(path="/automations")
    assert page.locator("#rules tr[data-rule=greet] td").nth(2).inner_text() == "enabled"
    assert page.locator("#rules tr[data-rule=ship]").get_attribute("data-enabled") == "false"
    firing = page.locator("#firings tr[data-rule=greet]")
    assert firing.count() == 1 and "new churn" in firing.inner_text() and "succeeded" in firing.inner_text()

    page.click("[data-testid=enable-ship]")
    page.wait_for_selector("#rules tr[data-rule=ship][data-enabled=true]")
    assert dashboard.client.get_automation("ship").enabled

    page.goto(dashboard.url + "/automations/greet")
    assert "notify" in page.locator("#rule-yaml").inner_text()
    assert page.locator("#firings tr[data-status=succeeded]").count() == 1


def test_a_developer_may_switch_plain_rules_but_not_deploying_ones_and_a_viewer_nothing(dashboard):
    _world(dashboard)
    developer = dashboard.token("dev", "developer")
    viewer = dashboard.token("val", "viewer")
    html = {"accept": "text/html"}
    with httpx.Client(base_url=dashboard.url, timeout=30) as http:
        dev = {"authorization": "Bearer " + developer}
        page = http.get("/automations", headers={**dev, **html}).text
        assert 'data-testid="disable-greet"' in page and 'data-testid="enable-ship"' not in page
        refused = http.post("/api/v1/automations/ship/enabled", json={"enabled": True}, headers=dev)
        assert refused.status_code == 403 and "deploy" in refused.json()["error"]["message"]
        assert (
            http.post("/api/v1/automations", json={"text": DEPLOYING.replace("ship", "ship2")}, headers=dev).status_code
            == 403
        )
        assert http.post(
            "/api/v1/automations", json={"text": NOTIFY.replace("greet", "g2")}, headers=dev
        ).status_code in (200, 201)

        view = {"authorization": "Bearer " + viewer}
        page = http.get("/automations", headers={**view, **html}).text
        assert "data-action" not in page
        assert http.post("/api/v1/automations/greet/enabled", json={"enabled": False}, headers=view).status_code == 403
        assert http.get("/api/v1/automation-firings", headers=view).status_code == 200
        assert http.get("/automations/nope", headers={**view, **html}).status_code == 404
        bad = http.post(
            "/api/v1/automations", json={"text": "name: x\non: y\ndo: {deploy: {endpoint: e}}"}, headers=dev
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "do[0].deploy.model"
    assert not dashboard.client.get_automation("ship").enabled
