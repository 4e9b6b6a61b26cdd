"""Request ids and the log format.

Every HTTP request and WebSocket gets an id: the client's (or the reverse proxy's) ``X-Request-ID`` when it is a
sane token (1-128 characters of ``A-Z a-z 0-9 . _ : -``; anything else is replaced, so a header cannot inject
text into the logs), else a new random one. It is returned in the ``X-Request-ID`` response header and every log
record written while the request is handled carries it as ``record.request_id`` ("-" outside requests).

``configure_logging("json")`` (``EOFFICE_LOG_FORMAT=json``, used by ``eoffice serve``) writes one JSON object per
line (``ts``, ``level``, ``logger``, ``message``, ``request_id``, ``exc`` when there is a traceback) for log
collectors; ``"text"`` writes the same fields as a readable line.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_installed = False


def install_record_factory() -> None:
    """Every log record gets ``request_id`` (once per process, whatever handler formats it)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id.get()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if VALID.match(text):
                return text
            break
    return uuid.uuid4().hex


class RequestId:
    """ASGI middleware: sets the id for the request's context and returns it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        install_record_factory()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id.set(rid)
        header = (HEADER.lower().encode(), rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = [h for h in message.get("headers", []) if h[0].lower() != header[0]]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        await self.app(scope, receive, send_with_id)
        # not in a finally: an exception goes on to the outermost error handler (web.errors.server_error), whose
        # log line must still carry the id; each request runs in a task of its own, so nothing leaks to the next
        request_id.reset(token)


_SECRET_QUERY = re.compile(r"([?&](?:token|access_token|csrf)=)[^&\s\"']+", re.IGNORECASE)


def redact(line: str) -> str:
    """Secrets carried in a URL's query (the WebSocket's ``?token=`` bearer) never reach the log."""
    return _SECRET_QUERY.sub(r"\1***", line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``; records made before the factory was installed (a worker's supervisor) get "-"."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return redact(super().format(record))


def logging_config(fmt: str, level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server (uvicorn's loggers included): ``json`` or ``text``."""
    if fmt not in ("json", "text"):
        raise ValueError(f"EOFFICE_LOG_FORMAT must be json or text, not {fmt!r}")
    formatter = {"()": JsonFormatter if fmt == "json" else TextFormatter}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True, "level": level.upper()}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
