"""The room screen (#20, ``meetings.screen``): the wall display opened by a signed link, and its link's API.

``/screen/{token}``               the page (no login: the token is the credential; read only, no CSRF)
``/screen/{token}/state``         what it shows, as JSON (``meetings.screen.view``)
``/screen/{token}/versions/{id}`` the presented document's meta, and ``/pages/{n}`` its pages: only the version
                                  the presenter shows now, never one under a confidential item
``/ws/screen/{token}``            live: a ``snapshot`` frame (the whole state) after every change in the room,
                                  ``ping`` frames as ``/ws``; closed with 4401 once the link is reset or off
``/api/meetings/{id}/screen``     GET the link, POST make a new one (the old one stops), DELETE turn it off:
                                  chair or secretary

The socket follows the room topic through the hub like a tablet, as a principal that is not a user
(``meetings.screen.viewer``) with its own access check: the link still valid. ``screen.reset`` is an
access event, so every process's hub checks again and the screen's socket is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from eoffice.org import User
from meetings import documents, screen, topics
from meetings.schema import Document, DocumentVersion
from storage.db import UnitOfWork
from storage.errors import AppError, NotFound
from web import inputs, ws_base
from web.contract import Empty, contract
from web.contract import meetings as c
from web.hub import Connection, Hub, encode
from web.routes.meetings import _blob_response, _json_script, _run, path_id, room_screen_url

log = logging.getLogger(__name__)

DEBOUNCE = 0.05  # seconds: a burst of room events (votes streaming in) costs one state
NO_STORE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}


def setup(app: Any) -> None:
    app.state.hub.add_access_events(screen.RESET_EVENT)


def _key(request: Request | WebSocket) -> str:
    return str(request.app.state.settings.secret_key)


async def _state(request: Request | WebSocket, token: str) -> dict[str, Any]:
    async with request.app.state.db.uow(readonly=True) as uow:
        m = await screen.meeting_for(uow, _key(request), token)
        return await screen.view(uow, m)


# ---------------------------------------------------------------- the page and what it reads


async def screen_page(request: Request) -> Response:
    token = request.path_params["token"]
    state = await _state(request, token)
    return request.app.state.templates.TemplateResponse(
        request, "room_screen.html", {"s": state, "token": token, "state_json": _json_script(state)}, headers=NO_STORE
    )


async def screen_state(request: Request) -> JSONResponse:
    return JSONResponse(await _state(request, request.path_params["token"]), headers=NO_STORE)


async def _presented(request: Request) -> DocumentVersion:
    async with request.app.state.db.uow(readonly=True) as uow:
        m = await screen.meeting_for(uow, _key(request), request.path_params["token"])
        version = await screen.presented_version(uow, m)
    if version is None or version.id != path_id(request, "version_id"):
        raise NotFound("Tài liệu này không được trình chiếu.")
    return version


async def screen_version(request: Request) -> JSONResponse:
    version = await _presented(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        doc = await uow.session.get(Document, version.document_id)
        assert doc is not None
        return JSONResponse(documents.version_meta(doc, version), headers=NO_STORE)


async def screen_page_image(request: Request) -> Response:
    version = await _presented(request)
    width = inputs.int_value(request.query_params.get("w") or 1600, "w") or 1600
    state = request.app.state
    key, ctype = await documents.page_image(
        state.db, state.blobs, version, path_id(request, "page"), width, request.query_params.get("fmt", "png")
    )
    return _blob_response(request, key, ctype, **{"Referrer-Policy": "no-referrer"})


# ---------------------------------------------------------------- live


async def screen_ws(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    settings = websocket.app.state.settings
    token = websocket.path_params["token"]
    key = _key(websocket)
    await websocket.accept()
    try:
        async with websocket.app.state.db.uow(readonly=True) as uow:
            meeting_id = (await screen.meeting_for(uow, key, token)).id
    except AppError:
        await ws_base.close(websocket, ws_base.CLOSE_UNAUTHENTICATED, "screen link not valid")
        return

    async def still_valid(uow: UnitOfWork, _user: User, topic: str) -> bool:
        try:
            return topic == topics.room(meeting_id) and (await screen.meeting_for(uow, key, token)).id == meeting_id
        except AppError:
            return False

    conn: Connection = hub.connect(screen.viewer(meeting_id))
    conn.authorizer = still_valid
    session = ws_base.Session(websocket, float(settings.ws_heartbeat_seconds), f"ws: room screen of {meeting_id}")
    changed = asyncio.Event()
    changed.set()  # the first state goes out at once

    async def receiver() -> None:
        while await session.receive_text() is not None:
            pass  # pongs: hearing anything is the point; the screen sends no commands

    async def events() -> None:
        try:
            await hub.subscribe(conn, topics.room(meeting_id))
        except AppError:  # reset between the handshake and here
            conn.close(ws_base.CLOSE_UNAUTHENTICATED, "screen link reset")
            return
        while True:
            message = json.loads(await conn.queue.get())
            if message.get("type") == "error" and message.get("revoked"):
                conn.close(ws_base.CLOSE_UNAUTHENTICATED, "screen link reset")
            elif message.get("type") == "ping":
                await websocket.send_text(encode(message))
            elif message.get("topic"):
                changed.set()

    async def sender() -> None:
        seq = 0
        while True:
            await changed.wait()
            await asyncio.sleep(DEBOUNCE)
            changed.clear()
            try:
                state = await _state(websocket, token)
            except AppError:  # reset or turned off: the screen loses access at once
                conn.close(ws_base.CLOSE_UNAUTHENTICATED, "screen link reset")
                return
            seq += 1
            await websocket.send_text(
                encode({"type": "snapshot", "topic": f"screen:{meeting_id}", "seq": seq, "data": state})
            )

    async def heartbeat() -> None:
        async def offer() -> None:
            conn.send({"type": "ping"})

        await session.heartbeat(offer)
        conn.close(ws_base.CLOSE_HEARTBEAT, "heartbeat timeout")

    try:
        await session.run(receiver, events, sender, heartbeat, conn.closed.wait)
    finally:
        hub.disconnect(conn)
    await session.finish(conn.close_code if conn.closed.is_set() else 1011, conn.close_reason)


# ---------------------------------------------------------------- the link (chair, secretary)


@contract(method="GET", ok=c.ScreenLink)
@contract(method="POST", body=Empty, ok=c.ScreenLink, status=201)
@contract(method="DELETE", ok=None, status=204)
async def api_screen(request: Request) -> Response:
    """GET: the room screen's link (null when none); POST: a new link, the old one and the screens open with it
    stop at once; DELETE: turn the link off. Chair or secretary."""
    mid, key = path_id(request), _key(request)
    if request.method == "DELETE":
        await _run(request, lambda uow, user: screen.revoke(uow, user, mid))
        return Response(status_code=204)
    if request.method == "POST":
        token = await _run(request, lambda uow, user: screen.reset(uow, user, mid, key))
        return JSONResponse({"url": room_screen_url(request, token)}, status_code=201)
    found = await _run(request, lambda uow, user: screen.link(uow, user, mid, key))
    return JSONResponse({"url": room_screen_url(request, found) if found else None})


T = "/screen/{token:str}"
routes = [
    Route(T, screen_page, methods=["GET"], name="room_screen"),
    Route(T + "/state", screen_state, methods=["GET"]),
    Route(T + "/versions/{version_id:int}", screen_version, methods=["GET"]),
    Route(T + "/versions/{version_id:int}/pages/{page:int}", screen_page_image, methods=["GET"]),
    WebSocketRoute("/ws/screen/{token:str}", screen_ws),
    Route("/api/meetings/{meeting_id:int}/screen", api_screen, methods=["GET", "POST", "DELETE"]),
]
