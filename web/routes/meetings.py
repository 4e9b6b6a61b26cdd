"""Meetings: the JSON API under /api/meetings and the pages (list, preparation, live room, reader).

Handlers only translate HTTP to service calls: every change goes through meetings.* services
(permission, change, audit, event), inside one unit of work committed here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from eoffice.org import Unit, User, open_units
from eoffice.pdfpages import PAGE_FORMATS
from meetings import (
    agenda,
    attendance,
    calendar,
    chair_messages,
    documents,
    lifecycle,
    meeting_dossier,
    meetings,
    minutes,
    minutes_record,
    presenter,
    recordings,
    room,
    rules,
    schema,
    screen,
    speakers,
    speaking_budgets,
    topics,
    voting,
)
from storage import events
from storage.db import UnitOfWork
from storage.errors import Invalid, NotFound
from web import file_response, inputs
from web.auth import login_required, require_user
from web.contract import Binary, Empty, Ok, contract
from web.contract import meetings as c
from web.inputs import json_body
from web.openapi import describe

# ---------------------------------------------------------------- plumbing


def setup(app: Starlette) -> None:
    """At startup: the room's topic authoriser and snapshot on the hub."""
    room.register(app.state.hub)


def _int(value: Any, field: str, *, optional: bool = False) -> int | None:
    return inputs.int_value(value, field, optional=optional)


def _req_int(value: Any, field: str) -> int:
    return inputs.req_int(value, field)


def _time(request: Request, value: Any, field: str, *, optional: bool = False) -> dt.datetime | None:
    """ISO date-time; without an offset it is the agency's local time (Asia/Ho_Chi_Minh)."""
    if not optional and value in (None, ""):
        raise Invalid("Thời gian không hợp lệ.", field=field)
    return inputs.datetime_value(value, field, request.app.state.settings.timezone)


def ok(**data: Any) -> JSONResponse:
    return JSONResponse({"ok": True, **data})


def path_id(request: Request, name: str = "meeting_id") -> int:
    return inputs.path_id(request, name)


async def _run(request: Request, fn: Callable[[UnitOfWork, User], Awaitable[Any]]) -> Any:
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        result = await fn(uow, user)
        await uow.commit()
    return result


# ---------------------------------------------------------------- meetings


@contract(ok=c.MeetingList)
async def list_meetings(request: Request) -> JSONResponse:
    """Meetings I organise, chair, minute, attend (also as a substitute or for my unit) or operate a site of."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await meetings.list_for_user(uow, user)
    return JSONResponse({"meetings": [m.public() for m in rows]})


def _meeting_fields(request: Request, body: dict[str, Any], partial: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("title", "place", "description", "quorum_rule"):
        if key in body:
            out[key] = str(body[key] or "")
    for key in ("chair_id", "secretary_id", "speaking_time"):
        if key in body:
            out[key] = _int(body[key], key, optional=True)
    if not partial:  # a new meeting without a title is refused by the service, in Vietnamese
        out.setdefault("title", "")
    if "starts_at" in body or not partial:
        out["starts_at"] = _time(request, body.get("starts_at"), "starts_at")
    if "ends_at" in body:
        out["ends_at"] = _time(request, body.get("ends_at"), "ends_at", optional=True)
    return out


@describe(responses={"201": {"description": "Đã tạo (dự thảo)"}, "400": {"description": "Dữ liệu không hợp lệ"}})
@contract(body=c.MeetingCreate, ok=c.Meeting, status=201)
async def create_meeting(request: Request) -> JSONResponse:
    """Create a meeting (a draft, seen only by its organiser, chair and secretary until invitations go out).

    Body: title, starts_at (ISO; local time when no offset), ends_at, place, description, chair_id,
    secretary_id, quorum_rule (half | two_thirds | three_quarters | all | none).
    """
    body = await json_body(request)
    fields = _meeting_fields(request, body, partial=False)

    async def go(uow: UnitOfWork, user: User) -> Any:
        m = await meetings.create_meeting(uow, user, **fields)
        return m, await calendar.conflicts_for(uow, m)

    m, conflicts = await _run(request, go)
    return JSONResponse({**m.public(), "conflicts": conflicts}, status_code=201)


async def snapshot_with_seq(request: Request, meeting_id: int) -> dict[str, Any]:
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        seq = await events.last_seq(uow.session, topics.room(meeting_id))  # read first: the state is at least this new
        snap = await room.room_snapshot(uow, user, meeting_id)
    return {"topic": topics.room(meeting_id), "seq": seq, **snap}


@contract(ok=c.Room)
async def get_meeting(request: Request) -> JSONResponse:
    """The whole room as this user may see it, with the topic's seq (resume live events from it)."""
    return JSONResponse(await snapshot_with_seq(request, path_id(request)))


@contract(body=c.MeetingFields, ok=c.Meeting)
async def update_meeting(request: Request) -> JSONResponse:
    """Change details, time, place, chair, secretary or quorum rule (until the meeting ends)."""
    fields = _meeting_fields(request, await json_body(request), partial=True)
    mid = path_id(request)

    async def go(uow: UnitOfWork, user: User) -> Any:
        m = await meetings.update_meeting(uow, user, mid, **fields)
        return m, await calendar.conflicts_for(uow, m)

    m, conflicts = await _run(request, go)
    return JSONResponse({**m.public(), "conflicts": conflicts})


TRANSITIONS = {
    "invite": meetings.send_invitations,
    "start": lifecycle.start_meeting,
    "end": lifecycle.end_meeting,
    "archive": lifecycle.archive_meeting,
}


@describe(responses={"409": {"description": "Không chuyển được từ trạng thái hiện tại"}})
@contract(body=c.CancelReason, ok=c.Meeting, choices={'action': ('invite', 'start', 'end', 'archive', 'cancel')})
async def transition(request: Request) -> JSONResponse:
    """Life cycle: invite (draft -> invited), start, end (chair), archive; cancel takes a reason."""
    mid, action = path_id(request), request.path_params["action"]
    if action == "cancel":
        reason = str((await json_body(request)).get("reason", ""))
        m = await _run(request, lambda uow, user: lifecycle.cancel_meeting(uow, user, mid, reason))
    elif action in TRANSITIONS:
        m = await _run(request, lambda uow, user: TRANSITIONS[action](uow, user, mid))
        if action == "end":  # the end closed its open poll: a secret one leaves dead ballot versions to reclaim
            await voting.scrub(request.app.state.db)
    else:
        raise NotFound("Không có thao tác này.")
    return JSONResponse(m.public())


# ---------------------------------------------------------------- participants and sites


@contract(body=c.AddParticipant, ok=c.NewRecord, status=201)
async def add_participant(request: Request) -> JSONResponse:
    """Invite a person (user_id), a unit (unit_id) or a guest (guest_name, guest_title); role member or invited."""
    body = await json_body(request)
    mid = path_id(request)
    kwargs: dict[str, Any] = {
        "user_id": _int(body.get("user_id"), "user_id", optional=True),
        "unit_id": _int(body.get("unit_id"), "unit_id", optional=True),
        "guest_name": str(body.get("guest_name") or ""), "guest_title": str(body.get("guest_title") or ""),
        "role": str(body.get("role") or rules.ParticipantRole.MEMBER),
        "site_id": _int(body.get("site_id"), "site_id", optional=True),
    }
    for flag in ("entitled", "voting"):
        if flag in body:
            kwargs[flag] = bool(body[flag])

    async def go(uow: UnitOfWork, user: User) -> Any:
        p = await meetings.add_participant(uow, user, mid, **kwargs)
        m = await uow.session.get(schema.Meeting, mid)
        assert m is not None  # the service found it
        return p, await calendar.conflicts_for(uow, m, {p.user_id}) if p.user_id else []

    p, conflicts = await _run(request, go)
    # a leader already in another meeting then: a warning, not a refusal (issue #21)
    return JSONResponse({"id": p.id, "conflicts": conflicts}, status_code=201)


async def _seat_in(uow: UnitOfWork, meeting_id: int, participant_id: int) -> None:
    p = await uow.session.get(schema.Participant, participant_id)
    if p is None or p.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy người dự họp.")


@contract(ok=Ok)
async def remove_participant(request: Request) -> JSONResponse:
    """Take someone off the invitation list (not the chair or secretary; not after check-in)."""
    mid, pid = path_id(request), path_id(request, "participant_id")

    async def go(uow: UnitOfWork, user: User) -> None:
        await _seat_in(uow, mid, pid)
        await meetings.remove_participant(uow, user, pid)

    await _run(request, go)
    return ok()


@contract(body=c.Respond, ok=c.Responded)
async def respond(request: Request) -> JSONResponse:
    """Answer an invitation: accepted, declined, or substitute (with substitute_id; cử người dự thay)."""
    body = await json_body(request)
    mid, pid = path_id(request), path_id(request, "participant_id")

    async def go(uow: UnitOfWork, user: User) -> Any:
        await _seat_in(uow, mid, pid)
        return await meetings.respond(uow, user, pid, str(body.get("response", "")),
                                      substitute_id=_int(body.get("substitute_id"), "substitute_id", optional=True),
                                      note=str(body.get("note") or ""))

    p = await _run(request, go)
    return ok(response=p.response, substitute_id=p.substitute_id)


@contract(body=c.SubstituteApproval, ok=c.SubstituteApproved)
async def substitute_approval(request: Request) -> JSONResponse:
    """The chair approves (``{"approved": true}``) or withdraws approval of a substitute: only an approved
    substitute (or one from the invitee's unit) sees the confidential items the invitee may see."""
    body = await json_body(request)
    mid, pid = path_id(request), path_id(request, "participant_id")

    async def go(uow: UnitOfWork, user: User) -> Any:
        await _seat_in(uow, mid, pid)
        return await meetings.approve_substitute(uow, user, pid, body.get("approved", True))

    p = await _run(request, go)
    return ok(substitute_id=p.substitute_id, approved=p.substitute_approved)


@contract(body=Empty, ok=c.Presence, choices={'action': ('check-in', 'check-out')})
async def check_in(request: Request) -> JSONResponse:
    """Check in (or, with action check-out, out): oneself on the tablet, anyone as chair or secretary,
    the people of one's remote site as its operator."""
    mid, pid = path_id(request), path_id(request, "participant_id")
    fn = attendance.check_in if request.path_params["action"] == "check-in" else attendance.check_out

    async def go(uow: UnitOfWork, user: User) -> Any:
        await _seat_in(uow, mid, pid)
        p = await fn(uow, user, pid)
        m = await uow.session.get(schema.Meeting, mid)
        assert m is not None  # _seat_in found the seat in this meeting
        return p, await attendance.quorum_of(uow, m)

    p, q = await _run(request, go)
    return ok(present=p.present, quorum=q.public())


@contract(body=c.AddSite, ok=c.Site, status=201)
async def add_site(request: Request) -> JSONResponse:
    """Add a remote site (điểm cầu) with its unit and operator."""
    body = await json_body(request)
    mid = path_id(request)
    site = await _run(request, lambda uow, user: meetings.add_site(
        uow, user, mid, name=str(body.get("name") or ""), unit_id=_int(body.get("unit_id"), "unit_id", optional=True),
        operator_id=_int(body.get("operator_id"), "operator_id", optional=True)))
    return JSONResponse(site.public(), status_code=201)


# ---------------------------------------------------------------- agenda


def _item_fields(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("title", "description", "presenter_name"):
        if key in body:
            out[key] = str(body[key] or "")
    if "presenter_id" in body:
        out["presenter_id"] = _int(body["presenter_id"], "presenter_id", optional=True)
    if "planned_minutes" in body:
        out["planned_minutes"] = body["planned_minutes"]
    if "confidential" in body:
        out["confidential"] = bool(body["confidential"])
    if "allowed_user_ids" in body:
        ids = body["allowed_user_ids"] or []
        if not isinstance(ids, list):
            raise Invalid("Danh sách người được xem không hợp lệ.", field="allowed_user_ids")
        out["allowed_user_ids"] = [_int(i, "allowed_user_ids") for i in ids]
    return out


async def _item_in(uow: UnitOfWork, meeting_id: int, item_id: int) -> None:
    item = await uow.session.get(schema.AgendaItem, item_id)
    if item is None or item.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy nội dung chương trình họp.")


@contract(body=c.AgendaItemFields, ok=c.NewItem, status=201)
async def add_item(request: Request) -> JSONResponse:
    """Add an agenda item: title, presenter_id or presenter_name, planned_minutes, confidential, allowed_user_ids."""
    fields = _item_fields(await json_body(request))
    mid = path_id(request)
    fields.setdefault("title", "")
    item = await _run(request, lambda uow, user: agenda.add_item(uow, user, mid, **fields))
    return JSONResponse({"id": item.id, "position": item.position}, status_code=201)


@contract(method='PATCH', body=c.AgendaItemFields, ok=Ok)
@contract(method='DELETE', ok=Ok)
async def item(request: Request) -> Response:
    """PATCH: edit an agenda item; DELETE: remove one never discussed and without documents."""
    mid, iid = path_id(request), path_id(request, "item_id")
    if request.method == "DELETE":
        async def remove(uow: UnitOfWork, user: User) -> None:
            await _item_in(uow, mid, iid)
            await agenda.remove_item(uow, user, iid)

        await _run(request, remove)
        return ok()
    fields = _item_fields(await json_body(request))

    async def edit(uow: UnitOfWork, user: User) -> Any:
        await _item_in(uow, mid, iid)
        return await agenda.update_item(uow, user, iid, **fields)

    await _run(request, edit)
    return ok()


@contract(body=c.ItemOrderBody, ok=c.ItemOrder)
async def reorder_items(request: Request) -> JSONResponse:
    """New order of the agenda: item_ids (those left out keep their order after)."""
    body = await json_body(request)
    ids = inputs.ids_value(body.get("item_ids"), "item_ids")
    mid = path_id(request)
    rows = await _run(request, lambda uow, user: agenda.reorder_items(uow, user, mid, ids))
    return ok(item_ids=[r.id for r in rows])


@describe(responses={"409": {"description": "Cuộc họp chưa diễn ra, hoặc đã ở nội dung đầu/cuối"}})
@contract(body=c.SetCurrent, ok=c.CurrentItem)
async def set_current(request: Request) -> JSONResponse:
    """Move the room to an agenda item: {"item_id": n} or {"step": 1} / {"step": -1} (chair or secretary)."""
    body = await json_body(request)
    mid = path_id(request)
    if "step" in body:
        direction = _req_int(body["step"], "step")
        m = await _run(request, lambda uow, user: agenda.step(uow, user, mid, 1 if direction > 0 else -1))
    else:
        target = _int(body.get("item_id"), "item_id", optional=True)
        m = await _run(request, lambda uow, user: agenda.set_current_item(uow, user, mid, target))
    return ok(current_item_id=m.current_item_id)


# ---------------------------------------------------------------- documents


@contract(body=c.AddMeetingDocument, ok=c.NewMeetingDocument, status=201)
async def add_document(request: Request) -> JSONResponse:
    """Attach an uploaded PDF (upload_id from POST /api/files) to the meeting or to an item (item_id)."""
    body = await json_body(request)
    mid = path_id(request)
    blobs = request.app.state.blobs
    doc, version = await _run(request, lambda uow, user: documents.add_document(
        uow, user, blobs, mid, upload_id=_req_int(body.get("upload_id"), "upload_id"),
        title=str(body.get("title") or ""), item_id=_int(body.get("item_id"), "item_id", optional=True)))
    return JSONResponse({"id": doc.id, "version": version.public()}, status_code=201)


@contract(body=c.AddMeetingVersion, ok=c.MeetingVersion, status=201)
async def add_version(request: Request) -> JSONResponse:
    """A new version of a document (the old versions stay, with whatever was attached to them)."""
    body = await json_body(request)
    mid, did = path_id(request), path_id(request, "document_id")
    blobs = request.app.state.blobs

    async def go(uow: UnitOfWork, user: User) -> Any:
        doc = await uow.session.get(schema.Document, did)
        if doc is None or doc.meeting_id != mid:
            raise NotFound("Không tìm thấy tài liệu.")
        return await documents.add_version(uow, user, blobs, did, upload_id=_req_int(body.get("upload_id"),
                                                                                      "upload_id"),
                                           note=str(body.get("note") or ""))

    version = await _run(request, go)
    return JSONResponse(version.public(), status_code=201)


async def _version(request: Request, user: User | None = None) -> schema.DocumentVersion:
    user = user or require_user(request)
    mid, vid = path_id(request), path_id(request, "version_id")
    async with request.app.state.db.uow(readonly=True) as uow:
        _ctx, doc, version = await documents.version_context(uow, user, vid)
        if doc.meeting_id != mid:
            raise NotFound("Không tìm thấy tài liệu.")
    return version


@contract(ok=c.VersionMeta)
async def version_meta(request: Request) -> JSONResponse:
    """Pages (count and sizes in PDF points), title, version number, the page widths served."""
    user = require_user(request)
    mid, vid = path_id(request), path_id(request, "version_id")
    async with request.app.state.db.uow(readonly=True) as uow:
        _ctx, doc, version = await documents.version_context(uow, user, vid)
        if doc.meeting_id != mid:
            raise NotFound("Không tìm thấy tài liệu.")
        return JSONResponse(documents.version_meta(doc, version))


IMMUTABLE = "private, max-age=31536000, immutable"


def _blob_response(request: Request, key: str, content_type: str, **headers: str) -> Response:
    etag = f'"{key}"'
    base = {"ETag": etag, "Cache-Control": IMMUTABLE, **headers}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=base)
    return StreamingResponse(request.app.state.blobs.open(key), media_type=content_type, headers=base)


@describe(parameters=[
    {"name": "w", "in": "query", "schema": {"type": "integer"}, "description": "Độ rộng màn hình (px)"},
    {"name": "fmt", "in": "query", "schema": {"type": "string", "enum": list(PAGE_FORMATS)}},
])
@contract(ok=Binary(tuple(PAGE_FORMATS.values()), 'Ảnh trang'), more={304: 'Không đổi'})
async def page_image(request: Request) -> Response:
    """One page as an image, rendered on first request at the width bucket for ``w`` and cached."""
    version = await _version(request)
    width = _int(request.query_params.get("w") or 800, "w") or 800
    fmt = request.query_params.get("fmt", "png")
    state = request.app.state
    key, ctype = await documents.page_image(state.db, state.blobs, version, path_id(request, "page"), width, fmt)
    return _blob_response(request, key, ctype)


@contract(ok=c.PageWords)
async def page_words(request: Request) -> Response:
    """Word boxes of a page in PDF points: [x0, y0, x1, y1, text, block, line, word]."""
    version = await _version(request)
    state = request.app.state
    key = await documents.page_words(state.db, state.blobs, version, path_id(request, "page"))
    return _blob_response(request, key, "application/json")


@contract(ok=c.DocumentSearch)
async def search_document(request: Request) -> JSONResponse:
    """Search a document (?q=); without diacritics it ignores them. Hits carry page and word boxes."""
    version = await _version(request)
    return JSONResponse(await documents.search(request.app.state.blobs, version, request.query_params.get("q", "")))


@contract(ok=Binary(('*/*',), 'Tệp gốc'), more={304: 'Không đổi'})
async def download_version(request: Request) -> Response:
    """The original PDF of a version (served as what its bytes are: web.file_response)."""
    user = await file_response.requester(request)
    version = await _version(request, user)
    return await file_response.serve_blob(request, user, version.blob_key, version.filename,
                                          fallback_name="tai-lieu", cache=IMMUTABLE, etag=f'"{version.blob_key}"')


# ---------------------------------------------------------------- speakers and presenter


@contract(body=c.RequestFloor, ok=c.SpeakerRequest, status=201)
async def request_floor(request: Request) -> JSONResponse:
    """Ask for the floor: for oneself, for one's site (site_id, operator) or, as chair/secretary, for a
    participant without a tablet (participant_id); also before the meeting (invitations sent), with the question or
    topic (note) and the agenda item (item_id) it is about."""
    body = await json_body(request)
    mid = path_id(request)
    req = await _run(request, lambda uow, user: speakers.request_floor(
        uow, user, mid, site_id=_int(body.get("site_id"), "site_id", optional=True),
        participant_id=_int(body.get("participant_id"), "participant_id", optional=True),
        item_id=_int(body.get("item_id"), "item_id", optional=True), note=str(body.get("note") or "")))
    return JSONResponse(req.public(), status_code=201)


@contract(ok=c.SpeakerRegistrations)
async def speaker_registrations(request: Request) -> JSONResponse:
    """Who waits to speak, with their question or topic and its agenda item (sent before or during the meeting):
    chair, secretary, organiser."""
    mid = path_id(request)
    rows = await _run(request, lambda uow, user: speakers.registrations(uow, user, mid))
    return JSONResponse({"registrations": rows})


@contract(ok=c.SpeakerQuestions)
async def speaker_questions(request: Request) -> JSONResponse:
    """The questions registered with the turns waiting and speaking, for the chair's live queue."""
    mid = path_id(request)
    return JSONResponse({"questions": await _run(request, lambda uow, user: speakers.questions(uow, user, mid))})


@contract(method="POST", body=c.DelegationFields, ok=c.Delegations, status=201)
@contract(method="GET", ok=c.Delegations)
async def delegations(request: Request) -> JSONResponse:
    """The delegations (tổ đại biểu) with their speaking budgets and use; POST {name, budget (seconds)} adds one
    (organiser, chair, secretary)."""
    mid = path_id(request)
    if request.method == "POST":
        body = await json_body(request)
        await _run(request, lambda uow, user: speaking_budgets.save(
            uow, user, mid, name=str(body.get("name") or ""), budget=_int(body.get("budget"), "budget", optional=True)))
    view = await _run(request, lambda uow, user: speaking_budgets.delegations_view(uow, user, mid))
    return JSONResponse(view, status_code=201 if request.method == "POST" else 200)


@contract(method="PATCH", body=c.DelegationFields, ok=c.Delegations)
async def delegation(request: Request) -> JSONResponse:
    """Rename a delegation or change its budget: {name, budget (seconds, null: none)}."""
    mid, did = path_id(request), path_id(request, "delegation_id")
    body = await json_body(request)
    await _run(request, lambda uow, user: speaking_budgets.save(
        uow, user, mid, name=str(body.get("name") or ""), budget=_int(body.get("budget"), "budget", optional=True),
        delegation_id=did))
    return JSONResponse(await _run(request, lambda uow, user: speaking_budgets.delegations_view(uow, user, mid)))


@contract(body=c.SeatDelegation, ok=c.Delegations)
async def seat_delegation(request: Request) -> JSONResponse:
    """Put a seat in a delegation: {delegation_id} (null: in none)."""
    mid, pid = path_id(request), path_id(request, "participant_id")
    body = await json_body(request)
    did = _int(body.get("delegation_id"), "delegation_id", optional=True)
    await _run(request, lambda uow, user: speaking_budgets.assign(uow, user, mid, pid, did))
    return JSONResponse(await _run(request, lambda uow, user: speaking_budgets.delegations_view(uow, user, mid)))


SPEAKER_ACTIONS = ('grant', 'finish', 'withdraw', 'limit', 'pause', 'resume', 'extend')


@contract(body=c.SpeakerAction, ok=c.SpeakerRequest, choices={'action': SPEAKER_ACTIONS})
async def speaker_action(request: Request) -> JSONResponse:
    """grant (chair/secretary; optional time_limit seconds), finish, withdraw; speaking time (chair/secretary):
    limit {time_limit} (null: the meeting's default), pause, resume, extend {seconds}."""
    mid, rid, action = path_id(request), path_id(request, "request_id"), request.path_params["action"]
    body = await json_body(request) if action in ("grant", "limit", "extend") else {}

    async def go(uow: UnitOfWork, user: User) -> Any:
        req = await uow.session.get(schema.SpeakerRequest, rid)
        if req is None or req.meeting_id != mid:
            raise NotFound("Không tìm thấy lượt phát biểu.")
        limit = _int(body.get("time_limit"), "time_limit", optional=True)
        if action == "grant":
            return await speakers.grant(uow, user, rid, time_limit=limit)
        if action == "limit":
            return await speakers.set_limit(uow, user, rid, limit)
        if action == "extend":
            return await speakers.extend(uow, user, rid, _req_int(body.get("seconds"), "seconds"))
        simple = {"finish": speakers.finish, "withdraw": speakers.withdraw, "pause": speakers.pause,
                  "resume": speakers.resume}
        if action in simple:
            return await simple[action](uow, user, rid)
        raise NotFound("Không có thao tác này.")

    req = await _run(request, go)
    return JSONResponse(req.public())


@contract(body=c.SpeakerOrderBody, ok=c.SpeakerOrder)
async def reorder_speakers(request: Request) -> JSONResponse:
    """New order of the waiting list: request_ids first."""
    body = await json_body(request)
    ids = inputs.ids_value(body.get("request_ids"), "request_ids")
    mid = path_id(request)
    order = await _run(request, lambda uow, user: speakers.reorder_queue(uow, user, mid, ids))
    return ok(order=order)


@contract(method='POST', body=Empty, ok=c.Presenter)
@contract(method='PUT', body=c.PresenterMove, ok=c.Presenter)
@contract(method='DELETE', ok=c.Presenter)
async def presenter_endpoint(request: Request) -> JSONResponse:
    """POST: become the presenter; PUT {version_id, page, zoom, x, y}: move; DELETE: stop presenting."""
    mid = path_id(request)
    if request.method == "POST":
        m = await _run(request, lambda uow, user: presenter.take(uow, user, mid))
    elif request.method == "PUT":
        body = await json_body(request)
        m = await _run(request, lambda uow, user: presenter.move(
            uow, user, mid, version_id=_req_int(body.get("version_id"), "version_id"),
            page=_req_int(body.get("page"), "page"), zoom=body.get("zoom", 1), x=body.get("x", 0),
            y=body.get("y", 0)))
    else:
        m = await _run(request, lambda uow, user: presenter.stop(uow, user, mid))
    return JSONResponse(presenter.presenter_event(m))


# ---------------------------------------------------------------- minutes


@contract(ok=c.MinutesView)
async def get_minutes(request: Request) -> JSONResponse:
    """Minutes per visible item (drafts for chair, secretary, organiser; approved ones for all)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        ctx = await meetings.view_context(uow, user, path_id(request))
        return JSONResponse(await minutes.minutes_view(uow, ctx.access, ctx.meeting))


@describe(responses={"409": {"description": "Đã có người sửa sau bản bạn đang xem: kèm nội dung mới nhất"}})
@contract(body=c.SaveMinutes, ok=c.MinutesRevision)
async def save_minutes(request: Request) -> JSONResponse:
    """Save an item's discussion: {text, revision}; a stale revision gets 409 with the current text."""
    body = await json_body(request)
    mid, iid = path_id(request), path_id(request, "item_id")

    async def go(uow: UnitOfWork, user: User) -> Any:
        await _item_in(uow, mid, iid)
        return await minutes.save_discussion(uow, user, iid, text=str(body.get("text") or ""),
                                             revision=_req_int(body.get("revision", 0), "revision"))

    row = await _run(request, go)
    return ok(revision=row.revision)


@contract(body=c.ConclusionFields, ok=c.Conclusion, status=201)
async def add_conclusion(request: Request) -> JSONResponse:
    """Add a conclusion to an item: {text, assignee_id or assignee_unit_id (an agency or unit), deadline
    (YYYY-MM-DD)}."""
    body = await json_body(request)
    mid, iid = path_id(request), path_id(request, "item_id")

    async def go(uow: UnitOfWork, user: User) -> Any:
        await _item_in(uow, mid, iid)
        return await minutes.add_conclusion(uow, user, iid, text=str(body.get("text") or ""),
                                            assignee_id=_int(body.get("assignee_id"), "assignee_id", optional=True),
                                            assignee_unit_id=_int(body.get("assignee_unit_id"), "assignee_unit_id",
                                                                  optional=True),
                                            deadline=body.get("deadline"))

    c = await _run(request, go)
    return JSONResponse(c.public(), status_code=201)


async def _conclusion_in(uow: UnitOfWork, meeting_id: int, conclusion_id: int) -> None:
    c = await uow.session.get(schema.Conclusion, conclusion_id)
    if c is None or c.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy kết luận.")


@contract(method='PATCH', body=c.ConclusionFields, ok=c.Conclusion)
@contract(method='DELETE', ok=Ok)
async def conclusion(request: Request) -> JSONResponse:
    """PATCH {text, assignee_id | assignee_unit_id, deadline} or DELETE a conclusion (not once it became a task)."""
    mid, cid = path_id(request), path_id(request, "conclusion_id")
    if request.method == "DELETE":
        async def remove(uow: UnitOfWork, user: User) -> None:
            await _conclusion_in(uow, mid, cid)
            await minutes.remove_conclusion(uow, user, cid)

        await _run(request, remove)
        return ok()
    body = await json_body(request)
    changes: dict[str, Any] = {}
    if "text" in body:
        changes["text"] = str(body["text"] or "")
    for key in ("assignee_id", "assignee_unit_id"):
        if key in body:
            changes[key] = _int(body[key], key, optional=True)
    if "deadline" in body:
        changes["deadline"] = body["deadline"]

    async def edit(uow: UnitOfWork, user: User) -> Any:
        await _conclusion_in(uow, mid, cid)
        return await minutes.update_conclusion(uow, user, cid, **changes)

    c = await _run(request, edit)
    return JSONResponse(c.public())


@contract(body=c.ConclusionTask, ok=c.Conclusion, status=201)
async def conclusion_task(request: Request) -> JSONResponse:
    """Turn a conclusion into an e-office task: {assignee_id | assignee_unit_id, deadline (YYYY-MM-DD)};
    without them, the conclusion's own assignee and deadline."""
    body = await json_body(request)
    mid, cid = path_id(request), path_id(request, "conclusion_id")

    async def go(uow: UnitOfWork, user: User) -> Any:
        await _conclusion_in(uow, mid, cid)
        return await minutes.conclusion_to_task(
            uow, user, cid, assignee_id=_int(body.get("assignee_id"), "assignee_id", optional=True),
            assignee_unit_id=_int(body.get("assignee_unit_id"), "assignee_unit_id", optional=True),
            deadline=body.get("deadline"))

    c = await _run(request, go)
    return JSONResponse(c.public(), status_code=201)


@contract(body=c.MinutesReopen, ok=c.MinutesState, choices={'action': ('approve', 'reopen')})
async def minutes_state(request: Request) -> JSONResponse:
    """approve (chair, after the meeting ended; keeps the approved PDF) or reopen {reason}."""
    mid, action = path_id(request), request.path_params["action"]
    blobs = request.app.state.blobs
    if action == "approve":
        m = await _run(request, lambda uow, user: minutes.approve(uow, user, mid, blobs))
    elif action == "reopen":
        reason = str((await json_body(request)).get("reason") or "")
        m = await _run(request, lambda uow, user: minutes.reopen(uow, user, mid, reason))
    else:
        raise NotFound("Không có thao tác này.")
    return ok(state=m.minutes_state)


@contract(ok=Binary(('application/pdf',), 'PDF'))
async def minutes_pdf(request: Request) -> Response:
    """The minutes as PDF (what this user may read: confidential items they cannot see are left out)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        m, data = await minutes.export_pdf(uow, user, path_id(request))
    return Response(data, media_type="application/pdf",
                    headers=file_response.download_headers(f"bien-ban-cuoc-hop-{m.id}.pdf"))


@contract(ok=c.MinutesRecord)
async def minutes_record_view(request: Request) -> JSONResponse:
    """The minutes' number (Số: NN/BB-...) and the chair's and secretary's signatures of the approved PDF."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return JSONResponse(await minutes_record.record_view(uow, user, path_id(request)))


@contract(body=c.MinutesSign, ok=c.MinutesSigned, status=201)
async def minutes_sign(request: Request) -> JSONResponse:
    """The chair or the secretary signs the approved minutes with their own certificate: {passphrase}."""
    body = await json_body(request)
    mid, blobs = path_id(request), request.app.state.blobs
    passphrase = str(body.get("passphrase") or "")
    if not passphrase:
        raise Invalid("Cần nhập mật khẩu chứng thư số.", field="passphrase")
    row = await _run(request, lambda uow, user: minutes_record.sign(uow, user, blobs, mid, passphrase=passphrase))
    async with request.app.state.db.uow(readonly=True) as uow:
        view = await minutes_record.record_view(uow, require_user(request), mid)
    return JSONResponse({"ok": True, "role": row.role, "signatures": len(view["signatures"])}, status_code=201)


@contract(body=c.LinkDossier, ok=c.MinutesRecord)
async def link_dossier(request: Request) -> JSONResponse:
    """Link the meeting to one of your open work dossiers, where the signed minutes are filed: {dossier_id}."""
    body = await json_body(request)
    mid = path_id(request)
    did = _int(body.get("dossier_id"), "dossier_id", optional=True)
    await _run(request, lambda uow, user: meeting_dossier.link(uow, user, mid, did))
    async with request.app.state.db.uow(readonly=True) as uow:
        return JSONResponse(await minutes_record.record_view(uow, require_user(request), mid))


@contract(ok=Binary(('application/pdf',), 'PDF'))
async def minutes_signed_pdf(request: Request) -> Response:
    """The approved minutes carrying the chair's and secretary's digital signatures."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        m, data = await minutes_record.signed_pdf(uow, user, request.app.state.blobs, path_id(request))
    name = (m.minutes_notation or str(m.id)).replace("/", "-")
    return Response(data, media_type="application/pdf",
                    headers=file_response.download_headers(f"bien-ban-{name}-da-ky.pdf"))


@contract(ok=c.Directory)
async def directory(request: Request) -> JSONResponse:
    """Accounts and units to choose from when preparing a meeting."""
    require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        users = (await uow.session.scalars(select(User).where(User.active.is_(True)).order_by(User.full_name))).all()
        units = (await uow.session.scalars(select(Unit).where(open_units()).order_by(Unit.name))).all()
    return JSONResponse({
        "users": [{"id": u.id, "full_name": u.full_name, "title": u.title, "unit_id": u.unit_id} for u in users],
        "units": [{"id": u.id, "name": u.name, "kind": u.kind} for u in units],
    })


# ---------------------------------------------------------------- pages


def _page(request: Request, template: str, **context: Any) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, context)


@login_required()
async def meetings_page(request: Request) -> Response:
    user = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await meetings.list_for_user(uow, user)
    now = dt.datetime.now(dt.UTC)
    live = [m for m in rows if m.state == rules.State.IN_PROGRESS]
    upcoming = sorted((m for m in rows if m.state in (rules.State.INVITED, rules.State.DRAFT)),
                      key=lambda m: m.starts_at)
    past = [m for m in rows if m not in live and m not in upcoming]
    return _page(request, "meetings.html", live=live, upcoming=upcoming, past=past, now=now,
                 labels=rules.STATE_LABELS, quorum_labels=rules.QUORUM_LABELS)


def _json_script(data: Any) -> str:
    """JSON safe inside <script type="application/json"> (no "</script>" break-out)."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026")


def room_screen_url(request: Request, token: str) -> str:
    """The room screen's address (``web.routes.screen``)."""
    return str(request.base_url).rstrip("/") + f"/screen/{token}"


@login_required()
async def meeting_page(request: Request) -> Response:
    snap = await snapshot_with_seq(request, path_id(request))
    m = snap["meeting"]
    conflicts: list[dict[str, Any]] = []
    screen_url = None
    registrations: list[dict[str, Any]] = []
    budgets: dict[str, Any] | None = None
    if snap["me"].get("manager"):  # who prepares the meeting sees the leaders' clashes (issue #21)
        async with request.app.state.db.uow(readonly=True) as uow:
            meeting = await uow.session.get(schema.Meeting, m["id"])
            if meeting is not None:
                conflicts = await calendar.conflicts_for(uow, meeting)
                registrations = await speakers.registrations(uow, request.state.user, meeting.id)
                budgets = await speaking_budgets.delegations_view(uow, request.state.user, meeting.id)
                token = screen.token_of(request.app.state.settings.secret_key, meeting)
                if token and snap["me"].get("controller"):  # the room screen's link (issue #20)
                    screen_url = room_screen_url(request, token)
    recorded: list[dict[str, Any]] = []
    async with request.app.state.db.uow(readonly=True) as uow:
        record = await minutes_record.record_view(uow, require_user(request), m["id"])
        if snap["me"].get("manager"):  # the video recordings in the meeting's archive (issue #19)
            recorded = await recordings.list_files(uow, require_user(request), m["id"])
    for rec in recorded:
        rec["started"] = dt.datetime.fromisoformat(rec["started_at"])
    for sig in record["signatures"]:
        sig["signed_at"] = dt.datetime.fromisoformat(sig["signed_at"])
    return _page(request, "meeting_detail.html", m=m, snap=snap, state_json=_json_script(snap), conflicts=conflicts,
                 record=record, screen_url=screen_url, registrations=registrations, recorded=recorded,
                 budgets=budgets,
                 starts_at=dt.datetime.fromisoformat(m["starts_at"]),
                 ends_at=dt.datetime.fromisoformat(m["ends_at"]) if m["ends_at"] else None,
                 labels=rules.STATE_LABELS, quorum_labels={k.value: v for k, v in rules.QUORUM_LABELS.items()})


@login_required()
async def room_page(request: Request) -> Response:
    snap = await snapshot_with_seq(request, path_id(request))
    return _page(request, "meeting_room.html", m=snap["meeting"], state_json=_json_script(snap))


@describe(responses={"403": {"description": "Chỉ chủ tọa hoặc thư ký"},
                     "409": {"description": "Cuộc họp chưa diễn ra hoặc đã kết thúc"}})
@contract(body=c.ChairMessage, ok=c.ChairMessageSent, status=201)
async def chair_message(request: Request) -> JSONResponse:
    """The chair or secretary sends a short message to every tablet in the room (a banner over the reader)."""
    body = await json_body(request)
    msg = await _run(request, lambda uow, user: chair_messages.send(uow, user, path_id(request), body.get("text")))
    return JSONResponse(msg, status_code=201)


@login_required()
async def minutes_editor_page(request: Request) -> Response:
    """The secretary's full-width minutes editor: every item's discussion and conclusions (issue 22)."""
    snap = await snapshot_with_seq(request, path_id(request))
    return _page(request, "meeting_minutes_editor.html", m=snap["meeting"], state_json=_json_script(snap))


@login_required()
async def reader_page(request: Request) -> Response:
    user = request.state.user
    mid, vid = path_id(request), path_id(request, "version_id")
    async with request.app.state.db.uow(readonly=True) as uow:
        ctx, doc, version = await documents.version_context(uow, user, vid)
        if doc.meeting_id != mid:
            raise NotFound("Không tìm thấy tài liệu.")
        meta = documents.version_meta(doc, version)
        # whose marks are the presenter's, and whether the reader may take others' shared marks off the page
        meta["room"] = {"presenterId": ctx.meeting.presenter_id, "controller": ctx.access.controller}
    return _page(request, "meeting_reader.html", m=ctx.meeting.public(), meta=meta, meta_json=_json_script(meta))


M = "/api/meetings/{meeting_id:int}"
routes = [
    Route("/meetings", meetings_page, name="meetings"),
    Route("/meetings/{meeting_id:int}", meeting_page, name="meeting"),
    Route("/meetings/{meeting_id:int}/room", room_page, name="meeting_room"),
    Route("/meetings/{meeting_id:int}/minutes", minutes_editor_page, name="meeting_minutes_editor"),
    Route("/meetings/{meeting_id:int}/documents/{version_id:int}", reader_page, name="meeting_reader"),
    Route("/api/meetings", list_meetings, methods=["GET"]),
    Route("/api/meetings", create_meeting, methods=["POST"]),
    Route("/api/meetings/directory", directory, methods=["GET"]),
    Route(M, get_meeting, methods=["GET"]),
    Route(M, update_meeting, methods=["PATCH"]),
    Route(M + "/participants", add_participant, methods=["POST"]),
    Route(M + "/participants/{participant_id:int}", remove_participant, methods=["DELETE"]),
    Route(M + "/participants/{participant_id:int}/response", respond, methods=["POST"]),
    Route(M + "/participants/{participant_id:int}/substitute-approval", substitute_approval, methods=["POST"]),
    Route(M + "/participants/{participant_id:int}/delegation", seat_delegation, methods=["POST"]),
    Route(M + "/participants/{participant_id:int}/{action:str}", check_in, methods=["POST"]),
    Route(M + "/delegations", delegations, methods=["GET", "POST"]),
    Route(M + "/delegations/{delegation_id:int}", delegation, methods=["PATCH"]),
    Route(M + "/sites", add_site, methods=["POST"]),
    Route(M + "/items", add_item, methods=["POST"]),
    Route(M + "/items/order", reorder_items, methods=["POST"]),
    Route(M + "/items/{item_id:int}", item, methods=["PATCH", "DELETE"]),
    Route(M + "/items/{item_id:int}/minutes", save_minutes, methods=["PUT"]),
    Route(M + "/items/{item_id:int}/conclusions", add_conclusion, methods=["POST"]),
    Route(M + "/current", set_current, methods=["POST"]),
    Route(M + "/documents", add_document, methods=["POST"]),
    Route(M + "/documents/{document_id:int}/versions", add_version, methods=["POST"]),
    Route(M + "/versions/{version_id:int}", version_meta, methods=["GET"]),
    Route(M + "/versions/{version_id:int}/file", download_version, methods=["GET"]),
    Route(M + "/versions/{version_id:int}/search", search_document, methods=["GET"]),
    Route(M + "/versions/{version_id:int}/pages/{page:int}", page_image, methods=["GET"]),
    Route(M + "/versions/{version_id:int}/pages/{page:int}/words", page_words, methods=["GET"]),
    Route(M + "/speakers", request_floor, methods=["POST"]),
    Route(M + "/speakers/order", reorder_speakers, methods=["POST"]),
    Route(M + "/speakers/registrations", speaker_registrations, methods=["GET"]),
    Route(M + "/speakers/questions", speaker_questions, methods=["GET"]),
    Route(M + "/speakers/{request_id:int}/{action:str}", speaker_action, methods=["POST"]),
    Route(M + "/messages", chair_message, methods=["POST"]),
    Route(M + "/presenter", presenter_endpoint, methods=["POST", "PUT", "DELETE"]),
    Route(M + "/minutes", get_minutes, methods=["GET"]),
    Route(M + "/minutes.pdf", minutes_pdf, methods=["GET"]),
    Route(M + "/minutes/record", minutes_record_view, methods=["GET"]),
    Route(M + "/minutes/sign", minutes_sign, methods=["POST"]),
    Route(M + "/dossier", link_dossier, methods=["POST"]),
    Route(M + "/minutes/signed.pdf", minutes_signed_pdf, methods=["GET"]),
    Route(M + "/minutes/{action:str}", minutes_state, methods=["POST"]),
    Route(M + "/conclusions/{conclusion_id:int}", conclusion, methods=["PATCH", "DELETE"]),
    Route(M + "/conclusions/{conclusion_id:int}/task", conclusion_task, methods=["POST"]),
    Route(M + "/{action:str}", transition, methods=["POST"]),  # last: its path would shadow the ones above
]
