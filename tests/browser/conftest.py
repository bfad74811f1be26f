"""Browser tests: a whole Inbox instance on a real local port, driven by Debian's Chromium through
Playwright (never a downloaded browser: ``tests/run.sh`` installs the ``chromium`` package).

Each test gets a fresh instance (SQLite in a temporary folder) and a fresh browser; pages are
signed in through the real login form. Screenshots go to ``docs/screenshots/`` (the README shows
them), so each run refreshes them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright

from inbox.accounts import NewOperator, add_channel, add_operator
from inbox.app import Inbox, build
from inbox.config import load_settings
from inbox.domain import Role
from tests.fakes import RecordingConnector

CHROMIUM = Path("/usr/lib/chromium/chromium")
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.browser


@dataclass
class Site:
    url: str
    inbox: Inbox
    admin: NewOperator
    operator: NewOperator
    supervisor: NewOperator
    channel_key: str

    async def push(self, external_id: str, text: str, *, contact: str = "c1", name: str = "Ирина") -> dict[str, Any]:
        """A customer message through ``POST /api/v1/inbound``, as an integration sends it."""
        async with ClientSession() as http:
            response = await http.post(
                f"{self.url}/api/v1/inbound",
                json={"external_id": external_id, "contact": {"external_id": contact, "name": name}, "text": text},
                headers={"Authorization": f"Bearer {self.channel_key}"},
            )
            assert response.status == 201, await response.text()
            return await response.json()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = load_settings(overrides={"data_dir": tmp_path, "smtp_port": 0}, environ={})
    RecordingConnector.reset()
    inbox = build(settings, connectors={"test": RecordingConnector})
    server = TestServer(inbox.web, host="127.0.0.1")
    await server.start_server()
    try:
        store = inbox.store
        admin = await add_operator(store, email="boss@example.com", name="Boss", role=Role.ADMIN, password=PASSWORD)
        operator = await add_operator(store, email="olga@example.com", name="Olga", password=PASSWORD)
        supervisor = await add_operator(
            store, email="sam@example.com", name="Sam", role=Role.SUPERVISOR, password=PASSWORD
        )
        channel = await add_channel(store, kind="api", name="Shop")
        assert channel.key
        yield Site(str(server.make_url("")).rstrip("/"), inbox, admin, operator, supervisor, channel.key)
    finally:
        await server.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - one stat at set-up
        pytest.fail(f"{CHROMIUM} is missing: tests/run.sh installs Debian's chromium package")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Browser, site: Site, who: NewOperator, *, locale: str = "en-US", **options: Any) -> Page:
    """A new browser context (its own cookies), signed in through the login form."""
    options.setdefault("viewport", {"width": 1280, "height": 800})
    context = await browser.new_context(locale=locale, **options)
    page = await context.new_page()
    await page.goto(f"{site.url}/login")
    await page.get_by_test_id("login-email").fill(who.operator.email)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.get_by_test_id("topbar").wait_for()
    return page


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=False)
