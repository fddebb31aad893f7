"""Browser fixtures: Debian's chromium driven by Playwright against a real ``shipyard server``.

``make test`` installs chromium (``/usr/bin/chromium``) before the suite runs; Playwright's own
browser download is never used. Each test gets a fresh SQLite home served with authentication on,
an embedded SDK client on the same store to create data, and ``dashboard.login(token)`` which
returns a page logged in through the login form.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ThreadedServer

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("chromium is not installed: run `make test` (it installs Debian's chromium)")
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


class Dashboard:
    """A running server plus helpers to make identities and log in as them."""

    def __init__(self, server: ThreadedServer, client: Any, browser: Any):
        self.server = server
        self.client = client  # embedded SDK on the same store, acting as the local admin
        self.browser = browser
        self.contexts: list[Any] = []

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def admin_token(self) -> str:
        assert self.server.token
        return self.server.token

    def token(self, name: str, role: str, model: str | None = None, groups: list[str] | None = None) -> str:
        """A new principal holding ``role`` (globally or on ``model``) and a token for it."""
        self.client.create_principal(name, groups=groups or [])
        self.client.grant_role(name, role, model=model)
        return self.client.create_token(name).token

    def login(self, token: str | None = None, path: str = "/") -> Any:
        context = self.browser.new_context(viewport={"width": 1400, "height": 900})
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(self.url + path)
        page.fill("#token", token or self.admin_token)
        page.click("#login-submit")
        page.wait_for_load_state("networkidle")
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def dashboard(browser: Any, home: Path) -> Iterator[Dashboard]:
    from shipyard import Client
    from shipyard.core.settings import Settings

    client = Client(home=home)
    settings = Settings.resolve(home=home)
    with ThreadedServer(settings) as server:
        board = Dashboard(server, client, browser)
        try:
            yield board
        finally:
            board.close()
            client.close()
