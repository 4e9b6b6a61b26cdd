"""Written consultation in headless Chromium against a real server (issue 20): the office (văn thư) prepares a
consultation with a draft PDF for three members, each member reads the draft and answers on a tablet, the
office's page counts the answers live, the office closes it and the result shows as a chart. The form's
second question is a choice of options (lines starting with «-»). The designated signer then signs the result
report in the browser with their personal certificate, and the signed report lands in the office's work dossier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eoffice.signatures import verify_pdf
from meetings import render
from tests.e2e.conftest import LiveServer, login, new_context, start_server
from tests.meetings.personal_keys import PASSPHRASE, personal_folder

pytestmark = pytest.mark.e2e

SIGNER = "lanhdao"  # Trần Văn Hùng signs the result


@pytest.fixture(scope="module")
def personal_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    return personal_folder(tmp_path_factory.mktemp("keys"), SIGNER, "vanthu")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, personal_keys: tuple[Path, list]) -> Iterator[LiveServer]:
    """The demo server, with personal signing certificates for the signer and the office."""
    yield from start_server(tmp_path_factory.mktemp("live") / "var",
                            env_extra={"EOFFICE_PERSONAL_P12_DIR": str(personal_keys[0])})

MEMBERS = [("lanhdao", "Trần Văn Hùng", "agree", "", "Từ ngày 01/01/2027"),
           ("phochutich", "Lê Minh Tuấn", "agree", "Nhất trí ban hành", "Từ ngày 01/01/2027"),
           ("chanhvanphong", "Đỗ Quang Vinh", "disagree", "Đề nghị bổ sung điều khoản chuyển tiếp", "Từ ngày ký")]


async def test_office_consults_three_members_and_the_result_shows(
        browser: Any, context: Any, live_server: LiveServer, tmp_path: Path, personal_keys: tuple[Path, list]) -> None:
    from playwright.async_api import expect

    pdf = tmp_path / "du-thao-quy-che.pdf"
    pdf.write_bytes(render.text_pdf([["Dự thảo Quy chế làm việc của Ủy ban nhân dân tỉnh"]], "Dự thảo Quy chế"))

    office = await context.new_page()
    await login(office, live_server, "vanthu")
    await office.goto(f"{live_server}/meetings")
    await office.locator("#consultations-link").click()
    await expect(office.locator("h1")).to_have_text("Lấy ý kiến thành viên bằng văn bản")
    form = office.locator("#consult-form")
    await form.get_by_label("Tên phiếu").fill("Lấy ý kiến về dự thảo Quy chế làm việc của UBND tỉnh")
    await form.locator("textarea[name=questions]").fill(  # a yes/no question and a choice of two options
        "Đồng ý ban hành Quy chế theo dự thảo?\nChọn thời điểm áp dụng:\n- Từ ngày ký\n- Từ ngày 01/01/2027")
    await form.locator("input[name=draft]").set_input_files(str(pdf))
    signer = form.locator("select[name=signer_id]")
    await signer.select_option(await signer.locator("option", has_text="Trần Văn Hùng").first.get_attribute("value"))
    for _user, name, _choice, _comment, _when in MEMBERS:
        await form.locator("label.check", has_text=name).locator("input").check()
    async with office.expect_navigation():
        await form.get_by_role("button", name="Gửi phiếu lấy ý kiến").click()
    await expect(office.locator("#c-progress")).to_have_text("Đã trả lời 0/3 thành viên")
    await expect(office.locator("#c-not-answered")).to_contain_text("Trần Văn Hùng")
    url = office.url
    await expect(office.locator("#c-live")).to_have_text("")  # subscribed to the live topic

    contexts = [await new_context(browser) for _ in MEMBERS]
    try:
        for n, (ctx, (user, _name, choice, comment, when)) in enumerate(zip(contexts, MEMBERS, strict=True), start=1):
            page = await ctx.new_page()
            await login(page, live_server, user)
            await page.goto(url)
            # the draft opens in the meetings' tablet reader (page images rendered by the server)
            await page.locator("a.c-doc", has_text="Đọc dự thảo").click()
            await expect(page.locator("#reader .reader-page").first).to_be_visible()
            await page.wait_for_function(
                "() => { const i = document.querySelector('#reader .reader-page img');"
                " return i && i.complete && i.naturalWidth > 0; }")
            await page.goto(url)
            label = {"agree": "Đồng ý", "disagree": "Không đồng ý"}[choice]
            option = page.locator("label.c-choice", has_text=label).first
            box = await option.bounding_box()
            assert box is not None and box["height"] >= 44  # big enough for a finger
            await option.click()
            if comment:
                await page.locator("textarea[name=c0]").fill(comment)
            await page.locator("fieldset[data-question='1'] label.c-choice", has_text=when).click()
            async with page.expect_navigation():
                await page.get_by_role("button", name="Gửi ý kiến").click()
            await expect(page.get_by_role("button", name="Cập nhật ý kiến")).to_be_visible()
            # the office's page counts the answers live (counts only), without reloading
            await expect(office.locator("#c-progress")).to_have_text(f"Đã trả lời {n}/3 thành viên")

        async def accept(dialog: Any) -> None:
            await dialog.accept()

        office.once("dialog", accept)
        await office.reload()
        await office.get_by_role("button", name="Kết thúc lấy ý kiến ngay").click()
        result = office.locator("#c-result")
        await expect(result.locator("h2")).to_have_text("Kết quả: ĐƯỢC THÔNG QUA")  # 2 of 3 members agree
        await expect(result.locator("meter.c-bar").first).to_have_attribute("value", "2")
        await expect(result.locator(".c-headline").first).to_contain_text("2/3 thành viên đồng ý")
        await expect(result.locator(".c-headline").nth(1)).to_contain_text(
            "Phương án được chọn: Từ ngày 01/01/2027")
        await expect(office.locator("table")).to_contain_text("Đề nghị bổ sung điều khoản chuyển tiếp")
        report = await office.request.get(url.replace("/consultations/", "/api/consultations/") + "/report.pdf")
        assert report.status == 200 and report.headers["content-type"] == "application/pdf"

        # the designated signer signs the report on their tablet with their own certificate (its passphrase typed)
        signer_page = await contexts[0].new_page()
        await signer_page.goto(url)
        sign_form = signer_page.locator("#sign-form")
        await sign_form.locator("input[name=passphrase]").fill("sai mật khẩu")
        await sign_form.get_by_role("button", name="Ký số báo cáo kết quả").click()
        await expect(signer_page.get_by_text("Sai mật khẩu chứng thư số").first).to_be_visible()
        await sign_form.locator("input[name=passphrase]").fill(PASSPHRASE)
        async with signer_page.expect_navigation():
            await sign_form.get_by_role("button", name="Ký số báo cáo kết quả").click()
        await expect(signer_page.locator("#c-signed")).to_contain_text("Trần Văn Hùng")
        signed = await signer_page.request.get(url.replace("/consultations/", "/api/consultations/")
                                               + "/report-signed.pdf")
        assert signed.status == 200
        (sig,) = await verify_pdf(await signed.body(), personal_keys[1])
        assert sig.ok and sig.trusted and "Quảng Ninh" in sig.signer
        # filed in the office's work dossier, linked from the consultation
        await office.reload()
        async with office.expect_navigation():
            await office.locator("#c-dossier").click()
        await expect(office.locator("#dossier-files")).to_contain_text("Báo cáo kết quả lấy ý kiến")
    finally:
        for ctx in contexts:
            await ctx.close()
