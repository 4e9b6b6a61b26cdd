"""``/ws``: the live-update WebSocket (JSON text frames).

Client to server::

    {"op": "subscribe", "topic": "meeting:1", "since": 12}   # since: optional, the last seq the client has
    {"op": "unsubscribe", "topic": "meeting:1"}
    {"op": "ping"}  /  {"op": "pong"}
    {"op": "vote", "id": "c1", "poll_id": 7, "choice": "yes", "participant_id": 12}   # a command (Hub.add_command)
    {"op": "annotation.create", "id": "c2", ...}   # also annotation.update, annotation.delete (web.routes.annotations)

Server to client::

    {"type": "subscribed", "topic": "meeting:1", "seq": 15}   # then, with since, events 13..15 exactly once,
    {"type": "snapshot", "topic": ..., "seq": ..., "data": {...}}  # or this when too far behind
    {"topic": "meeting:1", "seq": 16, "type": "vote.cast", "data": {...}, "at": "..."}   # live events
    {"type": "ping"}   # every settings.ws_heartbeat_seconds; answer with anything
    {"type": "pong"}   # answer to a client ping
    {"type": "error", "message": "...", "op": ..., "topic": ...}   # bad input; the connection stays open
    {"type": "reply", "op": "vote", "id": "c1", "ok": true, "data": {...}}   # a command's answer, once it is done
    {"type": "reply", "op": "vote", "id": "c1", "ok": false, "status": 409, "code": "conflict", "message": "..."}

Close codes: 4401 not authenticated, 4403 cross-site origin refused, 4008 too slow (the
client's queue overflowed; reconnect and resume), 4009 out of sync (resume: a snapshot will
follow), 4002 heartbeat timeout (about three beats without hearing from the client), 1001
server shutting down.

Authentication happens with the handshake (session cookie, ``Authorization: Bearer`` or
``?token=`` for API clients). A refused client is *accepted and then closed with 4401*
rather than refused during the handshake: a browser sees a refused handshake only as a
generic 1006 failure and would keep reconnecting, while 4401 lets ``live.js`` stop and send
the user to the login page.

Cookies ride along on cross-origin WebSocket handshakes (same-site pages, such as another
subdomain of the agency, included), so a cookie-authenticated handshake must come from our
own origin; API clients with a token are not subject to that check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from storage.errors import AppError
from web.auth import bearer_token, credential, websocket_user
from web.errors import HTTP_MESSAGES, as_app_error
from web.hub import Connection, Hub, encode
from web.inputs import parse_json_object
from web.ws_protocol import EXTENSION

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_ORIGIN = 4403
CLOSE_HEARTBEAT = 4002
MISSED_BEATS = 3
MAX_FRAME = 256 * 1024  # commands are small; the largest, an annotation, holds up to 10,000 ink points
CLOSE_TIMEOUT = 2.0


def _origin_ok(websocket: WebSocket) -> bool:
    if bearer_token(websocket) or websocket.query_params.get("token"):
        return True  # API client: no ambient credentials to abuse
    origin = websocket.headers.get("origin")
    if not origin:
        return True  # not a browser
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception), anyio.move_on_after(CLOSE_TIMEOUT):  # never hang on a stalled peer
            await websocket.close(code, reason)


async def handle(hub: Hub, conn: Connection, text: str) -> None:
    """One client frame: commands, or an error frame (the connection stays open)."""

    def error(message: str, **extra: Any) -> None:
        conn.send({"type": "error", "message": message, **extra})

    if len(text) > MAX_FRAME:
        return error("Thông điệp quá lớn.")
    try:
        command = parse_json_object(text, max_bytes=MAX_FRAME, invalid="Thông điệp không phải JSON hợp lệ.",
                                    not_object="Thông điệp phải là một đối tượng JSON.")
    except AppError as exc:
        return error(exc.message)
    op = command.get("op")
    if op == "ping":
        conn.send({"type": "pong"})
    elif op == "pong":
        pass  # receiving it was the point
    elif op in ("subscribe", "unsubscribe"):
        topic = command.get("topic")
        if not isinstance(topic, str) or not topic:
            return error("Thiếu tên kênh (topic).", op=op)
        if op == "unsubscribe":
            hub.unsubscribe(conn, topic)
            return None
        try:
            await hub.subscribe(conn, topic, command.get("since"))
        except AppError as exc:
            error(exc.message, op=op, topic=topic)
    elif isinstance(op, str) and (run := hub.command(op)) is not None:
        rid = command.get("id")
        if isinstance(rid, bool) or not isinstance(rid, str | int) or len(str(rid)) > 100:
            return error("Thiếu mã yêu cầu (id) hoặc mã không hợp lệ.", op=op)
        try:  # answered after the command is done (a vote: after its commit); frames of this socket wait
            conn.send({"type": "reply", "op": op, "id": rid, "ok": True, "data": await run(conn, command)})
        except Exception as exc:
            known = exc if isinstance(exc, AppError) else as_app_error(exc)
            if known is None:
                log.exception("WebSocket command %s failed", op)
                known = AppError(HTTP_MESSAGES[500])
                known.status, known.code = 500, "server_error"
            conn.send({"type": "reply", "op": op, "id": rid, "ok": False, "status": known.status,
                       "code": known.code, "message": known.message, **known.details})
    else:
        error(f"Thao tác không được hỗ trợ: «{str(op)[:50]}».", op=op if isinstance(op, str) else None)
    return None


async def ws_endpoint(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    settings = websocket.app.state.settings
    origin_ok = _origin_ok(websocket)
    user = await websocket_user(websocket) if origin_ok else None
    await websocket.accept()
    if not origin_ok:
        await _close(websocket, CLOSE_ORIGIN, "origin not allowed")
        return
    if user is None:
        await _close(websocket, CLOSE_UNAUTHENTICATED, "not authenticated")
        return

    conn = hub.connect(user)
    conn.credential = credential(websocket, settings)
    conn.writer = websocket.scope.get("extensions", {}).get(EXTENSION)  # direct frame writes (web.ws_protocol)
    interval = float(settings.ws_heartbeat_seconds)
    last_heard = time.monotonic()
    client_left = False

    async def receiver() -> None:
        nonlocal last_heard, client_left
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                client_left = True
                return
            last_heard = time.monotonic()
            text = message.get("text")
            if text is None:
                try:
                    text = (message.get("bytes") or b"").decode()
                except UnicodeDecodeError:
                    text = ""
            await handle(hub, conn, text)

    async def sender() -> None:
        while True:
            text = await conn.queue.get()
            await websocket.send_text(text)

    async def heartbeat() -> None:
        ping = encode({"type": "ping"})
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - last_heard > MISSED_BEATS * interval:
                conn.close(CLOSE_HEARTBEAT, "heartbeat timeout")
                return
            conn.offer(ping)

    async def guarded(fn: Callable[[], Awaitable[Any]]) -> None:
        """Whichever part ends first (client left, send failed, hub closed us) ends them all."""
        try:
            await fn()
        except Exception as exc:
            if not isinstance(exc, WebSocketDisconnect | OSError):
                log.exception("ws: connection of user %s failed", user.id)
        finally:
            group.cancel_scope.cancel()

    try:
        # An anyio task group, not bare asyncio tasks: it cooperates with the server's (and the
        # test client's) cancel scopes, so a cancelled endpoint never leaks a half-closed child.
        async with anyio.create_task_group() as group:
            parts = [receiver, heartbeat, conn.closed.wait]
            if conn.writer is None:  # frames go through ASGI: one sender drains the queue
                parts.append(sender)
            for fn in parts:
                group.start_soon(guarded, fn)
    finally:
        hub.disconnect(conn)
    if not client_left:
        await _close(websocket, conn.close_code if conn.closed.is_set() else 1011, conn.close_reason)


routes = [WebSocketRoute("/ws", ws_endpoint)]
