"""Page images of a PDF attachment: the shared renderer with its caches vs opening and rendering
the file for every request (what the e-office viewer did before eoffice.pdfpages).

    .venv/bin/python bench/pages.py [--quick] [--pages N] [--rounds N]

A reading session, the same for both: a reader opens the viewer (every page at 800 px, as the
viewer's lazy images ask for them), a second reader of the same document does the same, then one
zooms in on the first five pages (1200 px) and back out (800 px). Baseline: for every request,
open the PDF from its bytes and render the page, in the PyMuPDF thread. Measured: the same
requests through ``pdfpages.page_image`` (open-document LRU, rendered-page LRU), starting cold
each round. Rounds alternate and the best of each counts; ratio = baseline / measured. Also
printed: the median cold, warm-document and cached request. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import pymupdf

from eoffice import ingest, pdfpages

SENTENCE = ("Ủy ban nhân dân tỉnh Quảng Ninh đề nghị các sở, ban, ngành triển khai chính quyền điện tử "
            "theo Nghị định số 30/2020/NĐ-CP về công tác văn thư. ")


def make_pdf(pages: int) -> bytes:
    font = pymupdf.Font("notos")
    doc = pymupdf.open()
    for p in range(pages):
        page = doc.new_page(width=595, height=842)
        w = pymupdf.TextWriter(page.rect)
        w.fill_textbox(pymupdf.Rect(50, 50, 545, 792), f"Trang {p + 1}. " + SENTENCE * 22, font=font, fontsize=10)
        w.write_text(page)
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return bytes(data)


def render_uncached(data: bytes, number: int, width: int) -> bytes:
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        return pdfpages.render_page(doc, number, width)


def session(pages: int) -> list[tuple[int, int]]:
    reading = [(n, 800) for n in range(1, pages + 1)]
    zoom = [(n, 1200) for n in range(1, 6)] + [(n, 800) for n in range(1, 6)]
    return reading + reading + zoom


async def baseline(data: bytes, requests: list[tuple[int, int]]) -> float:
    t0 = time.perf_counter()
    for n, w in requests:
        await ingest.in_thread(render_uncached, data, n, w)
    return time.perf_counter() - t0


async def measured(data: bytes, requests: list[tuple[int, int]], key: str) -> tuple[float, list[float]]:
    pdfpages.clear_cache()
    pdfpages.forget(key)

    async def load() -> bytes:
        return data

    times = []
    t0 = time.perf_counter()
    for n, w in requests:
        t = time.perf_counter()
        await pdfpages.page_image(key, load, n, w)
        times.append(time.perf_counter() - t)
    return time.perf_counter() - t0, times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small document, two rounds")
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pages, rounds = (10, 2) if args.quick else (args.pages, args.rounds)
    data = await ingest.in_thread(make_pdf, pages)
    key = "b" * 64
    requests = session(pages)
    base, meas, per = [], [], []
    for _ in range(rounds):
        base.append(await baseline(data, requests))
        total, times = await measured(data, requests, key)
        meas.append(total)
        per = times
    first = per[0]
    warm = statistics.median(per[1:pages])  # other pages of the open document, first visit
    cached = statistics.median(per[pages:2 * pages])  # the second reader
    ratio = min(base) / min(meas)
    print(f"{pages}-page PDF ({len(data) // 1024} KB), {len(requests)} page requests per session")
    print(f"baseline (open + render every request): {min(base) * 1000:.0f} ms")
    print(f"pdfpages (shared caches):               {min(meas) * 1000:.0f} ms   ratio {ratio:.2f}x")
    print(f"per request: cold {first * 1000:.1f} ms, open document {warm * 1000:.1f} ms, "
          f"cached {cached * 1000:.3f} ms")
    print(json.dumps({"bench": "pages", "pages": pages, "requests": len(requests),
                      "baseline_ms": round(min(base) * 1000, 1), "measured_ms": round(min(meas) * 1000, 1),
                      "ratio": round(ratio, 2), "cold_ms": round(first * 1000, 2), "warm_ms": round(warm * 1000, 2),
                      "cached_ms": round(cached * 1000, 3)}))
    pdfpages.forget(key)


if __name__ == "__main__":
    asyncio.run(main())
