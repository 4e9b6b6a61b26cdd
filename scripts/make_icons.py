"""Make the web app's icons (web/static/icons/): the brand mark of the page header -- «VP» in dark red on a gold
disc -- on the header's red, as PNG at 192 and 512 px, a maskable 512 px one (the mark inside the 80 % safe
zone, the red to the edges) and favicon.ico (16, 32 and 48 px PNGs in one ICO file).

Run `python scripts/make_icons.py` after changing the colours; the files are committed. PyMuPDF draws them
(it is a dependency already) with its bundled Noto Sans Bold, so the result is the same on every machine.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pymupdf

OUT = Path(__file__).resolve().parents[1] / "web" / "static" / "icons"
RED, RED_DARK, GOLD = (0xB3, 0x26, 0x1E), (0x8C, 0x1D, 0x18), (0xF2, 0xC9, 0x4C)


def _rgb(c: tuple[int, int, int]) -> tuple[float, float, float]:
    return c[0] / 255, c[1] / 255, c[2] / 255


def icon(size: int, *, disc: float, rounded: bool) -> bytes:
    """A PNG of ``size`` px: the red square (rounded corners unless maskable), a gold disc ``disc`` of the
    width, «VP» centred on it."""
    doc = pymupdf.open()
    page = doc.new_page(width=size, height=size)
    shape = page.new_shape()
    radius = 0.18 if rounded else 0.0
    shape.draw_rect(page.rect, radius=radius or None)
    shape.finish(fill=_rgb(RED), color=None)
    centre = pymupdf.Point(size / 2, size / 2)
    shape.draw_circle(centre, size * disc / 2)
    shape.finish(fill=_rgb(GOLD), color=None)
    shape.commit()
    font = pymupdf.Font("notosbo")
    fontsize = size * disc * 0.42
    width = font.text_length("VP", fontsize=fontsize)
    writer = pymupdf.TextWriter(page.rect)
    baseline = centre.y + fontsize * 0.36  # cap height of Noto Sans is about 0.71 em
    writer.append(pymupdf.Point(centre.x - width / 2, baseline), "VP", font=font, fontsize=fontsize)
    writer.write_text(page, color=_rgb(RED_DARK))
    return page.get_pixmap(alpha=rounded).tobytes("png")  # rounded: transparent corners (not white)


def ico(pngs: list[tuple[int, bytes]]) -> bytes:
    """An ICO file holding PNG images (every browser since IE 11 reads these)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = len(header) + 16 * len(pngs)
    entries, data = b"", b""
    for size, png in pngs:
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset + len(data))
        data += png
    return header + entries + data


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon-192.png").write_bytes(icon(192, disc=0.78, rounded=True))
    (OUT / "icon-512.png").write_bytes(icon(512, disc=0.78, rounded=True))
    (OUT / "icon-maskable-512.png").write_bytes(icon(512, disc=0.56, rounded=False))  # within the safe zone
    (OUT / "favicon.ico").write_bytes(ico([(s, icon(s, disc=0.9, rounded=True)) for s in (16, 32, 48)]))
    for path in sorted(OUT.iterdir()):
        print(path.relative_to(OUT.parents[2]), path.stat().st_size)


if __name__ == "__main__":
    main()
