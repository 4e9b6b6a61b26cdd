"""PyMuPDF work, off the event loop: inspect a PDF, render one page, word boxes, search, write PDFs.

Uploaded PDFs are inspected, rendered and searched in ``eoffice.pdfsandbox``'s worker processes,
within a time and a memory limit (``with_doc``, ``inspect``): a crafted file is refused instead of
stalling everybody. Opening, caching and rendering pages is ``eoffice.pdfpages`` (shared with the
e-office's attachment viewer): opened documents are kept in a small LRU inside each worker, so
rendering page 1 of a 300-page document costs one page, and turning pages does not reopen the file.
PDFs the server writes itself (minutes, demo documents) go through ``run``, the process's one
PyMuPDF thread (MuPDF is not thread safe).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pymupdf

from eoffice import ingest, pdfpages, pdfsandbox
from storage.errors import Invalid

log = logging.getLogger(__name__)

T = TypeVar("T")


async def run(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in the process's one PyMuPDF thread."""
    return await pdfpages.run(fn, *args)


# ---------------------------------------------------------------- inspecting


@dataclass(frozen=True)
class PdfInfo:
    page_count: int
    sizes: list[list[float]]  # [width, height] in PDF points, per page


def _inspect(data: bytes, max_pages: int = 2000, max_points: float = 14400.0) -> PdfInfo:
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:
        raise Invalid("Tệp không phải PDF hợp lệ.") from exc
    try:
        if doc.needs_pass:
            raise Invalid("Tệp PDF có mật khẩu, không hiển thị được.")
        if doc.page_count == 0:
            raise Invalid("Tệp PDF không có trang nào.")
        if doc.is_encrypted:
            raise Invalid("Tệp PDF được mã hóa, không hiển thị được. Hãy gửi bản không mã hóa.")
        ingest.check_pages(doc, "", max_pages, max_points)
        sizes = [[round(r.width, 2), round(r.height, 2)] for r in (doc[i].rect for i in range(doc.page_count))]
        return PdfInfo(doc.page_count, sizes)
    finally:
        doc.close()


async def inspect(data: bytes) -> PdfInfo:
    if not data.startswith(b"%PDF-"):
        raise Invalid("Tài liệu họp phải là tệp PDF.")
    lim = pdfsandbox.limits()
    try:
        return await pdfsandbox.call(_inspect, data, lim.max_pages, lim.max_page_points)
    except pdfsandbox.TooComplex:
        raise pdfsandbox.TooComplex("Tệp PDF quá phức tạp: vượt giới hạn thời gian hoặc bộ nhớ khi kiểm tra.",
                                    reason="limits") from None


# ---------------------------------------------------------------- pages
# The open-document cache and the page renderer are eoffice.pdfpages' (one for the process):
# ``with_doc``, ``forget`` and ``render_page`` here are those.

Loader = pdfpages.Loader
with_doc = pdfpages.with_doc
forget = pdfpages.forget
render_page = pdfpages.render_page
_page = pdfpages.page_of


def page_words(doc: pymupdf.Document, number: int) -> dict[str, Any]:
    """Word boxes in PDF points: [x0, y0, x1, y1, text, block, line, word] (for highlights that snap)."""
    page = _page(doc, number)
    words = [[round(w[0], 2), round(w[1], 2), round(w[2], 2), round(w[3], 2), w[4], w[5], w[6], w[7]]
             for w in page.get_text("words", sort=True)]
    return {"page": number, "width": round(page.rect.width, 2), "height": round(page.rect.height, 2),
            "words": words}


def words_for_cache(doc: pymupdf.Document, number: int, _width: int, _fmt: str) -> dict[str, Any]:
    """``page_words`` with the (page, width, format) arguments of the derived-artefact cache."""
    return page_words(doc, number)


# ---------------------------------------------------------------- search


def fold(text: str, accents: bool) -> str:
    """Lower case, and without diacritics unless ``accents``; one output character per input character."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        c = ch.lower()
        if len(c) != 1:
            c = ch
        if not accents:
            c = "d" if c == "đ" else unicodedata.normalize("NFD", c)[0]
        out.append(c)
    return "".join(out)


def has_accents(text: str) -> bool:
    return fold(text, accents=False) != fold(text, accents=True)


def search(doc: pymupdf.Document, query: str, limit: int = 200) -> dict[str, Any]:
    """Find ``query`` in every page. Typed without diacritics it ignores them ("dong trieu" finds
    "Đông Triều"); typed with them it matches them exactly. Case never matters."""
    accents = has_accents(query)
    needle = " ".join(fold(query, accents).split())
    hits: list[dict[str, Any]] = []
    total = 0
    if not needle:
        return {"query": query, "hits": hits, "total": 0}
    for index in range(doc.page_count):
        words = doc[index].get_text("words", sort=True)
        if not words:
            continue
        text_parts, owners = [], []
        for n, w in enumerate(words):
            if n:
                text_parts.append(" ")
                owners.append(-1)
            folded = fold(w[4], accents)
            text_parts.append(folded)
            owners.extend([n] * len(folded))
        haystack = "".join(text_parts)
        start = haystack.find(needle)
        while start != -1:
            total += 1
            if len(hits) < limit:
                idx = sorted({o for o in owners[start:start + len(needle)] if o >= 0})
                rects = [[round(words[i][0], 2), round(words[i][1], 2), round(words[i][2], 2), round(words[i][3], 2)]
                         for i in idx]
                lo, hi = max(0, idx[0] - 6), min(len(words), idx[-1] + 7)
                hits.append({"page": index + 1, "rects": rects,
                             "snippet": " ".join(w[4] for w in words[lo:hi])})
            start = haystack.find(needle, start + max(1, len(needle)))
    return {"query": query, "hits": hits, "total": total}


# ---------------------------------------------------------------- writing PDFs with Vietnamese text


@dataclass(frozen=True)
class FontFamily:
    """Where each style's font comes from: a pymupdf-fonts name (``notos``) or a font file path."""

    regular: str
    bold: str
    italic: str

    def load(self) -> dict[str, pymupdf.Font]:
        return {style: _font(getattr(self, style)) for style in ("regular", "bold", "italic")}


def _font(spec: str) -> pymupdf.Font:
    if "/" not in spec:
        return pymupdf.Font(spec)
    if not Path(spec).is_file():
        raise FontMissing(f"Thiếu phông chữ {spec}: cài gói fonts-liberation2 (scripts/ensure-office.sh).",
                          path=spec)
    return pymupdf.Font(fontfile=spec)


class FontMissing(Invalid):
    """A font file the PDF needs is not installed."""


NOTO_SANS = FontFamily("notos", "notosbo", "notosit")
_LIBERATION = "/usr/share/fonts/truetype/liberation2/LiberationSerif-"
# Times New Roman's free metric twin with every Vietnamese letter: the font of administrative documents
# (Decree 30/2020/NĐ-CP, Appendix I) where the agency has no Times New Roman licence on the server
LIBERATION_SERIF = FontFamily(_LIBERATION + "Regular.ttf", _LIBERATION + "Bold.ttf", _LIBERATION + "Italic.ttf")


def administrative_family() -> FontFamily:
    """Liberation Serif where it is installed (``make test`` and the container install it); otherwise Noto Sans,
    which ships with PyMuPDF, so a server started with nothing but Python still writes its minutes (logged once)."""
    if all(Path(p).is_file() for p in (LIBERATION_SERIF.regular, LIBERATION_SERIF.bold, LIBERATION_SERIF.italic)):
        return LIBERATION_SERIF
    if not _warned:
        _warned.append(True)
        log.warning("fonts-liberation2 is not installed: minutes are written in Noto Sans instead of a Times face")
    return NOTO_SANS


_warned: list[bool] = []


class Writer:
    """Flowing text on A4 pages in one font family (Noto Sans by default; Base-14 fonts lose
    Vietnamese letters)."""

    def __init__(self, margin: float = 56, size: float = 11, family: FontFamily = NOTO_SANS) -> None:
        self.doc = pymupdf.open()
        self.fonts = family.load()
        self.margin = margin
        self.size = size
        self.page: pymupdf.Page | None = None
        self.writer: pymupdf.TextWriter | None = None
        self.y = 0.0
        self._advances: dict[int, dict[str, float]] = {}
        self.width, self.height = pymupdf.paper_size("a4")
        self._new_page()

    def _flush(self) -> None:
        if self.page is not None and self.writer is not None:
            self.writer.write_text(self.page)

    def _new_page(self) -> None:
        self._flush()
        self.page = self.doc.new_page(width=self.width, height=self.height)
        self.writer = pymupdf.TextWriter(self.page.rect)
        self.y = self.margin

    def new_page(self) -> None:
        self._new_page()

    def length(self, text: str, font: pymupdf.Font, size: float) -> float:
        """Like ``font.text_length``, with advances cached per glyph (that call is slow per character)."""
        cache = self._advances.setdefault(id(font), {})
        total = 0.0
        for ch in text:
            adv = cache.get(ch)
            if adv is None:
                adv = cache[ch] = font.glyph_advance(ord(ch))
            total += adv
        return total * size

    def _wrap(self, text: str, font: pymupdf.Font, size: float, width: float) -> list[str]:
        lines: list[str] = []
        space = self.length(" ", font, size)
        for para in text.split("\n"):
            words = para.split()
            if not words:
                lines.append("")
                continue
            line, used = words[0], self.length(words[0], font, size)
            for word in words[1:]:
                w = self.length(word, font, size)
                if used + space + w <= width:
                    line, used = f"{line} {word}", used + space + w
                else:
                    lines.append(line)
                    line, used = word, w
            lines.append(line)
        return lines

    def text(self, text: str, *, style: str = "regular", size: float | None = None, align: str = "left",
             indent: float = 0, after: float = 4, x: float | None = None, width: float | None = None) -> None:
        size = size or self.size
        font = self.fonts[style]
        left = (x if x is not None else self.margin) + indent
        avail = (width if width is not None else self.width - self.margin - left)
        leading = size * 1.45
        for line in self._wrap(text, font, size, avail):
            if self.y + leading > self.height - self.margin:
                self._new_page()
            self.y += leading
            tl = self.length(line, font, size)
            px = left + (avail - tl) / 2 if align == "center" else left + avail - tl if align == "right" else left
            assert self.writer is not None
            self.writer.append((px, self.y - size * 0.3), line, font=font, fontsize=size)
        self.y += after

    def columns(self, left: str, right: str, *, style: str = "bold", size: float | None = None) -> None:
        """Two centred blocks side by side (the national-motto header, the signature lines)."""
        top = self.y
        half = (self.width - 2 * self.margin) / 2
        self.text(left, style=style, size=size, align="center", x=self.margin, width=half, after=0)
        y_left = self.y
        self.y = top
        self.text(right, style=style, size=size, align="center", x=self.margin + half, width=half, after=0)
        self.y = max(self.y, y_left) + 8

    def rule(self, after: float = 8) -> None:
        self.line(self.margin, self.width - self.margin, after=after, color=(0.6, 0.6, 0.6))

    def line(self, x0: float, x1: float, *, after: float = 8, color: tuple[float, float, float] = (0, 0, 0)) -> None:
        """A horizontal line from x0 to x1 just under the last line of text."""
        assert self.page is not None
        self._flush()
        self.writer = pymupdf.TextWriter(self.page.rect)
        self.page.draw_line((x0, self.y + 2), (x1, self.y + 2), color=color, width=0.6)
        self.y += after

    def keep(self, points: float) -> None:
        """Start a new page unless ``points`` more fit on this one (a block that must stay together)."""
        if self.y + points > self.height - self.margin:
            self._new_page()

    def space(self, points: float) -> None:
        self.y += points

    def to_bytes(self) -> bytes:
        self._flush()
        self.writer = None
        self.doc.subset_fonts()  # embed only the glyphs used: a few KB instead of the whole font
        data = self.doc.tobytes(garbage=3, deflate=True)
        self.doc.close()
        return data


def text_pdf(pages: list[list[str]], title: str = "") -> bytes:
    """A PDF whose page i holds the given paragraphs (demo agenda documents and tests)."""
    w = Writer()
    for n, paragraphs in enumerate(pages):
        if n:
            w.new_page()
        if title and n == 0:
            w.text(title, style="bold", size=15, align="center", after=10)
        for para in paragraphs:
            w.text(para)
    if title:
        w.doc.set_metadata({"title": title, "producer": "eOffice phòng họp không giấy"})
    return w.to_bytes()


async def write_text_pdf(pages: list[list[str]], title: str = "") -> bytes:
    return await run(text_pdf, pages, title)
