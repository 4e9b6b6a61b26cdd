"""The administrator adds a commune, previews and merges two communes into a new one (2025's reorganisation), and
the provincial chairman delegates directing to his deputy: through the real pages, in headless Chromium."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import DEMO_PASSWORD, LiveServer
from tests.e2e.test_login import _submit_login

pytestmark = pytest.mark.e2e


async def test_admin_merges_two_communes_and_leader_delegates(page: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    await page.goto(live_server + "/login")
    await _submit_login(page, "admin", DEMO_PASSWORD)
    await page.get_by_role("link", name="Quản trị").click()
    await page.get_by_role("link", name="Đơn vị", exact=True).click()
    await expect(page.locator("h1")).to_have_text("Cơ cấu tổ chức")

    form = page.locator("#unit-create")
    await form.get_by_label("Mã đơn vị").fill("TL")
    await form.get_by_label("Tên đơn vị").fill("Ủy ban nhân dân xã Tràng Lương")
    await form.get_by_label("Loại").select_option(label="Xã")
    await form.get_by_label("Đơn vị cấp trên").select_option(label="— Ủy ban nhân dân thị xã Đông Triều")
    await form.get_by_label("Mã định danh (nếu có)").fill("000.22.15.H41")
    await form.get_by_role("button", name="Thêm đơn vị").click()
    await expect(page.locator("p.alert[role=status]")).to_contain_text("Đã thêm đơn vị")
    await expect(page.locator('#unit-tree li[data-code="TL"] .unit-agency-code')).to_have_text("000.22.15.H41")

    await page.get_by_role("link", name="sáp nhập đơn vị").click()
    await expect(page.locator("h1")).to_have_text("Sáp nhập đơn vị")
    merge = page.locator("#merge-form")
    await merge.get_by_role("checkbox", name="Ủy ban nhân dân xã Bình Khê").check()
    await merge.get_by_role("checkbox", name="Ủy ban nhân dân xã Tràng Lương").check()
    await merge.locator("#merge-target").select_option(value="new")
    await merge.locator("input[name=new_code]").fill("BKM")
    await merge.locator("input[name=new_name]").fill("Ủy ban nhân dân xã Bình Khê (mới)")
    await merge.locator("select[name=new_parent_id]").select_option(label="— Ủy ban nhân dân thị xã Đông Triều")
    await merge.get_by_role("button", name="Xem trước").click()
    preview = page.locator("#merge-preview")
    await expect(preview).to_contain_text("Xem trước (chưa thay đổi gì)")
    await expect(preview).to_contain_text("1 cán bộ")  # the demo's commune officer of Bình Khê
    await page.get_by_role("button", name="Xác nhận sáp nhập").click()
    await expect(page.locator("p.alert[role=status]")).to_contain_text("Đã sáp nhập đơn vị")
    await expect(page.locator('#unit-tree li[data-status="merged"]')).to_have_count(2)
    await expect(page.locator('#unit-tree li[data-code="BK"] .unit-status')).to_contain_text(
        "Đã sáp nhập vào Ủy ban nhân dân xã Bình Khê (mới)"
    )
    await page.get_by_role("button", name="Đăng xuất").click()

    await _submit_login(page, "lanhdao", DEMO_PASSWORD)
    await page.goto(live_server + "/account")
    await page.get_by_role("link", name="Quản lý ủy quyền").click()
    form = page.locator("#delegation-form")
    await form.get_by_label("Người được ủy quyền").select_option(label="Lê Minh Tuấn — Phó Chủ tịch UBND tỉnh")
    ends = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")) + dt.timedelta(days=5)  # back from the mission
    await form.get_by_label("Đến", exact=True).fill(ends.strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_role("button", name="Ủy quyền").click()
    await expect(page.locator("p.alert[role=status]")).to_contain_text("Đã ủy quyền")
    item = page.locator("#delegations li").first
    await expect(item).to_contain_text("Đang hiệu lực")
    await item.get_by_role("button", name="Thu hồi ủy quyền").click()
    await expect(page.locator("#delegations li").first).to_contain_text("Đã thu hồi")
