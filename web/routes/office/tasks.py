"""E-office API: tasks (việc) — the board, one task with its updates, passing down, progress and
files, returning, withdrawing, reassigning, deadline extensions, completion."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eoffice import tasks
from eoffice.org import User
from storage.db import UnitOfWork
from storage.errors import Invalid
from web import file_response
from web.contract import Binary, contract
from web.contract import office as c
from web.routes.office.plumbing import body, change, date, ids, int_, ok, path_id, read, text


@contract(ok=Binary(("*/*",), "Nội dung tệp"), more={304: "Không đổi"})
async def task_update_file(request: Request) -> Response:
    """A file posted on a task (progress report, comment), if you may see the task."""
    user = await file_response.requester(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        row = await tasks.update_file(uow, user, path_id(request))
    return await file_response.serve_blob(request, user, row.blob_key, row.filename, fallback_name="tep")


@contract(ok=c.TaskList)
async def list_tasks(request: Request) -> Response:
    """Task board: ``scope`` assigned_to_me | assigned_by_me, ``status``, ``state`` overdue | due_soon."""
    q = request.query_params

    async def board(uow: UnitOfWork, user: User) -> tuple[Any, dict[str, Any]]:
        rows = await tasks.my_tasks(uow, user, scope=q.get("scope", "assigned_to_me"),
                                    status=q.get("status") or None, state=q.get("state") or None)
        return rows, await tasks.digest(uow, user)

    rows, digest = await read(request, board)
    return ok({"items": [t.public() for t in rows], "overdue": len(digest["overdue"]),
               "due_soon": len(digest["due_soon"])})


@contract(ok=c.TaskView)
async def get_task(request: Request) -> Response:
    async def view(uow: UnitOfWork, user: User) -> dict[str, Any]:
        task = await tasks.get_task(uow, user, path_id(request))
        updates = await tasks.task_updates(uow, user, task.id)
        return {"task": task.public(), "updates": [u.public() for u in updates]}

    return ok(await read(request, view))


@contract(body=c.PassDown, ok=c.Tasks, status=201)
async def pass_down(request: Request) -> Response:
    b = await body(request)
    made = await change(request, lambda uow, user: tasks.pass_down(
        uow, user, path_id(request), main_user_id=int_(b.get("main_user_id"), "main_user_id"),
        collaborator_ids=ids(b.get("collaborator_ids"), "collaborator_ids"), instruction=text(b, "instruction"),
        deadline=date(b.get("deadline"), "deadline")))
    return ok({"tasks": [t.public() for t in made]}, 201)


@contract(body=c.PostUpdate, ok=c.TaskUpdates, status=201)
async def post_update(request: Request) -> Response:
    """Progress (``progress`` 0..100, handlers) or a comment, with ``upload_ids``."""
    b = await body(request)
    rows = await change(request, lambda uow, user: tasks.post_update(
        uow, user, path_id(request), text=text(b, "text"),
        progress=int_(b.get("progress"), "progress", optional=True), upload_ids=ids(b.get("upload_ids"), "upload_ids")))
    return ok({"updates": [r.public() for r in rows]}, 201)


@contract(body=c.Reason, ok=c.Task)
async def return_task(request: Request) -> Response:
    b = await body(request)
    task = await change(request, lambda uow, user: tasks.return_task(uow, user, path_id(request), text(b, "reason")))
    return ok(task.public())


@contract(body=c.Reason, ok=c.Task)
async def withdraw_task(request: Request) -> Response:
    """The assigner takes an unfinished task back (with the tasks passed down from it)."""
    b = await body(request)
    task = await change(request, lambda uow, user: tasks.withdraw(uow, user, path_id(request), text(b, "reason")))
    return ok(task.public())


@contract(body=c.Reassign, ok=c.Task)
async def reassign_task(request: Request) -> Response:
    """The assigner hands an unfinished task to another person or unit: ``{"assignee": {"user_id":
    5}, "reason": "..."}``."""
    b = await body(request)
    task = await change(request, lambda uow, user: tasks.reassign(
        uow, user, path_id(request), b.get("assignee"), text(b, "reason")))
    return ok(task.public())


@contract(body=c.ExtensionRequest, ok=c.IdStatus, status=201)
async def request_extension(request: Request) -> Response:
    b = await body(request)
    new_deadline = date(b.get("new_deadline"), "new_deadline")
    if new_deadline is None:
        raise Invalid("Cần nhập hạn mới.", field="new_deadline")
    req = await change(request, lambda uow, user: tasks.request_extension(
        uow, user, path_id(request), new_deadline, text(b, "reason")))
    return ok({"id": req.id, "status": req.status}, 201)


@contract(body=c.ExtensionDecision, ok=c.IdStatus)
async def decide_extension(request: Request) -> Response:
    b = await body(request)
    req = await change(request, lambda uow, user: tasks.decide_extension(
        uow, user, path_id(request), approve=bool(b.get("approve")), note=text(b, "note")))
    return ok({"id": req.id, "status": req.status})


@contract(body=c.Complete, ok=c.Task)
async def complete(request: Request) -> Response:
    b = await body(request)
    task = await change(request, lambda uow, user: tasks.complete(
        uow, user, path_id(request), result=text(b, "result"), upload_ids=ids(b.get("upload_ids"), "upload_ids"),
        result_document_id=int_(b.get("result_document_id"), "result_document_id", optional=True)))
    return ok(task.public())


routes: list[BaseRoute] = [
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
]
