"""Written consultation of the committee's members (issue 20): the JSON API under /api/consultations and the
pages /consultations (list, preparation) and /consultations/{id} (reading the drafts, answering, the result).

Handlers translate HTTP to ``meetings.consultations`` services, one unit of work each, committed here; after
a create or a close the per-process ``ConsultationRunner`` is poked (it closes consultations at their deadline).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eoffice.org import Role
from eoffice.pdfpages import PAGE_FORMATS
from meetings import consultations as svc
from meetings import documents, rules
from meetings import voting_rules as vr
from meetings.schema import DocumentVersion
from storage.errors import Invalid
from web import file_response, inputs
from web.auth import login_required, require_user
from web.contract import Binary, Empty, contract
from web.contract import consultations as c
from web.contract.meetings import MinutesSign
from web.inputs import json_body
from web.openapi import describe
from web.routes.meetings import _blob_response
from web.routes.office.plumbing import change, read
from web.services import workers


def setup(app: Starlette) -> None:
    """At startup: the consultation topic's authoriser on the hub (members, office, signer)."""
    app.state.hub.add_authorizer(svc.PREFIX, svc.authorize)


def _poke(request: Request) -> None:
    runner = workers(request.app).consultation_runner
    if runner is not None:
        runner.poke()


def _cid(request: Request) -> int:
    return inputs.path_id(request, "consultation_id")


@contract(ok=c.ConsultationList)
async def list_consultations(request: Request) -> JSONResponse:
    """Consultations I am asked in, prepare (the office) or sign."""
    user = require_user(request)
    rows = await read(request, lambda uow, u: svc.list_for_user(uow, u))
    return JSONResponse({"consultations": rows, "office": user.has_role(Role.CLERK) or user.is_admin})


@describe(responses={"201": {"description": "Đã gửi phiếu lấy ý kiến"}})
@contract(body=c.ConsultationCreate, ok=c.Consultation, status=201)
async def create(request: Request) -> JSONResponse:
    """The office sends a consultation: title, deadline, questions, member_ids (empty: the whole committee),
    signer_id, documents [{upload_id, kind: draft | submission, title}], confidential, rule."""
    body = await json_body(request)
    deadline = inputs.datetime_value(body.get("deadline"), "deadline", request.app.state.settings.timezone)
    member_ids = inputs.ids_value(body.get("member_ids"), "member_ids")
    signer = inputs.int_value(body.get("signer_id"), "signer_id", optional=True)
    docs = body.get("documents") or []
    if not isinstance(docs, list):
        raise Invalid("«documents» phải là một danh sách.", field="documents")
    blobs = request.app.state.blobs
    made = await change(request, lambda uow, user: svc.create(
        uow, user, blobs, title=str(body.get("title") or ""), deadline=deadline, questions=body.get("questions"),
        member_ids=member_ids, signer_id=signer, documents=docs, description=str(body.get("description") or ""),
        confidential=bool(body.get("confidential")), rule=str(body.get("rule") or "half_members")))
    _poke(request)
    return JSONResponse(await read(request, lambda uow, u: svc.view(uow, u, made.id)), status_code=201)


@contract(ok=c.Consultation)
async def get(request: Request) -> JSONResponse:
    """One consultation as I may see it."""
    cid = _cid(request)
    return JSONResponse(await read(request, lambda uow, u: svc.view(uow, u, cid)))


@describe(responses={"409": {"description": "Đã hết hạn lấy ý kiến"}})
@contract(body=c.ConsultationAnswers, ok=c.ConsultationProgress, more={409: "Đã hết hạn lấy ý kiến"})
async def answer(request: Request) -> JSONResponse:
    """My answer to every question: {answers: [{question, choice, comment}]}; choice agree | disagree | other
    (other needs a comment) or an option number; sent again, it replaces the previous one until the deadline."""
    body = await json_body(request)
    cid = _cid(request)
    progress = await change(request, lambda uow, user: svc.answer(uow, user, cid, body.get("answers")))
    return JSONResponse({"ok": True, **progress, "message": "Đã ghi nhận ý kiến."})


@contract(body=Empty, ok=c.Consultation, more={409: "Đã kết thúc"})
async def close(request: Request) -> JSONResponse:
    """The office closes the consultation before its deadline; the result is counted now."""
    cid = _cid(request)
    await change(request, lambda uow, user: svc.close(uow, user, cid))
    _poke(request)
    return JSONResponse(await read(request, lambda uow, u: svc.view(uow, u, cid)))


@contract(body=c.ConsultationTask, ok=c.Consultation, status=201, more={409: "Chưa kết thúc hoặc đã giao"})
async def to_task(request: Request) -> JSONResponse:
    """The office turns the result into an e-office task: {assignee_id | assignee_unit_id, deadline, text}."""
    body = await json_body(request)
    cid = _cid(request)
    deadline = inputs.date_value(body.get("deadline"), "deadline")
    assignee = inputs.int_value(body.get("assignee_id"), "assignee_id", optional=True)
    unit = inputs.int_value(body.get("assignee_unit_id"), "assignee_unit_id", optional=True)
    await change(request, lambda uow, user: svc.to_task(uow, user, cid, assignee_id=assignee, assignee_unit_id=unit,
                                                      deadline=deadline, text=str(body.get("text") or "")))
    return JSONResponse(await read(request, lambda uow, u: svc.view(uow, u, cid)), status_code=201)


@contract(ok=Binary(("application/pdf",), "Báo cáo kết quả lấy ý kiến (PDF)"), more={409: "Chưa kết thúc"})
async def report(request: Request) -> Response:
    """The report PDF: the result and each member's answers and comments."""
    cid = _cid(request)
    title, data = await read(request, lambda uow, u: svc.report_pdf(uow, u, cid))
    return Response(data, media_type="application/pdf",
                    headers=file_response.download_headers(f"Kết quả lấy ý kiến - {title}.pdf", "ket-qua.pdf"))


@contract(body=MinutesSign, ok=c.Consultation, status=201, more={409: "Chưa kết thúc hoặc đã ký"})
async def sign(request: Request) -> JSONResponse:
    """The designated signer signs the closed consultation's result report with their own certificate:
    {passphrase}."""
    body = await json_body(request)
    cid, blobs = _cid(request), request.app.state.blobs
    passphrase = str(body.get("passphrase") or "")
    if not passphrase:
        raise Invalid("Cần nhập mật khẩu chứng thư số.", field="passphrase")
    await change(request, lambda uow, user: svc.sign_report(uow, user, blobs, cid, passphrase=passphrase))
    return JSONResponse(await read(request, lambda uow, u: svc.view(uow, u, cid)), status_code=201)


@contract(ok=Binary(("application/pdf",), "Báo cáo kết quả đã ký số (PDF)"))
async def signed_report(request: Request) -> Response:
    """The result report carrying the signer's digital signature."""
    cid, blobs = _cid(request), request.app.state.blobs
    title, data = await read(request, lambda uow, u: svc.signed_report(uow, u, blobs, cid))
    return Response(data, media_type="application/pdf", headers=file_response.download_headers(
        f"Kết quả lấy ý kiến - {title} (đã ký số).pdf", "ket-qua-da-ky.pdf"))


def _doc_meta(cid: int, d: svc.ConsultationDocument) -> dict[str, Any]:
    return {**d.public(), "consultation_id": cid, "widths": list(rules.PAGE_WIDTHS)}


async def _version(request: Request) -> DocumentVersion:
    """What the reader's page cache needs of a document (not a stored row: consultations keep their own)."""
    cid, did = _cid(request), inputs.path_id(request, "document_id")
    d = await read(request, lambda uow, u: svc.document(uow, u, cid, did))
    return DocumentVersion(blob_key=d.blob_key, page_count=d.page_count)


@contract(ok=c.ConsultationDocumentMeta)
async def document_meta(request: Request) -> JSONResponse:
    """A draft or submission: pages (count and sizes in PDF points), title, the page widths served."""
    cid, did = _cid(request), inputs.path_id(request, "document_id")
    d = await read(request, lambda uow, u: svc.document(uow, u, cid, did))
    return JSONResponse(_doc_meta(cid, d))


@describe(parameters=[
    {"name": "w", "in": "query", "schema": {"type": "integer"}, "description": "Độ rộng màn hình (px)"},
    {"name": "fmt", "in": "query", "schema": {"type": "string", "enum": list(PAGE_FORMATS)}},
])
@contract(ok=Binary(tuple(PAGE_FORMATS.values()), "Ảnh trang"), more={304: "Không đổi"})
async def page_image(request: Request) -> Response:
    """One page of a draft or submission as an image (the reader's page cache, ``meetings.documents``)."""
    version = await _version(request)
    width = inputs.int_value(request.query_params.get("w") or 800, "w") or 800
    fmt = request.query_params.get("fmt", "png")
    state = request.app.state
    key, ctype = await documents.page_image(state.db, state.blobs, version, inputs.path_id(request, "page"), width,
                                            fmt)
    return _blob_response(request, key, ctype)


@contract(ok=c.PageWords)
async def page_words(request: Request) -> Response:
    """Word boxes of a page in PDF points: [x0, y0, x1, y1, text, block, line, word]."""
    version = await _version(request)
    state = request.app.state
    key = await documents.page_words(state.db, state.blobs, version, inputs.path_id(request, "page"))
    return _blob_response(request, key, "application/json")


@contract(ok=c.DocumentSearch)
async def search_document(request: Request) -> JSONResponse:
    """Search a draft or submission (?q=); without diacritics it ignores them."""
    version = await _version(request)
    return JSONResponse(await documents.search(request.app.state.blobs, version, request.query_params.get("q", "")))


# ---------------------------------------------------------------- pages


@login_required()
async def list_page(request: Request) -> Response:
    user = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await svc.list_for_user(uow, user)
    return request.app.state.templates.TemplateResponse(request, "consultations.html", {
        "rows": rows, "office": user.has_role(Role.CLERK) or user.is_admin,
        "presets": vr.PRESETS, "default_deadline": (dt.date.today() + dt.timedelta(days=3)).strftime("%d/%m/%Y")})


@login_required()
async def detail_page(request: Request) -> Response:
    user = request.state.user
    cid = _cid(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        data = await svc.view(uow, user, cid)
    return request.app.state.templates.TemplateResponse(request, "consultation.html", {
        "c": data, "choices": svc.YES_NO_CHOICES})


@login_required()
async def reader_page(request: Request) -> Response:
    """The tablet reader (the meetings' PdfReader) on one draft or submission."""
    user = request.state.user
    cid, did = _cid(request), inputs.path_id(request, "document_id")
    async with request.app.state.db.uow(readonly=True) as uow:
        d = await svc.document(uow, user, cid, did)
        c_row, _st = await svc.load(uow, user, cid)
    return request.app.state.templates.TemplateResponse(request, "consultation_reader.html", {
        "meta": _doc_meta(cid, d), "c_title": c_row.title})


A = "/api/consultations/{consultation_id:int}"
routes = [
    Route("/consultations", list_page, name="consultations"),
    Route("/consultations/{consultation_id:int}", detail_page, name="consultation"),
    Route("/consultations/{consultation_id:int}/documents/{document_id:int}", reader_page,
          name="consultation_reader"),
    Route("/api/consultations", list_consultations, methods=["GET"]),
    Route("/api/consultations", create, methods=["POST"]),
    Route(A, get, methods=["GET"]),
    Route(A + "/answers", answer, methods=["POST"]),
    Route(A + "/close", close, methods=["POST"]),
    Route(A + "/task", to_task, methods=["POST"]),
    Route(A + "/report.pdf", report, methods=["GET"]),
    Route(A + "/sign", sign, methods=["POST"]),
    Route(A + "/report-signed.pdf", signed_report, methods=["GET"]),
    Route(A + "/documents/{document_id:int}", document_meta, methods=["GET"]),
    Route(A + "/documents/{document_id:int}/pages/{page:int}", page_image, methods=["GET"]),
    Route(A + "/documents/{document_id:int}/pages/{page:int}/words", page_words, methods=["GET"]),
    Route(A + "/documents/{document_id:int}/search", search_document, methods=["GET"]),
]
