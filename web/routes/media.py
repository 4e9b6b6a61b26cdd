"""Video in the meeting room: the media signalling WebSocket and the chair's video controls.

``/ws/meetings/{id}/media`` (JSON text frames), one per participant's page, feeding the SFU
(``meetings.sfu``) of that meeting in this process:

Server to client::

    {"type": "welcome", "you": "site:3", "name": ..., "controller": bool, "ice_servers": [...]}   first
    {"type": "state", "roster": [{id, name, user_id, site_id, muted{audio,video}, imposed{...}}],
     "floor": id | null, "active_speaker": id | null}              on join, leave, mute, floor
    SFU signalling (see meetings.sfu.signalling): {"pc": "pub", "type": "answer"} / {"pc": "sub", "type": "offer",
     "tracks": [{mid, kind, participant, name, muted}]}, {"type": "tracks"}, {"type": "active-speaker"},
     {"type": "muted"}, {"type": "error", "reason"}
    {"type": "ping"}, {"type": "pong"}; {"type": "replaced"} before close 4409

Client to server: the SFU signalling messages (offer on ``pub``, answer on ``sub``, trickled candidates),
``{"type": "mute", "kind": "audio" | "video", "muted": bool, "participant": id?}`` (own by default; another's
only for the chair and secretary), ``{"type": "ping"}`` / ``{"type": "pong"}``, ``{"type": "restart"}`` (ICE
restart after a network change: the server answers ``{"type": "restarted", "ice_servers": [...]}`` with fresh TURN
credentials, drops the session's peer connections and offers a new ``sub``; the client makes new ones and offers
``pub`` again. Same participant, place in the roster, mutes and floor; see ``SfuRoom.restart``).

Close codes: 4401 not logged in, 4403 not in this meeting (or cross-site origin), 4409 meeting not open for video
or replaced by a newer session of the same site/person, 4002 heartbeat timeout, 1001 server shutting down. The
handshake, the heartbeat and the close are shared with ``/ws`` (``web.ws_base``). The
client starts a new session after any other close; when only the media path failed (ICE) and the socket is fine,
it sends ``restart`` instead.

HTTP (chair and secretary; CSRF and auth as everywhere): ``POST /api/meetings/{id}/video/mute``
{participant, kind, muted}; ``POST /api/meetings/{id}/video/floor`` {participant | null} (also opens that site's
microphone; it is sent ``{"type": "floor"}``, its cue); ``POST /api/meetings/{id}/video/mute-all`` (every connected
microphone but the floor holder's and your own, as the chair's mutes);
``GET /api/meetings/{id}/video`` the ICE servers and the current state.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from eoffice.org import User
from meetings import video
from meetings.meetings import view_context
from meetings.sfu.registry import MediaRegistry, MediaRoom, Member
from storage.errors import AppError, Conflict, Invalid
from web import media_recording, ws_base
from web.auth import require_user
from web.contract import Empty, Ok, contract
from web.contract import meetings as c
from web.inputs import json_body, parse_json_object, path_id
from web.openapi import describe
from web.ws_base import CLOSE_HEARTBEAT

log = logging.getLogger(__name__)

MAX_FRAME = 256 * 1024  # an SDP offer with a few dozen m-lines
QUEUE_LIMIT = 512
RESTART_INTERVAL = 2.0  # seconds between two ICE restarts of one session
CLOSE_FORBIDDEN, CLOSE_CONFLICT = 4403, 4409  # 4401, 4002 and the handshake: web.ws_base


def registry(app: Starlette) -> MediaRegistry:
    """The process's media rooms, created on first use (ICE settings from the environment)."""
    reg = getattr(app.state, "media", None)
    if reg is None:
        reg = app.state.media = MediaRegistry.from_env(broker_url=app.state.settings.broker_url)
    return reg


async def shutdown(app: Starlette) -> None:
    """App lifespan: close every media room (peer connections, forwarding tasks)."""
    reg = getattr(app.state, "media", None)
    if reg is not None:
        await reg.close()


async def apply_mute(app: Starlette, user: User, meeting_id: int, participant: str, kind: str, muted: bool) -> None:
    """Service (permission, audit, event; whether the chair imposed the current mute comes from the meeting's
    record, not this process's memory), then the media room carries it out."""
    async with app.state.db.uow() as uow:
        by_chair = await video.set_muted(uow, user, meeting_id, participant=participant, kind=kind, muted=muted)
        await uow.commit()
    room = registry(app).get(meeting_id)
    if room is not None:
        room.set_muted(participant, kind, muted, imposed=by_chair)
        await room.broadcast(room.state())


async def _media_state(app: Starlette,
                       meeting_id: int) -> tuple[set[tuple[str, str]], set[tuple[str, str]], str | None]:
    async with app.state.db.uow(readonly=True) as uow:
        state = await video.media_state(uow, meeting_id)
    return state.muted, state.imposed, state.floor


async def media_endpoint(websocket: WebSocket) -> None:
    app = websocket.app
    user = await ws_base.accept(websocket)  # 4403 cross-site origin, 4401 not logged in
    if user is None:
        return
    try:
        meeting_id = path_id(websocket, "meeting_id")  # an id that cannot exist: not found, as over HTTP
        async with app.state.db.uow(readonly=True) as uow:
            me = await video.identity(uow, user, meeting_id)
    except AppError as exc:
        await websocket.send_json({"type": "error", "reason": exc.message, "fatal": True})
        await ws_base.close(websocket, CLOSE_CONFLICT if isinstance(exc, Conflict) else CLOSE_FORBIDDEN, exc.code)
        return

    reg = registry(app)
    outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    overflow = False

    async def send(message: dict[str, Any]) -> None:
        nonlocal overflow
        if outbox.qsize() >= QUEUE_LIMIT:
            overflow = True
            outbox.put_nowait(None)
            return
        outbox.put_nowait(message)

    member = Member(me.media_id, me.name, me.user_id, me.site_id, send, me.controller)
    session = ws_base.Session(websocket, float(app.state.settings.ws_heartbeat_seconds),
                              f"media ws: meeting {meeting_id}, {me.media_id}")
    close_code: int | None = None
    room: MediaRoom = reg.acquire(meeting_id)
    last_restart = [-RESTART_INTERVAL]

    async def receiver() -> None:
        while (text := await session.receive_text(errors="replace")) is not None:
            if len(text) > MAX_FRAME:
                await send({"type": "error", "reason": "Thông điệp quá lớn."})
                continue
            try:
                message = parse_json_object(text, max_bytes=MAX_FRAME, invalid="Thông điệp không phải JSON hợp lệ.",
                                            not_object="Thông điệp không phải JSON hợp lệ.")
            except AppError as exc:
                await send({"type": "error", "reason": exc.message})
                continue
            await handle(message)

    async def handle(message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ping":
            await send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "mute":
            try:
                await apply_mute(app, user, meeting_id, str(message.get("participant") or me.media_id),
                                 str(message.get("kind")), bool(message.get("muted", True)))
            except AppError as exc:
                await send({"type": "error", "reason": exc.message, "op": "mute"})
        elif kind == "restart":  # ICE restart: new peer connections in this session (meetings.sfu.room)
            if room.members.get(me.media_id) is not member:  # replaced by a newer session
                return
            now = time.monotonic()
            if now - last_restart[0] < RESTART_INTERVAL:  # two new peer connections each: not a flood of them
                await send({"type": "error", "reason": "Đang kết nối lại video, vui lòng chờ.", "op": "restart"})
                return
            last_restart[0] = now
            await send({"type": "restarted", "ice_servers": reg.client_ice_servers(me.media_id)})
            await room.sfu.restart(me.media_id)
        else:
            participant = room.sfu.participants.get(me.media_id)
            if participant is None:  # replaced by a newer session
                return
            await participant.handle(message)

    async def sender() -> None:
        nonlocal close_code
        while True:
            message = await outbox.get()
            if message is None:
                close_code = 1008 if overflow else close_code
                return
            await websocket.send_text(json.dumps(message, ensure_ascii=False))
            if message.get("type") == "replaced":
                close_code = CLOSE_CONFLICT
                return

    async def heartbeat() -> None:
        nonlocal close_code

        async def ping() -> None:
            await send({"type": "ping"})

        await session.heartbeat(ping)
        close_code = CLOSE_HEARTBEAT

    try:
        await send({"type": "welcome", "you": me.media_id, "name": me.name, "controller": me.controller,
                    "ice_servers": reg.client_ice_servers(me.media_id), "meeting_id": meeting_id})
        await room.restore(functools.partial(_media_state, app, meeting_id))
        await media_recording.resume(app, room)  # the meeting is being recorded: this room records too
        await room.join(member)
        if reg.cascade is not None:  # this process has a site in the meeting: legs to and from the others
            await reg.cascade.attach(room)
        await session.run(receiver, sender, heartbeat)
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await room.leave(member)
                if reg.cascade is not None and not room.members:
                    await reg.cascade.detach(room)
            finally:
                await reg.release(room)
    await session.finish(close_code or 1001)


# ---------------------------------------------------------------- chair controls over HTTP


def _participant(body: dict[str, Any]) -> str | None:
    value = body.get("participant")
    if value is None:
        return None
    video.parse_media_id(value)
    return str(value)


@describe(responses={"403": {"description": "Chỉ chủ trì, thư ký, hoặc chính điểm cầu (tự tắt)"}})
@contract(body=c.Mute, ok=Ok)
async def mute_endpoint(request: Request) -> JSONResponse:
    """Mute or unmute a site's (or a person's) microphone or camera in the video conference."""
    user = require_user(request)
    mid = path_id(request, "meeting_id")
    body = await json_body(request)
    participant = _participant(body)
    if participant is None:
        raise Invalid("Cần chọn điểm cầu.", field="participant")
    await apply_mute(request.app, user, mid, participant, str(body.get("kind", "")), bool(body.get("muted", True)))
    return JSONResponse({"ok": True})


@describe(responses={"403": {"description": "Chỉ chủ trì hoặc thư ký"}, "409": {"description": "Chưa họp"}})
@contract(body=c.Floor, ok=c.FloorGiven)
async def floor_endpoint(request: Request) -> JSONResponse:
    """Give the floor: this site's video becomes the main view (and its turn in the speakers' queue is granted)."""
    user = require_user(request)
    mid = path_id(request, "meeting_id")
    body = await json_body(request)
    participant = _participant(body)
    room = registry(request.app).get(mid)
    name = ""
    if room is not None and participant in room.members:
        name = room.members[participant].name
    async with request.app.state.db.uow() as uow:
        granted, unmuted = await video.give_floor(uow, user, mid, participant=participant, name=name)
        await uow.commit()
    room = registry(request.app).get(mid)
    if room is not None:
        room.floor = participant
        if participant is not None:  # the floor holder is heard: its microphone opens
            room.set_muted(participant, "audio", False, imposed=False)
            await room.send_to(participant, {"type": "floor", "participant": participant})
        await room.broadcast(room.state())
    return JSONResponse({"ok": True, "participant": participant, "granted_request_id": granted,
                         "unmuted": unmuted})


@describe(responses={"403": {"description": "Chỉ chủ trì hoặc thư ký"}})
@contract(body=Empty, ok=c.MutedAll)
async def mute_all_endpoint(request: Request) -> JSONResponse:
    """Mute every connected site's microphone at once (the chair's mute: sites cannot lift it), except the floor
    holder's and your own."""
    user = require_user(request)
    mid = path_id(request, "meeting_id")
    room = registry(request.app).get(mid)
    connected = list(room.members) if room is not None else []
    async with request.app.state.db.uow() as uow:
        muted = await video.mute_all(uow, user, mid, participants=connected)
        await uow.commit()
    room = registry(request.app).get(mid)
    if room is not None:
        for participant in muted:
            room.set_muted(participant, "audio", True, imposed=True)
        await room.broadcast(room.state())
    return JSONResponse({"ok": True, "muted": muted})


@describe(responses={"403": {"description": "Chỉ chủ trì hoặc thư ký"}})
@contract(ok=c.LinkStats)
async def links_endpoint(request: Request) -> JSONResponse:
    """Each connected site's link quality as the media server sees it: loss (%), round trip (ms), jitter, the
    bitrate it is sent and the estimate of what it can take (kbit/s), how many videos and audios it gets."""
    user = require_user(request)
    mid = path_id(request, "meeting_id")
    async with request.app.state.db.uow(readonly=True) as uow:
        await video.require_link_view(uow, user, mid)
    room = registry(request.app).get(mid)
    return JSONResponse({"sites": room.link_stats() if room is not None else []})


@contract(ok=c.VideoState)
async def state_endpoint(request: Request) -> JSONResponse:
    """ICE servers for the browser and who is connected to the meeting's video."""
    user = require_user(request)
    mid = path_id(request, "meeting_id")
    async with request.app.state.db.uow(readonly=True) as uow:
        await view_context(uow, user, mid)
    reg = registry(request.app)
    room = reg.get(mid)
    state = room.state() if room is not None else {"roster": [], "floor": None, "active_speaker": None,
                                                     "recording": False}
    state.pop("type", None)
    return JSONResponse({"ice_servers": reg.client_ice_servers(f"user:{user.id}"), **state})


routes = [
    WebSocketRoute("/ws/meetings/{meeting_id:int}/media", media_endpoint),
    Route("/api/meetings/{meeting_id:int}/video", state_endpoint, methods=["GET"]),
    Route("/api/meetings/{meeting_id:int}/video/mute", mute_endpoint, methods=["POST"]),
    Route("/api/meetings/{meeting_id:int}/video/floor", floor_endpoint, methods=["POST"]),
    Route("/api/meetings/{meeting_id:int}/video/mute-all", mute_all_endpoint, methods=["POST"]),
    Route("/api/meetings/{meeting_id:int}/video/links", links_endpoint, methods=["GET"]),
]
