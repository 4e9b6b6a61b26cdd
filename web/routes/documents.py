"""JSON API of the e-office: incoming documents, direction and tasks, outgoing drafts, dossiers,
search, register export, statistics. Handlers parse, call one or more services in one unit of
work, commit, and start background ingest jobs after the commit. Errors are AppErrors, turned
into JSON centrally (web.errors)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eoffice import (
    digest,
    doctypes,
    documents,
    dossiers,
    export,
    ingest,
    live,
    outgoing,
    pdfpages,
    pdfsandbox,
    search,
    stats,
    tasks,
    upload_limits,
)
from storage.errors import Invalid
from web import file_response, inputs
from web.auth import require_user
from web.contract import Binary, contract
from web.contract import office as c
from web.inputs import json_body

log = logging.getLogger(__name__)



# ---- plumbing ---------------------------------------------------------------------------------

def setup(app: Any) -> None:
    """At startup: the e-office's hub topics (eoffice.live: document:{id} follows the document's
    access, unit:{id} its leaders and its agency clerks, each with a snapshot for a client too far
    behind to replay) and the ingest runner."""
    live.register(app.state.hub)
    pdfsandbox.configure(pdfsandbox.limits_from(app.state.settings))
    app.state.ingest_runner = ingest.IngestRunner(app.state.db, app.state.blobs)


async def startup(app: Any) -> None:
    """Re-queue text extraction that a previous process left unfinished (a crash, a restart)."""
    # the PDF workers start in the background: the first pages do not wait for their imports
    app.state.pdf_workers_starting = asyncio.get_running_loop().create_task(pdfsandbox.start(), name="pdf-workers")
    runner = getattr(app.state, "ingest_runner", None)
    if runner is not None:
        count = await runner.recover()
        if count:
            log.info("re-queued %d unfinished ingest jobs", count)
    hour = app.state.settings.digest_hour
    if hour is not None:  # the daily digest at that local hour; one process of several sends it
        app.state.digest_scheduler = digest.DigestScheduler(app.state.db, hour)
        app.state.digest_scheduler.start()
    keep = app.state.settings.upload_keep_hours
    if keep > 0:  # uploads never attached: removed after `keep` hours (eoffice.upload_limits)
        app.state.upload_cleaner = upload_limits.UploadCleaner(app.state.db, app.state.blobs, keep)
        app.state.upload_cleaner.start()


async def shutdown(app: Any) -> None:
    starting = getattr(app.state, "pdf_workers_starting", None)
    if starting is not None:
        with contextlib.suppress(Exception):
            await starting
    cleaner = getattr(app.state, "upload_cleaner", None)
    if cleaner is not None:
        await cleaner.stop()
    scheduler = getattr(app.state, "digest_scheduler", None)
    if scheduler is not None:
        await scheduler.stop()
    runner = getattr(app.state, "ingest_runner", None)
    if runner is not None:
        await runner.stop()
    await anyio.to_thread.run_sync(pdfsandbox.shutdown)


def start_jobs(app: Any, job_ids: list[int]) -> None:
    """Text extraction for what a committed request registered (pages use it too)."""
    if job_ids:
        app.state.ingest_runner.submit(job_ids)


def _int(value: Any, field: str, *, optional: bool = False) -> Any:
    return inputs.int_value(value, field, optional=optional)


def _date(value: Any, field: str) -> dt.date | None:
    return inputs.date_value(value, field)


def _datetime(value: Any, field: str) -> dt.datetime | None:
    from eoffice.registers import AGENCY_TZ

    return inputs.datetime_value(value, field, AGENCY_TZ)


def _ids(value: Any, field: str) -> list[int]:
    return inputs.ids_value(value, field)


def _str(body: dict[str, Any], key: str, default: str = "") -> str:
    return inputs.str_value(body.get(key, default), key, max_length=inputs.JSON_MAX_BYTES, default=default)


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise Invalid(f"«{key}» phải là một danh sách.", field=key)
    return value


def _path_id(request: Request, name: str = "id") -> int:
    return inputs.path_id(request, name)


def _ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


# ---- reference data ---------------------------------------------------------------------------

@contract(ok=c.Reference)
async def reference(request: Request) -> Response:
    """Document types (Decree 30), urgency and confidentiality levels, dossier retention periods."""
    require_user(request)
    return _ok({
        "doc_types": [{"code": t.code, "name": t.name, "abbr": t.abbr} for t in doctypes.DOC_TYPES],
        "urgency": [{"code": str(k), "name": v} for k, v in doctypes.URGENCY_LABELS.items()],
        "confidentiality": [{"code": str(k), "name": v} for k, v in doctypes.CONFIDENTIALITY_LABELS.items()],
        "retention": [{"code": k, "name": v} for k, v in dossiers.RETENTIONS.items()],
    })


# ---- incoming documents -----------------------------------------------------------------------

@contract(body=c.RegisterIncoming, ok=c.Registered, status=201,
          more={409: 'Có thể trùng văn bản đã vào sổ (duplicate: true)'})
async def register(request: Request) -> Response:
    """Register an incoming document (clerk). Files: ``upload_ids`` from POST /api/files. A likely
    duplicate answers 409 with ``duplicate: true``; send again with ``confirm_duplicate``."""
    user = require_user(request)
    b = await json_body(request)
    state = request.app.state
    async with state.db.uow() as uow:
        doc, jobs = await documents.register_incoming(
            uow, user, state.blobs, sender=_str(b, "sender"), notation=_str(b, "notation"),
            date_issued=_date(b.get("date_issued"), "date_issued"), doc_type=_str(b, "doc_type", "cong_van"),
            summary=_str(b, "summary"), signer=_str(b, "signer"), urgency=_str(b, "urgency", "thuong"),
            confidentiality=_str(b, "confidentiality", "thuong"),
            page_count=_int(b.get("page_count"), "page_count", optional=True),
            due_date=_date(b.get("due_date"), "due_date"), received_at=_datetime(b.get("received_at"), "received_at"),
            upload_ids=_ids(b.get("upload_ids"), "upload_ids"), confirm_duplicate=bool(b.get("confirm_duplicate")),
        )
        await uow.commit()
    start_jobs(request.app, jobs)
    return _ok({"document": doc.public(), "ingest_jobs": jobs}, 201)


@contract(ok=c.DocumentList)
async def list_documents(request: Request) -> Response:
    """Documents you may see, newest first (``direction`` in/out, ``status``, ``limit``, ``offset``).
    ``total`` is counted up to 10 000; ``total_more`` says there are more than that."""
    user = require_user(request)
    q = request.query_params
    async with request.app.state.db.uow(readonly=True) as uow:
        rows, total = await documents.list_documents(
            uow, user, direction=q.get("direction") or None, status=q.get("status") or None,
            limit=_int(q.get("limit", 50), "limit"), offset=_int(q.get("offset", 0), "offset"))
    return _ok({"total": min(total, documents.TOTAL_CAP), "total_more": total > documents.TOTAL_CAP,
                "items": [d.public() for d in rows]})


@contract(ok=c.DocumentView)
async def get_document(request: Request) -> Response:
    """A document with its attachments, ingest progress, submissions, directions and task tree (and,
    outgoing, its versions and approval chain): the same view as the ``document:`` snapshot."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return _ok(await live.document_view(uow, user, _path_id(request)))


@contract(body=c.UploadIds, ok=c.IngestJobs, status=201)
async def add_attachments(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    state = request.app.state
    async with state.db.uow() as uow:
        doc = await documents.get_document(uow, user, _path_id(request))
        jobs = await documents.add_attachments(uow, user, state.blobs, doc, _ids(b.get("upload_ids"), "upload_ids"))
        await uow.commit()
    start_jobs(request.app, jobs)
    return _ok({"ingest_jobs": jobs}, 201)


@contract(ok=Binary(('*/*',), 'Nội dung tệp'), more={304: 'Không đổi'})
async def download(request: Request) -> Response:
    """An attachment's bytes, if you may see its document (type decided from the bytes: web.file_response)."""
    user = await file_response.requester(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        att = await documents.get_attachment(uow, user, _path_id(request))
    return await file_response.serve_blob(request, user, att.blob_key, att.filename, fallback_name="tep")


@contract(ok=Binary(('*/*',), 'Nội dung tệp'), more={304: 'Không đổi'})
async def task_update_file(request: Request) -> Response:
    """A file posted on a task (progress report, comment), if you may see the task."""
    user = await file_response.requester(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        row = await tasks.update_file(uow, user, _path_id(request))
    return await file_response.serve_blob(request, user, row.blob_key, row.filename, fallback_name="tep")


@contract(ok=Binary(('*/*',), 'Nội dung tệp'), more={304: 'Không đổi'})
async def draft_version_file(request: Request) -> Response:
    """The file of an outgoing draft's version, if you may see the draft (404 otherwise)."""
    user = await file_response.requester(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        v = await outgoing.version_file(uow, user, _path_id(request))
    return await file_response.serve_blob(request, user, v.blob_key, v.filename, fallback_name="du-thao")


@contract(ok=Binary(('image/png',), 'Ảnh trang'), more={304: 'Không đổi'})
async def page_png(request: Request) -> Response:
    """A page of a PDF attachment as PNG (``width`` pixels), for the viewer and thumbnails.

    The reader's access is checked first, on every request (404 otherwise), and only then is the
    shared page cache (eoffice.pdfpages) asked or an ``If-None-Match`` answered with 304: a page
    rendered for one reader is never handed to another who may not see the document. The browser
    may keep the image (``private``) but revalidates it each time (``no-cache``), so a reader whose
    access is withdrawn stops seeing it; shared caches never store it."""
    user = require_user(request)
    state = request.app.state
    number = _path_id(request, "page")
    width = max(64, min(_int(request.query_params.get("width", 800), "width"), 2000))
    async with state.db.uow(readonly=True) as uow:
        att = await documents.get_attachment(uow, user, _path_id(request))
    if not att.is_pdf:
        raise Invalid("Tệp này không phải PDF.")
    tag = pdfpages.etag(att.blob_key, number, width)
    headers = {"Cache-Control": "private, no-cache", "ETag": tag, "Vary": "Cookie, Authorization"}
    if _etag_matches(request.headers.get("if-none-match", ""), tag):
        return Response(status_code=304, headers=headers)
    key = att.blob_key
    png = await pdfpages.page_image(key, lambda: state.blobs.read(key, limit=ingest.MAX_PDF_BYTES), number, width)
    return Response(png, media_type="image/png", headers=headers)


def _etag_matches(header: str, tag: str) -> bool:
    """``If-None-Match`` (a list, weak or strong, or ``*``) names ``tag``: weak comparison, as RFC 9110 asks."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == tag for t in header.split(","))


# ---- flow -------------------------------------------------------------------------------------

@contract(body=c.Submit, ok=c.IdStatus, status=201)
async def submit(request: Request) -> Response:
    """Trình: submit the document to a leader (``to_user_id``, ``note``)."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        sub = await tasks.submit(uow, user, _path_id(request), _int(b.get("to_user_id"), "to_user_id"),
                                 _str(b, "note"))
        await uow.commit()
    return _ok({"id": sub.id, "status": sub.status}, 201)


@contract(body=c.Direct, ok=c.Directed, status=201)
async def direct(request: Request) -> Response:
    """Ý kiến chỉ đạo: ``text``, ``main`` ({user_id} or {unit_id}), ``collaborators``, ``informed``,
    ``deadline``."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        note, made = await tasks.direct(
            uow, user, _path_id(request), text=_str(b, "text"), main=b.get("main") or {},
            collaborators=_list(b, "collaborators"), informed=_list(b, "informed"),
            deadline=_date(b.get("deadline"), "deadline"))
        await uow.commit()
    return _ok({"direction_id": note.id, "tasks": [t.public() for t in made]}, 201)


@contract(ok=c.Inbox)
async def inbox(request: Request) -> Response:
    """What awaits you: documents submitted to you, your open tasks, documents for information."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return _ok(await tasks.inbox(uow, user))


@contract(ok=c.TaskList)
async def list_tasks(request: Request) -> Response:
    """Task board: ``scope`` assigned_to_me | assigned_by_me, ``status``, ``state`` overdue | due_soon."""
    user = require_user(request)
    q = request.query_params
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await tasks.my_tasks(uow, user, scope=q.get("scope", "assigned_to_me"),
                                    status=q.get("status") or None, state=q.get("state") or None)
        digest = await tasks.digest(uow, user)
    return _ok({"items": [t.public() for t in rows], "overdue": len(digest["overdue"]),
                "due_soon": len(digest["due_soon"])})


@contract(ok=c.TaskView)
async def get_task(request: Request) -> Response:
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        task = await tasks.get_task(uow, user, _path_id(request))
        updates = await tasks.task_updates(uow, user, task.id)
    return _ok({"task": task.public(), "updates": [u.public() for u in updates]})


@contract(body=c.PassDown, ok=c.Tasks, status=201)
async def pass_down(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        made = await tasks.pass_down(uow, user, _path_id(request), main_user_id=_int(b.get("main_user_id"),
                                                                                     "main_user_id"),
                                     collaborator_ids=_ids(b.get("collaborator_ids"), "collaborator_ids"),
                                     instruction=_str(b, "instruction"), deadline=_date(b.get("deadline"), "deadline"))
        await uow.commit()
    return _ok({"tasks": [t.public() for t in made]}, 201)


@contract(body=c.PostUpdate, ok=c.TaskUpdates, status=201)
async def post_update(request: Request) -> Response:
    """Progress (``progress`` 0..100, handlers) or a comment, with ``upload_ids``."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        rows = await tasks.post_update(uow, user, _path_id(request), text=_str(b, "text"),
                                       progress=_int(b.get("progress"), "progress", optional=True),
                                       upload_ids=_ids(b.get("upload_ids"), "upload_ids"))
        await uow.commit()
    return _ok({"updates": [r.public() for r in rows]}, 201)


@contract(body=c.Reason, ok=c.Task)
async def return_task(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        task = await tasks.return_task(uow, user, _path_id(request), _str(b, "reason"))
        await uow.commit()
    return _ok(task.public())


@contract(body=c.Reason, ok=c.Task)
async def withdraw_task(request: Request) -> Response:
    """The assigner takes an unfinished task back (with the tasks passed down from it)."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        task = await tasks.withdraw(uow, user, _path_id(request), _str(b, "reason"))
        await uow.commit()
    return _ok(task.public())


@contract(body=c.Reassign, ok=c.Task)
async def reassign_task(request: Request) -> Response:
    """The assigner hands an unfinished task to another person or unit: ``{"assignee": {"user_id":
    5}, "reason": "..."}``."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        task = await tasks.reassign(uow, user, _path_id(request), b.get("assignee"), _str(b, "reason"))
        await uow.commit()
    return _ok(task.public())


@contract(body=c.ExtensionRequest, ok=c.IdStatus, status=201)
async def request_extension(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    new_deadline = _date(b.get("new_deadline"), "new_deadline")
    if new_deadline is None:
        raise Invalid("Cần nhập hạn mới.", field="new_deadline")
    async with request.app.state.db.uow() as uow:
        req = await tasks.request_extension(uow, user, _path_id(request), new_deadline, _str(b, "reason"))
        await uow.commit()
    return _ok({"id": req.id, "status": req.status}, 201)


@contract(body=c.ExtensionDecision, ok=c.IdStatus)
async def decide_extension(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        req = await tasks.decide_extension(uow, user, _path_id(request), approve=bool(b.get("approve")),
                                           note=_str(b, "note"))
        await uow.commit()
    return _ok({"id": req.id, "status": req.status})


@contract(body=c.Complete, ok=c.Task)
async def complete(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        task = await tasks.complete(uow, user, _path_id(request), result=_str(b, "result"),
                                    upload_ids=_ids(b.get("upload_ids"), "upload_ids"),
                                    result_document_id=_int(b.get("result_document_id"), "result_document_id",
                                                            optional=True))
        await uow.commit()
    return _ok(task.public())


# ---- outgoing ---------------------------------------------------------------------------------

@contract(body=c.CreateDraft, ok=c.Document, status=201)
async def create_draft(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    state = request.app.state
    recipients = b.get("recipients") or []
    if not isinstance(recipients, list):
        raise Invalid("«recipients» phải là một danh sách.", field="recipients")
    async with state.db.uow() as uow:
        doc = await outgoing.create_draft(
            uow, user, state.blobs, doc_type=_str(b, "doc_type", "cong_van"), summary=_str(b, "summary"),
            recipients=recipients, confidentiality=_str(b, "confidentiality", "thuong"),
            urgency=_str(b, "urgency", "thuong"), due_date=_date(b.get("due_date"), "due_date"),
            upload_id=_int(b.get("upload_id"), "upload_id", optional=True), note=_str(b, "note"))
        await uow.commit()
    return _ok(doc.public(), 201)


@contract(ok=c.DocumentItems)
async def list_drafts(request: Request) -> Response:
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await outgoing.drafts(uow, user, status=request.query_params.get("status") or None)
    return _ok({"items": [d.public() for d in rows]})


@contract(ok=c.DraftHistory)
async def draft_history(request: Request) -> Response:
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return _ok(await outgoing.history(uow, user, _path_id(request)))


@contract(body=c.AddDraftVersion, ok=c.DraftVersion, status=201)
async def add_version(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    state = request.app.state
    async with state.db.uow() as uow:
        v = await outgoing.add_version(uow, user, state.blobs, _path_id(request), summary=b.get("summary") or None,
                                       upload_id=_int(b.get("upload_id"), "upload_id", optional=True),
                                       note=_str(b, "note"))
        await uow.commit()
    return _ok(v.public(), 201)


@contract(body=c.SendDraft, ok=c.ApprovalStep, status=201)
async def send_draft(request: Request) -> Response:
    """Send to a leader of the first level of the draft's chain (``approver_id``); the agency
    leader's own draft needs none: sending it approves it."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        step = await outgoing.send_for_approval(uow, user, _path_id(request),
                                                _int(b.get("approver_id"), "approver_id", optional=True),
                                                _str(b, "comment"))
        await uow.commit()
    return _ok(step.public(), 201)


@contract(body=c.ApproveDraft, ok=c.ApprovalStep)
async def approve_draft(request: Request) -> Response:
    """Approve when it is your turn; below the chain's last level ``forward_to`` (a leader of the
    next level) is required and the draft goes up the chain, at the last level it is final."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        step = await outgoing.approve(uow, user, _path_id(request), comment=_str(b, "comment"),
                                      forward_to=_int(b.get("forward_to"), "forward_to", optional=True))
        await uow.commit()
    return _ok(step.public())


@contract(body=c.Comment, ok=c.ApprovalStep)
async def return_draft(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        step = await outgoing.return_draft(uow, user, _path_id(request), _str(b, "comment"))
        await uow.commit()
    return _ok(step.public())


@contract(body=c.IssueDraft, ok=c.Issued)
async def issue_draft(request: Request) -> Response:
    """Number and issue (clerk); internal recipients receive it in their registers."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        doc, copies, jobs = await outgoing.issue(uow, user, _path_id(request), signer=_str(b, "signer"),
                                                 date_issued=_date(b.get("date_issued"), "date_issued"),
                                                 blobs=request.app.state.blobs)
        await uow.commit()
    start_jobs(request.app, jobs)
    return _ok({"document": doc.public(), "delivered": [{"agency_id": c.agency_id, "number": c.number}
                                                        for c in copies]})


# ---- dossiers ---------------------------------------------------------------------------------

@contract(method='POST', body=c.OpenDossier, ok=c.Dossier, status=201)
@contract(method='GET', ok=c.DossierList)
async def dossiers_index(request: Request) -> Response:
    user = require_user(request)
    if request.method == "POST":
        b = await json_body(request)
        async with request.app.state.db.uow() as uow:
            d = await dossiers.open_dossier(uow, user, _str(b, "title"), _int(b.get("year"), "year", optional=True))
            await uow.commit()
        return _ok(d.public(), 201)
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await dossiers.list_dossiers(uow, user, request.query_params.get("status") or None)
    return _ok({"items": [d.public() for d in rows]})


@contract(ok=c.DossierContents)
async def dossier(request: Request) -> Response:
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return _ok(await dossiers.contents(uow, user, _path_id(request)))


@contract(body=c.FileIntoDossier, ok=c.Created, status=201)
async def dossier_file(request: Request) -> Response:
    """File a document (``document_id``) or a task (``task_id``) into an open dossier."""
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        if b.get("task_id") is not None:
            item = await dossiers.file_task(uow, user, _path_id(request), _int(b.get("task_id"), "task_id"))
        else:
            item = await dossiers.file_document(uow, user, _path_id(request),
                                                _int(b.get("document_id"), "document_id"))
        await uow.commit()
    return _ok({"id": item.id}, 201)


@contract(body=c.CloseDossier, ok=c.Dossier)
async def dossier_close(request: Request) -> Response:
    user = require_user(request)
    b = await json_body(request)
    async with request.app.state.db.uow() as uow:
        d = await dossiers.close_dossier(uow, user, _path_id(request), file_code=_str(b, "file_code"),
                                         retention=_str(b, "retention"))
        await uow.commit()
    return _ok(d.public())


# ---- search, registers, statistics ------------------------------------------------------------

@contract(ok=c.SearchResults)
async def search_documents(request: Request) -> Response:
    """Full-text search, insensitive to diacritics, ranked; filters ``direction``, ``doc_type``,
    ``sender``, ``from``/``to`` (date issued), ``status``, ``unit_id``, ``confidentiality``."""
    user = require_user(request)
    q = request.query_params
    filters = search.Filters(
        direction=q.get("direction") or None, doc_type=q.get("doc_type") or None, sender=q.get("sender") or None,
        date_from=_date(q.get("from"), "from"), date_to=_date(q.get("to"), "to"), status=q.get("status") or None,
        unit_id=_int(q.get("unit_id"), "unit_id", optional=True), confidentiality=q.get("confidentiality") or None)
    async with request.app.state.db.uow(readonly=True) as uow:
        hits = await search.search(uow, user, q.get("q", ""), filters, limit=_int(q.get("limit", 20), "limit"),
                                   offset=_int(q.get("offset", 0), "offset"))
    return _ok({"items": [{**h.document.public(), "rank": h.rank} for h in hits]})


@contract(ok=Binary(('text/csv', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'), 'Sổ văn bản'))
async def export_register(request: Request) -> Response:
    """The agency register (``direction`` in/out, ``year``, ``format`` csv/xlsx, ``confidential``)."""
    user = require_user(request)
    q = request.query_params
    fmt = q.get("format", "xlsx")
    async with request.app.state.db.uow(readonly=True) as uow:
        from eoffice.registers import local_date
        from storage.db import utcnow

        name, data = await export.export_register(
            uow, user, direction=q.get("direction", "in"), year=_int(q.get("year") or local_date(utcnow()).year,
                                                                     "year"),
            fmt=fmt, confidential=q.get("confidential") in ("1", "true"))
    media = "text/csv; charset=utf-8" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(data, media_type=media, headers=file_response.download_headers(name, "so-van-ban"))


@contract(ok=c.Statistics)
async def statistics(request: Request) -> Response:
    """Received, on time, late, in progress, overdue and on-time rate for ``from``..``to`` at
    ``level`` agency | unit | person."""
    user = require_user(request)
    q = request.query_params
    date_from, date_to = _date(q.get("from"), "from"), _date(q.get("to"), "to")
    if date_from is None or date_to is None:
        raise Invalid("Cần chọn khoảng thời gian (from, to).")
    async with request.app.state.db.uow(readonly=True) as uow:
        return _ok(await stats.statistics(uow, user, date_from=date_from, date_to=date_to,
                                          level=q.get("level", "agency")))


routes: list[BaseRoute] = [
    Route("/api/eoffice/reference", reference),
    Route("/api/documents", list_documents),
    Route("/api/documents/incoming", register, methods=["POST"]),
    Route("/api/documents/{id:int}", get_document),
    Route("/api/documents/{id:int}/attachments", add_attachments, methods=["POST"]),
    Route("/api/documents/{id:int}/submit", submit, methods=["POST"]),
    Route("/api/documents/{id:int}/direction", direct, methods=["POST"]),
    Route("/api/attachments/{id:int}", download),
    Route("/api/attachments/{id:int}/pages/{page:int}.png", page_png),
    Route("/api/inbox", inbox),
    Route("/api/task-updates/{id:int}/file", task_update_file),
    Route("/api/tasks", list_tasks),
    Route("/api/tasks/{id:int}", get_task),
    Route("/api/tasks/{id:int}/pass-down", pass_down, methods=["POST"]),
    Route("/api/tasks/{id:int}/updates", post_update, methods=["POST"]),
    Route("/api/tasks/{id:int}/return", return_task, methods=["POST"]),
    Route("/api/tasks/{id:int}/withdraw", withdraw_task, methods=["POST"]),
    Route("/api/tasks/{id:int}/reassign", reassign_task, methods=["POST"]),
    Route("/api/tasks/{id:int}/extensions", request_extension, methods=["POST"]),
    Route("/api/tasks/{id:int}/complete", complete, methods=["POST"]),
    Route("/api/extensions/{id:int}/decision", decide_extension, methods=["POST"]),
    Route("/api/drafts", list_drafts),
    Route("/api/drafts", create_draft, methods=["POST"]),
    Route("/api/drafts/{id:int}/history", draft_history),
    Route("/api/draft-versions/{id:int}/file", draft_version_file),
    Route("/api/drafts/{id:int}/versions", add_version, methods=["POST"]),
    Route("/api/drafts/{id:int}/send", send_draft, methods=["POST"]),
    Route("/api/drafts/{id:int}/approve", approve_draft, methods=["POST"]),
    Route("/api/drafts/{id:int}/return", return_draft, methods=["POST"]),
    Route("/api/drafts/{id:int}/issue", issue_draft, methods=["POST"]),
    Route("/api/dossiers", dossiers_index, methods=["GET", "POST"]),
    Route("/api/dossiers/{id:int}", dossier),
    Route("/api/dossiers/{id:int}/items", dossier_file, methods=["POST"]),
    Route("/api/dossiers/{id:int}/close", dossier_close, methods=["POST"]),
    Route("/api/search", search_documents),
    Route("/api/registers/export", export_register),
    Route("/api/statistics", statistics),
]
