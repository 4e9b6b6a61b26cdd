"""The bell in headless Chromium against a real server (issue #21): the specialist's page shows her unread count;
when the deputy chairman assigns her a task in another browser, the count goes up without a reload; the bell opens
the list, and the sentence opens the task (and is read)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import LiveServer, login, new_context
from tests.e2e.test_office_journey import _select_containing

pytestmark = pytest.mark.e2e

SUMMARY = "Tờ trình về việc phê duyệt Kế hoạch chuyển đổi số thị xã Đông Triều năm 2027"  # the demo's, submitted


async def test_bell_counts_a_task_assigned_live(browser: Any, context: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    spec = await context.new_page()
    await login(spec, live_server, "chuyenvien")
    bell = spec.locator("#bell")
    await expect(spec.locator("#live-status")).to_have_attribute("data-state", "online")
    await expect(bell).to_have_attribute("data-unread", re.compile(r"^\d+$"))
    before = int(await bell.get_attribute("data-unread") or "0")

    leader_ctx = await new_context(browser)
    leader = await leader_ctx.new_page()
    await login(leader, live_server, "phochutich")
    await leader.goto(live_server + "/documents")
    await leader.locator("#h-direct").locator("xpath=..").get_by_text(SUMMARY).click()
    deadline = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + dt.timedelta(days=5)
    await leader.fill("textarea[name=text]", "Giao chị Hà chủ trì tham mưu, báo cáo trước hạn.")
    await _select_containing(leader, "select[name=main]", "Phạm Thu Hà")
    await leader.fill("#direct input[name=deadline]", deadline.isoformat())
    async with leader.expect_navigation():
        await leader.get_by_role("button", name="Chỉ đạo và giao việc").click()
    await expect(leader.locator(".alert-ok")).to_have_text("Đã cho ý kiến chỉ đạo và giao việc.")
    await leader_ctx.close()

    # no reload: the count comes over the WebSocket
    await expect(bell).to_have_attribute("data-unread", str(before + 1))
    await expect(spec.locator("#bell-count")).to_have_text(str(before + 1))
    await expect(bell).to_have_attribute("aria-label", f"Thông báo: {before + 1} chưa đọc")

    await bell.click()
    await expect(spec).to_have_url(live_server + "/notifications")
    entry = spec.locator(".notif.unread", has_text=SUMMARY).first
    await expect(entry).to_contain_text(f"Bạn được Lê Minh Tuấn giao chủ trì xử lý «{SUMMARY}», hạn "
                                        f"{deadline:%d/%m/%Y}.")
    async with spec.expect_navigation():
        await entry.get_by_role("button").click()
    await expect(spec).to_have_url(re.compile(r"/tasks/\d+$"))
    await expect(spec.locator("body")).to_contain_text(SUMMARY)
    await expect(spec.locator("#live-status")).to_have_attribute("data-state", "online")
    await expect(bell).to_have_attribute("data-unread", str(before))
