"""Paper ballots in a secret poll, in headless Chromium: the chair enters the papers of members without a tablet."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, login
from tests.e2e.test_voting import open_voting, started_meeting

pytestmark = pytest.mark.e2e


async def test_chair_enters_paper_ballots_in_a_secret_poll(context: Any, live_server: LiveServer) -> None:
    """Secret poll, two members without a tablet: the chair ticks them, enters their two papers from the box
    with 44 px buttons, and the count and the result include them."""
    from playwright.async_api import expect

    mid = await started_meeting(live_server.var_dir)
    chair = await context.new_page()
    await login(chair, live_server, "lanhdao")
    await open_voting(chair, live_server, mid)
    panel = chair.locator("[data-voting-panel]")
    await panel.locator("summary", has_text="Tạo biểu quyết").click()
    await panel.get_by_label("Nội dung biểu quyết").fill("Bầu Trưởng ban Thanh tra nhân dân phường Hồng Gai")
    await panel.get_by_label("Bỏ phiếu kín").check()
    await panel.get_by_role("button", name="Tạo biểu quyết").click()
    await panel.get_by_role("button", name="Mở biểu quyết").click()
    await expect(panel.locator(".vp-count")).to_have_text("Đã bỏ phiếu 0/3")

    paper = panel.locator(".vp-paper")
    await paper.locator("summary").click()
    seats = paper.locator(".vp-paper-seat")
    await expect(seats).to_have_count(3)
    for i in (1, 2):
        await seats.nth(i).click()
        await expect(seats.nth(i)).to_have_attribute("aria-pressed", "true")
    await expect(paper.locator(".vp-paper-count")).to_have_text("Đã nhập 0/2 phiếu giấy.")
    submit = paper.get_by_role("button", name="Ghi nhận 2 phiếu giấy")
    await expect(submit).to_be_disabled()
    for name in ("+ Tán thành", "+ Không tán thành"):
        button = paper.get_by_role("button", name=name, exact=True)
        box = await button.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44
        await button.click()
    await expect(paper.locator(".vp-paper-count")).to_have_text("Đã nhập 2/2 phiếu giấy.")
    await expect(paper).to_contain_text("Đã nhập: Tán thành 1; Không tán thành 1.")

    # the in-page confirmation (a <dialog>, issue 22) rather than the browser's confirm()
    await submit.click()
    await chair.locator("dialog.ask-dialog").get_by_role("button", name="Ghi nhận").click()
    await expect(panel.locator(".vp-chair > .vp-msg")).to_have_text("Đã ghi nhận 2 phiếu giấy (đã bỏ phiếu 2/3).")
    await expect(panel.locator(".vp-count")).to_have_text("Đã bỏ phiếu 2/3")
    await expect(paper.locator(".vp-paper-seat")).to_have_count(1)  # only the chair has not voted

    await panel.get_by_role("button", name="Kết thúc biểu quyết").click()
    await chair.locator("dialog.ask-dialog").get_by_role("button", name="Kết thúc và đếm phiếu").click()
    result = panel.locator(".vp-result")
    await expect(result).to_contain_text("Tán thành 1, không tán thành 1")
