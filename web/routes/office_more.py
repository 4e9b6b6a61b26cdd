"""E-office pages around the daily flow: outgoing drafts (văn bản đi) with their approval chain
and issue, work dossiers (hồ sơ công việc), search (tra cứu) and statistics (thống kê) drawn as
charts. Handlers call the eoffice services directly; see web/routes/office_pages.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eoffice import delegation, documents, dossiers, outgoing, search, stats
from eoffice.org import Role, User
from eoffice.schema.documents import Status
from storage.db import UnitOfWork
from storage.errors import AppError
from web.auth import login_required
from web.inputs import path_id
from web.routes.office_common import (
    agency_choices,
    form_action,
    json_script,
    names,
    opt_date,
    opt_int,
    redirect,
    render,
    text,
    today,
)

DRAFT_STATUSES = (Status.DRAFT, Status.IN_REVIEW, Status.APPROVED, Status.ISSUED)


# ---- outgoing -----------------------------------------------------------------------------------

async def names_of(uow: UnitOfWork, user_ids: list[int]) -> list[User]:
    """People by id, in the given order (the chain's candidates for the next level)."""
    if not user_ids:
        return []
    found = {u.id: u for u in await uow.session.scalars(select(User).where(User.id.in_(user_ids)))}
    return [found[i] for i in user_ids if i in found]


async def _outgoing_context(request: Request, uow: UnitOfWork) -> dict[str, Any]:
    user: User = request.state.user
    rows = await outgoing.drafts(uow, user)
    issued, _n = await documents.list_documents(uow, user, direction="out", status=Status.ISSUED, limit=30)
    approvers = await outgoing.pending_approvers(uow, [d.id for d in rows if d.status == Status.IN_REVIEW])
    people, _units = await names(uow, approvers.values())
    turns: dict[int, str] = {}
    for d in rows:
        if d.status == Status.DRAFT:
            turns[d.id] = "Đến lượt bạn trình duyệt" if d.created_by == user.id else "Người soạn thảo đang sửa"
        elif d.status == Status.IN_REVIEW and d.id in approvers:
            who = approvers[d.id]
            turns[d.id] = "Đến lượt bạn duyệt" if who == user.id else f"Chờ {people.get(who, '')} duyệt"
        elif d.status == Status.APPROVED:
            turns[d.id] = "Chờ văn thư cấp số và phát hành"
    return {"drafts": rows, "issued": issued, "turns": turns, "choices": await agency_choices(uow, user)}


@login_required()
async def outgoing_page(request: Request) -> Response:
    async with request.app.state.db.uow(readonly=True) as uow:
        ctx = await _outgoing_context(request, uow)
    return render(request, "office/outgoing.html", section="outgoing", error=None, form={}, year=today().year,
                  **ctx)


@login_required()
async def outgoing_create(request: Request) -> Response:
    user = request.state.user
    state = request.app.state
    form = await request.form()
    recipients: list[Any] = [{"unit_id": int(v)} for v in form.getlist("recipient_units")
                             if isinstance(v, str) and v.isdigit()]
    recipients += [line.strip() for line in text(form, "recipient_names").splitlines() if line.strip()]
    try:
        async with state.db.uow() as uow:
            doc = await outgoing.create_draft(
                uow, user, state.blobs, doc_type=text(form, "doc_type") or "cong_van", summary=text(form, "summary"),
                recipients=recipients, confidentiality=text(form, "confidentiality") or "thuong",
                urgency=text(form, "urgency") or "thuong",
                due_date=opt_date(form.get("due_date"), "Hạn xử lý", "due_date"),
                upload_id=opt_int(form, "upload_ids", "Tệp"), note=text(form, "note"))
            await uow.commit()
    except AppError as exc:
        async with state.db.uow(readonly=True) as uow:
            ctx = await _outgoing_context(request, uow)
        return render(request, "office/outgoing.html", status_code=exc.status, section="outgoing",
                      error=exc.message, form=dict(form), year=today().year, **ctx)
    return redirect(f"/outgoing/{doc.id}")


async def _draft_response(request: Request, doc_id: int, *, error: str | None = None, status: int = 200
                          ) -> Response:
    user: User = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        doc = await documents.get_document(uow, user, doc_id)
        if doc.direction != "out":
            return redirect(f"/documents/{doc.id}")
        hist = await outgoing.history(uow, user, doc.id)
        atts = await documents.attachments_of(uow, doc)
        chain = hist["chain"]
        candidates = [p for p in await names_of(uow, chain["candidates"]) if p.id != user.id]
        users, units = await names(
            uow, [doc.created_by, *(v["created_by"] for v in hist["versions"]),
                  *(s["approver_id"] for s in hist["steps"]), *(s["requested_by"] for s in hist["steps"]),
                  chain["turn"].get("user_id")],
            [doc.unit_id, *(r.get("unit_id") for r in doc.recipients or [])])
        behalf = await delegation.labels(uow, [(s["decided_by"], s["approver_id"]) for s in hist["steps"]])
        acting = {user.id, *await delegation.principals(uow, user, delegation.APPROVE)}  # ủy quyền
    pending = next((s for s in hist["steps"] if s["status"] == "pending"), None)
    return render(
        request, "office/draft.html", status_code=status, section="outgoing", doc=doc, hist=hist, atts=atts,
        users=users, units=units, chain=chain, candidates=candidates, pending=pending, error=error,
        may_edit=(doc.status == Status.DRAFT and doc.created_by == user.id)
        or (pending is not None and pending["approver_id"] == user.id),
        may_send=doc.status == Status.DRAFT and doc.created_by == user.id, behalf=behalf,
        my_turn=pending is not None and pending["approver_id"] in acting,
        may_issue=doc.status == Status.APPROVED and user.has_role(Role.CLERK),
        ok={"sent": "Đã trình duyệt dự thảo.", "approved": "Đã duyệt.", "returned": "Đã trả lại dự thảo.",
            "version": "Đã lưu phiên bản mới.", "issued": "Đã cấp số và phát hành văn bản."}.get(
            request.query_params.get("ok", "")) if request.method == "GET" else None)


@login_required()
async def draft_page(request: Request) -> Response:
    return await _draft_response(request, path_id(request, "id"))


async def _draft_action(request: Request, fn: Any, done: str) -> Response:
    async def shown(doc_id: int, exc: AppError, _form: Any) -> Response:
        return await _draft_response(request, doc_id, error=exc.message, status=exc.status)

    return await form_action(request, fn, shown, f"/outgoing/{{id}}?ok={done}")


@login_required()
async def draft_send(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> None:
        approver = opt_int(form, "approver_id", "Người duyệt")
        await outgoing.send_for_approval(uow, user, doc_id, approver, text(form, "comment"))

    return await _draft_action(request, go, "sent")


@login_required()
async def draft_decide(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> None:
        if text(form, "decision") == "return":
            await outgoing.return_draft(uow, user, doc_id, text(form, "comment"))
        else:
            await outgoing.approve(uow, user, doc_id, comment=text(form, "comment"),
                                   forward_to=opt_int(form, "forward_to", "Trình tiếp"))

    form = await request.form()
    return await _draft_action(request, go, "returned" if text(form, "decision") == "return" else "approved")


@login_required()
async def draft_version(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> None:
        await outgoing.add_version(uow, user, request.app.state.blobs, doc_id,
                                   summary=text(form, "summary") or None,
                                   upload_id=opt_int(form, "upload_ids", "Tệp"), note=text(form, "note"))

    return await _draft_action(request, go, "version")


@login_required(Role.CLERK)
async def draft_issue(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> list[int]:
        _doc, _copies, jobs = await outgoing.issue(
            uow, user, doc_id, signer=text(form, "signer"),
            date_issued=opt_date(form.get("date_issued"), "Ngày ban hành", "date_issued"),
            blobs=request.app.state.blobs)
        return jobs

    return await _draft_action(request, go, "issued")


# ---- dossiers -----------------------------------------------------------------------------------

@login_required()
async def dossiers_page(request: Request) -> Response:
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await dossiers.list_dossiers(uow, request.state.user)
    return render(request, "office/dossiers.html", section="dossiers", rows=rows, error=None, form={},
                  year=today().year)


@login_required()
async def dossier_open(request: Request) -> Response:
    form = await request.form()
    try:
        async with request.app.state.db.uow() as uow:
            d = await dossiers.open_dossier(uow, request.state.user, text(form, "title"),
                                            opt_int(form, "year", "Năm"))
            await uow.commit()
    except AppError as exc:
        async with request.app.state.db.uow(readonly=True) as uow:
            rows = await dossiers.list_dossiers(uow, request.state.user)
        return render(request, "office/dossiers.html", status_code=exc.status, section="dossiers", rows=rows,
                      error=exc.message, form=dict(form), year=today().year)
    return redirect(f"/dossiers/{d.id}")


async def _dossier_response(request: Request, dossier_id: int, *, error: str | None = None,
                            status: int = 200) -> Response:
    async with request.app.state.db.uow(readonly=True) as uow:
        c = await dossiers.contents(uow, request.state.user, dossier_id)
    return render(request, "office/dossier.html", status_code=status, section="dossiers", c=c, d=c["dossier"],
                  retentions=dossiers.RETENTIONS, error=error,
                  ok="Đã đóng hồ sơ." if request.method == "GET" and request.query_params.get("closed") else None)


@login_required()
async def dossier_page(request: Request) -> Response:
    return await _dossier_response(request, path_id(request, "id"))


@login_required()
async def dossier_close(request: Request) -> Response:
    dossier_id = path_id(request, "id")
    form = await request.form()
    try:
        async with request.app.state.db.uow() as uow:
            await dossiers.close_dossier(uow, request.state.user, dossier_id, file_code=text(form, "file_code"),
                                         retention=text(form, "retention"))
            await uow.commit()
    except AppError as exc:
        return await _dossier_response(request, dossier_id, error=exc.message, status=exc.status)
    return redirect(f"/dossiers/{dossier_id}?closed=1")


# ---- search -------------------------------------------------------------------------------------

@login_required()
async def search_page(request: Request) -> Response:
    q = request.query_params
    query = q.get("q", "").strip()
    searched = any(q.get(k) for k in ("q", "direction", "doc_type", "sender", "from", "to", "status",
                                      "confidentiality"))
    hits: list[Any] = []
    error = None
    status_code = 200
    if searched:
        try:
            filters = search.Filters(
                direction=q.get("direction") or None, doc_type=q.get("doc_type") or None,
                sender=q.get("sender") or None, date_from=opt_date(q.get("from"), "Từ ngày", "from"),
                date_to=opt_date(q.get("to"), "Đến ngày", "to"), status=q.get("status") or None,
                confidentiality=q.get("confidentiality") or None)
            async with request.app.state.db.uow(readonly=True) as uow:
                hits = await search.search(uow, request.state.user, query, filters, limit=50)
        except AppError as exc:
            error, status_code = exc.message, exc.status
    return render(request, "office/search.html", status_code=status_code, section="search", q=q, query=query,
                  hits=hits, searched=searched, error=error, statuses=DRAFT_STATUSES)


# ---- statistics ---------------------------------------------------------------------------------

@login_required()
async def stats_page(request: Request) -> Response:
    user: User = request.state.user
    q = request.query_params
    t = today()
    wide = user.has_role(Role.LEADER, Role.CLERK, Role.ADMIN)
    level = q.get("level") or ("agency" if wide else "person")
    error, data, status_code = None, None, 200
    try:
        date_from = opt_date(q.get("from"), "Từ ngày", "from") or dt.date(t.year, 1, 1)
        date_to = opt_date(q.get("to"), "Đến ngày", "to") or t
        async with request.app.state.db.uow(readonly=True) as uow:
            data = await stats.statistics(uow, user, date_from=date_from, date_to=date_to, level=level)
    except AppError as exc:
        error, status_code = exc.message, exc.status
        date_from, date_to = dt.date(t.year, 1, 1), t
    return render(request, "office/stats.html", status_code=status_code, section="stats", data=data,
                  data_json=json_script(data or {}), level=level, wide=wide, date_from=date_from, date_to=date_to,
                  error=error, year=date_to.year)


routes: list[BaseRoute] = [
    Route("/outgoing", outgoing_page, methods=["GET"], name="office_outgoing"),
    Route("/outgoing", outgoing_create, methods=["POST"]),
    Route("/outgoing/{id:int}", draft_page, name="office_draft"),
    Route("/outgoing/{id:int}/send", draft_send, methods=["POST"]),
    Route("/outgoing/{id:int}/decision", draft_decide, methods=["POST"]),
    Route("/outgoing/{id:int}/versions", draft_version, methods=["POST"]),
    Route("/outgoing/{id:int}/issue", draft_issue, methods=["POST"]),
    Route("/dossiers", dossiers_page, methods=["GET"], name="office_dossiers"),
    Route("/dossiers", dossier_open, methods=["POST"]),
    Route("/dossiers/{id:int}", dossier_page, name="office_dossier"),
    Route("/dossiers/{id:int}/close", dossier_close, methods=["POST"]),
    Route("/search", search_page, name="office_search"),
    Route("/statistics", stats_page, name="office_statistics"),
]
