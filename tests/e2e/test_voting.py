"""Voting in the meeting room, in three headless Chromium tablets against a real server: the chair
creates and opens a poll, two delegates vote with the big buttons, the live count moves on the
chair's screen, the chair closes the poll and everyone sees the result chart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from eoffice.org import User
from meetings import attendance, meetings
from meetings.demo import create_demo_meeting
from storage.blobs import open_blob_store
from storage.db import Database
from tests.e2e.conftest import LiveServer, login, new_context

pytestmark = pytest.mark.e2e


async def started_meeting(var_dir: Path) -> int:
    """The demo meeting, started, with the chair and two members checked in (in the server's database)."""
    from sqlalchemy import select

    db = Database(f"sqlite+aiosqlite:///{var_dir}/eoffice.db")
    blobs = open_blob_store(f"file://{var_dir}/blobs")
    try:
        async with db.uow() as uow:
            m = await create_demo_meeting(uow, blobs, starts_at=dt.datetime.now(dt.UTC))
            assert m is not None, "the demo accounts are missing"
            await uow.commit()
        async with db.uow() as uow:
            users = {u.username: u for u in (await uow.session.scalars(select(User))).all()}
            chair = users["lanhdao"]
            await meetings.start_meeting(uow, chair, m.id)
            for name in ("lanhdao", "phochutich", "chanhvanphong"):
                seat = await meetings._seat_for(uow, m.id, users[name].id)
                assert seat is not None
                await attendance.check_in(uow, chair, seat.id)
            await uow.commit()
        return m.id
    finally:
        await blobs.close()
        await db.dispose()


async def open_voting(page: Any, server: str, meeting_id: int) -> None:
    from playwright.async_api import expect

    await page.goto(f"{server}/meetings/{meeting_id}/room")
    await expect(page.locator("#room")).to_have_attribute("data-live", "online")
    await page.locator("#tab-voting").click()
    await expect(page.locator("#panel-voting")).to_be_visible()


async def test_open_vote_close_chart(browser: Any, context: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    chair = await context.new_page()
    await login(chair, live_server, "lanhdao")
    others = [await new_context(browser), await new_context(browser)]
    try:
        delegates = [await ctx.new_page() for ctx in others]
        posted: list[str] = []  # votes go over the meeting WebSocket the tablet holds, not by HTTP
        for page in delegates:
            page.on("request", lambda r: posted.append(r.url) if r.method == "POST" and "/votes" in r.url else None)
        for page, name in zip(delegates, ("phochutich", "chanhvanphong"), strict=True):
            await login(page, live_server, name)
            await open_voting(page, live_server, mid)
            await expect(page.locator("[data-voting-panel]")).to_contain_text("Chưa có biểu quyết nào.")
        await open_voting(chair, live_server, mid)

        # the chair prepares the poll and opens it
        panel = chair.locator("[data-voting-panel]")
        await panel.locator("summary", has_text="Tạo biểu quyết").click()
        await panel.get_by_label("Nội dung biểu quyết").fill("Thông qua Kế hoạch chuyển đổi số năm 2027")
        await panel.get_by_label("Điều kiện thông qua").select_option("absolute")
        await panel.get_by_label("Tính trên").select_option("present")
        await panel.get_by_role("button", name="Tạo biểu quyết").click()
        await expect(panel).to_contain_text("Đã tạo biểu quyết (dự thảo)")
        await panel.get_by_role("button", name="Mở biểu quyết").click()
        await expect(panel.locator(".vp-count")).to_have_text("Đã bỏ phiếu 0/3")

        # each delegate's tablet shows the ballot; they vote with the big buttons
        for page, choice in zip(delegates, ("Tán thành", "Tán thành"), strict=True):
            dp = page.locator("[data-voting-panel]")
            await expect(dp.locator(".vp-title")).to_have_text("Thông qua Kế hoạch chuyển đổi số năm 2027")
            button = dp.get_by_role("button", name=choice, exact=True)
            box = await button.bounding_box()
            assert box is not None and box["height"] >= 44 and box["width"] >= 44  # big enough for a finger
            await button.click()
            await expect(button).to_have_attribute("aria-pressed", "true")
            await dp.get_by_role("button", name="Gửi phiếu").click()
            await expect(dp.locator(".vp-done")).to_contain_text("Đã ghi nhận phiếu")
        await expect(panel.locator(".vp-count")).to_have_text("Đã bỏ phiếu 2/3")
        assert posted == []
        await expect(delegates[0].locator(".vp-count")).to_have_text("Đã bỏ phiếu 2/3")
        await expect(panel.locator(".vp-missing")).to_contain_text("Chưa bỏ phiếu (1)")

        # the chair closes it: everyone sees the result as a chart
        async def accept(dialog: Any) -> None:
            await dialog.accept()

        chair.once("dialog", accept)
        await panel.get_by_role("button", name="Kết thúc biểu quyết").click()
        for page in [chair, *delegates]:
            result = page.locator("[data-voting-panel] .vp-result")
            await expect(result.locator("svg.bar-chart")).to_be_visible()
            await expect(result.locator("svg.bar-chart g[data-label='Tán thành']")).to_have_attribute(
                "data-value", "2")
            await expect(result.locator(".vp-verdict")).to_have_text("ĐƯỢC THÔNG QUA")  # 2 of 3 present
            await expect(result).to_contain_text("Tán thành 2, không tán thành 0")
    finally:
        for ctx in others:
            await ctx.close()
