"""Polls: the JSON API (/api/polls, /api/meetings/{id}/polls, voting rights) and the voting page.

Handlers translate HTTP to ``meetings.voting`` services, one unit of work each, and answer only
after the commit: a 201 for a vote means it is stored. After a commit they poke the per-process
``PollRunner`` (coalesced progress events, countdowns). Paths avoid ``/api/meetings/{id}/<word>``
for POST: the meetings module's life-cycle route claims that shape.

A tablet casts over the meeting WebSocket it already holds (the ``vote`` command: ``{"op": "vote",
"id": <client id>, "poll_id", "choice", "participant_id"?}``, answered by a ``reply`` frame with
that id after the commit) or with ``POST /api/polls/{id}/votes``; both go through ``submit_vote``
(the same checks, the same group commit). A WebSocket vote skips the per-request session lookup
and HTTP; the session (or API token) the socket was opened with is checked in the cast's own
transaction instead, so a vote after a logout is refused as an HTTP one would be.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eoffice.org import User
from meetings import schema, voting
from meetings.meetings import view_context
from meetings.polls_live import CastBatcher, PollRunner
from storage.db import UnitOfWork, utcnow
from storage.errors import Invalid, NotFound
from web import file_response, inputs
from web.auth import login_required, require_user
from web.contract import Binary, Ok, contract
from web.contract import voting as c
from web.hub import Connection
from web.inputs import json_body, path_id
from web.openapi import describe
from web.services import workers

log = logging.getLogger(__name__)


def runner(app: Starlette) -> PollRunner:
    return workers(app).poll_runner


def batcher(app: Starlette) -> CastBatcher:
    return workers(app).cast_batcher


def setup(app: Starlette) -> None:
    """At startup (when the app factory calls it): the WebSocket ``vote`` command. (Closing overdue polls
    and resuming countdowns is the poll runner's start, ``web.services``.)"""
    voting.use_ballot_key(app.state.db, app.state.settings.secret_key)  # secret ballots are sealed while open
    app.state.hub.add_command("vote", functools.partial(ws_vote, app))


async def startup(app: Starlette) -> None:
    """At startup: reclaim the dead row versions of secret ballots (``voting.scrub``, PostgreSQL's VACUUM).
    A close is followed by a scrub, but a process that died between the close's commit and the scrub, or
    a poll closed by the end of its meeting (``meetings.lifecycle.end_meeting``, which cannot vacuum inside its
    transaction), left them to autovacuum. Never stops the start: a failure is logged."""
    try:
        await voting.scrub(app.state.db)
    except Exception:
        log.exception("could not vacuum meeting_poll_ballots at startup")


def _pid(request: Request) -> int:
    return inputs.path_id(request, "poll_id")


def _int(value: Any, field: str, *, optional: bool = True) -> int | None:
    if isinstance(value, str) and value:  # JSON numbers only here, as before
        raise Invalid("Giá trị phải là số nguyên.", field=field)
    return inputs.int_value(value, field, optional=optional)


async def _run(request: Request, fn: Callable[[UnitOfWork, User], Awaitable[Any]]) -> Any:
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        result = await fn(uow, user)
        await uow.commit()
    return result


async def _view(request: Request, poll_id: int) -> dict[str, Any]:
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        return await voting.get_poll(uow, user, poll_id)


# ---------------------------------------------------------------- reading


@contract(ok=c.PollList)
async def list_polls(request: Request) -> JSONResponse:
    """The meeting's polls (drafts only for the chair and secretary), with the server's clock for countdowns."""
    user = require_user(request)
    runner(request.app).ensure()
    mid = path_id(request, "meeting_id")
    async with request.app.state.db.uow() as uow:
        polls = await voting.list_polls(uow, user, mid)
        ctx = await view_context(uow, user, mid)
    return JSONResponse({"polls": polls, "controller": ctx.access.controller, "server_time": utcnow().isoformat()})


@contract(ok=c.PollView)
async def get_poll(request: Request) -> JSONResponse:
    """One poll: settings, progress, the result when visible to me, and my rights to vote (``me``)."""
    runner(request.app).ensure()
    return JSONResponse({**await _view(request, _pid(request)), "server_time": utcnow().isoformat()})


@contract(ok=c.Voters)
async def voters(request: Request) -> JSONResponse:
    """Chair and secretary: every right of the poll and whether it has voted (named polls: how, after close: what)."""
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        rows = await voting.voters_view(uow, user, _pid(request))
    return JSONResponse({"voters": rows, "not_voted": [r for r in rows if not r["voted"]]})


@contract(ok=Binary(('text/csv',), 'Kết quả (CSV)'))
async def export_csv(request: Request) -> Response:
    """CSV of a poll's result (and each vote of a named poll for the chair and secretary)."""
    name, body = await _run(request, lambda uow, user: voting.export_csv(uow, user, _pid(request)))
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers=file_response.download_headers(name, "ket-qua.csv"))


# ---------------------------------------------------------------- chair and secretary

CREATE_FIELDS = {"title", "description", "method", "options", "max_choices", "seats", "allow_abstain", "secret",
                 "allow_change", "visibility", "majority", "base", "tie_rule", "quorum_rule", "proxy_cap", "weighted",
                 "duration_seconds", "item_id"}


@describe(responses={"201": {"description": "Đã tạo biểu quyết (dự thảo)"}})
@contract(body=c.PollCreate, ok=c.PollView, status=201)
async def create_poll(request: Request) -> JSONResponse:
    """Create a poll (draft). Body: meeting_id, title, method (yes_no | yes_no_abstain | single | multiple | ranked),
    options (list of labels), seats, max_choices, secret, allow_change, visibility (live | closed | published),
    majority (simple | absolute | two_thirds | three_quarters), base (cast | valid | present | entitled),
    tie_rule ("" | chair: on a tie the side the chair voted for wins; named yes/no polls only),
    quorum_rule, proxy_cap, weighted, duration_seconds, item_id."""
    body = await json_body(request)
    mid = _int(body.get("meeting_id"), "meeting_id", optional=False)
    assert mid is not None  # optional=False refuses a missing id
    unknown = set(body) - CREATE_FIELDS - {"meeting_id"}
    if unknown:
        raise Invalid(f"Trường không được hỗ trợ: {', '.join(sorted(unknown))}.")
    kw = {k: v for k, v in body.items() if k in CREATE_FIELDS}
    for key in ("max_choices", "seats", "proxy_cap", "duration_seconds", "item_id"):
        if key in kw:
            kw[key] = _int(kw[key], key)
    for key in ("title", "method"):  # required by the service: missing, it refuses them in Vietnamese
        kw.setdefault(key, "")
    if kw.get("proxy_cap") is None:
        kw.pop("proxy_cap", None)
    poll = await _run(request, lambda uow, user: voting.create_poll(uow, user, mid, **kw))
    return JSONResponse(voting.public_view(poll, controller=True), status_code=201)


async def _after_state_change(request: Request, poll: schema.Poll) -> JSONResponse:
    r = runner(request.app)
    r.poke(None)
    if poll.secret and poll.state in ("closed", "cancelled"):
        await voting.scrub(request.app.state.db)
    return JSONResponse(await _view(request, poll.id))


@contract(body=c.PollAction, ok=c.PollView, more={201: c.PollView},
          choices={'action': ('open', 'close', 'publish', 'cancel', 'countdown', 'rerun')})
async def poll_action(request: Request) -> JSONResponse:
    """open {duration_seconds} | close | publish | cancel {reason} | countdown {seconds} | rerun {options, title}."""
    action = request.path_params["action"]
    pid = _pid(request)
    body = await json_body(request)
    if action == "open":
        duration = _int(body.get("duration_seconds"), "duration_seconds")
        poll = await _run(request, lambda uow, user: voting.open_poll(uow, user, pid, duration_seconds=duration))
    elif action == "close":
        poll = await _run(request, lambda uow, user: voting.close_poll(uow, user, pid))
    elif action == "publish":
        poll = await _run(request, lambda uow, user: voting.publish_poll(uow, user, pid))
    elif action == "cancel":
        reason = str(body.get("reason") or "")
        poll = await _run(request, lambda uow, user: voting.cancel_poll(uow, user, pid, reason))
    elif action == "countdown":
        seconds = _int(body.get("seconds"), "seconds")
        poll = await _run(request, lambda uow, user: voting.set_countdown(uow, user, pid, seconds))
    elif action == "rerun":
        options = body.get("options")
        if options is not None and not isinstance(options, list):
            raise Invalid("Danh sách phương án không hợp lệ.", field="options")
        title = body.get("title")
        poll = await _run(request, lambda uow, user: voting.rerun_poll(uow, user, pid, options=options,
                                                                       title=str(title) if title else None))
        return JSONResponse(await _view(request, poll.id), status_code=201)
    else:
        raise NotFound("Không có thao tác này.")
    return await _after_state_change(request, poll)


@contract(body=c.RollCall, ok=c.Receipts, status=201)
async def roll_call(request: Request) -> JSONResponse:
    """Chair or secretary record votes by roll call or show of hands: {votes: [{participant_id, choice}]}."""
    body = await json_body(request)
    pid = _pid(request)
    receipts = await _voting_call(request.app, pid, lambda: _run(request, lambda uow, user: voting.record_roll_call(
        uow, user, pid, body.get("votes"))))
    return JSONResponse({"ok": True, "receipts": [r.public() for r in receipts]}, status_code=201)


@describe(responses={"201": {"description": "Đã ghi nhận phiếu giấy (đã lưu), không gắn với người bỏ phiếu"}})
@contract(body=c.PaperBallots, ok=Ok, status=201)
async def paper_ballots(request: Request) -> JSONResponse:
    """Secret poll: chair or secretary record that some seats voted on paper and enter the papers' choices,
    with no link to the seats: {participant_ids: [...], choices: [...]} (as many choices as seats)."""
    body = await json_body(request)
    pid = _pid(request)
    result = await _voting_call(request.app, pid, lambda: _run(
        request, lambda uow, user: voting.record_paper_ballots(uow, user, pid, body.get("participant_ids"),
                                                               body.get("choices"))))
    return JSONResponse({"ok": True, **result}, status_code=201)


# ---------------------------------------------------------------- voting


async def _voting_call(app: Starlette, poll_id: int, work: Callable[[], Awaitable[Any]], poke: bool = True) -> Any:
    """Run a vote-recording ``work`` (it commits), then wake the progress runner (the batcher does it itself)."""
    try:
        result = await work()
    except voting.PollExpired:
        async with app.state.db.uow() as uow:  # close it now rather than at the runner's next tick
            closed = await voting.close_expired(uow)
            await uow.commit()
        if closed:
            runner(app).poke(None)
        raise
    if poke:
        runner(app).poke(poll_id)
    return result


async def submit_vote(app: Starlette, user: User, poll_id: int, body: Any,
                      credential: tuple[str, str] | None = None) -> voting.Receipt:
    """A tablet's vote ``{choice, participant_id?}``, from HTTP or the WebSocket: group-committed with the
    casts arriving now and returned after that commit (``CastBatcher``)."""
    if not isinstance(body, dict) or "choice" not in body:
        raise Invalid("Thiếu lựa chọn (choice).", field="choice")
    seat = _int(body.get("participant_id"), "participant_id")
    request = voting.CastRequest(user, body["choice"], seat, credential)
    return await _voting_call(app, poll_id, lambda: batcher(app).submit(poll_id, request), poke=False)


async def ws_vote(app: Starlette, conn: Connection, command: dict[str, Any]) -> dict[str, Any]:
    """The WebSocket ``vote`` command (see the module docstring); the reply carries the receipt."""
    poll_id = _int(command.get("poll_id"), "poll_id", optional=False)
    assert poll_id is not None
    receipt = await submit_vote(app, conn.user, poll_id, command, conn.credential)
    return {**receipt.public(), "message": "Đã ghi nhận phiếu biểu quyết."}


@describe(responses={"201": {"description": "Phiếu đã được ghi nhận (đã lưu)"},
                     "400": {"description": "Phiếu không hợp lệ"},
                     "403": {"description": "Không có quyền biểu quyết"},
                     "409": {"description": "Đã bỏ phiếu, biểu quyết chưa mở hoặc đã kết thúc"}})
@contract(body=c.Cast, ok=c.VoteReceipt, status=201, more={409: 'Đã bỏ phiếu, biểu quyết chưa mở hoặc đã kết thúc'})
async def cast(request: Request) -> JSONResponse:
    """Cast my vote: {choice, participant_id?}; participant_id picks a proxy I hold. Answered after the commit.
    Tablets may send the same as the WebSocket command ``vote`` instead (same checks, no per-request login lookup)."""
    receipt = await submit_vote(request.app, require_user(request), _pid(request), await json_body(request))
    return JSONResponse({"ok": True, **receipt.public(), "message": "Đã ghi nhận phiếu biểu quyết."},
                        status_code=201)


# ---------------------------------------------------------------- weights and proxies


@contract(ok=c.Rights)
async def rights(request: Request) -> JSONResponse:
    """Vote weights and proxies (ủy quyền) recorded for the meeting."""
    user = require_user(request)
    mid = path_id(request, "meeting_id")
    async with request.app.state.db.uow() as uow:
        rows = await voting.rights_view(uow, user, mid)
    return JSONResponse({"rights": rows})


@contract(body=c.GrantProxy, ok=Ok, status=201)
async def grant_proxy(request: Request) -> JSONResponse:
    """Record a proxy: {grantor_id, holder_id, note} (participant ids); by the grantor, the chair or the secretary."""
    body = await json_body(request)
    mid = path_id(request, "meeting_id")
    grantor = _int(body.get("grantor_id"), "grantor_id", optional=False)
    holder = _int(body.get("holder_id"), "holder_id", optional=False)
    note = str(body.get("note") or "")
    assert grantor is not None and holder is not None
    await _run(request, lambda uow, user: voting.grant_proxy(uow, user, mid, grantor, holder, note))
    return JSONResponse({"ok": True}, status_code=201)


@contract(ok=Ok)
async def revoke_proxy(request: Request) -> JSONResponse:
    """Withdraw a proxy."""
    mid = path_id(request, "meeting_id")
    grantor = path_id(request, "participant_id")
    await _run(request, lambda uow, user: voting.revoke_proxy(uow, user, mid, grantor))
    return JSONResponse({"ok": True})


@contract(body=c.SetWeight, ok=Ok)
async def set_weight(request: Request) -> JSONResponse:
    """Set a member's vote weight (used by polls created as weighted): {weight}."""
    body = await json_body(request)
    mid = path_id(request, "meeting_id")
    participant = path_id(request, "participant_id")
    weight = _int(body.get("weight"), "weight", optional=False)
    assert weight is not None
    await _run(request, lambda uow, user: voting.set_weight(uow, user, mid, participant, weight))
    return JSONResponse({"ok": True})


# ---------------------------------------------------------------- page


@login_required()
async def polls_page(request: Request) -> Response:
    user = request.state.user
    mid = path_id(request, "meeting_id")
    async with request.app.state.db.uow() as uow:
        ctx = await view_context(uow, user, mid)
    return request.app.state.templates.TemplateResponse(
        request, "polls.html", {"m": ctx.meeting.public(), "controller": ctx.access.controller})


P = "/api/polls/{poll_id:int}"
R = "/api/meetings/{meeting_id:int}/voting-rights"
routes = [
    Route("/meetings/{meeting_id:int}/polls", polls_page, name="meeting_polls"),
    Route("/api/meetings/{meeting_id:int}/polls", list_polls, methods=["GET"]),
    Route("/api/polls", create_poll, methods=["POST"]),
    Route(P, get_poll, methods=["GET"]),
    Route(P + "/votes", cast, methods=["POST"]),
    Route(P + "/roll-call", roll_call, methods=["POST"]),
    Route(P + "/paper-ballots", paper_ballots, methods=["POST"]),
    Route(P + "/voters", voters, methods=["GET"]),
    Route(P + "/export.csv", export_csv, methods=["GET"]),
    Route(P + "/{action:str}", poll_action, methods=["POST"]),
    Route(R, rights, methods=["GET"]),
    Route(R + "/proxies", grant_proxy, methods=["POST"]),
    Route(R + "/proxies/{participant_id:int}", revoke_proxy, methods=["DELETE"]),
    Route(R + "/weights/{participant_id:int}", set_weight, methods=["PUT"]),
]
