"""The room screen (#20) in headless Chromium at 1920x1080 against a real server: the chair copies the signed link
from the meeting's page and the wall follows the meeting live — the item the chair moves to, the page presented,
the speaker given the floor with their countdown (paused by the chair), the question they sent in and their
delegation's speaking time left, the vote count as a delegate votes, the
published result's headline and chart; resetting the link ends the old screen."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, login, new_context
from tests.e2e.test_voting import open_voting, started_meeting

pytestmark = pytest.mark.e2e

FIRST_ITEM = "Báo cáo tình hình kinh tế - xã hội tháng 11 và nhiệm vụ tháng 12"
QUESTION = "Đề nghị làm rõ tiến độ giải ngân vốn đầu tư công"


async def test_wall_screen_follows_the_meeting(browser: Any, context: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    chair = await context.new_page()
    await login(chair, live_server, "lanhdao")

    # the meeting's page: a default speaking time, then the screen's link to copy
    await chair.goto(f"{live_server}/meetings/{mid}")
    card = chair.locator("#screen-card")
    await card.get_by_label("Thời gian phát biểu mặc định mỗi lượt (phút, để trống: không giới hạn)").fill("2")
    await card.get_by_role("button", name="Lưu").click()
    await expect(chair.locator("#toast")).to_contain_text("Đã lưu thời gian phát biểu")
    # a delegation (tổ đại biểu) with ten minutes for its members' turns; the delegate is put in it
    delegations = chair.locator("#delegations-card")
    await delegations.get_by_label("Tên tổ").fill("Tổ đại biểu số 1")
    await delegations.get_by_label("Thời gian của tổ (phút)").fill("10")
    async with chair.expect_navigation():
        await delegations.get_by_role("button", name="Thêm tổ đại biểu").click()
    await expect(delegations.locator("#delegation-list")).to_contain_text("Tổ đại biểu số 1 — 10 phút")
    await delegations.get_by_label("Tổ đại biểu của Lê Minh Tuấn").select_option(label="Tổ đại biểu số 1")
    await expect(chair.locator("#toast")).to_contain_text("Đã xếp đại biểu vào tổ")
    await card.get_by_role("button", name="Tạo đường dẫn").click()
    link = chair.locator("#screen-url")
    await expect(link).to_have_value(re.compile(r"/screen/\d+\."))
    url = await link.input_value()

    wall_ctx = await new_context(browser, viewport={"width": 1920, "height": 1080}, has_touch=False)
    delegate_ctx = await new_context(browser)
    try:
        wall = await wall_ctx.new_page()
        await wall.goto(url)  # no login: the link is the credential
        await expect(wall.locator("#screen")).to_have_attribute("data-live", "online")
        await expect(wall.locator("#sc-present")).to_have_text(re.compile(r"^3/\d+$"))
        assert await wall.locator("button, input, select, a").count() == 0  # a display: no controls

        # the chair moves to the first item and presents its document: the wall follows
        await chair.goto(f"{live_server}/meetings/{mid}/room")
        await expect(chair.locator("#room")).to_have_attribute("data-live", "online")
        await chair.locator("#next-item").click()
        await expect(wall.locator("#sc-item-title")).to_have_text(FIRST_ITEM)
        await expect(chair.locator(".reader-bar .title")).to_have_text(FIRST_ITEM)
        await chair.locator("#present-btn").click()
        await expect(chair.locator("#present-btn")).to_have_text("Dừng trình chiếu")
        await expect(wall.locator("#sc-page-img")).to_have_attribute("data-page", "1")
        await chair.locator(".reader-bar input[type=number]").fill("3")
        await chair.locator(".reader-bar input[type=number]").press("Enter")
        await expect(wall.locator("#sc-page-img")).to_have_attribute("data-page", "3")
        await expect(wall.locator(".sc-page-no")).to_have_text("Trang 3/24")
        await wall.wait_for_function("() => document.getElementById('sc-page-img')?.naturalWidth > 0")

        # a delegate registers to speak with a question; the chair reads it in the queue and gives the floor: the
        # wall shows the speaker, the question, the countdown and the delegation's time left
        delegate = await delegate_ctx.new_page()
        await login(delegate, live_server, "phochutich")
        await delegate.goto(f"{live_server}/meetings/{mid}")
        await delegate.get_by_label("Câu hỏi hoặc ý kiến muốn trình bày (không bắt buộc)").fill(QUESTION)
        async with delegate.expect_navigation():
            await delegate.get_by_role("button", name="Đăng ký phát biểu").click()
        await expect(delegate.locator("#registered")).to_be_visible()
        await delegate.goto(f"{live_server}/meetings/{mid}/room")
        await expect(delegate.locator("#room")).to_have_attribute("data-live", "online")
        await delegate.locator("#tab-speakers").click()
        await chair.locator("#tab-speakers").click()
        await expect(chair.locator("#queue")).to_contain_text(f"Câu hỏi: {QUESTION}")
        await chair.locator("#queue").get_by_role("button", name="Mời phát biểu").click()
        await expect(wall.locator("#sc-speaker-name")).to_have_text("Lê Minh Tuấn")
        await expect(wall.locator("#sc-question")).to_contain_text(QUESTION)
        await expect(wall.locator("#sc-delegation")).to_have_text(re.compile(r"^Tổ đại biểu số 1: còn 0?9:[0-5]\d$"))
        await expect(chair.locator("#speaker-delegation")).to_have_text(
            re.compile(r"^Tổ đại biểu số 1: còn 0?9:[0-5]\d$"))
        await expect(chair.locator("#speaker-question")).to_contain_text(QUESTION)
        countdown = wall.locator("#sc-countdown")
        await expect(countdown).to_have_text(re.compile(r"^0[12]:[0-5]\d$"))  # two minutes, counting down
        await expect(wall.locator("#sc-clock-label")).to_have_text("Thời gian còn lại")
        await expect(countdown).to_have_attribute("data-over", "false")
        await expect(delegate.locator("#speaker-timer")).to_have_text(re.compile(r"^0[12]:[0-5]\d$"))  # their tablet
        size = await countdown.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
        assert size >= 100  # read from the back of the room
        await chair.locator("#speaker-pause").click()
        await expect(countdown).to_have_attribute("data-paused", "true")
        await expect(wall.locator("#sc-clock-label")).to_have_text("Tạm dừng")
        await chair.locator("#speaker-extend").click()
        await expect(countdown).to_have_text(re.compile(r"^0[23]:[0-5]\d$"))  # a minute more

        # a poll: the count moves as the delegate votes; the published result's headline and chart appear
        await open_voting(chair, live_server, mid)
        panel = chair.locator("[data-voting-panel]")
        await panel.locator("summary", has_text="Tạo biểu quyết").click()
        await panel.get_by_label("Nội dung biểu quyết").fill("Thông qua Kế hoạch chuyển đổi số năm 2027")
        await panel.get_by_label("Quy tắc thông qua").select_option(label="Quá nửa số đại biểu có mặt")
        await panel.get_by_role("button", name="Tạo biểu quyết").click()
        await panel.get_by_role("button", name="Mở biểu quyết").click()
        await expect(wall.locator("#sc-poll-title")).to_have_text("Thông qua Kế hoạch chuyển đổi số năm 2027")
        await expect(wall.locator("#sc-cast")).to_have_text("0/3")
        await open_voting(delegate, live_server, mid)
        ballot = delegate.locator("[data-voting-panel]")
        await ballot.get_by_role("button", name="Tán thành", exact=True).click()
        await ballot.get_by_role("button", name="Gửi phiếu").click()
        await expect(wall.locator("#sc-cast")).to_have_text("1/3")
        await panel.get_by_role("button", name="Kết thúc biểu quyết").click()
        await chair.locator("dialog.ask-dialog").get_by_role("button", name="Kết thúc và đếm phiếu").click()
        await expect(wall.locator("#sc-poll")).to_contain_text("chờ công bố kết quả")
        await expect(wall.locator("#sc-headline")).to_have_count(0)  # not before it is published
        await panel.get_by_role("button", name="Công bố kết quả").click()
        headline = await chair.locator("[data-voting-panel] .vp-headline").inner_text()
        assert "1/3" in headline
        await expect(wall.locator("#sc-headline")).to_have_text(headline)
        await expect(wall.locator("#sc-verdict")).to_have_text(
            await chair.locator("[data-voting-panel] .vp-verdict").inner_text()
        )
        await expect(wall.locator("#sc-poll")).to_contain_text("Điều kiện thông qua: Quá nửa số đại biểu có mặt")
        await expect(wall.locator("#sc-poll svg.bar-chart g[data-label='Tán thành']")).to_have_attribute(
            "data-value", "1"
        )
        fits = await wall.evaluate(
            "() => [...document.querySelectorAll('.sc-card, .sc-page')].every("
            "el => el.getBoundingClientRect().bottom <= innerHeight)"
        )
        assert fits  # everything on one 1920x1080 screen, nothing to scroll

        # the chair makes a new link: the old screen stops at once
        await chair.goto(f"{live_server}/meetings/{mid}")
        await chair.locator("#screen-card").get_by_role("button", name="Tạo đường dẫn mới").click()
        await chair.locator("dialog.ask-dialog").get_by_role("button", name="Tạo đường dẫn mới").click()
        await expect(chair.locator("#screen-url")).not_to_have_value(url)
        await expect(wall.locator("#sc-ended")).to_be_visible()
        await expect(wall.locator("#screen")).to_have_attribute("data-live", "ended")
    finally:
        await wall_ctx.close()
        await delegate_ctx.close()
