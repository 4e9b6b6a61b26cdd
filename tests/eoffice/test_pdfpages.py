"""The shared page renderer (eoffice.pdfpages): one render per page however many ask at once, a
cache bounded by bytes, errors not cached, and every render in a PDF worker process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from eoffice import pdfpages, pdfsandbox
from storage.errors import Invalid
from tests.eoffice.conftest import make_pdf

PDF = make_pdf([f"Trang {n}: Ủy ban nhân dân huyện Đông Triều" for n in range(1, 6)])
KEY = "a" * 64  # blob keys are sha256 hex


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    pdfpages.clear_cache()
    pdfpages.forget(KEY)
    yield
    pdfpages.forget(KEY)
    pdfpages.clear_cache()


async def test_concurrent_requests_for_a_page_share_one_render(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []
    renders: list[int] = []
    real = pdfpages.with_doc

    async def load() -> bytes:
        loads.append(1)
        return PDF

    async def spy(key: str, load_: Any, fn: Any, number: int, *args: Any) -> Any:
        renders.append(number)
        return await real(key, load_, fn, number, *args)

    monkeypatch.setattr(pdfpages, "with_doc", spy)
    images = await asyncio.gather(*(pdfpages.page_image(KEY, load, 2, 500) for _ in range(6)))
    assert len(set(images)) == 1 and images[0].startswith(b"\x89PNG")
    assert renders == [2] and pdfsandbox.pids() and os.getpid() not in pdfsandbox.pids()
    jpeg = await pdfpages.page_image(KEY, load, 3, 500, "jpeg")
    assert jpeg.startswith(b"\xff\xd8") and loads == [1]  # the document stayed open for page 3
    info = pdfpages.cache_info()
    assert (info.misses, info.items, info.size) == (2, 2, len(images[0]) + len(jpeg))


async def test_errors_are_not_cached_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    async def load() -> bytes:
        return PDF

    with pytest.raises(Invalid, match="không có trang 9"):
        await pdfpages.page_image(KEY, load, 9, 400)
    with pytest.raises(Invalid, match="png, jpeg hoặc webp"):
        await pdfpages.page_image(KEY, load, 1, 400, "gif")
    assert pdfpages.cache_info().items == 0

    one = await pdfpages.page_image(KEY, load, 1, 400)
    monkeypatch.setattr(pdfpages._pages, "limit", int(len(one) * 2.5))  # room for about two such pages
    for page in (2, 3, 4):
        await pdfpages.page_image(KEY, load, page, 400)
    info = pdfpages.cache_info()
    assert info.items == 2 and info.size <= pdfpages._pages.limit
    assert [k[1] for k in pdfpages._pages.items] == [3, 4]  # least recently used went first
    pdfpages.forget(KEY)
    assert pdfpages.cache_info().items == 0


def test_etag_names_content_page_width_and_format() -> None:
    tags = {pdfpages.etag(KEY, 1, 800), pdfpages.etag(KEY, 2, 800), pdfpages.etag(KEY, 1, 1200),
            pdfpages.etag(KEY, 1, 800, "jpeg"), pdfpages.etag("b" * 64, 1, 800)}
    assert len(tags) == 5 and pdfpages.etag(KEY, 1, 800) == pdfpages.etag(KEY, 1, 800)
    assert all(t.startswith('"p-') and t.endswith('"') for t in tags)


def test_pages_without_colour_are_greyscale_pngs_and_coloured_ones_stay_rgb() -> None:
    """Issue 22: a black-text page is served as an 8-bit greyscale PNG (smaller, same pixels); a page with a red
    seal keeps its colour."""
    import pymupdf

    doc = pymupdf.open()
    text = "Ủy ban nhân dân huyện Đông Triều triển khai chính quyền điện tử năm 2026. " * 40
    for seal in (False, True):
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(50, 50, 545, 780), text, fontsize=11)
        if seal:
            page.draw_circle((420, 700), 40, color=(0.85, 0.1, 0.1), width=3)
    grey, colour = (pdfpages.render_page(doc, n, 1280) for n in (1, 2))
    png_colour_type = 25  # byte of the IHDR chunk: 0 grey, 2 RGB
    assert grey[:8] == b"\x89PNG\r\n\x1a\n" and grey[png_colour_type] == 0
    assert colour[png_colour_type] == 2
    rgb = doc[0].get_pixmap(matrix=pymupdf.Matrix(1280 / doc[0].rect.width, 1280 / doc[0].rect.width),
                            alpha=False).tobytes("png")
    assert len(grey) < 0.8 * len(rgb), (len(grey), len(rgb))
    assert not pdfpages.shows_colour(doc[0]) and pdfpages.shows_colour(doc[1])


def test_webp_pages_carry_the_same_pixels_as_png_in_far_fewer_bytes() -> None:
    """Issue 22: the reader asks for lossless WebP; decoded, it is the PNG's image pixel for pixel (greyscale and
    colour pages alike), and a page of text is at least twice as small (measured: about 3.5x at 1600 px)."""
    import io

    import pymupdf
    from PIL import Image

    doc = pymupdf.open()
    text = "Sở Kế hoạch và Đầu tư chủ trì, phối hợp với Sở Tài chính tham mưu phân bổ vốn đầu tư công. " * 40
    for seal in (False, True):
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(50, 50, 545, 780), text, fontsize=11, fontname="tiro")
        if seal:
            page.draw_circle((420, 700), 40, color=(0.85, 0.1, 0.1), width=3)
    for n, mode in ((1, "L"), (2, "RGB")):
        png, webp = (pdfpages.render_page(doc, n, 1600, fmt) for fmt in ("png", "webp"))
        assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
        a, b = Image.open(io.BytesIO(png)), Image.open(io.BytesIO(webp))
        assert a.size == b.size and a.size[0] == 1600
        assert a.mode == mode and a.convert("RGB").tobytes() == b.convert("RGB").tobytes()  # lossless
        assert len(webp) * 2 < len(png), (n, len(webp), len(png))
