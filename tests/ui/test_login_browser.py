"""Logging in to the dashboard in a real browser, and what a session may and may not do."""

from __future__ import annotations

import httpx


def test_login_with_token_then_logout(dashboard):
    page = dashboard.login()
    assert page.url.rstrip("/") == dashboard.url
    assert page.locator("#whoami").inner_text() == "test-admin"
    assert page.locator("h1").inner_text() == "Overview"
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto(dashboard.url + "/")
    assert "/login" in page.url  # the session is gone


def test_bad_token_is_refused_with_a_message(dashboard):
    page = dashboard.login("shp_0000000000000000_nope")
    assert "/login" in page.url
    assert page.locator("#login-error").inner_text()


def test_a_page_asked_for_before_login_comes_back_after_it(dashboard):
    context = dashboard.browser.new_context()
    dashboard.contexts.append(context)
    page = context.new_page()
    page.goto(dashboard.url + "/models")
    assert "/login?next=%2Fmodels" in page.url
    page.fill("#token", dashboard.admin_token)
    page.click("#login-submit")
    page.wait_for_url("**/models")


def test_cookie_session_needs_the_csrf_header_for_changes(dashboard):
    """A cross-site form could carry the cookie but not the header: such writes are refused."""
    cookies = {"shipyard_token": dashboard.admin_token}
    with httpx.Client(base_url=dashboard.url, cookies=cookies) as http:
        assert http.get("/api/v1/experiments").status_code == 200
        refused = http.post("/api/v1/experiments", json={"name": "csrf"})
        assert refused.status_code == 403
        assert "X-Shipyard-CSRF" in refused.json()["error"]["message"]
        allowed = http.post("/api/v1/experiments", json={"name": "csrf"}, headers={"x-shipyard-csrf": "1"})
        assert allowed.status_code in (200, 201)


def test_login_redirect_never_leaves_the_site(dashboard):
    with httpx.Client(base_url=dashboard.url) as http:
        answer = http.post(
            "/login",
            content=f"token={dashboard.admin_token}&next=https://evil.example/",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"
