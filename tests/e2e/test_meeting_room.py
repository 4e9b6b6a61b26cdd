"""The meeting room in two headless Chromium tablets against a real server: the chair starts the
meeting and moves through the agenda, the delegate's screen follows; follow-the-presenter, leaving
and rejoining it; a delegate that drops off the network catches up when it comes back."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from meetings.demo import create_demo_meeting
from storage.blobs import open_blob_store
from storage.db import Database
from tests.e2e.conftest import LiveServer, login, new_context

pytestmark = pytest.mark.e2e


async def demo_meeting(var_dir: Path) -> dict[str, Any]:
    """The demo meeting, created in the server's own database and blob store."""
    db = Database(f"sqlite+aiosqlite:///{var_dir}/eoffice.db")
    blobs = open_blob_store(f"file://{var_dir}/blobs")
    try:
        async with db.uow() as uow:
            m = await create_demo_meeting(uow, blobs, starts_at=dt.datetime.now(dt.UTC))
            assert m is not None, "the demo accounts are missing"
            await uow.commit()
        from meetings import agenda

        async with db.uow() as uow:
            items = await agenda.items_of(uow, m.id)
        return {"id": m.id, "items": [i.id for i in items]}
    finally:
        await blobs.close()
        await db.dispose()


async def open_room(page: Any, server: str, meeting_id: int) -> None:
    from playwright.async_api import expect

    await page.goto(f"{server}/meetings/{meeting_id}/room")
    await expect(page.locator("#room")).to_have_attribute("data-live", "online")


async def test_delegate_follows_the_chair(browser: Any, context: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    m = await demo_meeting(live_server.var_dir)
    mid, items = m["id"], m["items"]
    delegate = await context.new_page()
    await login(delegate, live_server, "phochutich")
    chair_ctx = await new_context(browser)
    try:
        chair = await chair_ctx.new_page()
        await login(chair, live_server, "lanhdao")
        await open_room(delegate, live_server, mid)
        await open_room(chair, live_server, mid)
        title = "Phiên họp thường kỳ Ủy ban nhân dân tỉnh tháng 12"
        await expect(delegate.locator("h1#room-title")).to_have_text(title)

        # the delegate checks in on the tablet; the quorum changes on the chair's screen
        await delegate.get_by_role("button", name="Điểm danh: tôi có mặt").click()
        await expect(chair.locator("#quorum")).to_contain_text("Có mặt 1/")

        # the chair starts the meeting and moves to the first item: the delegate's screen follows
        await chair.locator('#chair-controls [data-action="start"]').click()
        await expect(delegate.locator("#room-state")).to_have_text("Đang họp")
        await chair.locator("#next-item").click()
        current = delegate.locator('#agenda li[data-current="true"]')
        await expect(current).to_have_attribute("data-item", str(items[0]))
        await expect(delegate.locator(".reader-bar .title")).to_have_text(
            "Báo cáo tình hình kinh tế - xã hội tháng 11 và nhiệm vụ tháng 12")
        await expect(delegate.locator('.reader-page[data-page="1"] img')).to_be_visible()
        # Chromium decodes WebP, so the reader asks for lossless WebP pages (issue 22), and they really decode.
        first = delegate.locator('.reader-page[data-page="1"] img')
        assert "fmt=webp" in (await first.get_attribute("src") or "")
        assert await first.evaluate("""img => img.complete ? img.naturalWidth : new Promise(done => {
            img.addEventListener("load", () => done(img.naturalWidth), {once: true});
            img.addEventListener("error", () => done(0), {once: true}); })""") > 100

        await chair.locator("#next-item").click()
        await expect(current).to_have_attribute("data-item", str(items[1]))
        await expect(delegate.locator(".reader-bar .title")).to_have_text(
            "Kế hoạch chuyển đổi số năm 2027 của tỉnh Quảng Ninh")

        # follow the presenter: the chair presents and turns to page 4; the delegate's reader goes there
        await chair.locator("#present-btn").click()
        await expect(chair.locator("#present-btn")).to_have_text("Dừng trình chiếu")
        await chair.locator(".reader-bar input[type=number]").fill("4")
        await chair.locator(".reader-bar input[type=number]").press("Enter")
        page_no = delegate.locator(".reader-bar input[type=number]")
        await expect(page_no).to_have_value("4")

        # the delegate leaves follow mode by paging on its own, then rejoins
        await delegate.get_by_role("button", name="Trang trước").click()
        await expect(delegate.locator("#follow-btn")).to_have_attribute("aria-pressed", "false")
        await expect(page_no).to_have_value("3")
        await chair.locator(".reader-bar input[type=number]").fill("6")
        await chair.locator(".reader-bar input[type=number]").press("Enter")
        await asyncio.sleep(1.0)
        await expect(page_no).to_have_value("3")  # not following: stays where the reader is
        await delegate.locator("#follow-btn").click()
        await expect(page_no).to_have_value("6")

        # the delegate's tablet drops off the network; the chair moves on; it catches up when back
        await context.set_offline(True)
        await expect(delegate.locator("#offline-banner")).to_be_visible(timeout=20_000)
        await chair.locator("#next-item").click()
        await expect(chair.locator('#agenda li[data-current="true"]')).to_have_attribute("data-item", str(items[2]))
        await context.set_offline(False)
        await expect(delegate.locator("#room")).to_have_attribute("data-live", "online", timeout=30_000)
        await expect(current).to_have_attribute("data-item", str(items[2]))
        # a confidential item the delegate is listed on: they see its title and document
        await expect(current).to_contain_text("Phương án kiện toàn nhân sự Ban Quản lý dự án")
        await expect(delegate.locator(".reader-bar .title")).to_have_text("Tờ trình nhân sự")
    finally:
        await chair_ctx.close()
