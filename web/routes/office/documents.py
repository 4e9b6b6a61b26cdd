"""E-office API: reference data, incoming documents (register, list, view, attachments, page images),
submitting to a leader and the leader's direction, the inbox."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eoffice import corrections, doctypes, documents, dossiers, ingest, live, pdfpages, tasks
from eoffice.org import User
from eoffice.schema.documents import Document
from storage.db import UnitOfWork
from storage.errors import Invalid
from web import file_response
from web.auth import require_user
from web.contract import Binary, contract
from web.contract import office as c
from web.routes.office.plumbing import (
    body,
    change,
    date,
    datetime,
    ids,
    int_,
    items,
    ok,
    path_id,
    read,
    text,
)


@contract(ok=c.Reference)
async def reference(request: Request) -> Response:
    """Document types (Decree 30; Công văn, the most used, first), urgency and confidentiality levels,
    dossier retention periods."""
    require_user(request)
    return ok({
        "doc_types": [{"code": t.code, "name": t.name, "abbr": t.abbr} for t in doctypes.FORM_ORDER],
        "urgency": [{"code": str(k), "name": v} for k, v in doctypes.URGENCY_LABELS.items()],
        "confidentiality": [{"code": str(k), "name": v} for k, v in doctypes.CONFIDENTIALITY_LABELS.items()],
        "retention": [{"code": k, "name": v} for k, v in dossiers.RETENTIONS.items()],
    })


@contract(body=c.RegisterIncoming, ok=c.Registered, status=201,
          more={409: "Có thể trùng văn bản đã vào sổ (duplicate: true)"})
async def register(request: Request) -> Response:
    """Register an incoming document (clerk). Files: ``upload_ids`` from POST /api/files, or
    ``paper_only: true`` for a document that exists on paper only; ``date_issued`` is required. A likely
    duplicate answers 409 with ``duplicate: true``; send again with ``confirm_duplicate``."""
    b = await body(request)
    blobs = request.app.state.blobs

    async def run(uow: UnitOfWork, user: User) -> tuple[Document, list[int]]:
        documents.require_clerk(user)  # a refusal before any complaint about the fields
        upload_ids, paper_only = ids(b.get("upload_ids"), "upload_ids"), bool(b.get("paper_only"))
        issued = date(b.get("date_issued"), "date_issued")
        documents.check_clerk_entry(upload_ids=upload_ids, paper_only=paper_only, date_issued=issued)
        return await documents.register_incoming(
            uow, user, blobs, sender=text(b, "sender"), notation=text(b, "notation"),
            date_issued=issued, doc_type=text(b, "doc_type", "cong_van"),
            summary=text(b, "summary"), signer=text(b, "signer"), urgency=text(b, "urgency", "thuong"),
            confidentiality=text(b, "confidentiality", "thuong"),
            page_count=int_(b.get("page_count"), "page_count", optional=True),
            due_date=date(b.get("due_date"), "due_date"), received_at=datetime(b.get("received_at"), "received_at"),
            upload_ids=upload_ids, confirm_duplicate=bool(b.get("confirm_duplicate")), paper_only=paper_only)

    doc, jobs = await change(request, run)
    return ok({"document": doc.public(), "ingest_jobs": jobs}, 201)


@contract(ok=c.DocumentList)
async def list_documents(request: Request) -> Response:
    """Documents you may see, newest first (``direction`` in/out, ``status``, ``limit``, ``offset``).
    ``total`` is counted up to 10 000; ``total_more`` says there are more than that."""
    q = request.query_params
    rows, total = await read(request, lambda uow, user: documents.list_documents(
        uow, user, direction=q.get("direction") or None, status=q.get("status") or None,
        limit=int_(q.get("limit", 50), "limit"), offset=int_(q.get("offset", 0), "offset")))
    return ok({"total": min(total, documents.TOTAL_CAP), "total_more": total > documents.TOTAL_CAP,
               "items": [d.public() for d in rows]})


@contract(ok=c.DocumentView)
async def get_document(request: Request) -> Response:
    """A document with its attachments, ingest progress, submissions, directions and task tree (and,
    outgoing, its versions and approval chain): the same view as the ``document:`` snapshot."""
    return ok(await read(request, lambda uow, user: live.document_view(uow, user, path_id(request))))


CORRECTABLE_TEXT = ("sender", "notation", "doc_type", "summary", "signer", "urgency")


@contract(body=c.CorrectDocument, ok=c.Corrected, status=201,
          more={409: "Văn bản đã bị hủy vào sổ"})
async def correct(request: Request) -> Response:
    """Đính chính (clerk of the registering agency): the fields sent are changed, each old value kept
    in the document's history (``corrections`` of GET /api/documents/{id}) and the audit log."""
    b = await body(request)
    changes: dict[str, Any] = {k: text(b, k) for k in CORRECTABLE_TEXT if k in b}
    if "date_issued" in b:
        changes["date_issued"] = date(b.get("date_issued"), "date_issued")
    if "confidentiality" in b:
        changes["confidentiality"] = b.get("confidentiality")
    if not changes:
        raise Invalid("Chưa có nội dung nào cần đính chính.", field="body")

    async def run(uow: UnitOfWork, user: User) -> dict[str, Any]:
        made = await corrections.correct_document(uow, user, path_id(request), changes, text(b, "reason"))
        doc = await documents.get_document(uow, user, path_id(request))
        return {"document": doc.public(), "corrections": [corrections.public(m) for m in made]}

    return ok(await change(request, run), 201)


@contract(body=c.VoidDocument, ok=c.Voided, more={409: "Văn bản đã bị hủy vào sổ"})
async def void(request: Request) -> Response:
    """Hủy vào sổ (clerk of the registering agency): a registration made by mistake. The number stays
    taken, the document is marked voided and its unfinished tasks are withdrawn."""
    b = await body(request)
    doc, withdrawn = await change(request, lambda uow, user: corrections.void_document(
        uow, user, path_id(request), text(b, "reason")))
    return ok({"document": doc.public(), "tasks_withdrawn": withdrawn})


@contract(body=c.UploadIds, ok=c.IngestJobs, status=201)
async def add_attachments(request: Request) -> Response:
    b = await body(request)
    blobs = request.app.state.blobs

    async def attach(uow: UnitOfWork, user: User) -> list[int]:
        doc = await documents.get_document(uow, user, path_id(request))
        return await documents.add_attachments(uow, user, blobs, doc, ids(b.get("upload_ids"), "upload_ids"))

    jobs = await change(request, attach)
    return ok({"ingest_jobs": jobs}, 201)


@contract(ok=Binary(("*/*",), "Nội dung tệp"), more={304: "Không đổi"})
async def download(request: Request) -> Response:
    """An attachment's bytes, if you may see its document (type decided from the bytes: web.file_response)."""
    user = await file_response.requester(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        att = await documents.get_attachment(uow, user, path_id(request))
    return await file_response.serve_blob(request, user, att.blob_key, att.filename, fallback_name="tep")


@contract(ok=Binary(("image/png",), "Ảnh trang"), more={304: "Không đổi"})
async def page_png(request: Request) -> Response:
    """A page of a PDF attachment as PNG (``width`` pixels), for the viewer and thumbnails.

    The reader's access is checked first, on every request (404 otherwise), and only then is the
    shared page cache (eoffice.pdfpages) asked or an ``If-None-Match`` answered with 304: a page
    rendered for one reader is never handed to another who may not see the document. The browser
    may keep the image (``private``) but revalidates it each time (``no-cache``), so a reader whose
    access is withdrawn stops seeing it; shared caches never store it."""
    state = request.app.state
    require_user(request)
    number = path_id(request, "page")
    width = max(64, min(int_(request.query_params.get("width", 800), "width"), 2000))
    att = await read(request, lambda uow, user: documents.get_attachment(uow, user, path_id(request)))
    if not att.viewable:
        raise Invalid("Tệp này không phải PDF và chưa có bản PDF chuyển đổi.")
    key = att.pages_key  # an office file or a scan: the pages of its PDF rendition (eoffice.renditions)
    tag = pdfpages.etag(key, number, width)
    headers = {"Cache-Control": "private, no-cache", "ETag": tag, "Vary": "Cookie, Authorization"}
    if etag_matches(request.headers.get("if-none-match", ""), tag):
        return Response(status_code=304, headers=headers)
    png = await pdfpages.page_image(key, lambda: state.blobs.read(key, limit=ingest.MAX_PDF_BYTES), number, width)
    return Response(png, media_type="image/png", headers=headers)


def etag_matches(header: str, tag: str) -> bool:
    """``If-None-Match`` (a list, weak or strong, or ``*``) names ``tag``: weak comparison, as RFC 9110 asks."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == tag for t in header.split(","))


@contract(body=c.Submit, ok=c.IdStatus, status=201)
async def submit(request: Request) -> Response:
    """Trình: submit the document to a leader (``to_user_id``, ``note``)."""
    b = await body(request)
    sub = await change(request, lambda uow, user: tasks.submit(
        uow, user, path_id(request), int_(b.get("to_user_id"), "to_user_id"), text(b, "note")))
    return ok({"id": sub.id, "status": sub.status}, 201)


@contract(body=c.Direct, ok=c.Directed, status=201)
async def direct(request: Request) -> Response:
    """Ý kiến chỉ đạo: ``text``, ``main`` ({user_id} or {unit_id}), ``collaborators``, ``informed``,
    ``deadline``."""
    b = await body(request)
    note, made = await change(request, lambda uow, user: tasks.direct(
        uow, user, path_id(request), text=text(b, "text"), main=b.get("main") or {},
        collaborators=items(b, "collaborators"), informed=items(b, "informed"),
        deadline=date(b.get("deadline"), "deadline"), ink=b.get("ink")))
    return ok({"direction_id": note.id, "tasks": [t.public() for t in made]}, 201)


@contract(ok=c.Inbox)
async def inbox(request: Request) -> Response:
    """What awaits you: documents submitted to you, your open tasks, documents for information."""
    return ok(await read(request, tasks.inbox))


routes: list[BaseRoute] = [
    Route("/api/eoffice/reference", reference),
    Route("/api/documents", list_documents),
    Route("/api/documents/incoming", register, methods=["POST"]),
    Route("/api/documents/{id:int}", get_document),
    Route("/api/documents/{id:int}/attachments", add_attachments, methods=["POST"]),
    Route("/api/documents/{id:int}/corrections", correct, methods=["POST"]),
    Route("/api/documents/{id:int}/void", void, methods=["POST"]),
    Route("/api/documents/{id:int}/submit", submit, methods=["POST"]),
    Route("/api/documents/{id:int}/direction", direct, methods=["POST"]),
    Route("/api/attachments/{id:int}", download),
    Route("/api/attachments/{id:int}/pages/{page:int}.png", page_png),
    Route("/api/inbox", inbox),
]
