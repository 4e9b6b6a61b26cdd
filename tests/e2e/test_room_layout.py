"""The room on a 10-inch tablet and a phone (issue 22): the toolbars fit the screen, the document has the width in
landscape, an opened poll shows over the reader without scrolling, the side panels fold and stay folded after a
reload, leaving the meeting and ending it with a confidential item not discussed are asked first."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, login, new_context
from tests.e2e.test_voting import started_meeting

pytestmark = pytest.mark.e2e

SIZES = [(1280, 800), (1024, 768), (800, 1280), (390, 844)]


async def _room(browser: Any, server: str, user: str, mid: int, width: int, height: int) -> tuple[Any, Any]:
    from playwright.async_api import expect

    ctx = await new_context(browser, viewport={"width": width, "height": height}, is_mobile=width < 600)
    page = await ctx.new_page()
    await login(page, server, user)
    await page.goto(f"{server}/meetings/{mid}/room")
    await expect(page.locator("#room")).to_have_attribute("data-live", "online")
    return ctx, page


async def _api(page: Any, method: str, url: str, body: Any = None) -> Any:
    return await page.evaluate(
        """async ([method, url, body]) => {
            const headers = {"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
                             "Content-Type": "application/json", Accept: "application/json"};
            const res = await fetch(url, {method, headers, body: body === null ? undefined : JSON.stringify(body)});
            const data = await res.json().catch(() => null);
            if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(data)}`);
            return data;
        }""", [method, url, body])


async def _off_screen_controls(page: Any) -> list[dict[str, Any]]:
    """Visible controls of the room's toolbars whose box leaves the window's width."""
    return await page.evaluate("""() => {
        const out = [];
        const w = window.innerWidth;
        const bars = [".room-bar", ".reader-bar", ".annot-bar"];
        const sel = bars.map((b) => `${b} button, ${b} select, ${b} input`).join(", ");
        for (const el of document.querySelectorAll(sel)) {
            const r = el.getBoundingClientRect();
            if (!r.width || !r.height || getComputedStyle(el).visibility === "hidden") continue;
            if (r.left < -0.5 || r.right > w + 0.5) out.push({text: el.textContent || el.getAttribute("aria-label"),
                                                           left: r.left, right: r.right, width: w});
        }
        return out;
    }""")


async def test_toolbars_fit_and_the_document_has_the_width(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    chair_ctx, chair = await _room(browser, live_server, "lanhdao", mid, 1280, 800)
    try:
        await chair.locator("#next-item").click()  # the first item's document opens on every tablet
        for width, height in SIZES:
            for user in ("lanhdao", "chanhvanphong"):
                ctx, page = await _room(browser, live_server, user, mid, width, height)
                try:
                    await expect(page.locator('.reader-page[data-page="1"] img')).to_be_visible()
                    await expect(page.locator(".annot-bar")).to_be_visible()
                    follow = page.locator("#follow-btn")
                    if user == "chanhvanphong":
                        await expect(follow).to_have_text("Đang theo người trình bày")
                        await expect(follow).to_be_in_viewport()
                    else:
                        await expect(page.locator("#present-btn")).to_be_in_viewport()
                    bad = await _off_screen_controls(page)
                    assert bad == [], (width, height, user, bad)
                    size = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                    assert size[0] <= size[1], (width, height, user, size)
                    # the document scrolls inside the reader, under its bars (in portrait it grew to the whole
                    # document and the bars scrolled away with the page)
                    scroller = await page.locator(".reader-scroll").bounding_box()
                    assert scroller is not None and 150 < scroller["height"] < height, (width, height, scroller)
                    if width > height:  # landscape, document focus (the default)
                        await expect(page.locator("#room")).to_have_attribute("data-layout", "document")
                        box = await page.locator("#reader").bounding_box()
                        assert box is not None and box["width"] >= 0.65 * width, (width, box)
                    # zoom and search are one tap away, in "⋯ Thêm"
                    await page.get_by_role("button", name="⋯ Thêm").click()
                    await expect(page.get_by_role("button", name="Phóng to")).to_be_in_viewport()
                    await page.keyboard.press("Escape")
                    await expect(page.get_by_role("button", name="Phóng to")).to_be_hidden()
                finally:
                    await ctx.close()
    finally:
        await chair_ctx.close()


async def test_an_opened_poll_shows_without_scrolling(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    chair_ctx, chair = await _room(browser, live_server, "lanhdao", mid, 1280, 800)
    try:
        for n, (width, height) in enumerate(SIZES):
            ctx, page = await _room(browser, live_server, "phochutich", mid, width, height)
            try:
                poll = await _api(chair, "POST", "/api/polls", {
                    "meeting_id": mid, "title": f"Thông qua Đề án số {n + 1} của huyện Đông Triều",
                    "method": "yes_no_abstain"})
                await _api(chair, "POST", f"/api/polls/{poll['id']}/open", {})
                alert = page.locator("#room-alert")
                await expect(alert).to_contain_text(f"Thông qua Đề án số {n + 1}")
                await expect(alert).to_be_in_viewport(ratio=1)
                scroll = await page.evaluate("window.scrollY")
                assert scroll == 0, scroll
                # one tap on the banner: the ballot is in view
                await alert.get_by_role("button", name="Bỏ phiếu").click()
                await expect(alert).to_be_hidden()
                ballot = page.locator("[data-voting-panel]").get_by_role("button", name="Tán thành", exact=True)
                await expect(ballot).to_be_in_viewport()
                await _api(chair, "POST", f"/api/polls/{poll['id']}/cancel", {})
                if width == 800:
                    # the floor given to me: the same banner, over the reader
                    req = await _api(page, "POST", f"/api/meetings/{mid}/speakers", {})
                    await _api(chair, "POST", f"/api/meetings/{mid}/speakers/{req['id']}/grant", {})
                    await expect(alert).to_contain_text("Chủ trì đã mời bạn phát biểu.")
                    await expect(alert).to_be_in_viewport(ratio=1)
                    await alert.get_by_role("button", name="Đóng").click()
                    await expect(alert).to_be_hidden()
                    await _api(chair, "POST", f"/api/meetings/{mid}/speakers/{req['id']}/finish")
            finally:
                await ctx.close()
    finally:
        await chair_ctx.close()


async def test_panels_fold_and_stay_folded(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    ctx, page = await _room(browser, live_server, "phochutich", mid, 1280, 800)
    try:
        room = page.locator("#room")
        before = await page.locator("#reader").bounding_box()
        await expect(page.locator("#room-side")).to_be_visible()
        await page.locator("#toggle-side").click()
        await expect(room).to_have_attribute("data-side", "closed")
        await expect(page.locator("#room-side")).to_be_hidden()
        await expect(page.locator("#toggle-side")).to_have_attribute("aria-expanded", "false")
        after = await page.locator("#reader").bounding_box()
        assert before and after and after["width"] > before["width"] + 250, (before, after)
        await page.locator("#toggle-agenda").click()
        agenda = await room.get_attribute("data-agenda")
        await page.reload()
        await expect(room).to_have_attribute("data-live", "online")
        await expect(room).to_have_attribute("data-side", "closed")
        await expect(room).to_have_attribute("data-agenda", agenda or "")
        await expect(page.locator("#room-side")).to_be_hidden()
        await page.locator("#toggle-side").click()
        await expect(page.locator("#room-side")).to_be_visible()

        # side by side: the video beside the document; the choice is remembered too
        await page.get_by_label("Bố cục: tài liệu và video").select_option("split")
        await expect(room).to_have_attribute("data-layout", "split")
        video = await page.locator("#video").bounding_box()
        reader = await page.locator("#reader").bounding_box()
        assert video and reader and reader["x"] >= video["x"] + video["width"] - 1, (video, reader)
        assert reader["height"] > 400, reader
        await page.reload()
        await expect(room).to_have_attribute("data-layout", "split")
        await page.get_by_label("Bố cục: tài liệu và video").select_option("document")

        # full screen: the reader fills the screen, the follow state still in sight
        await page.locator("#fullscreen-btn").click()
        await expect(room).to_have_class("room is-fullscreen")
        main = await page.locator("#room-main").bounding_box()
        assert main is not None and main["width"] >= 1279 and main["height"] >= 799, main
        await expect(page.locator("#follow-btn")).to_be_in_viewport()
        await page.locator("#fullscreen-btn").click()
        await expect(room).not_to_have_class("room is-fullscreen")
    finally:
        await ctx.close()


async def test_leaving_is_asked_and_ending_warns_of_a_confidential_item(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    ctx, page = await _room(browser, live_server, "phochutich", mid, 800, 1280)
    chair_ctx, chair = await _room(browser, live_server, "lanhdao", mid, 1024, 768)
    try:
        quorum = chair.locator("#quorum")
        await expect(quorum).to_contain_text("Có mặt 3/")
        # the delegate taps "Rời họp": asked first; "Hủy" keeps them checked in
        leave = page.locator("#people li").filter(has_text="Lê Minh Tuấn").get_by_role("button", name="Rời họp")
        await leave.click()
        dialog = page.locator("dialog.ask-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("Rời cuộc họp?")
        await dialog.get_by_role("button", name="Hủy").click()
        await expect(dialog).to_have_count(0)
        await expect(quorum).to_contain_text("Có mặt 3/")
        await leave.click()
        await page.locator("dialog.ask-dialog").get_by_role("button", name="Rời họp").click()
        await expect(quorum).to_contain_text("Có mặt 2/")

        # the chair ends the meeting with the confidential item not reached: warned by its title
        await chair.locator("#next-item").click()
        await expect(chair.locator('#agenda li[data-current="true"]')).to_have_count(1)
        await chair.locator('#chair-controls [data-action="end"]').click()
        warn = chair.locator("dialog.ask-dialog")
        await expect(warn).to_contain_text("Còn nội dung mật chưa thảo luận")
        await expect(warn).to_contain_text("Phương án kiện toàn nhân sự Ban Quản lý dự án")
        await warn.get_by_role("button", name="Hủy").click()
        await expect(chair.locator("#room-state")).to_have_text("Đang họp")
        await chair.locator('#chair-controls [data-action="end"]').click()
        await chair.locator("dialog.ask-dialog").get_by_role("button", name="Vẫn kết thúc").click()
        await expect(chair.locator("#room-state")).to_have_text("Đã kết thúc")
        # "Đang thảo luận" no longer on the last item
        await expect(page.locator("#room-state")).to_have_text("Đã kết thúc")
        await expect(page.locator("#agenda .now")).to_have_count(0)
        await expect(chair.locator("#agenda .now")).to_have_count(0)
    finally:
        await ctx.close()
        await chair_ctx.close()


async def test_a_chair_message_raises_a_banner_on_every_tablet(browser: Any, live_server: LiveServer) -> None:
    """Issue 22 item 3: the chair types a message in the room; a phone and a portrait tablet see it over the
    reader without scrolling, as text (markup in it is shown, not run)."""
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    chair_ctx, chair = await _room(browser, live_server, "lanhdao", mid, 1280, 800)
    others = [await _room(browser, live_server, "phochutich", mid, w, h) for w, h in ((390, 844), (800, 1280))]
    try:
        await chair.get_by_role("button", name="Nhắn cả phòng").click()
        dialog = chair.get_by_role("dialog", name="Nhắn cả phòng họp")
        await dialog.get_by_label("Nội dung tin nhắn").fill("Nghỉ giải lao 15 phút <b>10 giờ 30</b> họp tiếp.")
        await dialog.get_by_role("button", name="Gửi").click()
        await expect(chair.locator("#toast")).to_contain_text("Đã gửi tin nhắn")
        for _ctx, page in others:
            alert = page.locator("#room-alert")
            await expect(alert).to_contain_text("Trần Văn Hùng: Nghỉ giải lao 15 phút <b>10 giờ 30</b> họp tiếp.")
            await expect(alert).to_be_in_viewport(ratio=1)
            assert await alert.locator("b").count() == 0
            # a delegate has no such button, and the server refuses them too
            assert await page.get_by_role("button", name="Nhắn cả phòng").count() == 0
            try:
                await _api(page, "POST", f"/api/meetings/{mid}/messages", {"text": "Tôi cũng muốn nhắn"})
            except Exception as err:  # page.evaluate wraps the thrown Error
                assert "403" in str(err)
            else:
                raise AssertionError("a delegate sent a room message")
    finally:
        for ctx, _page in others:
            await ctx.close()
        await chair_ctx.close()
