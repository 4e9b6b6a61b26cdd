"""Documents (văn bản đến and văn bản đi), their attachments, and registration of incoming ones.

One table holds both directions: they share the fields of Decree 30's registers, the access
grants, the search index, dossiers and attachments. ``direction`` tells them apart; an
incoming document's ``number`` is its arrival number (số đến), an outgoing one's is its issue
number, both allocated by ``eoffice.registers``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy import (
    func,
    select,
)

from eoffice import access, audit, doctypes, ingest, pdfpages, registers, renditions, search, uploads
from eoffice.org import Role, User
from eoffice.schema.documents import Attachment, Document, Grant, IngestJob, Reason, Status
from eoffice.textfold import notation_key, sender_key
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

# ---- pure rules -------------------------------------------------------------------------------

def duplicate_key(sender: str, notation: str, date_issued: dt.date | None) -> tuple[str, str, dt.date] | None:
    """Two incoming documents are likely the same if sender, number/notation and date match."""
    if not notation.strip() or date_issued is None:
        return None
    return sender_key(sender), notation_key(notation), date_issued


def check_incoming_fields(*, sender: str, summary: str, date_issued: dt.date | None, due_date: dt.date | None,
                          today: dt.date) -> None:
    if not sender.strip():
        raise Invalid("Cần nhập cơ quan ban hành.", field="sender")
    if not summary.strip():
        raise Invalid("Cần nhập trích yếu nội dung.", field="summary")
    if date_issued is not None and date_issued > today:
        raise Invalid("Ngày ban hành không thể sau ngày hôm nay.", field="date_issued")
    if due_date is not None and date_issued is not None and due_date < date_issued:
        raise Invalid("Hạn xử lý không thể trước ngày ban hành.", field="due_date")


def check_clerk_entry(*, upload_ids: Sequence[int], paper_only: bool, date_issued: dt.date | None) -> None:
    """What a clerk's registration (form or API) must give on top of ``check_incoming_fields``: the
    issue date, and the document's file or the explicit choice that it exists on paper only. (An
    edXML package always carries its files and date; the demo and imports call the service directly.)"""
    if date_issued is None:
        raise Invalid("Cần nhập ngày ban hành của văn bản.", field="date_issued")
    if not upload_ids and not paper_only:
        raise Invalid("Cần đính kèm tệp văn bản, hoặc chọn «Chỉ có bản giấy» nếu văn bản không có bản điện tử.",
                      field="upload_ids")


# ---- services ---------------------------------------------------------------------------------

async def _prepare_files(uow: UnitOfWork, actor: User, blobs: ingest.BlobReader,
                         upload_ids: Sequence[int]) -> list[tuple[uploads.Upload, int | None, bool]]:
    """Claim the uploads and open every PDF before anything is written. (upload, page count, whether it gets a
    conversion job). The file's bytes decide, not its name or claimed type: a .doc named «x.pdf» is not opened as
    a PDF but converted (``eoffice.renditions``), in the background like the text extraction."""
    prepared = []
    for upload_id in dict.fromkeys(upload_ids):
        upload = await uploads.claim(uow, actor, upload_id)
        pages: int | None = None
        head = await blobs.read_range(upload.blob_key, 0, renditions.HEAD)
        convert = renditions.other_format(head) or (not ingest.looks_like_pdf(upload.filename, upload.content_type,
                                                                               head) and renditions.candidate(head))
        if not convert and ingest.looks_like_pdf(upload.filename, upload.content_type, head):
            local = ingest.local_path(blobs, upload.blob_key)
            if local is not None:  # the PDF worker reads it: no copy through the pipe
                info = await ingest.inspect(b"", upload.filename, local)
            else:
                data = await blobs.read(upload.blob_key, limit=ingest.MAX_PDF_BYTES)
                info = await ingest.inspect(data, upload.filename)
            pages = info.page_count
        prepared.append((upload, pages, convert))
    return prepared


async def find_duplicate(uow: UnitOfWork, agency_id: int, sender: str, notation: str,
                         date_issued: dt.date | None) -> Document | None:
    key = duplicate_key(sender, notation, date_issued)
    if key is None:
        return None
    return await uow.session.scalar(
        select(Document).where(
            Document.agency_id == agency_id, Document.direction == registers.Direction.IN,
            Document.notation_key == key[1], Document.date_issued == key[2], Document.sender_key == key[0],
        ).order_by(Document.id).limit(1)
    )


def require_clerk(actor: User) -> None:
    if not actor.has_role(Role.CLERK):
        raise Forbidden("Chỉ văn thư được vào sổ văn bản.")


async def register_incoming(
    uow: UnitOfWork,
    actor: User,
    blobs: ingest.BlobReader,
    *,
    sender: str,
    notation: str,
    date_issued: dt.date | None,
    doc_type: str,
    summary: str,
    signer: str = "",
    urgency: str = doctypes.Urgency.NORMAL,
    confidentiality: str = doctypes.Confidentiality.NORMAL,
    page_count: int | None = None,
    due_date: dt.date | None = None,
    received_at: dt.datetime | None = None,
    upload_ids: Sequence[int] = (),
    sender_unit_id: int | None = None,
    confirm_duplicate: bool = False,
    paper_only: bool = False,
) -> tuple[Document, list[int]]:
    """Register an incoming document in the clerk's agency register. Returns the document and the
    ids of its ingest jobs, which the database's ingest runner takes once the caller has committed
    (``ingest.start_after_commit``)."""
    require_clerk(actor)
    agency = await registers.agency_of(uow, actor.unit_id)
    now = utcnow()
    received_at = received_at or now
    if received_at > now + dt.timedelta(minutes=5):  # a clock a little ahead is tolerated
        # the arrival time decides the register's year and the order of the register: never ahead of now
        raise Invalid("Thời điểm đến không thể sau thời điểm hiện tại.", field="received_at")
    doctypes.doc_type(doc_type)
    level = doctypes.confidentiality(confidentiality)
    doctypes.urgency(urgency)
    check_incoming_fields(sender=sender, summary=summary, date_issued=date_issued, due_date=due_date,
                          today=registers.local_date(utcnow()))
    if page_count is not None and page_count < 0:
        raise Invalid("Số trang không hợp lệ.", field="page_count")
    files = await _prepare_files(uow, actor, blobs, upload_ids)
    if not confirm_duplicate:
        dup = await find_duplicate(uow, agency.id, sender, notation, date_issued)
        if dup is not None:
            where = (f" (số đến {dup.number}/{dup.year})" if dup.number is not None and not dup.confidential else "")
            raise Conflict(
                f"Văn bản {notation.strip()} của {sender.strip()} ngày {date_issued:%d/%m/%Y} có thể đã được vào sổ"
                f"{where}. Kiểm tra lại, hoặc xác nhận để vẫn đăng ký.",
                duplicate=True, duplicate_of=None if dup.confidential else dup.id,
            )

    year = registers.register_year(received_at)
    series = registers.series_for(registers.Direction.IN, doc_type, doctypes.is_confidential(level))
    register_id, number = await registers.allocate_number(uow, agency.id, registers.Direction.IN, series, year)
    pdf_pages = sum(p or 0 for _, p, _ in files)
    doc = Document(
        direction=registers.Direction.IN, agency_id=agency.id, register_id=register_id, number=number, year=year,
        status=Status.REGISTERED, doc_type=doc_type, notation=notation.strip(), notation_key=notation_key(notation),
        sender=sender.strip(), sender_key=sender_key(sender), sender_unit_id=sender_unit_id,
        date_issued=date_issued, received_at=received_at, summary=summary.strip(), signer=signer.strip(),
        urgency=urgency, confidentiality=level, page_count=page_count if page_count is not None else pdf_pages,
        due_date=due_date, created_by=actor.id, paper_only=paper_only and not files,
    )
    uow.session.add(doc)
    await uow.session.flush()
    search.new_document(uow, doc.id)
    # a new document has no grants yet: no need for access.grant's look for an existing one
    uow.session.add(Grant(document_id=doc.id, user_id=actor.id, reason=Reason.REGISTERED))
    job_ids = await _attach(uow, doc, [(u.blob_key, u.filename, u.content_type, u.size, p) for u, p, _ in files],
                            actor.id, convert={u.blob_key for u, _, c in files if c})
    await search.index_document(uow, doc, texts=[])  # its files' text comes with their extraction
    await audit.record(uow, actor, "document.register", "document", doc.id, number=number, year=year,
                       series=series, notation=doc.notation, duplicate_confirmed=confirm_duplicate)
    uow.emit(f"document:{doc.id}", "document.registered", id=doc.id, number=number)
    return doc, job_ids


async def _attach(uow: UnitOfWork, doc: Document, files: Sequence[tuple[str, str, str, int, int | None]],
                  user_id: int | None, convert: Collection[str] = ()) -> list[int]:
    """Attachments from (blob key, filename, content type, size, pdf page count or None); PDFs get a job, and so
    do the files whose blob key is in ``convert`` (an office file or a scan: ``eoffice.renditions``). Flushes twice
    whatever the number of files (and whatever else is pending in the session)."""
    atts = [Attachment(document_id=doc.id, blob_key=key, filename=filename, content_type=content_type, size=size,
                       is_pdf=pages is not None, page_count=pages, scanned_pages=[], created_by=user_id)
            for key, filename, content_type, size, pages in files]
    uow.session.add_all(atts)
    await uow.session.flush()
    jobs = [IngestJob(document_id=doc.id, attachment_id=att.id) for att in atts
            if att.is_pdf or att.blob_key in convert]
    uow.session.add_all(jobs)
    await uow.session.flush()
    job_ids = [job.id for job in jobs]
    ingest.start_after_commit(uow, job_ids)  # the text extraction starts once the caller commits
    return job_ids


async def add_attachments(uow: UnitOfWork, actor: User, blobs: ingest.BlobReader, doc: Document,
                          upload_ids: Sequence[int]) -> list[int]:
    """Attach further files to a document the actor may see. Returns ingest job ids."""
    files = await _prepare_files(uow, actor, blobs, upload_ids)
    job_ids = await _attach(uow, doc, [(u.blob_key, u.filename, u.content_type, u.size, p) for u, p, _ in files],
                            actor.id, convert={u.blob_key for u, _, c in files if c})
    await audit.record(uow, actor, "document.attach", "document", doc.id, files=[u.filename for u, _, _ in files])
    uow.emit(f"document:{doc.id}", "document.attached", id=doc.id)
    return job_ids


async def get_document(uow: UnitOfWork, actor: User, document_id: int, viewer: access.Viewer | None = None
                       ) -> Document:
    """The document if the actor may see it; NotFound otherwise (existence is not confirmed)."""
    viewer = viewer or await access.viewer_for(uow, actor)
    doc = await uow.session.scalar(
        select(Document).where(Document.id == document_id, access.visible(viewer))
    )
    if doc is None:
        raise NotFound("Không tìm thấy văn bản.")
    return doc


async def get_attachment(uow: UnitOfWork, actor: User, attachment_id: int) -> Attachment:
    """An attachment of a document the actor may see (downloads, page images, thumbnails)."""
    att = await uow.session.get(Attachment, attachment_id)
    if att is None:
        raise NotFound("Không tìm thấy tệp.")
    await get_document(uow, actor, att.document_id)
    return att


async def page_image(uow: UnitOfWork, actor: User, blobs: ingest.BlobReader, attachment_id: int, page: int,
                     width: int = 800) -> bytes:
    """A page of a PDF attachment as PNG, for whoever may see its document (checked first, before
    the shared page cache of ``eoffice.pdfpages`` is asked)."""
    att = await get_attachment(uow, actor, attachment_id)
    if not att.viewable:
        raise Invalid("Tệp này không phải PDF và chưa có bản PDF chuyển đổi.")
    key = att.pages_key  # an office file or a scan: the pages of its PDF rendition
    return await pdfpages.page_image(key, lambda: blobs.read(key, limit=ingest.MAX_PDF_BYTES),
                                     page, max(64, min(width, 2000)))


async def attachments_of(uow: UnitOfWork, doc: Document) -> list[Attachment]:
    return list((await uow.session.scalars(
        select(Attachment).where(Attachment.document_id == doc.id).order_by(Attachment.id))).all())


async def ingest_jobs_of(uow: UnitOfWork, doc: Document) -> list[IngestJob]:
    return list((await uow.session.scalars(
        select(IngestJob).where(IngestJob.document_id == doc.id).order_by(IngestJob.id))).all())


TOTAL_CAP = 10_000  # list_documents counts this many rows and one more at most
PG_LIST_ROUNDS = True  # False: a plain ORDER BY created_at over access.visible (bench/lists.py compares)


async def list_documents(
    uow: UnitOfWork,
    actor: User,
    *,
    direction: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    with_total: bool = True,
    max_total: int = TOTAL_CAP,
) -> tuple[list[Document], int]:
    """Documents the actor may see, newest first, with the total count (-1 without
    ``with_total``: pages ask for one row more than they show instead of counting them all).
    The count stops past ``max_total``: a total above it means "more than ``max_total``" (a clerk
    may see most of a million documents; counting them all took 0.5-1.5 s)."""
    viewer = await access.viewer_for(uow, actor)
    q = select(Document).where(access.visible(viewer))
    if direction:
        q = q.where(Document.direction == direction)
    # a voided registration leaves the working lists (search still finds it); asked for by its status, it shows
    status_cond = Document.status == status if status else Document.status != Status.VOIDED
    q = q.where(status_cond)
    total = -1
    if with_total:
        if uow.dialect == "postgresql":  # a generic plan (prepared statement reused) would merge-join
            # the grants of an average user with every document: 139 ms instead of 29 for a specialist
            await uow.session.execute(select(func.set_config("plan_cache_mode", "force_custom_plan", True)))
        counted = q.with_only_columns(Document.id).limit(max_total + 1).subquery()
        total = int(await uow.session.scalar(select(func.count()).select_from(counted)) or 0)
    limit = max(1, min(limit, 200))
    if uow.dialect == "postgresql" and PG_LIST_ROUNDS:
        # the reader keys in the search vector find the newest visible ids bucket by bucket (the
        # same rounds as an empty search): the cost follows the page's depth, not how few of the
        # rows before it the user may see; the rows then pass access.visible once more
        conds = [c for c in (Document.direction == direction if direction else None, status_cond) if c is not None]
        ids = [i for i, _ in await search.newest_visible(uow, viewer, conds, offset + limit)][offset:]
        docs = {d.id: d for d in (await uow.session.scalars(q.where(Document.id.in_(ids)))).all()} if ids else {}
        return [docs[i] for i in ids if i in docs], total
    rows = (await uow.session.scalars(
        q.order_by(Document.created_at.desc(), Document.id.desc()).limit(limit).offset(offset)
    )).all()
    return list(rows), total
