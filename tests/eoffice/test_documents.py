"""Incoming documents with attachments: PDF checks up front, background text extraction."""

from __future__ import annotations

import asyncio
import os
import signal

import pymupdf
import pytest
from sqlalchemy import func, select

from eoffice import ingest, search
from eoffice.documents import attachments_of, get_document, page_image, register_incoming
from eoffice.ingest import IngestRunner
from eoffice.registers import Register
from eoffice.schema.documents import Attachment, Document, IngestJob
from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import Forbidden, Invalid, NotFound
from storage.events import events_since
from tests.eoffice.conftest import VN_TEXT, Org, incoming_fields, make_pdf, upload


def test_vietnamese_test_pdf_keeps_its_letters() -> None:
    with pymupdf.open(stream=make_pdf(), filetype="pdf") as doc:
        assert "Ủy ban nhân dân huyện Đông Triều" in doc[0].get_text()


def test_inspect_pdf_refuses_corrupt_and_encrypted() -> None:
    assert ingest.inspect_pdf(make_pdf(["Trang một", "Trang hai"])).page_count == 2
    with pytest.raises(Invalid, match="mật khẩu") as err:
        ingest.inspect_pdf(make_pdf(password="bí-mật-123"), "to-trinh.pdf")
    assert err.value.details["reason"] == "encrypted" and "«to-trinh.pdf»" in err.value.message
    for junk in (b"%PDF-1.7\n garbage \x00\x01", make_pdf()[:200], b"not a pdf at all"):
        with pytest.raises(Invalid, match=r"hỏng|không có trang|không phải PDF"):
            ingest.inspect_pdf(junk)


def test_extract_flags_scanned_pages() -> None:
    result = ingest.extract_text(make_pdf(["Trang có chữ: Công văn triển khai", "Trang hai"], scanned=2))
    assert len(result.pages) == 4 and result.scanned == [3, 4]
    assert "Công văn triển khai" in result.pages[0]


@pytest.mark.parametrize("bad", ["encrypted", "corrupt"])
async def test_bad_pdf_registers_nothing(db: Database, org: Org, blobs: BlobStore, bad: str) -> None:
    clerk = org["vanthu"]
    data = make_pdf(password="abc12345") if bad == "encrypted" else make_pdf()[:300]
    async with db.uow() as uow:
        good = await upload(uow, clerk, blobs, make_pdf(), "phu-luc.pdf")
        broken = await upload(uow, clerk, blobs, data, "cong-van.pdf")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Invalid, match=r"«cong-van\.pdf»"):
            await register_incoming(uow, clerk, blobs, **incoming_fields(1), upload_ids=[good, broken])
        await uow.commit()  # even a caller that commits anyway has nothing half-registered
    async with db.uow() as uow:
        for model in (Document, Attachment, IngestJob, Register):
            assert await uow.session.scalar(select(func.count()).select_from(model)) == 0
        doc, _ = await register_incoming(uow, clerk, blobs, **incoming_fields(1), upload_ids=[good])
        assert doc.number == 1


async def test_upload_of_someone_else_cannot_be_attached(db: Database, org: Org, blobs: BlobStore) -> None:
    async with db.uow() as uow:
        theirs = await upload(uow, org["chuyenvien"], blobs, make_pdf())
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1), upload_ids=[theirs])


async def test_register_with_pdf_extracts_text_in_background(db: Database, org: Org, blobs: BlobStore) -> None:
    clerk = org["vanthu"]
    pages = [VN_TEXT] + [f"Trang {i}: kế hoạch chuyển đổi số tỉnh Quảng Ninh" for i in range(2, 41)]
    async with db.uow() as uow:
        pdf = await upload(uow, clerk, blobs, make_pdf(pages, scanned=1), "ke-hoach.pdf")
        other = await upload(uow, clerk, blobs, "Bảng kê".encode(), "bang-ke.txt", "text/plain")
        doc, jobs = await register_incoming(uow, clerk, blobs, **incoming_fields(1), upload_ids=[pdf, other])
        await uow.commit()
    assert doc.page_count == 41 and len(jobs) == 2  # the text file is converted to a PDF rendition (#16)
    async with db.uow() as uow:
        atts = await attachments_of(uow, doc)
        assert [(a.filename, a.is_pdf, a.page_count) for a in atts] == [("ke-hoach.pdf", True, 41),
                                                                           ("bang-ke.txt", False, None)]
        assert (await search.search(uow, clerk, "dong trieu chinh quyen dien tu"))[0].document.id == doc.id
        assert await search.search(uow, clerk, "chuyen doi so quang ninh") == []  # only the summary so far

    runner = IngestRunner(db, blobs)
    runner.submit(jobs)
    await runner.drain()
    await runner.stop()  # the extraction worker process

    async with db.uow() as uow:
        job = await uow.session.get(IngestJob, jobs[0])
        assert job is not None and (job.status, job.progress) == ("done", 100)
        doc = await get_document(uow, clerk, doc.id)
        assert doc.has_scanned_pages
        att = (await attachments_of(uow, doc))[0]
        text = await uow.session.scalar(select(Attachment.text).where(Attachment.id == att.id))
        assert att.scanned_pages == [41] and "Đông Triều" in (text or "")
        hits = await search.search(uow, clerk, "Chuyển đổi số Quảng Ninh")
        assert [h.document.id for h in hits] == [doc.id]
        replay = await events_since(uow.session, f"document:{doc.id}", 0)
        types = [e["type"] for e in replay.events]
        assert types[0] == "document.registered" and types[-1] == "ingest.done"
        progress = [e["data"]["progress"] for e in replay.events if e["type"] == "ingest.progress"]
        assert progress == sorted(progress) and all(0 < p < 100 for p in progress)
        done = {e["data"]["job_id"]: e["data"] for e in replay.events if e["type"] == "ingest.done"}
        assert done[jobs[0]]["scanned_pages"] == [41]
        text_file = (await attachments_of(uow, doc))[1]  # the .txt: a PDF rendition, its original kept (#16)
        assert done[jobs[1]]["attachment_id"] == text_file.id and text_file.rendition_blob_key is not None
        png = await page_image(uow, clerk, blobs, att.id, 1, width=300)
        assert png.startswith(b"\x89PNG")
        with pytest.raises(NotFound):  # thumbnails follow the document's access
            await page_image(uow, org["chuyenvien"], blobs, att.id, 1)


async def test_extraction_worker_survives_bad_files_and_is_restarted() -> None:
    from eoffice.ingest import Extractor

    ex = Extractor()
    try:
        await ex.start()
        first = ex.pid
        with pytest.raises(Invalid, match="Không trích xuất được"):
            await ex.submit("%PDF-1.7 tệp hỏng".encode())
        got = await ex.submit(make_pdf(["Công văn triển khai chính quyền điện tử"]))
        assert "Công văn triển khai" in got.text and ex.pid == first  # the same worker goes on
        data = make_pdf(["Trang có bảng tham chiếu hỏng"])
        damaged = data[:data.rfind(b"startxref")] + b"startxref\n999999\n%%EOF\n"  # MuPDF repairs, and talks
        assert "tham chiếu hỏng" in (await ex.submit(damaged)).text and ex.pid == first
        progress: list[tuple[int, int]] = []
        big = make_pdf([f"Trang {i}: Ủy ban nhân dân huyện Đông Triều" for i in range(400)])
        assert len((await ex.submit(big, lambda d, t: progress.append((d, t)))).pages) == 400
        assert all(t == 400 for _, t in progress)
        assert first is not None
        os.kill(first, signal.SIGSTOP)  # stuck on a file...
        pending = ex.submit_nowait(make_pdf(["Trang một"]))
        await asyncio.sleep(0.1)
        os.kill(first, signal.SIGKILL)  # ...then crashed, as MuPDF might on a malicious PDF
        assert "Trang một" in (await pending).text and ex.pid not in (None, first)  # sent again to a new one
        again = await ex.submit(make_pdf(["Trang sau khi khởi động lại"]))
        assert "khởi động lại" in again.text and ex.pid not in (None, first)
    finally:
        await ex.close()


async def test_the_runner_takes_the_jobs_after_the_commit_not_after_a_rollback(db: Database, org: Org,
                                                                             blobs: BlobStore) -> None:
    """No caller hands the jobs over: the registration queues them for after its commit."""
    clerk = org["vanthu"]
    runner = IngestRunner(db, blobs, processes=0)
    try:
        async with db.uow() as uow:
            pdf = await upload(uow, clerk, blobs, make_pdf(["Công văn về việc triển khai chính quyền điện tử"]))
            await uow.commit()
        async with db.uow() as uow:  # refused after the jobs were queued: nothing reaches the runner
            await register_incoming(uow, clerk, blobs, **incoming_fields(1), upload_ids=[pdf])
        await runner.drain()
        async with db.uow() as uow:
            assert (await uow.session.scalar(select(func.count()).select_from(IngestJob))) == 0
            doc, jobs = await register_incoming(uow, clerk, blobs, **incoming_fields(1), upload_ids=[pdf])
            await uow.commit()
        runner.submit(jobs)  # a caller that still hands them over: the same job is not run twice
        await runner.drain()
        async with db.uow() as uow:
            job = await uow.session.get(IngestJob, jobs[0])
            assert job is not None and (job.status, job.progress) == ("done", 100)
            hits = await search.search(uow, clerk, "trien khai chinh quyen dien tu")
            assert [h.document.id for h in hits] == [doc.id]
            done = [e for e in (await events_since(uow.session, f"document:{doc.id}", 0)).events
                    if e["type"] == "ingest.done"]
            assert len(done) == 1
    finally:
        await runner.stop()
    assert db.consumers == {}  # a stopped runner takes no more work
