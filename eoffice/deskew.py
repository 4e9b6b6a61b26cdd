"""Straightening a crooked scan before OCR (#16).

A sheet fed a little askew (1-3 degrees is common) makes Tesseract's page layout analysis drop or merge whole lines
(bench/ocr.py measured lost lines on a 2-degree page). ``skew_angle`` finds the angle of the text lines from the
projection profile of the dark pixels (the angle whose rows are most sharply "all ink" or "all paper"), on a
block-averaged copy of the page so that scanner grain does not count; ``deskew`` turns the image back with MuPDF.
Pure numpy and PyMuPDF, a few tens of milliseconds a page; anything it cannot read is returned unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pymupdf

MAX_ANGLE = 6.0  # degrees searched either way (a sheet more crooked than this is rescanned, not read)
MIN_ANGLE = 0.2  # degrees below which a page is left as it is (no resampling for nothing)
BLOCK = 96  # target dpi of the averaged copy the angle is measured on
MAX_PIXELS = 60_000_000  # an A4 page at 600 dpi is 35 million; past this the image is left to Tesseract's own caps


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's or a baseline / progressive JPEG's header, without decoding it."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    return None


def small_enough(data: bytes) -> bool:
    """Whether ``data`` is a PNG or JPEG this process may decode (the server's memory is not capped like the
    converters' is: a decompression bomb is left alone)."""
    size = image_size(data)
    return size is not None and 0 < size[0] * size[1] <= MAX_PIXELS


def _gray(pix: pymupdf.Pixmap) -> np.ndarray:
    if pix.alpha:
        pix = pymupdf.Pixmap(pix, 0)
    if pix.colorspace is None or pix.colorspace.n != 1:
        pix = pymupdf.Pixmap(pymupdf.csGRAY, pix)
    return np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)[:, :pix.width]


def _score(ys: np.ndarray, xs: np.ndarray, degrees: float) -> float:
    rows = ys - xs * math.tan(math.radians(degrees))
    hist = np.bincount((rows - rows.min()).astype(np.int64))
    return float(np.dot(hist, hist))


def skew_angle(gray: np.ndarray, dpi: float = 200.0) -> float:
    """The angle (degrees, counter-clockwise positive as PyMuPDF's ``prerotate``) by which the text lines of the
    grey page ``gray`` are turned; 0.0 for a page without enough ink to tell."""
    k = max(1, round(dpi / BLOCK))
    h, w = (gray.shape[0] // k) * k, (gray.shape[1] // k) * k
    if h < 8 * k or w < 8 * k:
        return 0.0
    small = gray[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    threshold = min(160.0, float(np.median(small)) * 0.75)
    ys, xs = np.nonzero(small < threshold)
    if len(ys) < 200:
        return 0.0
    ys, xs = ys.astype(np.float64), xs.astype(np.float64) - small.shape[1] / 2
    coarse = max(np.arange(-MAX_ANGLE, MAX_ANGLE + 0.01, 0.5), key=lambda a: _score(ys, xs, a))
    fine = max(np.arange(coarse - 0.5, coarse + 0.51, 0.05), key=lambda a: _score(ys, xs, a))
    return round(float(fine), 2)


def deskew(data: bytes) -> bytes:
    """``data`` (a PNG or JPEG page) turned straight, as PNG at the same resolution; ``data`` itself when it is
    straight enough, not an image MuPDF reads, or not one page."""
    try:
        pix = pymupdf.Pixmap(data)
    except Exception:  # MuPDF's own errors (FzErrorFormat, ...): not an image it reads
        return data
    dpi = float(pix.xres or 200)
    angle = skew_angle(_gray(pix), dpi)
    if abs(angle) < MIN_ANGLE:
        return data
    if pix.alpha:
        pix = pymupdf.Pixmap(pix, 0)
    with pymupdf.open() as doc:  # the image on a page of its own pixel size, drawn turned back
        page = doc.new_page(width=pix.width, height=pix.height)
        page.draw_rect(page.rect, color=None, fill=(1, 1, 1))
        page.insert_image(page.rect, pixmap=pix)
        out = page.get_pixmap(matrix=pymupdf.Matrix(1, 1).prerotate(-angle), colorspace=pix.colorspace or
                              pymupdf.csGRAY, alpha=False)
    out.set_dpi(pix.xres or 200, pix.yres or 200)
    return bytes(out.tobytes("png"))
