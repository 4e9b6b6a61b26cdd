"""Changing one's own password through the real page, in headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import DEMO_PASSWORD, LiveServer
from tests.e2e.test_login import _submit_login

pytestmark = pytest.mark.e2e

NEW = "Hop-HDND-2027"


async def test_specialist_changes_her_password(page: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    await page.goto(live_server + "/login")
    await _submit_login(page, "chuyenvien", DEMO_PASSWORD)
    await page.get_by_role("link", name="Tài khoản", exact=True).click()
    await expect(page.locator("h1")).to_have_text("Tài khoản của tôi")

    form = page.locator("#password-form")
    await form.locator("input[name=current_password]").fill(DEMO_PASSWORD)
    await form.locator("input[name=new_password]").fill("abcdefgh")
    await form.locator("input[name=confirm_password]").fill("abcdefgh")
    await form.get_by_role("button", name="Đổi mật khẩu").click()
    await expect(page.get_by_role("alert")).to_contain_text("quá dễ đoán")

    form = page.locator("#password-form")
    await form.locator("input[name=current_password]").fill(DEMO_PASSWORD)
    await form.locator("input[name=new_password]").fill(NEW)
    await form.locator("input[name=confirm_password]").fill(NEW)
    await form.get_by_role("button", name="Đổi mật khẩu").click()
    await expect(page.locator("p.alert[role=status]")).to_contain_text("Đã đổi mật khẩu")

    await page.get_by_role("button", name="Đăng xuất").click()
    await _submit_login(page, "chuyenvien", DEMO_PASSWORD)
    await expect(page.locator("body")).to_contain_text("Tên đăng nhập hoặc mật khẩu không đúng.")
    await _submit_login(page, "chuyenvien", NEW)
    await expect(page).to_have_url(live_server + "/")
    await expect(page.locator("body")).to_contain_text("Phạm Thu Hà")
