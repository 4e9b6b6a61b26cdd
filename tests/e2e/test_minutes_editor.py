"""The secretary's full-width minutes editor (issue 22 item 5), in Chromium against a real server: every item has
its own section, text is saved as it is typed and the save state stays on screen, a change the chair saves from
another device appears live, and text typed without a network is kept, marked unsaved, and saved on reconnect."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from eoffice import identity
from meetings import agenda, lifecycle, meetings
from storage.db import Database
from tests.e2e.conftest import LiveServer, login, new_context

pytestmark = pytest.mark.e2e


async def _meeting(server: LiveServer) -> tuple[int, list[int], str]:
    """A meeting in progress with two agenda items, and an API token of its chair."""
    db = Database(f"sqlite+aiosqlite:///{server.var_dir}/eoffice.db")
    try:
        async with db.uow() as uow:
            u = {name: await identity.get_user(uow, name) for name in ("vanthu", "lanhdao", "chanhvanphong")}
            m = await meetings.create_meeting(
                uow, u["vanthu"], title="Họp UBND tỉnh tháng 12", place="Phòng họp số 2",
                starts_at=dt.datetime.now(dt.UTC), chair_id=u["lanhdao"].id, secretary_id=u["chanhvanphong"].id)
            items = [await agenda.add_item(uow, u["vanthu"], m.id, title=t) for t in (
                "Kế hoạch sáp nhập xã Yên Đức và xã Hoàng Quế", "Dự toán ngân sách năm 2027")]
            await meetings.send_invitations(uow, u["vanthu"], m.id)
            await uow.commit()
        async with db.uow() as uow:
            await lifecycle.start_meeting(uow, u["lanhdao"], m.id)
            token = await identity.create_token(uow, None, u["lanhdao"])
            await uow.commit()
        return m.id, [i.id for i in items], token
    finally:
        await db.dispose()


async def test_secretary_writes_the_minutes_full_width(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid, item_ids, token = await _meeting(live_server)
    ctx = await new_context(browser, viewport={"width": 1280, "height": 800})
    chair = httpx.AsyncClient(base_url=str(live_server), headers={"Authorization": f"Bearer {token}"}, timeout=30)
    try:
        page = await ctx.new_page()
        await login(page, str(live_server), "chanhvanphong")
        await page.goto(f"{live_server}/meetings/{mid}/minutes")
        sections = page.locator(".minutes-section")
        await expect(sections).to_have_count(2)
        await expect(sections.nth(0).locator("h2")).to_have_text("1. Kế hoạch sáp nhập xã Yên Đức và xã Hoàng Quế")
        first, second = sections.nth(0), sections.nth(1)
        area = first.locator("textarea.minutes-full-area")
        box = await area.bounding_box()
        assert box is not None and box["width"] >= 0.7 * 1280, box  # full width, not a 320 px side bar

        text = "Đồng chí Giám đốc Sở Nội vụ báo cáo phương án; các đại biểu thống nhất."
        await area.fill(text)
        await expect(first.locator(".minutes-status")).to_contain_text("Đã lưu lúc", timeout=10_000)
        await expect(page.locator("#minutes-save-state")).to_contain_text("Mọi thay đổi đã được lưu")
        state = (await chair.get(f"/api/meetings/{mid}")).json()
        assert state["minutes"]["items"][str(item_ids[0])]["discussion"] == text

        # the chair saves the second item from the room: it appears here; the first keeps its save state
        said = "Chủ tọa kết luận: giao Sở Tài chính hoàn thiện dự toán."
        r = await chair.put(f"/api/meetings/{mid}/items/{item_ids[1]}/minutes", json={"text": said, "revision": 0})
        assert r.status_code == 200, r.text
        await expect(second.locator("textarea.minutes-full-area")).to_have_value(said)
        r = await chair.post(f"/api/meetings/{mid}/items/{item_ids[1]}/conclusions",
                             json={"text": "Giao Sở Tài chính trình dự toán trước 15/12."})
        assert r.status_code == 201, r.text
        await expect(second.locator(".minutes-conclusions li")).to_contain_text("Giao Sở Tài chính trình dự toán")
        await expect(first.locator(".minutes-status")).to_contain_text("Đã lưu lúc")

        # a conclusion assigned to an agency, not a person in the meeting (issue 20): it names the unit
        form = first.locator("form.minutes-new-conclusion")
        await form.locator("textarea[name=text]").fill("Sở Nội vụ hoàn thiện hồ sơ đề án sáp nhập")
        await form.locator("select[name=assignee]").select_option(label="Sở Nội vụ")
        await form.get_by_role("button", name="Thêm kết luận").click()
        await expect(first.locator(".minutes-conclusions li")).to_contain_text("Giao: Sở Nội vụ")
        concl = (await chair.get(f"/api/meetings/{mid}")).json()["minutes"]["items"][str(item_ids[0])]["conclusions"]
        assert concl[0]["assignee_unit_id"] and concl[0]["assignee_id"] is None

        # no network: the text stays on screen, marked unsaved; back online it is saved
        await ctx.set_offline(True)
        more = text + "\nÝ kiến bổ sung của đại biểu xã Yên Đức."
        await area.fill(more)
        await expect(first.locator(".minutes-status")).to_contain_text("chưa lưu", timeout=10_000)
        await expect(page.locator("#minutes-save-state")).to_contain_text("chưa lưu được")
        await ctx.set_offline(False)
        await expect(first.locator(".minutes-status")).to_contain_text("Đã lưu lúc", timeout=30_000)
        state = (await chair.get(f"/api/meetings/{mid}")).json()
        assert state["minutes"]["items"][str(item_ids[0])]["discussion"] == more
    finally:
        await chair.aclose()
        await ctx.close()
