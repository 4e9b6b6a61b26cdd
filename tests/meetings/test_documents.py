"""Agenda documents: versions that never destroy the old ones, lazy page renders cached in the blob
store, word boxes, search (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time

import pymupdf
import pytest
from sqlalchemy import func, select

from meetings import documents, render
from meetings.schema import PageRender
from storage.errors import Forbidden, Invalid, NotFound
from tests.meetings.conftest import World, call


async def test_versions_keep_the_old_one(world: World) -> None:
    m = await world.meeting()
    mid, item = m["meeting_id"], m["item_ids"][0]
    first = await world.upload_pdf(world.organiser, [["Dự thảo lần 1: kế hoạch chuyển đổi số"]], "Kế hoạch")
    doc, v1 = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=first,
                         item_id=item, title="Kế hoạch chuyển đổi số năm 2027")
    second = await world.upload_pdf(world.organiser, [["Dự thảo lần 2"], ["Phụ lục"]], "Kế hoạch")
    v2 = await call(world.db, documents.add_version, world.organiser, world.blobs, doc.id, upload_id=second,
                    note="Tiếp thu ý kiến Sở Tài chính")
    assert (v1.number, v2.number, v2.page_count) == (1, 2, 2)
    async with world.db.uow() as uow:
        ctx, d, old = await documents.version_context(uow, world.member, v1.id)
        assert d.current_version_id == v2.id and old.blob_key != v2.blob_key
        assert await world.blobs.exists(old.blob_key)
        view = await documents.documents_view(uow, ctx.access, ctx.meeting)
        assert [v["number"] for v in view[0]["versions"]] == [2, 1]
        assert view[0]["versions"][0]["uploaded_by"] == "Phạm Thu Hà"
    # someone else's upload cannot be attached, and only PDFs are taken
    with pytest.raises(Forbidden):
        await call(world.db, documents.add_version, world.secretary, world.blobs, doc.id, upload_id=second)
    text = await world.upload_bytes(world.organiser, "Không phải PDF".encode(), "ghi-chu.txt", "text/plain")
    with pytest.raises(Invalid, match="PDF"):
        await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=text)
    broken = await world.upload_bytes(world.organiser, b"%PDF-1.7 hong", "hong.pdf", "application/pdf")
    with pytest.raises(Invalid, match="PDF"):
        await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=broken)
    mine = await world.upload_pdf(world.member, [["Ý kiến"]], "Ý kiến")
    with pytest.raises(Forbidden, match="người trình bày"):
        await call(world.db, documents.add_document, world.member, world.blobs, mid, upload_id=mine)


async def test_pages_render_lazily_and_are_cached(world: World) -> None:
    m = await world.meeting()
    pages = [[f"Trang {n}: Ủy ban nhân dân huyện Đông Triều triển khai chính quyền điện tử."] for n in range(1, 301)]
    pdf = await world.upload_pdf(world.organiser, pages, "Báo cáo 300 trang")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, m["meeting_id"], upload_id=pdf)
    assert v.page_count == 300 and v.page_sizes[0] == [595.0, 842.0]
    render.forget(v.blob_key)
    t0 = time.perf_counter()
    key, ctype = await documents.page_image(world.db, world.blobs, v, 1, 700)
    first_page = time.perf_counter() - t0
    assert ctype == "image/png" and first_page < 3.0, first_page  # page 1 without rendering the other 299
    img = pymupdf.Pixmap(await world.blobs.read(key))
    assert img.width == 800  # the 700 px screen gets the 800 bucket
    async with world.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(PageRender)) == 1
    again, _ = await documents.page_image(world.db, world.blobs, v, 1, 800)
    assert again == key
    # concurrent first requests for one page render it once
    keys = await asyncio.gather(*(documents.page_image(world.db, world.blobs, v, 2, 1200, "jpeg") for _ in range(5)))
    assert len({k for k, _ in keys}) == 1 and keys[0][1] == "image/jpeg"
    async with world.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(PageRender)) == 2
    with pytest.raises(NotFound):
        await documents.page_image(world.db, world.blobs, v, 301, 800)
    with pytest.raises(Invalid):
        await documents.page_image(world.db, world.blobs, v, 1, 800, "gif")


async def test_word_boxes_and_search(world: World) -> None:
    m = await world.meeting()
    pdf = await world.upload_pdf(world.organiser, [
        ["Ủy ban nhân dân huyện Đông Triều"],
        ["Công văn về việc triển khai chính quyền điện tử", "Thị xã Đông Triều và huyện Vân Đồn"],
    ], "Tài liệu tìm kiếm")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, m["meeting_id"], upload_id=pdf)
    key = await documents.page_words(world.db, world.blobs, v, 2)
    words = json.loads(await world.blobs.read(key))
    assert words["width"] == 595.0 and words["page"] == 2
    texts = [w[4] for w in words["words"]]
    assert "Công" in texts and "điện" in texts
    x0, y0, x1, y1 = words["words"][texts.index("điện")][:4]
    assert 0 < x0 < x1 < 595 and 0 < y0 < y1 < 842
    plain = await documents.search(world.blobs, v, "dong trieu")  # typed without diacritics
    assert [h["page"] for h in plain["hits"]] == [1, 2] and plain["total"] == 2
    assert len(plain["hits"][0]["rects"]) == 2 and "Đông Triều" in plain["hits"][0]["snippet"]
    exact = await documents.search(world.blobs, v, "ĐIỆN TỬ")
    assert exact["total"] == 1 and exact["hits"][0]["page"] == 2
    assert (await documents.search(world.blobs, v, "Đông Triêu"))["total"] == 0  # diacritics typed: they matter
    with pytest.raises(Invalid):
        await documents.search(world.blobs, v, "  ")
