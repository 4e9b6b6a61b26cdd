"""Page images of PDFs: the process's one way to render a page, for e-office attachments and meeting
documents alike (``meetings.render`` re-exports what it needs from here).

Uploaded PDFs are opened and rendered in ``eoffice.pdfsandbox``'s worker processes, each job within
a time and a memory limit: a crafted file is refused (``TooComplex``, a 422) instead of stalling
everybody's pages. Two caches, both keyed by the blob key, which is the sha256 of the file (a key
never changes meaning, so nothing needs invalidating):

* open documents, a small LRU in each worker process, so page 1 of a 300-page document costs one
  page and turning pages does not reopen and reparse the file;
* rendered pages, an LRU of image bytes on the event loop, bounded by total size, with one render
  for any number of concurrent requests for the same page; a page refused for its complexity is
  remembered too, so asking again does not hold a worker for another full time limit.

``run`` is the process's one PyMuPDF thread, left for PDFs the server writes itself (minutes, demo
documents, annotated copies).

The caches know nothing about users. A caller checks the reader's access to the document **before**
asking for one of its pages, and takes the blob key from the database row it was allowed to read,
never from the request: the bytes of a confidential document may sit in memory, but nobody who has
not passed the document's access check can reach them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pymupdf

from eoffice import ingest, pdfsandbox
from storage.errors import Invalid

T = TypeVar("T")

Loader = Callable[[], Awaitable[bytes]]

PAGE_CACHE_BYTES = 64 * 1024 * 1024  # rendered images kept in memory
PAGE_CACHE_ITEM_MAX = 8 * 1024 * 1024  # a bigger image is served but not kept
MAX_PIXELS = 25_000_000  # one rendered page at most (a strip-shaped page at a large width)
# The page image formats a reader may ask for, with their content types. WebP is lossless: the same pixels as the
# PNG, about 3.5x fewer bytes for a page of text (1600 px: 219 KB -> 63 KB), which is what 200 tablets on one
# meeting-room Wi-Fi, or a commune on a 2 Mbit/s link, wait for; it costs ~100 ms more CPU per page in a worker.
PAGE_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
FORMATS_MESSAGE = "Định dạng ảnh chỉ nhận png, jpeg hoặc webp."


async def run(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in the process's one PyMuPDF thread."""
    return await ingest.in_thread(fn, *args)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- open documents (in the workers)


async def with_doc(key: str, load: Loader, fn: Callable[..., T], *args: Any) -> T:
    """``fn(doc, *args)`` in a PDF worker process, within its time and memory limits; the worker
    opens the document from ``load()`` when it does not have it open. ``fn``: a module-level function."""
    return await pdfsandbox.with_doc(key, load, fn, *args)


def forget(key: str) -> None:
    """Close the document ``key`` and drop its rendered pages (tests, and a file taken away)."""
    pdfsandbox.forget(key)
    _pages.drop(key)
    for k in [k for k in _refused if k[0] == key]:
        del _refused[k]


# ---------------------------------------------------------------- rendering


def page_of(doc: pymupdf.Document, number: int) -> pymupdf.Page:
    if not 1 <= number <= doc.page_count:
        raise Invalid(f"Tài liệu có {doc.page_count} trang; không có trang {number}.", field="page")
    return doc[number - 1]


RENDERING = 2  # changes the validators when the renderer's output changes (2: greyscale pages)
GRAY_PROBE_WIDTH = 240  # px: the small rendering that tells a page without colour


def shows_colour(page: pymupdf.Page) -> bool:
    """Whether the page shows any colour: a small RGB rendering with some pixel whose channels differ.
    (Black text anti-aliased in RGB stays exactly grey; a red seal or a coloured chart does not.)"""
    zoom = GRAY_PROBE_WIDTH / max(page.rect.width, 1.0)
    samples = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False).samples
    return not (samples[0::3] == samples[1::3] == samples[2::3])


def render_page(doc: pymupdf.Document, number: int, width: int, fmt: str = "png") -> bytes:
    """Page ``number`` (1-based), ``width`` pixels wide, as PNG, JPEG or lossless WebP. Runs in a PDF worker.

    A page without colour (most administrative documents: black text, a black signature) is rendered in
    greyscale: the same pixels, a PNG about 40% smaller and quicker to encode (issue 22's open storm)."""
    page = page_of(doc, number)
    w, h = max(page.rect.width, 1.0), max(page.rect.height, 1.0)
    zoom = width / w
    zoom = min(zoom, (MAX_PIXELS / (w * h)) ** 0.5)
    colourspace = pymupdf.csRGB if shows_colour(page) else pymupdf.csGRAY
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=colourspace)
    if fmt == "jpeg":
        return bytes(pix.tobytes("jpeg", jpg_quality=82))
    if fmt == "webp":
        return _webp(pix)
    return bytes(pix.tobytes("png"))


def _webp(pix: pymupdf.Pixmap) -> bytes:
    """Lossless WebP of a greyscale or RGB pixmap without alpha. Method 1 / quality 80: method 2-6 save under
    1% more on text pages for more encoding time; method 0 is twice the size of method 1."""
    from PIL import Image  # imported in the worker that renders, not by every process that imports this module

    mode = "L" if pix.n == 1 else "RGB"
    out = io.BytesIO()
    Image.frombuffer(mode, (pix.width, pix.height), pix.samples, "raw", mode, pix.stride, 1).save(
        out, "WEBP", lossless=True, method=1, quality=80)
    return out.getvalue()


# ---------------------------------------------------------------- rendered-page cache


PageKey = tuple[str, int, int, str]  # blob key, page, width, format


@dataclass
class CacheInfo:
    hits: int
    misses: int
    items: int
    size: int


class _PageCache:
    """LRU of rendered images by total size; concurrent misses for one page share one render."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: OrderedDict[PageKey, bytes] = OrderedDict()
        self.size = 0
        self.hits = self.misses = 0
        self.inflight: dict[PageKey, asyncio.Future[bytes]] = {}

    def get(self, key: PageKey) -> bytes | None:
        data = self.items.get(key)
        if data is not None:
            self.items.move_to_end(key)
        return data

    def put(self, key: PageKey, data: bytes) -> None:
        if len(data) > min(PAGE_CACHE_ITEM_MAX, self.limit) or key in self.items:
            return
        self.items[key] = data
        self.size += len(data)
        while self.size > self.limit:
            _, old = self.items.popitem(last=False)
            self.size -= len(old)

    def drop(self, blob_key: str) -> None:
        for k in [k for k in self.items if k[0] == blob_key]:
            self.size -= len(self.items.pop(k))

    def clear(self) -> None:
        self.items.clear()
        self.size = 0
        self.hits = self.misses = 0


_pages = _PageCache(PAGE_CACHE_BYTES)
_refused: OrderedDict[tuple[str, int], str] = OrderedDict()  # (blob key, page): past the limits once
REFUSED_KEEP = 1024


def cache_info() -> CacheInfo:
    return CacheInfo(_pages.hits, _pages.misses, len(_pages.items), _pages.size)


def clear_cache() -> None:
    _pages.clear()
    _refused.clear()


def check_refused(key: str, number: int) -> None:
    """Raise ``TooComplex`` at once for a page that went past the limits before."""
    message = _refused.get((key, number))
    if message is not None:
        raise pdfsandbox.TooComplex(message, reason="remembered")


def remember_refusal(key: str, number: int, exc: pdfsandbox.TooComplex) -> None:
    _refused[(key, number)] = exc.message
    while len(_refused) > REFUSED_KEEP:
        _refused.popitem(last=False)


def etag(key: str, number: int, width: int, fmt: str = "png") -> str:
    """A strong validator of one rendered page: the file's content key, the page, width and format
    (the renderer's output for them does not change)."""
    digest = hashlib.sha256(f"{key}:{number}:{width}:{fmt}:{RENDERING}".encode()).hexdigest()[:32]
    return f'"p-{digest}"'


async def page_image(key: str, load: Loader, number: int, width: int, fmt: str = "png") -> bytes:
    """Page ``number`` of the PDF stored under blob ``key`` as an image ``width`` pixels wide,
    from memory when it was rendered lately. Check the reader's access before calling this."""
    if fmt not in PAGE_FORMATS:
        raise Invalid(FORMATS_MESSAGE, field="fmt")
    check_refused(key, number)
    ck: PageKey = (key, number, width, fmt)
    data = _pages.get(ck)
    if data is not None:
        _pages.hits += 1
        return data
    pending = _pages.inflight.get(ck)
    if pending is not None and pending.get_loop() is asyncio.get_running_loop():
        _pages.hits += 1
        return await asyncio.shield(pending)
    _pages.misses += 1
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    _pages.inflight[ck] = future
    try:
        data = await with_doc(key, load, render_page, number, width, fmt)
        _pages.put(ck, data)
        future.set_result(data)
        return data
    except BaseException as exc:
        if isinstance(exc, pdfsandbox.TooComplex):
            remember_refusal(key, number, exc)
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
        raise
    finally:
        if _pages.inflight.get(ck) is future:
            del _pages.inflight[ck]
