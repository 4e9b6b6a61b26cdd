"""E-office API: outgoing documents — drafts, their versions and files, the approval chain
(send, approve, return) and issuing (numbering, delivery to internal recipients)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eoffice import outgoing
from storage.errors import Invalid
from web import file_response
from web.contract import Binary, contract
from web.contract import office as c
from web.routes.office.plumbing import body, change, date, int_, ok, path_id, read, text


@contract(body=c.CreateDraft, ok=c.Document, status=201)
async def create_draft(request: Request) -> Response:
    b = await body(request)
    blobs = request.app.state.blobs
    recipients = b.get("recipients") or []
    if not isinstance(recipients, list):
        raise Invalid("«recipients» phải là một danh sách.", field="recipients")
    doc = await change(request, lambda uow, user: outgoing.create_draft(
        uow, user, blobs, doc_type=text(b, "doc_type", "cong_van"), summary=text(b, "summary"),
        recipients=recipients, confidentiality=text(b, "confidentiality", "thuong"),
        urgency=text(b, "urgency", "thuong"), due_date=date(b.get("due_date"), "due_date"),
        upload_id=int_(b.get("upload_id"), "upload_id", optional=True), note=text(b, "note")))
    return ok(doc.public(), 201)


@contract(ok=c.DocumentItems)
async def list_drafts(request: Request) -> Response:
    rows = await read(request, lambda uow, user: outgoing.drafts(
        uow, user, status=request.query_params.get("status") or None))
    return ok({"items": [d.public() for d in rows]})


@contract(ok=c.DraftHistory)
async def draft_history(request: Request) -> Response:
    return ok(await read(request, lambda uow, user: outgoing.history(uow, user, path_id(request))))


@contract(ok=Binary(("*/*",), "Nội dung tệp"), more={304: "Không đổi"})
async def draft_version_file(request: Request) -> Response:
    """The file of an outgoing draft's version, if you may see the draft (404 otherwise)."""
    user = await file_response.requester(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        v = await outgoing.version_file(uow, user, path_id(request))
    return await file_response.serve_blob(request, user, v.blob_key, v.filename, fallback_name="du-thao")


@contract(body=c.AddDraftVersion, ok=c.DraftVersion, status=201)
async def add_version(request: Request) -> Response:
    b = await body(request)
    blobs = request.app.state.blobs
    v = await change(request, lambda uow, user: outgoing.add_version(
        uow, user, blobs, path_id(request), summary=b.get("summary") or None,
        upload_id=int_(b.get("upload_id"), "upload_id", optional=True), note=text(b, "note")))
    return ok(v.public(), 201)


@contract(body=c.SendDraft, ok=c.ApprovalStep, status=201)
async def send_draft(request: Request) -> Response:
    """Send to a leader of the first level of the draft's chain (``approver_id``); the agency
    leader's own draft needs none: sending it approves it."""
    b = await body(request)
    step = await change(request, lambda uow, user: outgoing.send_for_approval(
        uow, user, path_id(request), int_(b.get("approver_id"), "approver_id", optional=True), text(b, "comment")))
    return ok(step.public(), 201)


@contract(body=c.ApproveDraft, ok=c.ApprovalStep)
async def approve_draft(request: Request) -> Response:
    """Approve when it is your turn; below the chain's last level ``forward_to`` (a leader of the
    next level) is required and the draft goes up the chain, at the last level it is final."""
    b = await body(request)
    step = await change(request, lambda uow, user: outgoing.approve(
        uow, user, path_id(request), comment=text(b, "comment"),
        forward_to=int_(b.get("forward_to"), "forward_to", optional=True)))
    return ok(step.public())


@contract(body=c.Comment, ok=c.ApprovalStep)
async def return_draft(request: Request) -> Response:
    b = await body(request)
    step = await change(request, lambda uow, user: outgoing.return_draft(
        uow, user, path_id(request), text(b, "comment")))
    return ok(step.public())


@contract(body=c.IssueDraft, ok=c.Issued)
async def issue_draft(request: Request) -> Response:
    """Number and issue (clerk); internal recipients receive it in their registers."""
    b = await body(request)
    blobs = request.app.state.blobs
    doc, copies, _jobs = await change(request, lambda uow, user: outgoing.issue(
        uow, user, path_id(request), signer=text(b, "signer"), date_issued=date(b.get("date_issued"), "date_issued"),
        blobs=blobs))
    return ok({"document": doc.public(), "delivered": [{"agency_id": c.agency_id, "number": c.number}
                                                       for c in copies]})


routes: list[BaseRoute] = [
    Route("/api/drafts", list_drafts),
    Route("/api/drafts", create_draft, methods=["POST"]),
    Route("/api/drafts/{id:int}/history", draft_history),
    Route("/api/draft-versions/{id:int}/file", draft_version_file),
    Route("/api/drafts/{id:int}/versions", add_version, methods=["POST"]),
    Route("/api/drafts/{id:int}/send", send_draft, methods=["POST"]),
    Route("/api/drafts/{id:int}/approve", approve_draft, methods=["POST"]),
    Route("/api/drafts/{id:int}/return", return_draft, methods=["POST"]),
    Route("/api/drafts/{id:int}/issue", issue_draft, methods=["POST"]),
]
