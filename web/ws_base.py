"""What every WebSocket endpoint of the app shares: the handshake, the receive loop, the heartbeat,
running the connection's parts together and the final close.

Used by ``/ws`` (``web.routes.ws``, the hub's live updates and commands) and by
``/ws/meetings/{id}/media`` (``web.routes.media``, video signalling); each adds its own messages.

Handshake (``accept``): authentication with the handshake (session cookie, ``Authorization: Bearer``
or ``?token=``). A refused client is *accepted and then closed* (4403 cross-site origin, 4401 not
authenticated) rather than refused during the handshake: a browser sees a refused handshake only as
a generic 1006 failure and would keep reconnecting, while 4401 lets the page stop and send the user
to the login page. Cookies ride along on cross-origin WebSocket handshakes (same-site pages, such as
another subdomain of the agency, included), so a cookie-authenticated handshake must come from our
own origin; API clients with a token are not subject to that check.

Heartbeat: a ping every ``settings.ws_heartbeat_seconds``; about three beats without hearing from the
client (any frame counts) ends the connection with 4002. A session ended while the socket is open
(logout, password change, deactivation, revocation) is closed with 4401 by the hub
(``web.hub.CLOSE_REVOKED``).
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
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from eoffice.org import User
from web.auth import bearer_token, websocket_user

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_ORIGIN = 4403
CLOSE_HEARTBEAT = 4002
MISSED_BEATS = 3
CLOSE_TIMEOUT = 2.0
REASON_LIMIT = 120  # a close frame's reason is at most 123 bytes

__all__ = ["CLOSE_HEARTBEAT", "CLOSE_ORIGIN", "CLOSE_UNAUTHENTICATED", "MISSED_BEATS", "Session", "accept", "close",
           "origin_ok"]


def origin_ok(websocket: WebSocket) -> bool:
    if bearer_token(websocket) or websocket.query_params.get("token"):
        return True  # API client: no ambient credentials to abuse
    origin = websocket.headers.get("origin")
    if not origin:
        return True  # not a browser
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


async def close(websocket: WebSocket, code: int, reason: str = "") -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception), anyio.move_on_after(CLOSE_TIMEOUT):  # never hang on a stalled peer
            await websocket.close(code, reason[:REASON_LIMIT])


async def accept(websocket: WebSocket) -> User | None:
    """The handshake: the user, or None when the socket was accepted and closed (4403, 4401)."""
    allowed = origin_ok(websocket)
    user = await websocket_user(websocket) if allowed else None
    await websocket.accept()
    if not allowed:
        await close(websocket, CLOSE_ORIGIN, "origin not allowed")
        return None
    if user is None:
        await close(websocket, CLOSE_UNAUTHENTICATED, "not authenticated")
        return None
    return user


class Session:
    """One accepted connection: frames in, the heartbeat, its parts run together, the close."""

    def __init__(self, websocket: WebSocket, interval: float, label: str) -> None:
        self.websocket = websocket
        self.interval = interval
        self.label = label  # for the log
        self.last_heard = time.monotonic()
        self.client_left = False

    async def receive_text(self, errors: str = "strict") -> str | None:
        """The next frame as text (a binary frame decoded as UTF-8: with ``errors="strict"`` an undecodable one is
        ""); None when the client has left."""
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            self.client_left = True
            return None
        self.last_heard = time.monotonic()
        text = message.get("text")
        if text is None:
            try:
                text = (message.get("bytes") or b"").decode("utf-8", errors)
            except UnicodeDecodeError:
                text = ""
        return str(text)

    async def heartbeat(self, ping: Callable[[], Awaitable[None]]) -> None:
        """Ping every interval; returns when the client has been silent for about ``MISSED_BEATS`` beats (the
        caller closes with ``CLOSE_HEARTBEAT``)."""
        while True:
            await asyncio.sleep(self.interval)
            if time.monotonic() - self.last_heard > MISSED_BEATS * self.interval:
                return
            await ping()

    async def run(self, *parts: Callable[[], Awaitable[Any]]) -> None:
        """Run the parts together; whichever ends first (client left, send failed, heartbeat, closed by the
        server) ends them all. An anyio task group, not bare asyncio tasks: it cooperates with the server's (and
        the test client's) cancel scopes, so a cancelled endpoint never leaks a half-closed child."""

        async def guarded(fn: Callable[[], Awaitable[Any]]) -> None:
            try:
                await fn()
            except Exception as exc:
                if not isinstance(exc, WebSocketDisconnect | OSError):
                    log.exception("%s failed", self.label)
            finally:
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for fn in parts:
                group.start_soon(guarded, fn)

    async def finish(self, code: int, reason: str = "") -> None:
        """Close with ``code`` unless the client already left."""
        if not self.client_left:
            await close(self.websocket, code, reason)
