"""E-office pages for the daily work: inbox (văn bản chờ xử lý), registration of incoming
documents, the document page with its direction and task tree, the task board and task actions.

Handlers call the eoffice services directly (like web/routes/pages.py); forms are url-encoded
with the CSRF field, answer with a redirect on success and re-render with the service's
Vietnamese message on failure. Outgoing drafts, dossiers, search and statistics are in
web/routes/office_more.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eoffice import corrections, delegation, doctypes, documents, dossiers, tasks, uploads
from eoffice.org import Role, User
from eoffice.schema.documents import Document, Status
from eoffice.schema.tasks import ExtensionRequest, Task, TaskStatus
from storage.db import UnitOfWork
from storage.errors import AppError, Conflict, Invalid
from web.auth import login_required
from web.inputs import path_id
from web.routes.office_common import (
    agency_choices,
    form_action,
    ints,
    names,
    opt_date,
    opt_int,
    redirect,
    render,
    target,
    targets,
    text,
    today,
)
from web.routes.pages import safe_next

DEADLINE_ORDER = {"overdue": 0, "due_soon": 1, "ok": 2, "none": 3}


# ---- home summary -------------------------------------------------------------------------------

TODO_CAP = 999  # the home page counts documents to submit up to this, then says "hơn 999"


async def todo_summary(uow: UnitOfWork, user: User) -> dict[str, Any]:
    """Counts for the home page's "Việc cần làm"."""
    box = await tasks.inbox(uow, user)
    digest = await tasks.digest(uow, user)
    to_submit = 0
    if user.has_role(Role.CLERK):
        _rows, to_submit = await documents.list_documents(uow, user, direction="in", status=Status.REGISTERED,
                                                          limit=1, max_total=TODO_CAP)
    return {"submitted": len(box["submitted"]), "tasks": len(box["tasks"]), "informed": len(box["informed"]),
            "overdue": len(digest["overdue"]), "due_soon": len(digest["due_soon"]),
            "to_submit": min(to_submit, TODO_CAP), "to_submit_more": to_submit > TODO_CAP}


# ---- inbox --------------------------------------------------------------------------------------

def _sort_tasks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda t: (DEADLINE_ORDER.get(t["deadline_state"], 5), t["deadline"] or "9999", t["id"]))


INBOX_PAGE = 20  # incoming documents per page of the inbox
BOARD_PAGE = 50  # tasks per page of the task board


def _page(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("page", "1")), 10_000))
    except ValueError:
        return 1


def _pager(request: Request, page: int, has_next: bool) -> dict[str, Any]:
    """Links to the previous and next page, keeping the other query parameters."""
    def url(n: int) -> str:
        params = {k: v for k, v in request.query_params.items() if k != "page"}
        if n > 1:
            params["page"] = str(n)
        return request.url.path + ("?" + urlencode(params) if params else "")

    return {"page": page, "prev": url(page - 1) if page > 1 else None, "next": url(page + 1) if has_next else None}


@login_required()
async def inbox_page(request: Request) -> Response:
    user = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        box = await tasks.inbox(uow, user)
        to_submit: list[Document] = []
        if user.has_role(Role.CLERK):
            to_submit, _n = await documents.list_documents(uow, user, direction="in", status=Status.REGISTERED,
                                                           limit=100, with_total=False)
        page = _page(request)
        recent, _total = await documents.list_documents(uow, user, direction="in", limit=INBOX_PAGE + 1,
                                                        offset=(page - 1) * INBOX_PAGE, with_total=False)
        pager = _pager(request, page, len(recent) > INBOX_PAGE)
        recent = recent[:INBOX_PAGE]
        task_docs = {t["document_id"] for t in box["tasks"] if t["document_id"]}
        docs = {d.id: d for d in (await uow.session.scalars(select(Document).where(Document.id.in_(task_docs))))} \
            if task_docs else {}
        users, _units = await names(uow, [t["assigned_by"] for t in box["tasks"]])
    return render(request, "office/inbox.html", section="inbox", box=box, to_submit=to_submit, recent=recent,
                  open_tasks=_sort_tasks(box["tasks"]), task_docs=docs, users=users, year=today().year, pager=pager)


# ---- registration -------------------------------------------------------------------------------

async def _upload_rows(uow: UnitOfWork, user: User, ids: list[int]) -> list[uploads.Upload]:
    if not ids:
        return []
    rows = (await uow.session.scalars(select(uploads.Upload).where(
        uploads.Upload.id.in_(ids), uploads.Upload.user_id == user.id))).all()
    by_id = {r.id: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


@login_required(Role.CLERK)
async def register_page(request: Request) -> Response:
    return render(request, "office/register.html", section="register", form={}, files=[], error=None,
                  duplicate=None, today=today(), form_doc_types=doctypes.FORM_ORDER, fresh=True)


@login_required(Role.CLERK)
async def register_submit(request: Request) -> Response:
    user = request.state.user
    state = request.app.state
    form = await request.form()
    upload_ids = ints(form, "upload_ids")
    confirm = text(form, "confirm_duplicate") == "1"
    try:
        paper_only = text(form, "paper_only") == "1"
        issued = opt_date(form.get("date_issued"), "Ngày ban hành", "date_issued")
        documents.check_clerk_entry(upload_ids=upload_ids, paper_only=paper_only, date_issued=issued)
        async with state.db.uow() as uow:
            doc, _jobs = await documents.register_incoming(
                uow, user, state.blobs, sender=text(form, "sender"), notation=text(form, "notation"),
                date_issued=issued, paper_only=paper_only,
                doc_type=text(form, "doc_type") or "cong_van", summary=text(form, "summary"),
                signer=text(form, "signer"), urgency=text(form, "urgency") or "thuong",
                confidentiality=text(form, "confidentiality") or "thuong",
                page_count=opt_int(form, "page_count", "Số trang"),
                due_date=opt_date(form.get("due_date"), "Hạn xử lý", "due_date"),
                upload_ids=upload_ids, confirm_duplicate=confirm)
            await uow.commit()
    except AppError as exc:
        duplicate = exc.details if isinstance(exc, Conflict) and exc.details.get("duplicate") else None
        async with state.db.uow(readonly=True) as uow:
            files = await _upload_rows(uow, user, upload_ids)
        return render(request, "office/register.html", status_code=exc.status, section="register",
                      form=dict(form), files=files, error=exc.message, duplicate=duplicate,
                      error_field=exc.details.get("field", ""), today=today(), form_doc_types=doctypes.FORM_ORDER)
    return redirect(f"/documents/{doc.id}?registered=1")


# ---- document page ------------------------------------------------------------------------------

def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n in nodes:
        out.append(n)
        out.extend(_walk(n["children"]))
    return out


async def _document_context(request: Request, uow: UnitOfWork, doc_id: int) -> dict[str, Any]:
    user: User = request.state.user
    doc = await documents.get_document(uow, user, doc_id)
    atts = await documents.attachments_of(uow, doc)
    jobs = await documents.ingest_jobs_of(uow, doc)
    tree = await tasks.task_tree(uow, user, doc.id)
    fixes = [corrections.public(c) for c in await corrections.corrections_of(uow, user, doc.id)]
    flat = _walk(tree["tasks"])
    task_ids = [t["id"] for t in flat]
    updates: dict[int, list[Any]] = {}
    pending_ext: dict[int, ExtensionRequest] = {}
    if task_ids:
        for tid in task_ids:
            updates[tid] = await tasks.task_updates(uow, user, tid)
        for req in (await uow.session.scalars(select(ExtensionRequest).where(
                ExtensionRequest.task_id.in_(task_ids), ExtensionRequest.status == "pending"))).all():
            pending_ext[req.task_id] = req
    user_ids = [doc.created_by, *(s["submitted_by"] for s in tree["submissions"]),
                *(s["to_user_id"] for s in tree["submissions"]), *(d["leader_id"] for d in tree["directions"]),
                *(t["assignee_user_id"] for t in flat), *(t["assigned_by"] for t in flat),
                *(u.user_id for rows in updates.values() for u in rows),
                *(r.requested_by for r in pending_ext.values()), *(c["user_id"] for c in fixes), doc.voided_by]
    users, units = await names(uow, user_ids, [t["assignee_unit_id"] for t in flat]
                               + [doc.agency_id, doc.former_agency_id])
    behalf = await delegation.labels(uow, [(d["leader_id"], d["on_behalf_of"]) for d in tree["directions"]])
    task_objs = {t.id: t for t in (await uow.session.scalars(select(Task).where(Task.id.in_(task_ids))))} \
        if task_ids else {}
    can = {tid: _task_actions(user, task_objs[tid]) for tid in task_ids}
    picks = {tid: await tasks.pass_down_candidates(uow, user, task_objs[tid]) for tid in task_ids
             if can[tid]["pass_down"]}
    ready = {tid: (await tasks.sub_results(uow, task_objs[tid])).ready for tid in task_ids if can[tid]["handle"]}
    handover = {tid: await tasks.reassign_candidates(uow, user, task_objs[tid]) for tid in task_ids
                if can[tid]["take_back"]}
    choices = await agency_choices(uow, user)
    may_direct = user.has_role(Role.LEADER) and doc.direction == "in" and doc.status not in (Status.DONE,
                                                                                              Status.VOIDED)
    my_dossiers = await dossiers.list_dossiers(uow, user, "open")
    job_by_att = {j.attachment_id: j for j in jobs}
    queue = {user.id, *await delegation.principals(uow, user, delegation.DIRECT)}  # ủy quyền: the leader's queue
    pending_to_me = any(s["to_user_id"] in queue and s["status"] == "pending" for s in tree["submissions"])
    return {
        "may_correct": await corrections.may_correct(uow, user, doc),
        "doc": doc, "attachments": atts, "jobs": job_by_att, "tree": tree, "flat": flat, "updates": updates,
        "pending_ext": pending_ext, "users": users, "units": units, "can": can, "choices": choices,
        "my_dossiers": my_dossiers, "pending_to_me": pending_to_me, "corrections": fixes, "behalf": behalf,
        "form_doc_types": doctypes.FORM_ORDER,
        "may_submit": doc.direction == "in" and doc.status in (Status.REGISTERED, Status.SUBMITTED),
        "may_direct": may_direct, "picks": picks, "ready": ready, "handover": handover,
        "direction_groups": await tasks.direction_candidates(uow, user) if may_direct else [],
        "handling_deadline": _handling_deadline(doc, flat, tree["directions"]),
        "pdf_pages": [(a, n) for a in atts if a.viewable for n in range(1, (a.page_count or 1) + 1)][:PDF_PAGES_SHOWN],
    }


PDF_PAGES_SHOWN = 30  # pages of the document shown beside the direction form


def _handling_deadline(doc: Document, flat: list[dict[str, Any]], directions: list[dict[str, Any]]) -> Any:
    """The document's deadline as it stands: its top-level main task's (moved by extensions), else
    the last direction's, else the due date the clerk entered."""
    for t in flat:
        if t["parent_id"] is None and t["role"] == "main" and t["status"] != TaskStatus.WITHDRAWN and t["deadline"]:
            return t["deadline"]
    for d in reversed(directions):
        if d["deadline"]:
            return d["deadline"]
    return doc.due_date


def _task_actions(user: User, task: Task) -> dict[str, bool]:
    handler = tasks.handles(user, task)
    live = task.status not in (*tasks.CLOSED, TaskStatus.RETURNED)
    return {
        "take_back": task.assigned_by == user.id and task.status not in tasks.CLOSED,
        "handle": handler and live,
        "pass_down": handler and live and user.has_role(Role.LEADER) and (
            task.assignee_unit_id is not None or user.unit_id is not None),
        "extension": handler and live and task.deadline is not None,
        "decide": task.assigned_by == user.id,
    }


async def _document_response(request: Request, doc_id: int, *, error: str | None = None, status: int = 200,
                             form: dict[str, Any] | None = None) -> Response:
    async with request.app.state.db.uow(readonly=True) as uow:
        ctx = await _document_context(request, uow, doc_id)
    doc = ctx["doc"]
    registered = (f"Đã vào sổ văn bản đến: số đến {doc.number}/{doc.year}. Bước tiếp theo: trình lãnh đạo cho ý kiến "
                  "chỉ đạo (nút «Trình lãnh đạo» bên dưới)." if doc.number is not None else "Đã vào sổ văn bản đến.")
    notice = {"registered": registered, "submitted": "Đã trình văn bản.",
              "directed": "Đã cho ý kiến chỉ đạo và giao việc.", "filed": "Đã đưa văn bản vào hồ sơ.",
              "attached": "Đã đính kèm tệp.", "corrected": "Đã đính chính thông tin văn bản.",
              "voided": "Đã hủy vào sổ văn bản. Số đến được giữ, không cấp lại."}
    ok = next((v for k, v in notice.items() if request.query_params.get(k)), None) if request.method == "GET" else None
    return render(request, "office/document.html", status_code=status, section="inbox", error=error, ok=ok,
                  form=form or {}, **ctx)


@login_required()
async def document_page(request: Request) -> Response:
    return await _document_response(request, path_id(request, "id"))


async def _doc_action(request: Request, fn: Any, done: str) -> Response:
    async def shown(doc_id: int, exc: AppError, form: Any) -> Response:
        return await _document_response(request, doc_id, error=exc.message, status=exc.status, form=dict(form))

    return await form_action(request, fn, shown, f"/documents/{{id}}?{done}=1")


@login_required()
async def document_submit(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> None:
        to = opt_int(form, "to_user_id", "Lãnh đạo")
        if to is None:
            raise Invalid("Cần chọn lãnh đạo để trình.", field="to_user_id")
        await tasks.submit(uow, user, doc_id, to, text(form, "note"))

    return await _doc_action(request, go, "submitted")


@login_required(Role.LEADER)
async def document_direct(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> None:
        main = target(text(form, "main"))
        if main is None:
            raise Invalid("Cần chọn người hoặc đơn vị chủ trì.", field="main")
        await tasks.direct(uow, user, doc_id, text=text(form, "text"), main=main,
                           collaborators=targets(form.getlist("collaborators")),
                           informed=targets(form.getlist("informed")),
                           deadline=opt_date(form.get("deadline"), "Hạn xử lý", "deadline"),
                           ink=text(form, "ink") or None)

    return await _doc_action(request, go, "directed")


@login_required(Role.CLERK)
async def document_correct(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> None:
        changes: dict[str, Any] = {k: text(form, k) for k in ("sender", "notation", "doc_type", "summary",
                                                              "signer", "urgency") if k in form}
        if "date_issued" in form:
            changes["date_issued"] = opt_date(form.get("date_issued"), "Ngày ban hành", "date_issued")
        made = await corrections.correct_document(uow, user, doc_id, changes, text(form, "reason"))
        if not made:
            raise Invalid("Chưa có thông tin nào thay đổi.", field="summary")

    return await _doc_action(request, go, "corrected")


@login_required(Role.CLERK)
async def document_void(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> None:
        await corrections.void_document(uow, user, doc_id, text(form, "reason"))

    return await _doc_action(request, go, "voided")


@login_required()
async def document_file(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> None:
        dossier_id = opt_int(form, "dossier_id", "Hồ sơ")
        if dossier_id is None:
            raise Invalid("Cần chọn hồ sơ.", field="dossier_id")
        await dossiers.file_document(uow, user, dossier_id, doc_id)

    return await _doc_action(request, go, "filed")


@login_required()
async def document_attach(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, doc_id: int, form: Any) -> list[int]:
        ids = ints(form, "upload_ids")
        if not ids:
            raise Invalid("Chưa chọn tệp nào.", field="upload_ids")
        doc = await documents.get_document(uow, user, doc_id)
        return await documents.add_attachments(uow, user, request.app.state.blobs, doc, ids)

    return await _doc_action(request, go, "attached")


# ---- task board ---------------------------------------------------------------------------------

@login_required()
async def tasks_page(request: Request) -> Response:
    user = request.state.user
    q = request.query_params
    scope = "assigned_by_me" if q.get("scope") == "assigned_by_me" else "assigned_to_me"
    status = q.get("status") if q.get("status") in {s.value for s in TaskStatus} else None
    state = q.get("state") if q.get("state") in ("overdue", "due_soon") else None
    async with request.app.state.db.uow(readonly=True) as uow:
        page = _page(request)
        rows = await tasks.my_tasks(uow, user, scope=scope, status=status, state=state, limit=BOARD_PAGE + 1,
                                    offset=(page - 1) * BOARD_PAGE,
                                    open_only=scope == "assigned_to_me" and q.get("all") != "1")
        pager = _pager(request, page, len(rows) > BOARD_PAGE)
        digest = await tasks.digest(uow, user)
        box = await tasks.inbox(uow, user)
        t = today()
        items = _sort_tasks([r.public(t) for r in rows[:BOARD_PAGE]])
        doc_ids = {i["document_id"] for i in items if i["document_id"]}
        docs = {d.id: d for d in (await uow.session.scalars(select(Document).where(Document.id.in_(doc_ids))))} \
            if doc_ids else {}
        users, units = await names(uow, [*(i["assignee_user_id"] for i in items), *(i["assigned_by"] for i in items)],
                                   [i["assignee_unit_id"] for i in items])
    groups: list[tuple[str, str, list[dict[str, Any]]]]
    if scope == "assigned_to_me":
        groups = [("main", "Tôi chủ trì", [i for i in items if i["role"] == "main"]),
                  ("collab", "Tôi phối hợp", [i for i in items if i["role"] == "collab"])]
    else:
        groups = [("given", "Việc tôi đã giao", items)]
    return render(request, "office/tasks.html", section="tasks", scope=scope, status=status, state=state,
                  groups=groups, informed=box["informed"], docs=docs, users=users, units=units,
                  overdue=len(digest["overdue"]), due_soon=len(digest["due_soon"]), show_all=q.get("all") == "1",
                  pager=pager)


# ---- a task and its actions ---------------------------------------------------------------------

async def _task_response(request: Request, task_id: int, *, error: str | None = None, status: int = 200,
                         form: dict[str, Any] | None = None) -> Response:
    user = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        task = await tasks.get_task(uow, user, task_id)
        t = task.public(today())
        ups = await tasks.task_updates(uow, user, task.id)
        doc = await documents.get_document(uow, user, task.document_id) if task.document_id else None
        ext = await uow.session.scalar(select(ExtensionRequest).where(
            ExtensionRequest.task_id == task.id, ExtensionRequest.status == "pending"))
        children = (await uow.session.scalars(select(Task).where(Task.parent_id == task.id).order_by(Task.id))).all()
        users, units = await names(uow, [task.assignee_user_id, task.assigned_by, *(u.user_id for u in ups),
                                         *(c.assignee_user_id for c in children), ext.requested_by if ext else None],
                                   [task.assignee_unit_id])
        choices = await agency_choices(uow, user)
        can = _task_actions(user, task)
        picks = await tasks.pass_down_candidates(uow, user, task) if can["pass_down"] else []
        subs = await tasks.sub_results(uow, task)
        handover = await tasks.reassign_candidates(uow, user, task) if can["take_back"] else None
    return render(request, "office/task.html", status_code=status, section="tasks", t=t, doc=doc, updates=ups,
                  ext=ext, children=[c.public(today()) for c in children], users=users, units=units,
                  choices=choices, can=can, error=error, form=form or {}, picks=picks, subs=subs, handover=handover,
                  ok="Đã lưu." if request.query_params.get("ok") and request.method == "GET" else None)


@login_required()
async def task_page(request: Request) -> Response:
    return await _task_response(request, path_id(request, "id"))


async def _task_action(request: Request, fn: Any) -> Response:
    task_id = path_id(request, "id")
    form = await request.form()
    try:
        async with request.app.state.db.uow() as uow:
            task = await fn(uow, request.state.user, task_id, form)
            await uow.commit()
    except AppError as exc:
        return await _task_response(request, task_id, error=exc.message, status=exc.status, form=dict(form))
    back = text(form, "next")
    if back:
        return redirect(safe_next(back))
    return redirect(f"/tasks/{getattr(task, 'id', task_id)}?ok=1")


@login_required()
async def task_progress(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, task_id: int, form: Any) -> Any:
        await tasks.post_update(uow, user, task_id, text=text(form, "text"),
                                progress=opt_int(form, "progress", "Tiến độ"), upload_ids=ints(form, "upload_ids"))

    return await _task_action(request, go)


@login_required()
async def task_return(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, task_id: int, form: Any) -> Any:
        return await tasks.return_task(uow, user, task_id, text(form, "reason"))

    return await _task_action(request, go)


@login_required()
async def task_extension(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, task_id: int, form: Any) -> Any:
        new = opt_date(form.get("new_deadline"), "Hạn mới", "new_deadline")
        if new is None:
            raise Invalid("Cần nhập hạn mới.", field="new_deadline")
        await tasks.request_extension(uow, user, task_id, new, text(form, "reason"))

    return await _task_action(request, go)


@login_required()
async def task_extension_decision(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, task_id: int, form: Any) -> Any:
        req_id = opt_int(form, "request_id", "Đề nghị")
        if req_id is None:
            raise Invalid("Thiếu đề nghị gia hạn.")
        await tasks.decide_extension(uow, user, req_id, approve=text(form, "decision") == "approve",
                                     note=text(form, "note"))

    return await _task_action(request, go)


@login_required()
async def task_complete(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, task_id: int, form: Any) -> Any:
        return await tasks.complete(uow, user, task_id, result=text(form, "result"),
                                    upload_ids=ints(form, "upload_ids"))

    return await _task_action(request, go)


@login_required()
async def task_withdraw(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, task_id: int, form: Any) -> Any:
        return await tasks.withdraw(uow, user, task_id, text(form, "reason"))

    return await _task_action(request, go)


@login_required()
async def task_reassign(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, task_id: int, form: Any) -> Any:
        target = text(form, "assignee")  # "user:12" or "unit:3"
        kind, _, num = target.partition(":")
        if kind not in ("user", "unit") or not num.isdigit():
            raise Invalid("Cần chọn người hoặc đơn vị nhận.", field="assignee")
        return await tasks.reassign(uow, user, task_id, {f"{kind}_id": int(num)}, text(form, "reason"))

    return await _task_action(request, go)


@login_required(Role.LEADER)
async def task_pass_down(request: Request) -> Response:
    async def go(uow: UnitOfWork, user: User, task_id: int, form: Any) -> Any:
        main = opt_int(form, "main_user_id", "Người chủ trì")
        if main is None:
            raise Invalid("Cần chọn người chủ trì.", field="main_user_id")
        await tasks.pass_down(uow, user, task_id, main_user_id=main,
                              collaborator_ids=[i for i in ints(form, "collaborator_ids") if i != main],
                              instruction=text(form, "instruction"),
                              deadline=opt_date(form.get("deadline"), "Hạn xử lý", "deadline"))

    return await _task_action(request, go)


routes: list[BaseRoute] = [
    Route("/documents", inbox_page, name="office_inbox"),
    Route("/documents/new", register_page, methods=["GET"], name="office_register"),
    Route("/documents/new", register_submit, methods=["POST"]),
    Route("/documents/{id:int}", document_page, name="office_document"),
    Route("/documents/{id:int}/submit", document_submit, methods=["POST"]),
    Route("/documents/{id:int}/direction", document_direct, methods=["POST"]),
    Route("/documents/{id:int}/file", document_file, methods=["POST"]),
    Route("/documents/{id:int}/correct", document_correct, methods=["POST"]),
    Route("/documents/{id:int}/void", document_void, methods=["POST"]),
    Route("/documents/{id:int}/attachments", document_attach, methods=["POST"]),
    Route("/tasks", tasks_page, name="office_tasks"),
    Route("/tasks/{id:int}", task_page, name="office_task"),
    Route("/tasks/{id:int}/progress", task_progress, methods=["POST"]),
    Route("/tasks/{id:int}/return", task_return, methods=["POST"]),
    Route("/tasks/{id:int}/extension", task_extension, methods=["POST"]),
    Route("/tasks/{id:int}/extension-decision", task_extension_decision, methods=["POST"]),
    Route("/tasks/{id:int}/complete", task_complete, methods=["POST"]),
    Route("/tasks/{id:int}/pass-down", task_pass_down, methods=["POST"]),
    Route("/tasks/{id:int}/withdraw", task_withdraw, methods=["POST"]),
    Route("/tasks/{id:int}/reassign", task_reassign, methods=["POST"]),
]
