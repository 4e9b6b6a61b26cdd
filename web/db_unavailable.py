"""A database that went away answers 503, never a traceback; an idempotent read gets one more try.

PostgreSQL restarts, fails over, or an administrator ends backends (``pg_terminate_backend``): connections of
the pool die under requests. The pool pings a connection when it checks it out (``storage.db``) and drops every
older connection after a disconnect, so a GET/HEAD that failed that way is run once more, on a fresh connection,
as long as nothing of its answer has been sent. When that fails too, or the request may have changed something
(POST, PUT, ...), or the database does not take connections at all, the answer is 503 with ``Retry-After`` and a
Vietnamese message (JSON for the API, the error page for people), and one warning line is logged, not a
traceback. Only failures that mean "the database is unreachable" are handled here; every other error keeps its
own handling (``web.errors``).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.outages import is_database_unavailable
from web.errors import error_response

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGE = "Cơ sở dữ liệu tạm thời không truy cập được. Vui lòng thử lại sau ít giây."
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


def unavailable_response(scope: Scope) -> Any:
    return error_response(Request(scope), 503, "database_unavailable", MESSAGE, retry_after=RETRY_AFTER_SECONDS)


class DatabaseUnavailable:
    """ASGI middleware: one retry for idempotent reads, then 503 (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        received: list[Message] = []

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def receive_recording() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received.append(message)
            return message

        attempts = 2 if scope["method"] in IDEMPOTENT else 1
        for attempt in range(attempts):
            replaying = _replay(list(received), receive_recording)
            try:
                await self.app(scope, replaying if attempt else receive_recording, send_tracking)
                return
            except Exception as error:
                if started or not is_database_unavailable(error):
                    raise
                reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                if attempt + 1 < attempts:
                    log.warning("database connection lost during %s %s (%s); trying once more on a fresh "
                                "connection", scope["method"], scope["path"], reason)
                    continue
                log.warning("database unavailable: %s %s answered 503 (%s)", scope["method"], scope["path"], reason)
                await unavailable_response(scope)(scope, receive, send)
                return


def _replay(messages: list[Message], then: Receive) -> Receive:
    """The request's body as the first attempt read it, then whatever comes next."""

    async def receive() -> Message:
        return messages.pop(0) if messages else await then()

    return receive
