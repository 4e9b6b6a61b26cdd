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
``?token=`` for API clients); a refused client is accepted and then closed with 4401 (so
``live.js`` stops and sends the user to the login page), a cross-site cookie handshake with
4403. The handshake, the heartbeat and the close are shared with the media socket
(``web.ws_base``).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from storage.errors import AppError
from web import ws_base
from web.auth import credential
from web.errors import HTTP_MESSAGES, as_app_error
from web.hub import Connection, Hub, encode
from web.inputs import parse_json_object
from web.ws_base import CLOSE_HEARTBEAT
from web.ws_protocol import EXTENSION

log = logging.getLogger(__name__)

MAX_FRAME = 256 * 1024  # commands are small; the largest, an annotation, holds up to 10,000 ink points


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
    user = await ws_base.accept(websocket)
    if user is None:
        return

    conn = hub.connect(user)
    conn.credential = credential(websocket, settings)
    conn.writer = websocket.scope.get("extensions", {}).get(EXTENSION)  # direct frame writes (web.ws_protocol)
    session = ws_base.Session(websocket, float(settings.ws_heartbeat_seconds), f"ws: connection of user {user.id}")

    async def receiver() -> None:
        while (text := await session.receive_text()) is not None:
            await handle(hub, conn, text)

    async def sender() -> None:
        while True:
            text = await conn.queue.get()
            await websocket.send_text(text)

    async def heartbeat() -> None:
        ping = encode({"type": "ping"})

        async def offer() -> None:
            conn.offer(ping)

        await session.heartbeat(offer)
        conn.close(CLOSE_HEARTBEAT, "heartbeat timeout")

    try:
        parts = [receiver, heartbeat, conn.closed.wait]
        if conn.writer is None:  # frames go through ASGI: one sender drains the queue
            parts.append(sender)
        await session.run(*parts)
    finally:
        hub.disconnect(conn)
    await session.finish(conn.close_code if conn.closed.is_set() else 1011, conn.close_reason)


routes = [WebSocketRoute("/ws", ws_endpoint)]
