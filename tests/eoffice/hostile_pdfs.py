"""Crafted PDFs: a few KB that keep MuPDF busy for minutes (whole-page fills) or exhaust its memory (nested forms)."""

from __future__ import annotations

import zlib


def nested_xobjects(depth: int = 7, fan: int = 10, leaf: bytes = b"0 0 m 10 10 l S") -> bytes:
    """A tiny PDF whose one page draws a form that draws the next one `fan` times, `depth` deep; the last form
    draws `leaf` (a line: costly to render; text: costly to extract)."""
    objs: list[bytes] = []
    # 1 catalog, 2 pages, 3 page, 4.. forms
    n_forms = depth
    first = 4
    def form(i: int) -> bytes:
        if i == n_forms - 1:
            body = leaf
            res = b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
        else:
            body = b" ".join(b"q 1 0 0 1 0.1 0.1 cm /X Do Q" for _ in range(fan))
            res = b"/Resources << /XObject << /X %d 0 R >> >>" % (first + i + 1)
        return (b"<< /Type /XObject /Subtype /Form /BBox [0 0 600 800] %s /Length %d >>\nstream\n%s\nendstream"
                % (res, len(body), body))
    content = b"/X Do"
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 800] /Resources << /XObject << /X %d 0 R >> >>"
                b" /Contents %d 0 R >>" % (first, first + n_forms))
    for i in range(n_forms):
        objs.append(form(i))
    objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    return _assemble(objs)

def nested_text(depth: int = 7, fan: int = 10) -> bytes:
    """Nested forms whose last one writes a line of text: `fan ** depth` lines for a text extractor to keep."""
    return nested_xobjects(depth, fan, b"BT /F1 8 Tf 10 10 Td (Uy ban nhan dan huyen Dong Trieu) Tj ET")


def big_stream(mb: int = 40, line: bytes = b"0 0 m 100 100 l S\n") -> bytes:
    """One page whose content stream (`mb` MB, ~100 KB compressed) repeats `line`."""
    body = line * (mb * 1024 * 1024 // len(line))
    comp = zlib.compress(body, 9)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 800] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(comp) + comp + b"\nendstream"]
    return _assemble(objs)

def full_page_fills(mb: int = 40) -> bytes:
    """~2.5 million fills of the whole page: minutes of rendering at any size, with no memory to speak of (the
    time limit, not the memory cap, stops it)."""
    return big_stream(mb, b"0 0 600 800 re f\n")


def _assemble(objs: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    offs = []
    for i, o in enumerate(objs, 1):
        offs.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    x = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for o in offs:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
    return bytes(out)



def page_of_size(width: float, height: float) -> bytes:
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] >>" % (width, height)]
    return _assemble(objs)
