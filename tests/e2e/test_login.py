"""Logging in and out through the real pages, in headless Chromium, against a real server process."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import DEMO_PASSWORD, LiveServer

pytestmark = pytest.mark.e2e

WRONG_CREDENTIALS = "Tên đăng nhập hoặc mật khẩu không đúng."


def _login_url(server: str) -> re.Pattern[str]:
    return re.compile(re.escape(server) + r"/login(\?.*)?$")


async def _submit_login(page: Any, username: str, password: str) -> None:
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Đăng nhập").click()


async def test_clerk_logs_in_and_out(page: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    # Not logged in: the home page sends the visitor to the Vietnamese login page.
    await page.goto(live_server + "/")
    await expect(page).to_have_url(_login_url(live_server))
    await expect(page.locator("h1")).to_contain_text("Đăng nhập")
    await expect(page.locator("html")).to_have_attribute("lang", "vi")

    # The clerk of the provincial people's committee logs in and lands on her home page.
    await _submit_login(page, "vanthu", DEMO_PASSWORD)
    await expect(page).to_have_url(live_server + "/")
    await expect(page.locator("body")).to_contain_text("Nguyễn Thị Lan")

    # A reload keeps the session: the cookie is real.
    await page.reload()
    await expect(page).to_have_url(live_server + "/")
    await expect(page.locator("body")).to_contain_text("Nguyễn Thị Lan")

    # Logging out goes back to the login page, and the home page asks for a login again.
    await page.get_by_role("button", name="Đăng xuất").click()
    await expect(page).to_have_url(_login_url(live_server))
    await expect(page.get_by_role("button", name="Đăng nhập")).to_be_visible()
    await page.goto(live_server + "/")
    await expect(page).to_have_url(_login_url(live_server))
    await expect(page.locator("body")).not_to_contain_text("Nguyễn Thị Lan")


async def test_wrong_password_is_refused_in_vietnamese(page: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    await page.goto(live_server + "/login")
    await _submit_login(page, "vanthu", "sai-mat-khau")

    await expect(page.get_by_text(WRONG_CREDENTIALS)).to_be_visible()
    await expect(page).to_have_url(_login_url(live_server))
    await expect(page.locator("input[name=password]")).to_be_visible()
    # Still not logged in.
    await page.goto(live_server + "/")
    await expect(page).to_have_url(_login_url(live_server))
