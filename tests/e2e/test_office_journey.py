"""The e-office journey through the pages, in headless Chromium against a real server: the clerk
registers an incoming document with a PDF (upload progress, live text extraction), submits it;
the leader directs it and assigns a specialist; the specialist finds it on the task board and
completes it. Screenshots of each step go to test-artifacts/office-journey/."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import LiveServer, login, new_context
from tests.eoffice.conftest import make_pdf

pytestmark = pytest.mark.e2e

SUMMARY = "Công văn về việc triển khai chính quyền điện tử cấp xã"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "office-journey"


async def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _select_containing(page: Any, select: str, text: str) -> None:
    value = await page.eval_on_selector(
        select, "(s, t) => [...s.options].find(o => o.textContent.includes(t))?.value", text)
    assert value, f"no option containing {text!r} in {select}"
    await page.select_option(select, value)


async def test_clerk_registers_leader_assigns_specialist_completes(browser: Any, context: Any,
                                                                   live_server: LiveServer, tmp_path: Path) -> None:
    from playwright.async_api import expect

    pdf = tmp_path / "cv-123-UBND-VX.pdf"
    pdf.write_bytes(make_pdf(["Đề nghị các đơn vị triển khai chính quyền điện tử và chuyển đổi số cấp xã."] * 4))

    # ---- the clerk registers the document with its PDF -------------------------------------------
    clerk = await context.new_page()  # the fixture's context: screenshots of every open page on failure
    await login(clerk, live_server, "vanthu")
    await clerk.get_by_role("link", name="Văn bản", exact=True).click()
    await expect(clerk.locator("h1")).to_have_text("Văn bản chờ xử lý")
    await clerk.get_by_role("link", name="+ Vào sổ văn bản đến").click()
    await expect(clerk.locator("h1")).to_have_text("Vào sổ văn bản đến")
    await clerk.fill("input[name=sender]", "Ủy ban nhân dân thị xã Đông Triều")
    await clerk.fill("input[name=notation]", "123/UBND-VX")
    await clerk.fill("input[name=date_issued]", "2026-01-05")
    await clerk.fill("input[name=signer]", "Vũ Đức Thắng")
    await clerk.fill("textarea[name=summary]", SUMMARY)
    await clerk.select_option("select[name=urgency]", label="Khẩn")
    await clerk.set_input_files("#files", str(pdf))
    done = clerk.locator('.of-file[data-state="done"]')
    await expect(done).to_contain_text("cv-123-UBND-VX.pdf")
    await expect(done.locator("progress")).to_have_attribute("value", "100")
    await expect(done).to_contain_text("Đã tải lên")
    await _shot(clerk, "1-clerk-register-form")
    async with clerk.expect_navigation():
        await clerk.get_by_role("button", name="Vào sổ", exact=True).click()
    await expect(clerk).to_have_url(re.compile(r"/documents/\d+\?registered=1$"))
    doc_url = clerk.url.split("?")[0]
    await expect(clerk.locator(".of-number")).to_have_text(re.compile(r"Số đến: \d+/\d{4}"))
    await expect(clerk.locator("body")).to_contain_text("Khẩn")
    await expect(clerk.locator("body")).to_contain_text("05/01/2026")
    # live: the text extraction finishes on the page without a reload
    await expect(clerk.locator("#doc-live")).to_have_attribute("data-state", "online")
    await expect(clerk.locator(".of-ingest")).to_have_attribute("data-status", "done")
    await expect(clerk.locator(".of-ingest-label")).to_have_text("Đã trích xuất nội dung")
    # the signature check runs on the server after the page: an unsigned scan says so
    await expect(clerk.locator("#doc-signatures")).to_contain_text("Tệp không có chữ ký số.")
    await expect(clerk.locator("#doc-timeline")).to_contain_text("không trao đổi qua edXML")
    # the PDF viewer shows page images
    await clerk.get_by_role("button", name="Xem").click()
    await expect(clerk.locator(".of-viewer-pages img").first).to_be_visible()
    await clerk.wait_for_function(
        "() => { const i = document.querySelector('.of-viewer-pages img'); return i.complete && i.naturalWidth > 0; }")
    await expect(clerk.locator(".of-viewer-page")).to_contain_text("/ 4")
    await _shot(clerk, "2-clerk-document")
    await clerk.locator("summary", has_text="Trình lãnh đạo").click()
    await _select_containing(clerk, "select[name=to_user_id]", "Trần Văn Hùng")
    await clerk.fill("textarea[name=note]", "Kính trình đồng chí Chủ tịch cho ý kiến.")
    async with clerk.expect_navigation():
        await clerk.get_by_role("button", name="Trình", exact=True).click()
    await expect(clerk.locator(".alert-ok")).to_have_text("Đã trình văn bản.")

    # ---- the leader directs and assigns the specialist -------------------------------------------
    leader_ctx = await new_context(browser, viewport={"width": 768, "height": 1024})  # tablet, portrait
    leader = await leader_ctx.new_page()
    await login(leader, live_server, "lanhdao")
    await expect(leader.locator("#h-todo")).to_be_visible()
    await expect(leader.locator("body")).to_contain_text("Văn bản trình tôi cho ý kiến chỉ đạo: 1")
    await leader.goto(live_server + "/documents")
    await leader.locator("#h-direct").locator("xpath=..").get_by_text(SUMMARY).click()
    await expect(leader).to_have_url(doc_url)
    deadline = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + dt.timedelta(days=7)
    await leader.fill("textarea[name=text]", "Giao Văn phòng (chị Hà) chủ trì tham mưu, báo cáo trước hạn.")
    await _select_containing(leader, "select[name=main]", "Phạm Thu Hà")
    await leader.fill("#direct input[name=deadline]", deadline.isoformat())
    await _shot(leader, "3-leader-direction-portrait")
    async with leader.expect_navigation():
        await leader.get_by_role("button", name="Chỉ đạo và giao việc").click()
    await expect(leader.locator(".alert-ok")).to_have_text("Đã cho ý kiến chỉ đạo và giao việc.")
    await expect(leader.locator(".of-direction")).to_contain_text("Giao Văn phòng (chị Hà) chủ trì")
    task = leader.locator(".of-task").first
    await expect(task).to_contain_text("Phạm Thu Hà")
    await expect(task).to_contain_text(f"Hạn {deadline:%d/%m/%Y}")
    await leader_ctx.close()

    # ---- the specialist sees it on the task board and completes it -------------------------------
    spec_ctx = await new_context(browser)
    spec = await spec_ctx.new_page()
    await login(spec, live_server, "chuyenvien")
    await spec.get_by_role("link", name="Công việc", exact=True).first.click()
    await expect(spec.locator("h1")).to_have_text("Công việc")
    row = spec.locator("#h-main").locator("xpath=..").locator(".of-item", has_text=SUMMARY)
    await expect(row).to_contain_text("Khẩn")
    await expect(row).to_contain_text(f"Hạn {deadline:%d/%m/%Y}")
    await _shot(spec, "4-specialist-task-board")
    await row.locator("a").click()
    await expect(spec).to_have_url(re.compile(re.escape(doc_url) + r"#task-\d+$"))
    await spec.locator("summary", has_text="Hoàn thành").click()
    await spec.fill("textarea[name=result]", "Đã tham mưu Báo cáo số 45/BC-VP, trình lãnh đạo ký.")
    async with spec.expect_navigation():
        await spec.get_by_role("button", name="Xác nhận hoàn thành").click()
    task = spec.locator(".of-task").first
    await expect(task.locator("[data-task-status]")).to_have_text("Hoàn thành")
    await expect(task).to_contain_text("Đã tham mưu Báo cáo số 45/BC-VP")
    await expect(spec.locator("#doc-status")).to_have_text("Hoàn thành")
    await _shot(spec, "5-specialist-done")
    await spec.goto(live_server + "/tasks")
    await expect(spec.locator("body")).not_to_contain_text(SUMMARY)
    await spec.get_by_role("link", name="Thống kê", exact=True).first.click()
    await expect(spec.locator("#chart-status svg rect").first).to_be_visible()
    await expect(spec.locator("#chart-rate")).to_contain_text("100,00%")
    await _shot(spec, "6-specialist-statistics")
    await spec_ctx.close()
