"""A scan made ready for OCR (#16): straightened when crooked, despeckled when grainy.

A sheet fed a little askew (1-3 degrees is common) makes Tesseract's page layout analysis drop or merge whole lines
(bench/ocr.py measured lost lines on a 2-degree page). ``skew_angle`` finds the angle of the text lines from the
projection profile of the dark pixels (the angle whose rows are most sharply "all ink" or "all paper"), on a
block-averaged copy of the page so that scanner grain does not count; ``prepare`` turns the image back with MuPDF.
A grainy page (``grain``: paper pixels far from their 3x3 median) gets a 3x3 median first, which halved the CER
of noisy, blurred, crooked pages in bench/ocr.py. Pure numpy and PyMuPDF, 0.05 s (clean, straight: untouched) to
0.5 s (grainy, crooked) of CPU for an A4 page at 200 dpi; anything it cannot read is returned unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pymupdf

MAX_ANGLE = 6.0  # degrees searched either way (a sheet more crooked than this is rescanned, not read)
MIN_ANGLE = 0.2  # degrees below which a page is left as it is (no resampling for nothing)
BLOCK = 96  # target dpi of the averaged copy the angle is measured on
GRAIN = 3.0  # grey levels of paper grain past which a page is despeckled (3x3 median): clean renders < 1,
#               noisy scans 11 at 200 dpi and 5 re-rendered at 300 dpi from a scanned PDF (bench/ocr.py --path pdf)
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


_MED9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8), (4, 7), (3, 6),
         (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))  # a sorting network whose middle element is the median


def median3(img: np.ndarray) -> np.ndarray:
    """The 3x3 median of a 2-D uint8 image (edges repeated): scanner grain and specks go, strokes stay."""
    pad = np.pad(img, 1, mode="edge")
    h, w = img.shape
    p = [pad[i:i + h, j:j + w] for i in range(3) for j in range(3)]
    for a, b in _MED9:
        p[a], p[b] = np.minimum(p[a], p[b]), np.maximum(p[a], p[b])
    return p[4]


def grain(gray: np.ndarray) -> float:
    """Mean grey-level difference between the paper of a central crop and its 3x3 median: about 0 for a clean
    scan, past ``GRAIN`` for a grainy one."""
    h, w = gray.shape
    crop = gray[h // 4:h // 4 + 512, w // 4:w // 4 + 512]
    smooth = median3(crop)
    paper = smooth > 160
    if paper.sum() < 1000:
        return 0.0
    return float(np.abs(crop.astype(np.int16) - smooth)[paper].mean())


def _despeckled(pix: pymupdf.Pixmap) -> pymupdf.Pixmap:
    n = pix.n
    arr = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)[:, :pix.width * n]
    arr = arr.reshape(pix.height, pix.width, n)
    out = np.stack([median3(arr[:, :, c]) for c in range(n)], axis=2)
    clean = pymupdf.Pixmap(pix.colorspace, pix.width, pix.height, np.ascontiguousarray(out).tobytes(), False)
    clean.set_dpi(pix.xres, pix.yres)
    return clean


def prepare(data: bytes) -> bytes:
    """``data`` (a PNG or JPEG page) despeckled when it is grainy and turned straight, as PNG at the same
    resolution; ``data`` itself when it is clean and straight enough, not an image MuPDF reads, or not one page."""
    try:
        pix = pymupdf.Pixmap(data)
    except Exception:  # MuPDF's own errors (FzErrorFormat, ...): not an image it reads
        return data
    if pix.alpha:
        pix = pymupdf.Pixmap(pix, 0)
    if pix.colorspace is None or pix.colorspace.n not in (1, 3):
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    gray = _gray(pix)
    noisy = grain(gray) > GRAIN
    angle = skew_angle(gray, float(pix.xres or 200))
    if abs(angle) < MIN_ANGLE and not noisy:
        return data
    if noisy:
        pix = _despeckled(pix)
    if abs(angle) < MIN_ANGLE:
        return bytes(pix.tobytes("png"))
    with pymupdf.open() as doc:  # the image on a page of its own pixel size, drawn turned back
        page = doc.new_page(width=pix.width, height=pix.height)
        page.draw_rect(page.rect, color=None, fill=(1, 1, 1))
        page.insert_image(page.rect, pixmap=pix)
        out = page.get_pixmap(matrix=pymupdf.Matrix(1, 1).prerotate(-angle), colorspace=pix.colorspace,
                              alpha=False)
    out.set_dpi(pix.xres or 200, pix.yres or 200)
    return bytes(out.tobytes("png"))
