"""Annotations on meeting documents: the JSON API and "my annotated copy" (meetings.annotations).

    GET    /api/meetings/{m}/versions/{v}/annotations?scope=all|mine|shared   what I may see, with topics and seqs
    POST   /api/meetings/{m}/versions/{v}/annotations                         add (client_id makes replays safe)
    GET    /api/meetings/{m}/versions/{v}/annotations/people                  whom I may share with
    PATCH  /api/meetings/{m}/annotations/{id}   {revision, shape?, color?, text?, visibility?, recipient_ids?}
    DELETE /api/meetings/{m}/annotations/{id}?revision=n
    POST   /api/meetings/{m}/annotations/{id}/withdraw    the chair takes someone's shared mark off the page
    GET    /api/meetings/{m}/versions/{v}/annotated.pdf                       my annotated copy

A stale ``revision`` answers 409 with ``current`` (the annotation as it is now). Live changes
travel on ``annot:v:{version}`` (shared with the meeting) and ``annot:u:{user}`` (mine, and those
shared with me by name); the hub learns those topics at start-up (``setup``, called by the app's
lifespan), so a tablet reconnecting after a restart can subscribe before making any request.

A tablet may send the same changes over the meeting WebSocket it already holds (``web.routes.ws``
commands, answered by a ``reply`` frame with the client's ``id`` once committed)::

    {"op": "annotation.create", "id": "r1", "meeting_id": m, "version_id": v, <the POST body>}
        -> data: {"annotation": {...}, "created": true | false (a replay)}
    {"op": "annotation.update", "id": "r2", "meeting_id": m, "annotation_id": a, "revision": n, <changes>}
        -> data: {"annotation": {...}}     (stale revision: ok false, status 409, current)
    {"op": "annotation.delete", "id": "r3", "meeting_id": m, "annotation_id": a, "revision": n}
        -> data: {"id": a, "version_id": v}

HTTP and WebSocket call the same functions below (``create_one``, ``update_one``, ``delete_one``),
which call the same services. A command skips HTTP and the per-request session lookup; the session
or API token the socket was opened with is checked in the change's own transaction instead
(``web.auth.credential_user``), so a command after a logout is refused (401) as a request would be.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eoffice.org import User
from meetings import annotation_export
from meetings import annotations as notes
from meetings.documents import version_context
from meetings.schema import Document, DocumentVersion
from storage import events
from storage.db import Database, UnitOfWork
from storage.errors import Invalid, NotFound
from web import file_response, inputs
from web.auth import credential_user, require_user
from web.contract import Binary, Empty, contract
from web.contract import meetings as c
from web.hub import Connection
from web.inputs import json_body
from web.openapi import describe


def setup(app: Starlette) -> None:
    """At startup: the annot: topics' authoriser and snapshot on the hub, and the WebSocket commands."""
    hub = app.state.hub
    notes.register(hub)
    for op, fn in (("annotation.create", ws_create), ("annotation.update", ws_update),
                   ("annotation.delete", ws_delete)):
        hub.add_command(op, functools.partial(fn, app.state.db))


def _id(request: Request, name: str) -> int:
    return inputs.path_id(request, name)


async def _check_version(uow: UnitOfWork, user: User, meeting_id: int,
                         version_id: int) -> tuple[Document, DocumentVersion]:
    _ctx, doc, version = await version_context(uow, user, version_id)
    if doc.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy tài liệu.")
    return doc, version


def _revision(value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid("Số phiên bản (revision) không hợp lệ.", field="revision")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid("Thiếu số phiên bản (revision) của chú thích.", field="revision") from None


@contract(ok=c.AnnotationList)
async def list_annotations(request: Request) -> JSONResponse:
    """Annotations of a document version I may see: mine, shared with the meeting, shared with me.

    With the live topics to subscribe to and their seqs, read before the list (resume from them).
    """
    user = require_user(request)
    mid, vid = _id(request, "meeting_id"), _id(request, "version_id")
    scope = request.query_params.get("scope", "all")
    async with request.app.state.db.uow(readonly=True) as uow:
        await _check_version(uow, user, mid, vid)
        shared, mine = notes.version_topic(vid), notes.user_topic(user.id)
        seqs = {shared: await events.last_seq(uow.session, shared), mine: await events.last_seq(uow.session, mine)}
        rows = await notes.visible(uow, user, vid, scope=scope)
    return JSONResponse({"version_id": vid, "user_id": user.id, "annotations": rows,
                         "topics": {"shared": shared, "mine": mine}, "seqs": seqs})


@describe(responses={"201": {"description": "Đã thêm"},
                     "200": {"description": "Đã có (gửi lại từ hàng đợi ngoại tuyến)"},
                     "400": {"description": "Hình dạng, màu, trang hoặc người nhận không hợp lệ"}})
@contract(body=c.AnnotationCreate, ok=c.Annotation, status=201, more={200: c.Annotation})
async def create_annotation(request: Request) -> JSONResponse:
    """Add an annotation: {client_id, page, kind (highlight|ink|note|rect|arrow), shape, color (#rrggbb), text,
    visibility (private|meeting|people), recipient_ids}. Coordinates in PDF points of the page as displayed."""
    user = require_user(request)
    body = await json_body(request)
    async with request.app.state.db.uow() as uow:
        data, created = await create_one(uow, user, _id(request, "meeting_id"), _id(request, "version_id"), body)
        await uow.commit()
    return JSONResponse(data, status_code=201 if created else 200)


@describe(responses={"409": {"description": "Chú thích đã được sửa ở nơi khác: kèm bản hiện tại (current)"}})
@contract(method='PATCH', body=c.AnnotationChange, ok=c.Annotation, more={409: c.AnnotationConflict})
@contract(method='DELETE', ok=c.AnnotationDeleted, more={409: c.AnnotationConflict})
async def annotation(request: Request) -> Response:
    """PATCH {revision, ...changes}: change my annotation; DELETE ?revision=n: erase it."""
    user = require_user(request)
    mid, aid = _id(request, "meeting_id"), _id(request, "annotation_id")
    if request.method == "DELETE":
        revision = request.query_params.get("revision")
        if revision is None:
            revision = (await json_body(request)).get("revision")
        async with request.app.state.db.uow() as uow:
            data = await delete_one(uow, user, mid, aid, revision)
            await uow.commit()
        return JSONResponse({"ok": True, **data})
    body = await json_body(request)
    async with request.app.state.db.uow() as uow:
        data = await update_one(uow, user, mid, aid, body)
        await uow.commit()
    return JSONResponse(data)


@describe(responses={"403": {"description": "Chỉ chủ tọa hoặc thư ký"},
                     "409": {"description": "Ghi chú đã không còn được chia sẻ"}})
@contract(body=Empty, ok=c.Annotation)
async def withdraw_annotation(request: Request) -> JSONResponse:
    """The chair or secretary hides someone else's shared annotation from everyone: it stays its owner's,
    private; the others' tablets drop it at once; audited with the owner's id."""
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        a = await notes.withdraw(uow, user, _id(request, "annotation_id"), meeting_id=_id(request, "meeting_id"))
        await uow.commit()
    return JSONResponse(notes.public(a, ""))


# ---------------------------------------------------------------- one change, from HTTP or the WebSocket


async def create_one(uow: UnitOfWork, user: User, meeting_id: int, version_id: int,
                     body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Add the annotation in ``body`` (the POST body); returns (what the owner sees, created)."""
    a, created = await notes.create(
        uow, user, version_id, client_id=body.get("client_id"), page=body.get("page"), kind=body.get("kind"),
        shape=body.get("shape"), color=body.get("color"), text=body.get("text", ""),
        visibility=body.get("visibility", "private"), recipient_ids=body.get("recipient_ids"), meeting_id=meeting_id)
    recipients = getattr(a, "recipients", None)
    if recipients is None:  # a replay: the row as it was stored
        recipients = (await notes.recipients_of(uow, [a.id]))[a.id]
    return notes.public(a, user.full_name, recipients), created


async def update_one(uow: UnitOfWork, user: User, meeting_id: int, annotation_id: int,
                     body: dict[str, Any]) -> dict[str, Any]:
    """Change my annotation: ``body`` is {revision, ...changes}; returns what the owner sees."""
    changes = {k: body[k] for k in notes.EDITABLE if k in body}
    a = await notes.update(uow, user, annotation_id, revision=_revision(body.get("revision")),
                                 meeting_id=meeting_id, **changes)
    return notes.public(a, user.full_name, a.recipients)  # type: ignore[attr-defined]


async def delete_one(uow: UnitOfWork, user: User, meeting_id: int, annotation_id: int,
                     revision: Any) -> dict[str, Any]:
    a = await notes.remove(uow, user, annotation_id, revision=_revision(revision), meeting_id=meeting_id)
    return {"id": annotation_id, "version_id": a.version_id}


def _int(command: dict[str, Any], name: str) -> int:
    value = command.get(name)
    if isinstance(value, str):  # a WebSocket command carries JSON numbers
        raise Invalid(f"Thiếu hoặc sai «{name}».", field=name)
    return inputs.req_id(value, name)


async def ws_create(db: Database, conn: Connection, command: dict[str, Any]) -> dict[str, Any]:
    async with db.uow() as uow:
        user = await credential_user(uow, conn.credential)
        data, created = await create_one(uow, user, _int(command, "meeting_id"), _int(command, "version_id"), command)
        await uow.commit()
    return {"annotation": data, "created": created}


async def ws_update(db: Database, conn: Connection, command: dict[str, Any]) -> dict[str, Any]:
    async with db.uow() as uow:
        user = await credential_user(uow, conn.credential)
        data = await update_one(uow, user, _int(command, "meeting_id"), _int(command, "annotation_id"), command)
        await uow.commit()
    return {"annotation": data}


async def ws_delete(db: Database, conn: Connection, command: dict[str, Any]) -> dict[str, Any]:
    async with db.uow() as uow:
        user = await credential_user(uow, conn.credential)
        data = await delete_one(uow, user, _int(command, "meeting_id"), _int(command, "annotation_id"),
                                command.get("revision"))
        await uow.commit()
    return data


@contract(ok=c.SharePeople)
async def share_candidates(request: Request) -> JSONResponse:
    """People I may share an annotation of this version with (those who may read it)."""
    user = require_user(request)
    mid, vid = _id(request, "meeting_id"), _id(request, "version_id")
    async with request.app.state.db.uow(readonly=True) as uow:
        await _check_version(uow, user, mid, vid)
        people = await notes.share_candidates(uow, user, vid)
    return JSONResponse({"people": people})


@contract(ok=Binary(('application/pdf',), 'PDF'))
async def annotated_copy(request: Request) -> Response:
    """My annotated copy: the original PDF with my annotations and the shared ones I may see, as real PDF
    annotations (the stored original is not changed; an incremental update keeps signatures valid)."""
    user = require_user(request)
    mid, vid = _id(request, "meeting_id"), _id(request, "version_id")
    # annotation_export.my_copy, split: what the copy needs is read in a read-only unit of work, and the
    # blob read and the PDF build (seconds for a long document) run after the transaction has ended
    async with request.app.state.db.uow(readonly=True) as uow:
        doc, version = await _check_version(uow, user, mid, vid)
        rows = await notes.visible_rows(uow, user, version.id, "all")
    out = await annotation_export.copy_of(request.app.state.blobs, doc, version, rows)
    stem = version.filename.rsplit(".", 1)[0] if "." in version.filename else version.filename
    return Response(out.data, media_type="application/pdf", headers={
        **file_response.download_headers(f"{stem} - bản có ghi chú.pdf", "ban-co-ghi-chu.pdf"),
        "X-Annotations": str(out.count), "X-Save-Method": out.method})


M = "/api/meetings/{meeting_id:int}"
V = M + "/versions/{version_id:int}"
routes = [
    Route(V + "/annotations", list_annotations, methods=["GET"]),
    Route(V + "/annotations", create_annotation, methods=["POST"]),
    Route(V + "/annotations/people", share_candidates, methods=["GET"]),
    Route(V + "/annotated.pdf", annotated_copy, methods=["GET"]),
    Route(M + "/annotations/{annotation_id:int}", annotation, methods=["PATCH", "DELETE"]),
    Route(M + "/annotations/{annotation_id:int}/withdraw", withdraw_annotation, methods=["POST"]),
]
