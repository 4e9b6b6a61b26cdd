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
    with pytest.raises(Invalid, match="png hoặc jpeg"):
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
