"""Internal WebSockets between SFU processes of one deployment (the cascade, ``meetings.sfu.cascade``).

``/internal/sfu/meetings/{id}/relay?node=B``: process B's leg into this process's room of meeting ``id``; B joins
the room as the relay participant ``relay:B`` and the usual SFU signalling (``meetings.sfu.signalling``) runs over
this socket. ``/internal/sfu/stats``: one JSON message, this process's media statistics and legs, then close.

Both need the cascade's shared secret in the ``X-Eoffice-Sfu-Secret`` header (close 4403 without it, and when the
cascade is not configured). Browsers cannot set that header; keep ``/internal/`` off the public proxy anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import anyio
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from meetings.sfu.cascade import RELAY_PREFIX, SECRET_HEADER
from web.routes.media import MAX_FRAME, registry

log = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
QUEUE_LIMIT = 4096


async def _authorised(websocket: WebSocket) -> bool:
    cascade = registry(websocket.app).cascade
    if cascade is None or not cascade.authorised(websocket.headers.get(SECRET_HEADER)):
        await websocket.close(CLOSE_FORBIDDEN)
        return False
    await websocket.accept()
    return True


async def relay_endpoint(websocket: WebSocket) -> None:
    if not await _authorised(websocket):
        return
    meeting_id = int(websocket.path_params["meeting_id"])
    node = websocket.query_params.get("node", "")[:200]
    if not node:
        await websocket.close(CLOSE_FORBIDDEN)
        return
    reg = registry(websocket.app)
    outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        if outbox.qsize() >= QUEUE_LIMIT:
            outbox.put_nowait(None)  # the other process does not read: drop the leg, it reconnects
            return
        outbox.put_nowait(message)

    async def sender() -> None:
        while (message := await outbox.get()) is not None:
            await websocket.send_text(json.dumps(message, ensure_ascii=False))

    room = reg.acquire(meeting_id)
    pid = RELAY_PREFIX + node
    participant = None
    writer = asyncio.ensure_future(sender())
    try:
        participant = await room.sfu.join(pid, send, name=f"Máy chủ {node}", relay=True)
        log.info("SFU cascade: leg to %s for meeting %s open", node, meeting_id)
        while not writer.done():
            text = await websocket.receive_text()
            if len(text) > MAX_FRAME:
                continue
            message = json.loads(text)
            if isinstance(message, dict) and room.sfu.participants.get(pid) is participant:
                await participant.handle(message)
    except (WebSocketDisconnect, ValueError, RuntimeError):
        pass
    finally:
        writer.cancel()
        with anyio.CancelScope(shield=True):
            try:
                if participant is not None and room.sfu.participants.get(pid) is participant:
                    await room.sfu.leave(pid)
            finally:
                await reg.release(room)
        with contextlib.suppress(Exception):
            await websocket.close()


async def stats_endpoint(websocket: WebSocket) -> None:
    if not await _authorised(websocket):
        return
    reg = registry(websocket.app)
    rooms = {str(mid): room.sfu.stats() for mid, room in reg.rooms.items()}
    cascade = reg.cascade.stats() if reg.cascade is not None else {}
    await websocket.send_text(json.dumps({"media": reg.stats(), "rooms": rooms, "cascade": cascade},
                                         ensure_ascii=False))
    await websocket.close()


routes = [
    WebSocketRoute("/internal/sfu/meetings/{meeting_id:int}/relay", relay_endpoint),
    WebSocketRoute("/internal/sfu/stats", stats_endpoint),
]
