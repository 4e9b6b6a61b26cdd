"""PDF handling with PyMuPDF: synchronous up-front validation, background text extraction.

``inspect_pdf`` opens the file and touches every page; it runs (in a worker thread) before a
document is registered, so a corrupt or password-protected PDF is refused with nothing
half-registered. Extraction of the text layer then runs in the background, one job at a time
(MuPDF is not thread-safe), with its progress (0..100) kept on an ``ingest_jobs`` row and
published on the document's topic ``document:{id}``. Pages with no text layer but with images
are flagged as scanned.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, Database, utcnow
from storage.errors import Invalid

log = logging.getLogger(__name__)

PDF_TYPES = {"application/pdf", "application/x-pdf"}
SCANNED_MIN_CHARS = 16  # fewer characters than this on a page with images: treated as a scan
PROGRESS_INTERVAL = 0.5  # seconds between progress writes


MAX_PDF_BYTES = 1 << 30  # read whole for PyMuPDF; uploads are limited well below this


class BlobReader(Protocol):
    """What documents need of the blob store (storage.blobs.BlobStore satisfies it)."""

    async def read(self, key: str, limit: int = ...) -> bytes: ...


class IngestStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class IngestJob(Base):
    __tablename__ = "ingest_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    attachment_id: Mapped[int] = mapped_column(ForeignKey("document_attachments.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), default=IngestStatus.QUEUED, index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "attachment_id": self.attachment_id, "status": self.status,
                "progress": self.progress, "error": self.error}


def looks_like_pdf(filename: str, content_type: str, head: bytes = b"") -> bool:
    return content_type in PDF_TYPES or filename.lower().endswith(".pdf") or head.startswith(b"%PDF-")


@dataclass(frozen=True)
class PdfInfo:
    page_count: int


def inspect_pdf(data: bytes, filename: str = "") -> PdfInfo:
    """Open and check a PDF (blocking: run it in a thread). Raises Invalid with a clear message."""
    import pymupdf

    name = f"«{filename}» " if filename else ""
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:
        raise Invalid(f"Tệp {name}không phải PDF hợp lệ hoặc đã bị hỏng, không đọc được.", reason="corrupt") from exc
    with doc:
        if doc.needs_pass or doc.is_encrypted:
            raise Invalid(f"Tệp {name}được bảo vệ bằng mật khẩu. Hãy gửi bản PDF không đặt mật khẩu.",
                          reason="encrypted")
        if doc.page_count == 0:
            raise Invalid(f"Tệp {name}không có trang nào.", reason="empty")
        try:
            for page in doc:
                page.bound()
                page.get_contents()
        except Exception as exc:
            raise Invalid(f"Tệp {name}bị hỏng: không đọc được trang.", reason="corrupt") from exc
        return PdfInfo(doc.page_count)


@dataclass
class Extraction:
    pages: list[str] = field(default_factory=list)
    scanned: list[int] = field(default_factory=list)  # 1-based page numbers

    @property
    def text(self) -> str:
        return "\n\f".join(self.pages)


def extract_text(data: bytes, progress: Callable[[int, int], None] | None = None) -> Extraction:
    """Text of every page; pages with images and (almost) no text flagged. Blocking."""
    import pymupdf

    out = Extraction()
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        total = doc.page_count
        for i, page in enumerate(doc):
            text = page.get_text("text", sort=False)
            out.pages.append(text)
            if len(text.strip()) < SCANNED_MIN_CHARS and page.get_images(full=False):
                out.scanned.append(i + 1)
            if progress is not None:
                progress(i + 1, total)
    return out


def render_page(data: bytes, page_no: int, width: int = 800) -> bytes:
    """A PNG of one page (1-based), ``width`` pixels wide. Blocking."""
    import pymupdf

    with pymupdf.open(stream=data, filetype="pdf") as doc:
        if not 1 <= page_no <= doc.page_count:
            raise Invalid(f"Trang {page_no} không tồn tại (tệp có {doc.page_count} trang).")
        page = doc[page_no - 1]
        zoom = max(0.1, min(4.0, width / max(page.rect.width, 1)))
        return bytes(page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False).tobytes("png"))


_pdf_lock = threading.Lock()  # MuPDF is not thread-safe: one PDF operation at a time per process


def _locked(fn: Callable[..., Any], *args: Any) -> Any:
    with _pdf_lock:
        return fn(*args)


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a PyMuPDF function in a worker thread, serialised with the others."""
    return await anyio.to_thread.run_sync(_locked, fn, *args)


async def run_job(db: Database, blobs: BlobReader, job_id: int) -> None:
    """Extract one attachment's text, reporting progress; store it and update the search index."""
    from eoffice import search
    from eoffice.documents import Attachment, Document

    async with db.uow() as uow:  # read only: the job's state is written when there is progress to show
        row = (await uow.session.execute(
            select(IngestJob.status, IngestJob.document_id, Attachment.id, Attachment.blob_key)
            .join(Attachment, Attachment.id == IngestJob.attachment_id).where(IngestJob.id == job_id))).first()
    if row is None or row[0] not in (IngestStatus.QUEUED, IngestStatus.RUNNING):
        return
    doc_id, att_id, key = row[1], row[2], row[3]

    state = {"done": 0, "total": 1}

    def on_page(done: int, total: int) -> None:
        state["done"], state["total"] = done, total

    async def report(progress: int) -> None:
        async with db.uow() as uow:
            await uow.session.execute(update(IngestJob).where(IngestJob.id == job_id)
                                      .values(status=IngestStatus.RUNNING, progress=progress, updated_at=utcnow()))
            uow.emit(f"document:{doc_id}", "ingest.progress", job_id=job_id, progress=progress)
            await uow.commit()

    try:
        data = await blobs.read(key, limit=MAX_PDF_BYTES)
        task = asyncio.ensure_future(in_thread(extract_text, data, on_page))
        reported = 0
        while not task.done():
            await asyncio.wait({task}, timeout=PROGRESS_INTERVAL)
            progress = min(99, state["done"] * 100 // max(state["total"], 1))
            if progress > reported and not task.done():
                reported = progress
                await report(progress)
        result: Extraction = task.result()
    except Exception as exc:
        log.exception("ingest job %s failed", job_id)
        async with db.uow() as uow:
            await uow.session.execute(update(IngestJob).where(IngestJob.id == job_id).values(
                status=IngestStatus.FAILED, error=str(exc)[:300], updated_at=utcnow()))
            uow.emit(f"document:{doc_id}", "ingest.failed", job_id=job_id)
            await uow.commit()
        return

    async with db.uow() as uow:
        att = await uow.session.get(Attachment, att_id)
        doc = await uow.session.get(Document, doc_id)
        if att is None or doc is None:
            return
        att.text, att.scanned_pages, att.page_count = result.text, result.scanned, len(result.pages)
        if result.scanned:
            doc.has_scanned_pages = True
        await uow.session.execute(update(IngestJob).where(IngestJob.id == job_id).values(
            status=IngestStatus.DONE, progress=100, updated_at=utcnow()))
        await search.index_document(uow, doc)
        uow.emit(f"document:{doc_id}", "ingest.done", job_id=job_id, attachment_id=att_id,
                 pages=len(result.pages), scanned_pages=result.scanned)
        await uow.commit()


class IngestRunner:
    """One background consumer of ingest jobs per process. ``submit`` after the registering
    transaction committed; ``recover`` re-queues jobs a previous process left unfinished."""

    def __init__(self, db: Database, blobs: BlobReader) -> None:
        self.db, self.blobs = db, blobs
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, job_ids: Iterable[int]) -> None:
        for job_id in job_ids:
            self._idle.clear()
            self._queue.put_nowait(job_id)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ingest-runner")

    async def recover(self) -> int:
        async with self.db.uow() as uow:
            ids = list((await uow.session.scalars(
                select(IngestJob.id).where(IngestJob.status.in_([IngestStatus.QUEUED, IngestStatus.RUNNING]))
                .order_by(IngestJob.id))).all())
        self.submit(ids)
        return len(ids)

    async def _run(self) -> None:
        while True:
            try:
                job_id = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                self._idle.set()
                return
            try:
                await run_job(self.db, self.blobs, job_id)
            except Exception:
                log.exception("ingest job %s crashed", job_id)

    async def drain(self) -> None:
        """Wait until every submitted job has run (tests, benchmarks, shutdown)."""
        await self._idle.wait()
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
