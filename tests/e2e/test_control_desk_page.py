"""The control desk in Chromium (issue 17): the chair opens it from a running meeting; a delegate's tablet that
joins the room shows as connected within a refresh, and as dropped when it leaves; services are listed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, login, new_context
from tests.e2e.test_voting import started_meeting

pytestmark = pytest.mark.e2e


async def test_chair_watches_tablets_come_and_go(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    chair_ctx = await new_context(browser, viewport={"width": 1280, "height": 800})
    member_ctx = await new_context(browser)
    try:
        desk = await chair_ctx.new_page()
        await login(desk, str(live_server), "lanhdao")
        await desk.goto(f"{live_server}/meetings/{mid}/desk")
        await expect(desk.locator("h1")).to_contain_text("Bàn điều khiển")
        await expect(desk.locator("#desk-status")).to_contain_text("Cập nhật lúc", timeout=15_000)
        await expect(desk.locator('#desk-services li[data-service="database"]')).to_have_class("ok")
        member = await member_ctx.new_page()
        await login(member, str(live_server), "phochutich")
        await member.goto(f"{live_server}/meetings/{mid}/room")
        await expect(member.locator("#room")).to_have_attribute("data-live", "online")
        row = desk.locator("#desk-tablets tr", has_text="Lê Minh Tuấn")
        await expect(row).to_have_class("t-online", timeout=15_000)
        await member.close()
        await expect(row).to_have_class("t-dropped", timeout=15_000)
        await expect(desk.locator("#desk-tablet-summary")).to_contain_text("mất kết nối")
    finally:
        await member_ctx.close()
        await chair_ctx.close()
