"""Annotating an agenda PDF on two tablets: a stroke drawn with the pointer on one appears on the other when
shared with the meeting, a private one never does, undo removes it everywhere, and a stroke drawn while
offline is sent on reconnect. Real server, headless Chromium."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from eoffice import identity, uploads
from meetings import agenda, documents, lifecycle, meetings, render
from storage.blobs import open_blob_store
from storage.db import Database
from tests.e2e.conftest import LiveServer, login, new_context

pytestmark = pytest.mark.e2e


async def _meeting_with_document(server: LiveServer) -> tuple[int, int]:
    """A meeting in progress with one agenda document, made through the services on the server's database."""
    db = Database(f"sqlite+aiosqlite:///{server.var_dir}/eoffice.db")
    blobs = open_blob_store(f"file://{server.var_dir}/blobs")
    try:
        async with db.uow() as uow:
            u = {name: await identity.get_user(uow, name)
                 for name in ("vanthu", "lanhdao", "chanhvanphong", "phochutich", "chuyenvien")}
            m = await meetings.create_meeting(
                uow, u["vanthu"], title="Họp UBND tỉnh về chuyển đổi số", place="Phòng họp số 1",
                starts_at=dt.datetime.now(dt.UTC), chair_id=u["lanhdao"].id, secretary_id=u["chanhvanphong"].id)
            for name in ("phochutich", "chuyenvien"):
                await meetings.add_participant(uow, u["vanthu"], m.id, user_id=u[name].id)
            item = await agenda.add_item(uow, u["vanthu"], m.id, title="Báo cáo chuyển đổi số huyện Đông Triều")
            pdf = await render.write_text_pdf([["Báo cáo tình hình chuyển đổi số của Ủy ban nhân dân huyện Đông "
                                                "Triều năm 2026. " * 6] * 4, ["Phụ lục số liệu"]], "Báo cáo")
            info = await blobs.put_bytes(pdf, content_type="application/pdf")
            up = await uploads.record_upload(uow, u["vanthu"], info, "bao-cao.pdf")
            _doc, version = await documents.add_document(uow, u["vanthu"], blobs, m.id, upload_id=up.id,
                                                         item_id=item.id)
            await meetings.send_invitations(uow, u["vanthu"], m.id)
            await uow.commit()
        async with db.uow() as uow:
            await lifecycle.start_meeting(uow, u["lanhdao"], m.id)
            await uow.commit()
        return m.id, version.id
    finally:
        await blobs.close()
        await db.dispose()


async def _open_reader(page: Any, server: LiveServer, user: str, mid: int, vid: int) -> None:
    from playwright.async_api import expect

    await login(page, server, user)
    await page.goto(f"{server}/meetings/{mid}/documents/{vid}")
    await expect(page.locator(".annot-bar")).to_be_visible()
    await expect(page.locator('.reader-page[data-page="1"] svg.annot-layer')).to_have_count(1)
    await expect(page.locator(".annot-sync")).to_have_text("Đã lưu")


async def _draw(page: Any, points: list[tuple[float, float]]) -> None:
    """A stroke with the pointer across page 1 (fractions of the page's width and height; the top quarter of the
    page is on screen at the start)."""
    box = await page.locator('.reader-page[data-page="1"]').bounding_box()
    viewport = page.viewport_size
    assert all(0 < box["y"] + fy * box["height"] < viewport["height"] for _, fy in points), "stroke off screen"
    xs = [box["x"] + fx * box["width"] for fx, _ in points]
    ys = [box["y"] + fy * box["height"] for _, fy in points]
    await page.mouse.move(xs[0], ys[0])
    await page.mouse.down()
    for x, y in zip(xs[1:], ys[1:], strict=True):
        await page.mouse.move(x, y, steps=6)
    await page.mouse.up()


async def test_a_shared_stroke_appears_on_the_other_tablet(browser: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid, vid = await _meeting_with_document(live_server)
    ctx_a, ctx_b = await new_context(browser), await new_context(browser)
    try:
        a, b = await ctx_a.new_page(), await ctx_b.new_page()
        # changes travel as commands on the socket the reader already holds, not as HTTP requests
        commands: list[str] = []
        requests: list[str] = []
        a.on("websocket", lambda ws: ws.on("framesent", lambda payload: commands.append(str(payload))
                                           if '"annotation.' in str(payload) else None))
        a.on("request", lambda r: requests.append(f"{r.method} {r.url}")
             if r.method != "GET" and "/annotations" in r.url else None)
        await _open_reader(a, live_server, "phochutich", mid, vid)
        await _open_reader(b, live_server, "chuyenvien", mid, vid)
        ink_a = a.locator('.reader-page[data-page="1"] .annot-ink')
        ink_b = b.locator('.reader-page[data-page="1"] .annot-ink')

        # a private stroke (the default) stays on A
        await a.get_by_role("button", name="Vẽ tay").click()
        await _draw(a, [(0.2, 0.12), (0.3, 0.16), (0.4, 0.12)])
        await expect(ink_a).to_have_count(1)
        await expect(a.locator(".annot-sync")).to_have_text("Đã lưu")

        # shared with the meeting: it appears on B, where it was drawn
        await a.get_by_label("Chế độ chia sẻ cho chú thích mới").select_option("meeting")
        await _draw(a, [(0.2, 0.05), (0.35, 0.08), (0.5, 0.05), (0.6, 0.1)])
        await expect(ink_a).to_have_count(2)
        await expect(ink_b).to_have_count(1)
        shared = await b.evaluate("""() => [...window.eoAnnotate.anns.values()].map(a => ({
            kind: a.kind, visibility: a.visibility, owner: a.owner_name, first: a.shape.strokes[0][0]}))""")
        assert len(shared) == 1 and shared[0]["kind"] == "ink" and shared[0]["visibility"] == "meeting"
        assert shared[0]["owner"] == "Lê Minh Tuấn"
        width, height = await b.evaluate("() => window.eoReader.meta.page_sizes[0]")
        x, y = shared[0]["first"]
        assert abs(x - 0.2 * width) < 6 and abs(y - 0.05 * height) < 6, (x, y)  # PDF points, not screen pixels
        assert not any(s["visibility"] == "private" for s in shared)

        # marked apart on the page (issue 22): A's private stroke "Riêng", the shared one "Chia sẻ"; B sees the
        # author's name on it
        chips_a = a.locator('.reader-page[data-page="1"] .annot-chip text')
        await expect(chips_a).to_have_text(["Riêng", "Chia sẻ"])
        await expect(b.locator('.reader-page[data-page="1"] .annot-chip text')).to_have_text(["Tuấn"])

        # the side list on B shows it with its author; "mine" is empty there
        await b.get_by_role("button", name="Ghi chú (1)").click()
        await expect(b.locator(".annot-list li")).to_contain_text("Lê Minh Tuấn")
        await b.get_by_role("button", name="Của tôi").click()
        await expect(b.locator(".annot-list li")).to_contain_text("Bạn chưa có ghi chú")
        await expect(ink_b).to_have_count(0)  # the filter applies to the pages too
        await b.get_by_role("button", name="Tất cả").click()
        await expect(ink_b).to_have_count(1)

        # undo on A takes it away on B too
        await a.keyboard.press("Control+z")
        await expect(ink_a).to_have_count(1)
        await expect(ink_b).to_have_count(0)

        ops = [json.loads(c)["op"] for c in commands]
        assert ops == ["annotation.create", "annotation.create", "annotation.delete"], ops
        assert requests == [], requests

        # drawn offline: queued on A, sent on reconnect, then seen on B
        await ctx_a.set_offline(True)
        await _draw(a, [(0.5, 0.18), (0.6, 0.2), (0.7, 0.18)])
        await expect(a.locator(".annot-sync")).to_contain_text("chờ gửi", timeout=10_000)
        await asyncio.sleep(0.5)
        await expect(ink_b).to_have_count(0)
        queued = await a.evaluate(
            "() => JSON.parse(localStorage.getItem(`eo-annot-queue:${document.body.dataset.userId}`))")
        assert [q["op"] for q in queued] == ["create"]
        await ctx_a.set_offline(False)
        await expect(ink_b).to_have_count(1, timeout=20_000)
        await expect(a.locator(".annot-sync")).to_have_text("Đã lưu", timeout=20_000)

        # B never received A's private stroke
        assert await b.evaluate("() => [...window.eoAnnotate.anns.values()].every(a => a.visibility !== 'private')")

        # the chair takes A's shared stroke off everyone's page: gone on B, kept (private) on A, who is told
        ctx_c = await new_context(browser)
        try:
            c = await ctx_c.new_page()
            await _open_reader(c, live_server, "lanhdao", mid, vid)
            await c.get_by_role("button", name="Ghi chú (1)").click()
            await c.get_by_role("button", name="Ẩn khỏi mọi người").click()
            await expect(ink_b).to_have_count(0)
            await expect(c.locator('.reader-page[data-page="1"] .annot-ink')).to_have_count(0)
            await expect(a.locator("#toast")).to_contain_text("đã ẩn một ghi chú")
            await expect(ink_a).to_have_count(2)
            await expect(chips_a).to_have_text(["Riêng", "Riêng"])
        finally:
            await ctx_c.close()
    finally:
        await ctx_a.close()
        await ctx_b.close()
