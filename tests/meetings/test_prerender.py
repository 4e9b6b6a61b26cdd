"""Issue #22: the first pages of a meeting document are rendered into the page cache in the
background when it is attached and when its agenda item becomes current, before any tablet asks
(SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from meetings import agenda, documents, render
from meetings.schema import DocumentVersion, PageRender
from tests.meetings.conftest import World, call

WAIT = 60.0  # seconds: a loaded machine renders slowly, a broken pre-renderer never


@pytest.fixture
async def prerenderer(world: World) -> AsyncIterator[documents.Prerenderer]:
    documents.forget_asked()
    p = documents.Prerenderer(world.db, world.blobs)
    yield p
    await p.stop()
    documents.forget_asked()


async def rendered(world: World, blob_key: str) -> set[tuple[int, int, str]]:
    async with world.db.uow(readonly=True) as uow:
        rows = await uow.session.execute(select(PageRender.page, PageRender.width, PageRender.fmt)
                                         .where(PageRender.source_key == blob_key))
        return {(p, w, f) for p, w, f in rows.all()}


async def wait_rendered(world: World, p: documents.Prerenderer, blob_key: str) -> set[tuple[int, int, str]]:
    """What is in the cache once the pre-renderer has nothing left to do (woken at the commit)."""
    await asyncio.wait_for(p.drain(), WAIT)
    return await rendered(world, blob_key)


def pages(n: int) -> list[list[str]]:
    return [[f"Trang {i}: Báo cáo chuyển đổi số Ủy ban nhân dân huyện Đông Triều."] for i in range(1, n + 1)]


async def test_attaching_renders_the_first_pages(world: World, prerenderer: documents.Prerenderer) -> None:
    m = await world.meeting()
    up = await world.upload_pdf(world.organiser, pages(5), "Báo cáo năm trang")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, m["meeting_id"],
                      upload_id=up, item_id=m["item_ids"][0], title="Báo cáo chuyển đổi số")
    first = {(p, w, "webp") for p in range(1, documents.PRERENDER_PAGES + 1)
             for w in documents.PRERENDER_DEFAULT_WIDTHS}
    assert await wait_rendered(world, prerenderer, v.blob_key) == first  # the first pages only, nothing else
    # a tablet's request is answered from what was pre-rendered: the same blob, nothing rendered again
    async with world.db.uow(readonly=True) as uow:
        cached = await uow.session.scalar(select(PageRender.blob_key).where(
            PageRender.source_key == v.blob_key, PageRender.page == 1, PageRender.width == 1600))
    render.forget(v.blob_key)
    key, ctype = await documents.page_image(world.db, world.blobs, v, 1, 1500, "webp")  # as the reader asks
    assert (key, ctype) == (cached, "image/webp")
    assert await rendered(world, v.blob_key) == first


async def test_making_the_item_current_renders_at_the_widths_asked(world: World) -> None:
    documents.forget_asked()
    m = await world.meeting(start=True)
    mid, items = m["meeting_id"], m["item_ids"]
    up = await world.upload_pdf(world.organiser, pages(4), "Tờ trình")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=up,
                      item_id=items[1], title="Tờ trình về chuyển đổi số")
    assert await rendered(world, v.blob_key) == set()  # no pre-renderer yet: nothing is rendered
    # the tablets of this server read at 480 px (a phone) more than anything else
    other = await world.upload_pdf(world.organiser, pages(1), "Giấy mời")
    _, o = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=other)
    for _ in range(3):
        await documents.page_image(world.db, world.blobs, o, 1, 400)
    await documents.page_image(world.db, world.blobs, o, 1, 1000)
    assert documents.prerender_widths() == [480, 1200]
    assert documents.prerender_format() == "png"  # these tablets asked for PNG (no WebP): pre-rendered as asked
    p = documents.Prerenderer(world.db, world.blobs)
    try:
        await call(world.db, agenda.set_current_item, world.chair, mid, items[0])  # no document: nothing to do
        assert await wait_rendered(world, p, v.blob_key) == set()
        await call(world.db, agenda.set_current_item, world.chair, mid, items[1])
        want = {(n, w, "png") for n in (1, 2, 3) for w in (480, 1200)}
        assert await wait_rendered(world, p, v.blob_key) == want
        # a version that is gone, or pages already cached, cost nothing and break nothing
        async with world.db.uow(readonly=True) as uow:
            last = await uow.session.scalar(select(DocumentVersion.id).order_by(DocumentVersion.id.desc()))
        p.submit([last + 1000, v.id])
        await asyncio.wait_for(p.drain(), WAIT)
        assert await rendered(world, v.blob_key) == want
    finally:
        await p.stop()
        documents.forget_asked()
