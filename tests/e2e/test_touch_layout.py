"""Phones and tablets: what a new user trips over first, in headless Chromium against a real server.

- every check box is a 44 px touch target (the native box was 24 px);
- no key page is wider than a 390 px phone (nothing to scroll sideways but tables inside their own box);
- the minutes PDF is offered only once the meeting has started; a conclusion's deadline reads dd/mm/yyyy;
- the room's reader hint wraps inside a phone's width;
- statistics charts keep long agency names whole on a phone;
- search results are not pushed below eight filter fields on a phone.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, login, new_context

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
TAP = 44

# Every page of the clerk's and the chair's day, plus the administrator's.
CLERK_PAGES = [
    "/", "/documents", "/documents/new", "/documents/1", "/tasks", "/tasks/1", "/outgoing", "/dossiers",
    "/search?q=c%C3%B4ng+v%C4%83n", "/statistics", "/meetings", "/meetings/1", "/meetings/1/room",
    "/meetings/1/documents/1", "/meetings/1/polls", "/calendar", "/calendar/month", "/work-calendar",
]
ADMIN_PAGES = ["/admin/users", "/admin/audit", "/admin/units", "/admin/units/merge", "/admin/positions"]


async def _phone(browser: Any, base: str, username: str) -> Any:
    ctx = await new_context(browser, viewport=PHONE, is_mobile=True)
    page = await ctx.new_page()
    await login(page, base, username)
    return page


async def _overflow(page: Any) -> dict[str, Any]:
    """The page's width against the window's, and the first elements sticking out (for the failure message)."""
    return await page.evaluate("""() => {
      const out = [];
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.width && r.right > innerWidth + 1)
          out.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(r.right)}`);
        if (out.length > 5) break;
      }
      return {scroll: document.documentElement.scrollWidth, inner: innerWidth, wide: out};
    }""")


async def _check_boxes(page: Any) -> list[dict[str, float]]:
    boxes = []
    for box in await page.locator("input[type=checkbox]:visible").all():
        bb = await box.bounding_box()
        assert bb is not None
        boxes.append(bb)
    return boxes


async def test_check_boxes_are_touch_targets_on_a_phone(browser: Any, live_server: LiveServer) -> None:
    # The administrator gives roles with check boxes.
    admin = await _phone(browser, live_server, "admin")
    await admin.goto(live_server + "/admin/users")
    boxes = await _check_boxes(admin)
    assert len(boxes) >= 4, "the role check boxes are on the page"
    for bb in boxes:
        assert bb["width"] >= TAP and bb["height"] >= TAP, bb
    # Ticking one by tapping its box works (the drawn box is the real input).
    first = admin.locator("input[name=roles]").first
    await first.tap()
    assert await first.is_checked()

    # The clerk picks the recipients of a new outgoing draft.
    clerk = await _phone(browser, live_server, "vanthu")
    await clerk.goto(live_server + "/outgoing")
    await clerk.get_by_text("Soạn dự thảo mới", exact=True).click()
    boxes = await _check_boxes(clerk)
    assert boxes, "the recipient check boxes are shown"
    for bb in boxes:
        assert bb["width"] >= TAP and bb["height"] >= TAP, bb
    await admin.context.close()
    await clerk.context.close()


async def test_key_pages_fit_a_phone(browser: Any, live_server: LiveServer) -> None:
    for username, paths in (("vanthu", CLERK_PAGES), ("admin", ADMIN_PAGES)):
        page = await _phone(browser, live_server, username)
        for path in paths:
            response = await page.goto(live_server + path)
            assert response is not None and response.ok, (path, response and response.status)
            await page.wait_for_timeout(400)  # scripts draw charts, the reader and the live panels
            size = await _overflow(page)
            assert size["scroll"] <= size["inner"], f"{path} is wider than the phone: {size}"
        await page.context.close()


async def test_minutes_pdf_only_after_the_meeting_started(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    chair = await _phone(browser, live_server, "lanhdao")
    await chair.goto(live_server + "/meetings/1")
    await expect(chair.locator(".mt-state")).to_have_text("Đã gửi giấy mời")
    minutes = chair.locator('a[href$="/minutes.pdf"]')
    await expect(chair.get_by_role("button", name="Bắt đầu họp")).to_be_visible()
    await expect(minutes).to_have_count(0)

    # Before the start the room has no document open: its hint wraps inside the phone's width.
    await chair.goto(live_server + "/meetings/1/room")
    hint = chair.locator(".reader-empty")
    await expect(hint).to_be_visible()
    bb = await hint.bounding_box()
    assert bb is not None and bb["x"] >= 0 and bb["x"] + bb["width"] <= PHONE["width"], bb
    assert bb["height"] > 40, "the hint wraps onto more than one line"

    # The chair starts the meeting: now the minutes can be downloaded.
    await chair.goto(live_server + "/meetings/1")
    async with chair.expect_navigation():
        await chair.get_by_role("button", name="Bắt đầu họp").click()
    await chair.goto(live_server + "/meetings/1")
    await expect(chair.locator(".mt-state")).to_have_text("Đang họp")
    await expect(minutes).to_have_count(1)
    await expect(minutes).to_have_text("Tải biên bản (PDF)")

    # A conclusion's deadline is typed as dd/mm/yyyy whatever the tablet's language (a date input showed
    # mm/dd/yyyy on an English one), tidied when the field is left, and stored as that day.
    await chair.goto(live_server + "/meetings/1/room")
    await chair.locator("#tab-minutes").click()
    await chair.locator("#agenda li > button").first.click()
    form = chair.locator("#minutes form")
    await form.locator("textarea[name=text]").fill("Giao Văn phòng tổng hợp, báo cáo kết quả thực hiện")
    await form.locator("select[name=assignee_id]").select_option(index=1)
    deadline = form.locator("input[name=deadline]")
    assert await deadline.get_attribute("type") == "text"
    await deadline.fill("5/1/2027")
    await deadline.press("Tab")
    await expect(deadline).to_have_value("05/01/2027")
    await form.get_by_role("button", name="Thêm kết luận").click()
    await expect(chair.locator("#minutes .queue")).to_contain_text("hạn 05/01/2027")
    await chair.context.close()


async def test_statistics_and_search_read_well_on_a_phone(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    page = await _phone(browser, live_server, "lanhdao")
    await page.goto(live_server + "/statistics?level=agency")
    names = page.locator("#chart-status .of-chart-name")
    await expect(names.first).to_be_visible()
    shown = await names.first.evaluate("n => n.firstChild.textContent")  # the label drawn (a <title> follows it)
    assert shown == "Ủy ban nhân dân tỉnh Quảng Ninh"  # whole, not "Ủy ban nhân d…"
    bb = await names.first.bounding_box()
    assert bb is not None and bb["x"] >= 0 and bb["x"] + bb["width"] <= PHONE["width"], bb
    size = await names.first.evaluate("n => parseFloat(getComputedStyle(n).fontSize)")
    assert size >= 15

    # After a search the filters fold away and the results follow the keyword within the first screen.
    clerk = await _phone(browser, live_server, "vanthu")
    await clerk.goto(live_server + "/search?q=c%C3%B4ng+v%C4%83n")
    filters = clerk.locator("details.of-filters")
    await expect(filters).not_to_have_attribute("open", "")
    results = clerk.locator("#h-hits")
    bb = await results.bounding_box()
    assert bb is not None and bb["y"] + bb["height"] <= PHONE["height"], bb
    await expect(clerk.locator(".of-list > li").first).to_be_visible()
    # A filter in use keeps them open, with the count on the button.
    await clerk.goto(live_server + "/search?q=c%C3%B4ng+v%C4%83n&direction=in")
    await expect(filters).to_have_attribute("open", "")
    await expect(filters.locator("summary .of-count")).to_have_text("1")
    await page.context.close()
    await clerk.context.close()


async def test_confidential_item_readers_are_ticked_not_ctrl_clicked(browser: Any, live_server: LiveServer) -> None:
    """Who may read a confidential agenda item: check boxes (44 px) instead of a multiple list box that needs
    Ctrl on a desktop and cannot be used reliably with a finger."""
    from playwright.async_api import expect

    clerk = await _phone(browser, live_server, "vanthu")
    await clerk.goto(live_server + "/meetings/1")
    await clerk.get_by_text("Thêm nội dung", exact=True).click()
    form = clerk.locator("#item-form")
    await expect(form.locator("select[multiple]")).to_have_count(0)
    person = form.locator("label.check", has_text="Lê Minh Tuấn")
    await expect(person).to_be_visible()
    bb = await person.locator("input").bounding_box()
    assert bb is not None and bb["width"] >= TAP and bb["height"] >= TAP, bb
    await form.locator("input[name=title]").fill("Báo cáo kết quả thanh tra công vụ năm 2026")
    await form.locator("label.check", has_text="Nội dung mật").tap()
    await person.tap()
    async with clerk.expect_navigation():
        await form.get_by_role("button", name="Thêm vào chương trình").click()
    snap = await (await clerk.request.get(live_server + "/api/meetings/1")).json()
    item = next(i for i in snap["agenda"] if i["title"] == "Báo cáo kết quả thanh tra công vụ năm 2026")
    reader = next(p for p in snap["participants"] if p["name"] == "Lê Minh Tuấn")
    assert item["confidential"] is True
    assert item["allowed_user_ids"] == [reader["user_id"]]
    await clerk.context.close()


async def test_phone_held_sideways_keeps_the_document_in_view(browser: Any, live_server: LiveServer) -> None:
    """844 x 390: the header is one row with the menu button (two rows took 116 px) and the reader's bars do not
    wrap, so the page of the document keeps most of the height."""
    from playwright.async_api import expect

    ctx = await new_context(browser, viewport={"width": 844, "height": 390}, is_mobile=True)
    page = await ctx.new_page()
    await login(page, live_server, "phochutich")
    await page.goto(live_server + "/meetings/1/documents/1")
    await expect(page.locator(".menu-toggle")).to_be_visible()
    header = await page.locator(".topbar").bounding_box()
    assert header is not None and header["height"] <= 64, header
    await expect(page.locator(".reader-page").first).to_be_visible()
    scroller = await page.locator(".reader-scroll").bounding_box()
    assert scroller is not None and scroller["height"] >= 150, scroller
    size = await _overflow(page)
    assert size["scroll"] <= size["inner"], size
    await ctx.close()
