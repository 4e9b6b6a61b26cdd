"""Registration with text extraction vs raw PyMuPDF extraction of the same PDFs.

    .venv/bin/python bench/ingest.py [--quick] [--db URL]

Baseline: open each PDF with PyMuPDF and get the text of every page, in this process.
Measured: claim the upload, open and check the PDF, allocate the arrival number, register,
commit, then the background job extracts, stores the text and updates the search index.
Ratio = baseline time / registration time (target >= 0.8). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time

import pymupdf

from eoffice import identity, ingest, uploads
from eoffice.documents import register_incoming
from eoffice.org import Role, Unit, UnitKind
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import migrate

SENTENCES = [
    "Ủy ban nhân dân tỉnh Quảng Ninh đề nghị các sở, ban, ngành triển khai chính quyền điện tử.",
    "Thực hiện Nghị định số 30/2020/NĐ-CP về công tác văn thư, các cơ quan rà soát quy trình.",
    "Báo cáo kết quả chuyển đổi số cấp xã, phường, thị trấn trong quý IV năm 2026.",
    "Đôn đốc hoàn thành chỉ tiêu giải quyết hồ sơ thủ tục hành chính đúng hạn.",
]


def make_pdf(pages: int, seed: int) -> bytes:
    font = pymupdf.Font("notos")
    doc = pymupdf.open()
    for p in range(pages):
        page = doc.new_page(width=595, height=842)
        w = pymupdf.TextWriter(page.rect)
        text = " ".join(SENTENCES[(seed + p + i) % len(SENTENCES)] for i in range(24))
        w.fill_textbox(pymupdf.Rect(50, 50, 545, 792), text, font=font, fontsize=10)
        w.write_text(page)
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return bytes(data)


def raw(pdfs: list[bytes]) -> float:
    t = time.perf_counter()
    for data in pdfs:
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            for page in doc:
                page.get_text("text")
    return time.perf_counter() - t


async def registered(url: str, blob_dir: str, pdfs: list[bytes]) -> float:
    db = Database(url)
    blobs = open_blob_store(f"file://{blob_dir}")
    async with db.uow() as uow:
        agency = Unit(code="UBND", name="Ủy ban nhân dân tỉnh Quảng Ninh", kind=UnitKind.PROVINCE, is_agency=True)
        uow.session.add(agency)
        await uow.session.flush()
        clerk = await identity.create_user(uow, None, username="vanthu", full_name="Nguyễn Thị Lan",
                                           password="Bench@2026", roles=[Role.CLERK], unit_id=agency.id)
        ids = []
        for i, data in enumerate(pdfs):  # uploads happen before registration, as over HTTP
            info = await blobs.put_bytes(data, content_type="application/pdf")
            ids.append((await uploads.record_upload(uow, clerk, info, f"van-ban-{i}.pdf")).id)
        await uow.commit()
    runner = ingest.IngestRunner(db, blobs)
    t = time.perf_counter()
    for i, upload_id in enumerate(ids):
        async with db.uow() as uow:
            _, jobs = await register_incoming(
                uow, clerk, blobs, sender="Sở Thông tin và Truyền thông", notation=f"{i + 1}/STTTT-VP",
                date_issued=None, doc_type="cong_van", summary=f"Công văn triển khai chuyển đổi số số {i + 1}",
                upload_ids=[upload_id])
            await uow.commit()
        runner.submit(jobs)
    await runner.drain()
    elapsed = time.perf_counter() - t
    await blobs.close()
    await db.dispose()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="20 PDFs of 20 pages instead of 50 of 40")
    ap.add_argument("--db", default="", help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    n, pages = (20, 20) if args.quick else (50, 40)
    pdfs = [make_pdf(pages, i) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        migrate(url)
        raw(pdfs[:2])  # warm-up
        base = min(raw(pdfs) for _ in range(3))
        full = asyncio.run(registered(url, f"{tmp}/blobs", pdfs))
    ratio = base / full
    print(f"{n} PDFs x {pages} pages ({sum(map(len, pdfs)) / 1e6:.1f} MB)")
    print(f"raw PyMuPDF extraction:          {base:.3f} s ({n * pages / base:.0f} pages/s)")
    print(f"registration with extraction:    {full:.3f} s ({n * pages / full:.0f} pages/s)")
    print(f"ratio (target >= 0.8):           {ratio:.2f}")
    print(json.dumps({"bench": "ingest", "documents": n, "pages_each": pages, "raw_s": round(base, 4),
                      "registered_s": round(full, 4), "ratio": round(ratio, 3), "target": 0.8,
                      "ok": ratio >= 0.8, "database": url.split(":", 1)[0]}))


if __name__ == "__main__":
    main()
