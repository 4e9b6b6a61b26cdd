"""Bút phê in Chromium (issue 22 item 7): the leader writes the direction by hand on the document's page beside
the form (no typed text), submits, and the direction shows the handwriting over the page; the ink is stored as
fractions of the page where it was drawn."""

from __future__ import annotations

from typing import Any

import pytest

from eoffice import tasks
from eoffice.documents import register_incoming
from storage.blobs import open_blob_store
from storage.db import Database
from tests.e2e.conftest import LiveServer, login, new_context
from tests.eoffice.conftest import incoming_fields, make_pdf, upload

pytestmark = pytest.mark.e2e


async def _submitted_document(server: LiveServer) -> int:
    from eoffice import identity

    db = Database(f"sqlite+aiosqlite:///{server.var_dir}/eoffice.db")
    blobs = open_blob_store(f"file://{server.var_dir}/blobs")
    try:
        async with db.uow() as uow:
            clerk = await identity.get_user(uow, "vanthu")
            leader = await identity.get_user(uow, "lanhdao")
            pdf = await upload(uow, clerk, blobs, make_pdf(["Đề nghị triển khai chuyển đổi số cấp xã."] * 2))
            doc, _ = await register_incoming(uow, clerk, blobs, **incoming_fields(41), upload_ids=[pdf])
            await tasks.submit(uow, clerk, doc.id, leader.id)
            await uow.commit()
            return doc.id
    finally:
        await blobs.close()
        await db.dispose()


async def test_leader_directs_by_hand_on_the_page(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    doc_id = await _submitted_document(live_server)
    ctx = await new_context(browser, viewport={"width": 1280, "height": 800})
    try:
        page = await ctx.new_page()
        await login(page, str(live_server), "lanhdao")
        await page.goto(f"{live_server}/documents/{doc_id}")
        first = page.locator('#direct-pdf .of-ink-page[data-page="1"]')
        await page.wait_for_function("""() => { const i = document.querySelector('#direct-pdf .of-ink-page img');
            return i && i.complete && i.naturalWidth > 0; }""")
        await page.get_by_role("button", name="Bút phê trên văn bản").click()
        await first.scroll_into_view_if_needed()
        box = await first.bounding_box()
        assert box is not None
        points = [(0.2, 0.15), (0.3, 0.18), (0.45, 0.14), (0.6, 0.17)]
        await page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
        await page.mouse.down()
        for fx, fy in points[1:]:
            await page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=5)
        await page.mouse.up()
        await expect(page.locator("#ink-count")).to_have_text("1 nét bút phê")
        assert await page.locator("#direct-text").evaluate("t => t.required") is False
        main = await page.eval_on_selector(
            "select[name=main]", "s => [...s.options].find(o => o.textContent.includes('Phạm Thu Hà'))?.value")
        assert main
        await page.select_option("select[name=main]", main)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Chỉ đạo và giao việc").click()
        await expect(page.locator(".alert-ok")).to_have_text("Đã cho ý kiến chỉ đạo và giao việc.")
        direction = page.locator(".of-direction")
        await expect(direction).to_contain_text(tasks.INK_ONLY_TEXT)
        await expect(direction.locator("figcaption")).to_have_text("Bút phê — trang 1")
        d = await direction.locator("svg.of-ink-layer path").get_attribute("d")
        assert d is not None and d.startswith("M")
        x0, y0 = (float(v) / 1000 for v in d[1:].split(" L")[0].split())
        assert abs(x0 - 0.2) < 0.02 and abs(y0 - 0.15) < 0.02, (x0, y0)  # where it was drawn, as page fractions
    finally:
        await ctx.close()
