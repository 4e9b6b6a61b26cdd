"""PDF handling with PyMuPDF: synchronous up-front validation, background text extraction.

``inspect_pdf`` opens the file and touches every page; it runs (in a worker thread) before a
document is registered, so a corrupt or password-protected PDF is refused with nothing
half-registered. Extraction of the text layer then runs in the background, in a worker process
(``eoffice.pdfworker``: PyMuPDF holds the GIL), one file at a time, with its progress (0..100)
kept on an ``ingest_jobs`` row and published on the document's topic ``document:{id}``.
Pages with no text layer but with images are flagged as scanned.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from sqlalchemy import case, literal, select, update

from eoffice import pdfsandbox, pdfworker, renditions, search, spawn
from eoffice.job_retry import RetryPolicy
from eoffice.pdfworker import SCANNED_MIN_CHARS, Extraction, extract_text
from eoffice.schema.documents import Attachment, Document, IngestJob, IngestStatus
from storage.background import BackgroundTask
from storage.db import Database, UnitOfWork, utcnow
from storage.errors import Invalid
from storage.outages import is_transient

__all__ = ["SCANNED_MIN_CHARS", "Extraction", "Extractor", "IngestJob", "IngestRunner", "extract_text",
           "inspect_pdf", "run_job"]

log = logging.getLogger(__name__)

PDF_TYPES = {"application/pdf", "application/x-pdf"}
PROGRESS_INTERVAL = 0.5  # seconds between progress writes


MAX_PDF_BYTES = 1 << 30  # read whole for PyMuPDF; uploads are limited well below this


class BlobReader(Protocol):
    """What documents need of the blob store (storage.blobs.BlobStore satisfies it)."""

    async def read(self, key: str, limit: int = ...) -> bytes: ...

    async def read_range(self, key: str, offset: int, length: int) -> bytes: ...

    async def put_bytes(self, data: bytes, *, content_type: str = ...) -> Any: ...

    def local_path(self, key: str) -> str | None: ...


def looks_like_pdf(filename: str, content_type: str, head: bytes = b"") -> bool:
    return content_type in PDF_TYPES or filename.lower().endswith(".pdf") or head.startswith(b"%PDF-")


@dataclass(frozen=True)
class PdfInfo:
    page_count: int


def check_pages(doc: Any, name: str, max_pages: int, max_points: float) -> None:
    """Refuse a document past the page-count or page-size limits (``eoffice.pdfsandbox.Limits``)."""
    if doc.page_count > max_pages:
        raise Invalid(f"Tệp {name}có {doc.page_count} trang, vượt giới hạn {max_pages} trang.", reason="pages")
    for page in doc:
        r = page.rect
        if max(r.width, r.height) > max_points or min(r.width, r.height) < 1:
            raise Invalid(f"Tệp {name}có trang {page.number + 1} kích thước bất thường "
                          f"({r.width:.0f} × {r.height:.0f} điểm), không hiển thị được.", reason="page_size")


def inspect_pdf(data: bytes, filename: str = "", path: str | None = None, max_pages: int = 2000,
                max_points: float = 14400.0) -> PdfInfo:
    """Open and check a PDF, given as bytes or as the ``path`` of a local file (blocking: ``inspect``
    runs it in a PDF worker process). Raises Invalid with a clear message."""
    import pymupdf  # runs in a PDF worker process: MuPDF is loaded there

    name = f"«{filename}» " if filename else ""
    try:
        doc = pymupdf.open(path, filetype="pdf") if path is not None else pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:
        raise Invalid(f"Tệp {name}không phải PDF hợp lệ hoặc đã bị hỏng, không đọc được.", reason="corrupt") from exc
    with doc:
        if doc.needs_pass or doc.is_encrypted:
            raise Invalid(f"Tệp {name}được bảo vệ bằng mật khẩu. Hãy gửi bản PDF không đặt mật khẩu.",
                          reason="encrypted")
        if doc.page_count == 0:
            raise Invalid(f"Tệp {name}không có trang nào.", reason="empty")
        check_pages(doc, name, max_pages, max_points)
        try:
            for page in doc.pages():
                page.bound()
                page.get_contents()
        except Exception as exc:
            raise Invalid(f"Tệp {name}bị hỏng: không đọc được trang.", reason="corrupt") from exc
        return PdfInfo(doc.page_count)


async def inspect(data: bytes, filename: str = "", path: str | None = None) -> PdfInfo:
    """``inspect_pdf`` in a PDF worker process, within its time, memory, page-count and page-size
    limits: a crafted file is refused with a clear message, and nothing is registered."""
    lim = pdfsandbox.limits()
    try:
        return await pdfsandbox.call(inspect_pdf, data, filename, path, lim.max_pages, lim.max_page_points)
    except pdfsandbox.TooComplex as exc:
        name = f"«{filename}» " if filename else ""
        raise pdfsandbox.TooComplex(f"Tệp {name}quá phức tạp: vượt giới hạn thời gian hoặc bộ nhớ khi kiểm tra.",
                                    reason=exc.details.get("reason", "")) from None


# MuPDF is not thread-safe: every PyMuPDF call of the process (e-office and meeting room alike,
# ``meetings.render.run`` comes here too) runs in this one thread, in order.
pdf_thread = ThreadPoolExecutor(1, thread_name_prefix="pymupdf")


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a PyMuPDF function in the process's one PyMuPDF thread."""
    return await asyncio.get_running_loop().run_in_executor(pdf_thread, fn, *args)


# ---- extraction in a worker process (eoffice.pdfworker says why) -------------------------------

class WorkerGone(RuntimeError):
    pass


EXTRACT_TOO_COMPLEX = "Không trích xuất được văn bản: tệp PDF quá phức tạp (vượt giới hạn thời gian hoặc bộ nhớ)."


def _too_complex(reason: str) -> Exception:
    return pdfsandbox.TooComplex(EXTRACT_TOO_COMPLEX, reason=reason)


class _Process:
    """One worker process (``python -m eoffice.pdfworker``), started at its first job or by
    ``start``, restarted if it dies. Answers come in the order of the requests. Its address space
    is capped (``pdfsandbox.Limits.memory``); a file that takes longer than ``extract_timeout``
    (counted from when the worker gets to it) fails as too complex and the worker is killed: the
    files queued behind it fail with ``WorkerGone`` and ``Extractor`` sends them again."""

    def __init__(self) -> None:
        self.load = 0  # extractions handed to it and not answered (Extractor picks the least loaded)
        self._proc: spawn.Child | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[int, tuple[asyncio.Future[Extraction], Callable[[int, int], None] | None]] = {}
        self._next = 0
        self._starting: asyncio.Lock | None = None
        self._order: collections.deque[int] = collections.deque()  # jobs sent, not answered, in order
        self._since = 0.0  # when the worker got to the first of them
        self._ready = False  # the worker said its imports are done (before that, no time limit runs)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def start(self) -> None:
        """Start the worker now and wait until it answers (it imports PyMuPDF: a fraction of a
        second, paid once per server process rather than by the first document)."""
        with contextlib.suppress(Invalid):
            await self.submit(b"")  # not a PDF: answered with an error once the worker is up

    async def _ensure(self) -> spawn.Child:
        self._starting = self._starting or asyncio.Lock()
        async with self._starting:
            if self._proc is None or self._proc.returncode is not None or self._reader is None \
                    or self._reader.done():
                env = dict(os.environ, EOFFICE_PDF_WORKER_MEMORY=str(pdfsandbox.limits().memory))
                self._order.clear()
                self._ready = False
                # not asyncio.create_subprocess_exec: see eoffice.spawn (a start-up freeze under uvloop)
                self._proc = await spawn.start([sys.executable, "-m", "eoffice.pdfworker"], env)
                self._reader = asyncio.get_running_loop().create_task(self._read(self._proc), name="pdfworker")
            return self._proc

    async def _read(self, proc: spawn.Child) -> None:
        assert proc.stdout is not None
        try:
            while True:
                wait = 1.0  # nothing in hand (or still starting): look again soon
                if self._order and self._ready:
                    wait = min(wait, self._since + pdfsandbox.limits().extract_timeout - time.monotonic())
                try:
                    head = await asyncio.wait_for(proc.stdout.readexactly(pdfworker.HEADER.size), max(wait, 0))
                except TimeoutError:
                    if not self._order or not self._ready or \
                            time.monotonic() < self._since + pdfsandbox.limits().extract_timeout:
                        continue  # a job came meanwhile, or its time is not up yet
                    late = self._waiting.pop(self._order.popleft(), (None, None))[0]
                    if late is not None and not late.done():
                        late.set_exception(_too_complex("timeout"))
                    log.warning("PDF worker %s killed: one file took longer than the limit", proc.pid)
                    return
                (size,) = pdfworker.HEADER.unpack(head)
                msg = json.loads(await proc.stdout.readexactly(size))
                if msg.get("ready"):
                    self._ready, self._since = True, time.monotonic()
                    continue
                if "progress" not in msg and self._order and self._order[0] == msg["job"]:
                    self._order.popleft()
                    self._since = time.monotonic()
                fut, on_page = self._waiting.get(msg["job"], (None, None))
                if fut is None:
                    continue
                if "progress" in msg:
                    if on_page is not None:
                        on_page(*msg["progress"])
                    continue
                del self._waiting[msg["job"]]
                if fut.done():
                    continue
                if msg.get("too_complex"):
                    fut.set_exception(_too_complex("memory"))
                elif "error" in msg:
                    fut.set_exception(Invalid(f"Không trích xuất được văn bản: {msg['error']}"))
                else:
                    fut.set_result(Extraction(msg["pages"], msg["scanned"]))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, KeyError) as exc:
            if proc is self._proc:  # not closed by us
                log.error("PDF worker %s stopped: %r", proc.pid, exc)
        finally:
            for fut, _ in self._waiting.values():  # whatever was sent to it will not be answered
                if not fut.done():
                    fut.set_exception(WorkerGone("Tiến trình trích xuất văn bản đã dừng."))
            self._waiting.clear()
            self._order.clear()
            if proc is self._proc and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()

    async def submit(self, data: bytes, on_page: Callable[[int, int], None] | None = None,
                     path: str | None = None) -> Extraction:
        """The text of ``data``, or of the file at ``path`` (a local blob: the worker reads it)."""
        proc = await self._ensure()
        assert proc.stdin is not None
        self._next += 1
        key = self._next
        fut: asyncio.Future[Extraction] = asyncio.get_running_loop().create_future()
        self._waiting[key] = (fut, on_page)
        try:
            if path is not None:
                data = b""
            header = json.dumps({"job": key, "size": len(data), "path": path}).encode()
            proc.stdin.write(pdfworker.HEADER.pack(len(header)) + header + pdfworker.HEADER.pack(len(data)))
            proc.stdin.write(data)
            if not self._order:
                self._since = time.monotonic()
            self._order.append(key)
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._waiting.pop(key, None)
            outcome = fut.exception() if fut.done() else None  # the reader may have judged it already
            if not fut.done():
                fut.cancel()
            await self._gone(proc)
            if outcome is not None and not isinstance(outcome, WorkerGone):
                raise outcome from exc  # this file was past its time while it was being written: too complex
            raise WorkerGone("Tiến trình trích xuất văn bản đã dừng.") from exc
        try:
            return await fut
        finally:
            self._waiting.pop(key, None)

    async def _gone(self, proc: spawn.Child) -> None:
        """The pipe to ``proc`` broke (it died while a file was being written to it): make sure it is dead and its
        reader has finished, so the next job starts a fresh worker instead of writing to the dead one again."""
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        reader = self._reader
        if proc is self._proc and reader is not None and not reader.done():
            await asyncio.wait({reader})

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 2)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None


def default_processes() -> int:
    """Extraction processes for a server: two where it may use two cores or more. Extraction is
    the longest stage of registering a PDF (PyMuPDF's get_text, ~0.6 ms a page); with one process
    it sets the pace of a batch whatever the other core does (bench/ingest.py)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 2 if cores >= 2 else 1


class Extractor:
    """Extracts text in ``processes`` worker processes (``_Process``), each file in the one with
    the fewest files in hand; or, with ``processes=0``, in a thread of this process as before
    (serialised with the other PyMuPDF calls)."""

    def __init__(self, processes: int = 1) -> None:
        self.processes = max(0, processes)
        self._workers = [_Process() for _ in range(self.processes)]

    @property
    def pid(self) -> int | None:
        """The first worker's pid (None if it is not running)."""
        return self._workers[0].pid if self._workers else None

    @property
    def pids(self) -> list[int]:
        return [pid for w in self._workers if (pid := w.pid) is not None]

    async def start(self) -> None:
        """Start the workers now and wait until they answer (``_Process.start``)."""
        await asyncio.gather(*(w.start() for w in self._workers))

    def submit_nowait(self, data: bytes, on_page: Callable[[int, int], None] | None = None,
                      path: str | None = None) -> asyncio.Future[Extraction]:
        """A future for the extraction of ``data`` or ``path`` (a worker starts if needed)."""
        return asyncio.ensure_future(self.submit(data, on_page, path))

    async def submit(self, data: bytes, on_page: Callable[[int, int], None] | None = None,
                     path: str | None = None) -> Extraction:
        """The text of ``data``, or of the file at ``path`` (a local blob: the worker reads it)."""
        if not self._workers:
            if path is not None:
                data = await anyio.Path(path).read_bytes()
            return await in_thread(extract_text, data, on_page)  # type: ignore[no-any-return]
        for attempt in range(2):
            worker = min(self._workers, key=lambda w: w.load)  # chosen before any await: in submit order
            worker.load += 1
            try:
                return await worker.submit(data, on_page, path)
            except WorkerGone:  # killed for another file's sake (or crashed): once more, on a fresh one
                if attempt:
                    raise
            finally:
                worker.load -= 1
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self._workers))


def local_path(blobs: BlobReader, key: str) -> str | None:
    """The blob's file for a PDF worker to read itself (not copied through the pipe), when the
    store has one on this machine and it is not over ``MAX_PDF_BYTES``; else None."""
    path = blobs.local_path(key)
    with contextlib.suppress(OSError):  # removed meanwhile: the bytes path says so
        if path is not None and os.path.getsize(path) <= MAX_PDF_BYTES:
            return path
    return None


@dataclass
class _Prepared:
    job_id: int
    document_id: int
    attachment_id: int
    result: asyncio.Future[Extraction]
    state: dict[str, int]


async def _prepare(db: Database, blobs: BlobReader, extractor: Extractor, job_ids: list[int]) -> list[_Prepared]:
    """Read the jobs and their files (one query for all) and hand the files to the extractor."""
    async with db.uow(readonly=True) as uow:  # the job's state is written when there is progress to show
        rows = {r[0]: r for r in (await uow.session.execute(
            select(IngestJob.id, IngestJob.status, IngestJob.document_id, Attachment.id, Attachment.blob_key,
                   Attachment.is_pdf)
            .join(Attachment, Attachment.id == IngestJob.attachment_id).where(IngestJob.id.in_(job_ids)))).all()}
    out = []
    for job_id in job_ids:
        row = rows.get(job_id)
        if row is None or row[1] not in (IngestStatus.QUEUED, IngestStatus.RUNNING):
            continue
        doc_id, att_id, key = row[2], row[3], row[4]
        state = {"done": 0, "total": 1}

        def on_page(done: int, total: int, state: dict[str, int] = state) -> None:
            state["done"], state["total"] = done, total

        result: asyncio.Future[Extraction]
        try:
            if not row[5]:  # an office file or a scan: its PDF rendition first (eoffice.renditions)
                result = asyncio.ensure_future(_render(db, blobs, extractor, job_id, doc_id, key, on_page))
            else:
                local = local_path(blobs, key)
                if local is not None:  # the worker reads the file: no copy through this process
                    result = extractor.submit_nowait(b"", on_page, local)
                else:
                    result = extractor.submit_nowait(await blobs.read(key, limit=MAX_PDF_BYTES), on_page)
                if renditions.ocr_available():  # pages without a text layer get their text by OCR
                    result = asyncio.ensure_future(_ocr_after(blobs, key, result))
        except Exception as exc:  # the blob is gone, the worker cannot start: the job fails, visibly
            result = asyncio.get_running_loop().create_future()
            result.set_exception(exc)
        out.append(_Prepared(job_id, doc_id, att_id, result, state))
    return out


async def _render(db: Database, blobs: BlobReader, extractor: Extractor, job_id: int, document_id: int, key: str,
                  on_page: Callable[[int, int], None]) -> Extraction:
    """The PDF rendition of a non-PDF attachment, stored as its own blob (the original untouched), and its text.
    The job shows as running (converting) meanwhile; a failure is a ``renditions.ConversionFailed`` with the reason
    in Vietnamese, which ``_store`` writes on the job."""
    async with db.uow() as uow:
        await uow.session.execute(update(IngestJob).where(IngestJob.id == job_id).values(
            status=IngestStatus.RUNNING, updated_at=utcnow()))
        uow.emit(f"document:{document_id}", "ingest.converting", job_id=job_id)
        await uow.commit()
    data = await blobs.read(key, limit=MAX_PDF_BYTES)
    pdf = await renditions.render(data)
    del data
    info = await blobs.put_bytes(pdf, content_type="application/pdf")
    result = await extractor.submit(pdf, on_page)
    result.rendition = info.key
    if result.scanned and renditions.ocr_available():  # an office file holding a scanned page
        result = await _ocr_scanned(blobs, info.key, result)
    return result


async def _ocr_after(blobs: BlobReader, key: str, extraction: asyncio.Future[Extraction]) -> Extraction:
    return await _ocr_scanned(blobs, key, await extraction)


async def _ocr_scanned(blobs: BlobReader, key: str, result: Extraction) -> Extraction:
    """The extraction, with the text of its scanned pages (no text layer) read by OCR: each page rendered at 300 dpi
    in a PDF worker, then Tesseract (``eoffice.renditions``). A page OCR cannot read keeps its empty text; the
    extraction itself never fails for it."""
    for page in result.scanned[:renditions.config().ocr_max_pages]:
        try:
            png = await pdfsandbox.with_doc(key, lambda: blobs.read(key, limit=MAX_PDF_BYTES),
                                            renditions.render_doc_page_png, page)
            text = await renditions.ocr(png)
        except Exception:
            log.warning("OCR of page %s of %s failed", page, key, exc_info=True)
            continue
        if page <= len(result.pages):
            result.pages[page - 1] = text
    return result


async def _wait(db: Database, job: _Prepared) -> None:
    """Wait for one extraction, publishing its progress every ``PROGRESS_INTERVAL``."""
    reported = 0
    while not job.result.done():
        await asyncio.wait({job.result}, timeout=PROGRESS_INTERVAL)
        progress = min(99, job.state["done"] * 100 // max(job.state["total"], 1))
        if progress > reported and not job.result.done():
            reported = progress
            async with db.uow() as uow:
                await uow.session.execute(
                    update(IngestJob).where(IngestJob.id == job.job_id)
                    .values(status=IngestStatus.RUNNING, progress=progress, updated_at=utcnow()))
                uow.emit(f"document:{job.document_id}", "ingest.progress", job_id=job.job_id, progress=progress)
                await uow.commit()


async def _store(db: Database, jobs: list[_Prepared], retry: RetryPolicy | None = None) -> None:
    """Write the outcome of finished extractions, all in one short transaction whatever their
    number: the texts in one executemany, the jobs' state in one UPDATE, then per document its
    search index entry and its event. A job that failed because S3 or the database was briefly unavailable
    is queued again for later (``retry``; without one it fails like any other)."""
    jobs = [j for j in jobs if not j.result.cancelled()]  # shutting down: recovered at the next start
    failed = [j for j in jobs if j.result.exception() is not None]
    done = [j for j in jobs if j.result.exception() is None]
    async with db.uow() as uow:
        s = uow.session
        attempts = dict((await s.execute(select(IngestJob.id, IngestJob.attempts).where(
            IngestJob.id.in_([j.job_id for j in failed])))).tuples().all()) if failed else {}
        for job in failed:
            exc = job.result.exception()
            assert exc is not None
            now, tries = utcnow(), attempts.get(job.job_id, 0) + 1
            again = retry.next_attempt(exc, tries, now) if retry is not None else None
            message = str(exc)[:300] or type(exc).__name__
            if again is not None:
                log.warning("ingest job %s failed (attempt %d), retried at %s: %s", job.job_id, tries,
                            again.isoformat(timespec="seconds"), message)
            else:
                log.error("ingest job %s failed", job.job_id, exc_info=None if is_transient(exc) else exc)
            await s.execute(update(IngestJob).where(IngestJob.id == job.job_id).values(
                status=IngestStatus.FAILED if again is None else IngestStatus.QUEUED, error=message,
                attempts=tries, next_attempt_at=again, updated_at=now))
            uow.emit(f"document:{job.document_id}", "ingest.failed" if again is None else "ingest.retrying",
                     job_id=job.job_id)
        if done:
            docs = {d.id: d for d in (await s.scalars(
                select(Document).where(Document.id.in_({j.document_id for j in done})))).all()}
            # every attachment of these documents, with the text of those not extracted here (the
            # others' is in hand): what the index needs, and whether the files still exist
            mine = {j.attachment_id for j in done}
            atts = {r[0]: r for r in (await s.execute(
                select(Attachment.id, Attachment.document_id,
                       case((Attachment.id.in_(mine), literal("")), else_=Attachment.text))
                .where(Attachment.document_id.in_(docs)).order_by(Attachment.id))).all()}
            done = [j for j in done if j.document_id in docs and j.attachment_id in atts]  # not deleted meanwhile
        if done:
            results = [(j, j.result.result()) for j in done]
            await s.execute(update(Attachment), [
                {"id": j.attachment_id, "text": r.text, "scanned_pages": r.scanned, "page_count": len(r.pages),
                 "rendition_blob_key": r.rendition} for j, r in results])
            await s.execute(update(IngestJob).where(IngestJob.id.in_([j.job_id for j in done])).values(
                status=IngestStatus.DONE, progress=100, error="", next_attempt_at=None, updated_at=utcnow()))
            for j, r in results:
                if r.scanned:
                    docs[j.document_id].has_scanned_pages = True
            texts = {att_id: row[2] for att_id, row in atts.items()}
            texts.update((j.attachment_id, r.text) for j, r in results)
            by_doc: dict[int, list[str]] = {doc_id: [] for doc_id in dict.fromkeys(j.document_id for j in done)}
            for att_id, row in atts.items():  # in attachment id order, as index_document reads them
                if row[1] in by_doc:
                    by_doc[row[1]].append(texts[att_id])
            await search.index_documents(uow, [(docs[doc_id], t) for doc_id, t in by_doc.items()])
            for j, r in results:
                uow.emit(f"document:{j.document_id}", "ingest.done", job_id=j.job_id, attachment_id=j.attachment_id,
                         pages=len(r.pages), scanned_pages=r.scanned)
        await uow.commit()


async def run_job(db: Database, blobs: BlobReader, job_id: int, extractor: Extractor | None = None) -> None:
    """Extract one attachment's text, reporting progress; store it and update the search index."""
    own = extractor is None
    extractor = extractor or Extractor(processes=0)
    try:
        for job in await _prepare(db, blobs, extractor, [job_id]):
            await _wait(db, job)
            await _store(db, [job])
    finally:
        if own:
            await extractor.close()


CONSUMER = "ingest"  # the runner's name among its database's consumers (storage.db.Database.consumers)
RETRY_CONSUMER = "ingest-retry"  # wakes the runner's retry loop (an administrator retried a job)


def start_after_commit(uow: UnitOfWork, job_ids: Sequence[int]) -> None:
    """Hand these jobs to the ingest runner of the unit of work's database once it has committed
    (none after a rollback: the jobs do not exist). Without a runner (a CLI command, a test that
    runs jobs itself) they wait in the table for ``IngestRunner.recover`` or ``run_job``."""
    if not job_ids:
        return
    ids, db = list(job_ids), uow.db

    def wake() -> None:
        consumer = db.consumers.get(CONSUMER)
        if consumer is not None:
            consumer(ids)

    uow.after_commit(wake)


class IngestRunner:
    """One background consumer of ingest jobs per process, registered with its database: the
    services that queue jobs hand them over after their commit (``start_after_commit``); ``submit``
    takes more, and ignores a job it already has; ``recover`` re-queues jobs a previous process
    left unfinished.

    A pipeline: while one document's text is written, the next ones are already being extracted
    (at most ``AHEAD`` files held in memory); results that are ready together are written in one
    transaction. ``processes``: extraction worker processes (default ``default_processes()``; 0
    extracts in a thread of this process, see ``Extractor``).

    Outages: a job that failed because S3 or the database was briefly unavailable is queued again with a back-off
    (``retry``, ``eoffice.job_retry``); ``start`` runs the loop that claims such jobs when they are due (one process
    takes each: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and jobs an administrator retried. Jobs whose outcome
    could not even be written (the database down) are handed to this runner again after the same back-off."""

    AHEAD = 8  # files handed to the worker ahead of the write (paths for local blobs, else bytes)
    STORE_LINGER = 0.05  # seconds a finished result waits for the next ones to share its write
    RETRY_POLL = 30.0  # seconds between looks for due retries (an administrator's retry from the command line)

    def __init__(self, db: Database, blobs: BlobReader, processes: int | None = None,
                 retry: RetryPolicy | None = None) -> None:
        self.db, self.blobs = db, blobs
        self.retry = retry or RetryPolicy()
        self.extractor = Extractor(default_processes() if processes is None else processes)
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._held: set[int] = set()  # submitted and not yet stored: a second submit is ignored
        self._failures: dict[int, int] = {}  # job id: runs whose outcome could not be read or written
        self._later: dict[int, float] = {}  # job id: loop time to hand it back to this runner
        self._retries = BackgroundTask("ingest-retry")
        self._wake = asyncio.Event()
        db.consumers[CONSUMER] = self.submit
        db.consumers[RETRY_CONSUMER] = self.wake

    def submit(self, job_ids: Iterable[int]) -> None:
        for job_id in job_ids:
            if job_id in self._held:
                continue
            self._held.add(job_id)
            self._idle.clear()
            self._queue.put_nowait(job_id)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ingest-runner")

    def wake(self, _ids: Iterable[int] = ()) -> None:
        """Look for due retries now (an administrator asked for one)."""
        self._wake.set()

    def start(self) -> None:
        self._retries.ensure(self._retry_loop)

    async def recover(self) -> int:
        now = utcnow()
        async with self.db.uow(readonly=True) as uow:
            ids = list((await uow.session.scalars(
                select(IngestJob.id).where(IngestJob.status.in_([IngestStatus.QUEUED, IngestStatus.RUNNING]),
                                           IngestJob.next_attempt_at.is_(None) | (IngestJob.next_attempt_at <= now))
                .order_by(IngestJob.id))).all())
        self.submit(ids)
        return len(ids)

    def _hand_back_later(self, job_ids: Iterable[int]) -> None:
        """These jobs could not be read or written (the database is down): run them again after a back-off."""
        loop = asyncio.get_running_loop()
        for job_id in job_ids:
            failures = self._failures[job_id] = self._failures.get(job_id, 0) + 1
            self._later[job_id] = loop.time() + self.retry.delay(failures).total_seconds()
            self._held.discard(job_id)
        self._wake.set()

    async def _claim_due(self) -> list[int]:
        """Queued jobs whose retry time has come, taken by this process (their time cleared)."""
        async with self.db.uow() as uow:
            q = (select(IngestJob).where(IngestJob.status == IngestStatus.QUEUED,
                                         IngestJob.next_attempt_at.is_not(None), IngestJob.next_attempt_at <= utcnow())
                 .order_by(IngestJob.next_attempt_at).limit(100))
            if uow.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = list((await uow.session.scalars(q)).all())
            for row in rows:
                row.next_attempt_at = None
            await uow.commit()
        return [row.id for row in rows]

    async def _next_due(self) -> float | None:
        """Seconds until the next retry is due (in the database or held here), None when there is none."""
        loop = asyncio.get_running_loop()
        waits = [at - loop.time() for at in self._later.values()]
        async with self.db.uow(readonly=True) as uow:
            at = await uow.session.scalar(select(IngestJob.next_attempt_at).where(
                IngestJob.status == IngestStatus.QUEUED, IngestJob.next_attempt_at.is_not(None))
                .order_by(IngestJob.next_attempt_at).limit(1))
        if at is not None:
            waits.append((at - utcnow()).total_seconds())
        return min(waits) if waits else None

    async def _retry_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            wait = self.RETRY_POLL
            due = [job_id for job_id, at in self._later.items() if at <= loop.time()]
            for job_id in due:
                del self._later[job_id]
            if due:
                self.submit(due)
            try:
                claimed = await self._claim_due()
                if claimed:
                    self.submit(claimed)
                left = await self._next_due()
                if left is not None:
                    wait = min(wait, max(left, 0.05))
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("ingest retries: looking for due jobs failed")
                left = min((at - loop.time() for at in self._later.values()), default=wait)
                wait = min(wait, max(left, 0.05), self.retry.base)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        ahead: collections.deque[_Prepared] = collections.deque()
        try:
            while True:
                ids: list[int] = []
                while len(ahead) + len(ids) < self.AHEAD and not self._queue.empty():
                    ids.append(self._queue.get_nowait())
                if ids:
                    prepared: list[_Prepared] = []
                    try:
                        prepared = await _prepare(self.db, self.blobs, self.extractor, ids)
                    except Exception as exc:
                        if is_transient(exc):
                            log.warning("ingest jobs %s could not start (%s): retried later", ids, exc)
                            self._hand_back_later(ids)
                        else:
                            log.exception("ingest jobs %s could not start", ids)
                    self._held.difference_update(set(ids) - {p.job_id for p in prepared})  # done or gone
                    ahead.extend(prepared)
                if not ahead:
                    self._idle.set()
                    return
                try:
                    await _wait(self.db, ahead[0])
                    ready = [ahead.popleft()]
                    # Writes queue behind each other (one writer at a time on SQLite): results that
                    # come within STORE_LINGER share one transaction rather than one each.
                    deadline = loop.time() + self.STORE_LINGER
                    while ahead and len(ready) < self.AHEAD:
                        if not ahead[0].result.done():
                            left = deadline - loop.time()
                            if left <= 0:
                                break
                            await asyncio.wait({ahead[0].result}, timeout=left)
                            if not ahead[0].result.done():
                                break
                        ready.append(ahead.popleft())
                    try:
                        await _store(self.db, ready, self.retry)
                        for job in ready:
                            self._failures.pop(job.job_id, None)
                        if any(j.result.done() and not j.result.cancelled() and j.result.exception() is not None
                               for j in ready):
                            self._wake.set()  # a failed job may be queued for a retry: the loop reads its time
                    except Exception as exc:
                        if not is_transient(exc):
                            raise
                        log.warning("ingest jobs %s: outcome not written (%s): run again later",
                                    [j.job_id for j in ready], exc)
                        self._hand_back_later(j.job_id for j in ready)
                    finally:
                        self._held.difference_update(j.job_id for j in ready)
                except Exception as exc:
                    if is_transient(exc):  # a progress write failed: the job is run again later
                        log.warning("ingest job %s interrupted (%s): run again later", ahead[0].job_id, exc)
                        self._hand_back_later([ahead.popleft().job_id])
                    else:
                        log.exception("ingest jobs crashed")
        finally:
            for job in ahead:
                job.result.cancel()
                self._held.discard(job.job_id)

    async def drain(self) -> None:
        """Wait until every submitted job has run (tests, benchmarks, shutdown)."""
        await self._idle.wait()
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        if self.db.consumers.get(CONSUMER) == self.submit:
            del self.db.consumers[CONSUMER]
        if self.db.consumers.get(RETRY_CONSUMER) == self.wake:
            del self.db.consumers[RETRY_CONSUMER]
        await self._retries.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.extractor.close()
