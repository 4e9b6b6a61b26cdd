"""The one place where errors become responses: JSON for the API, a page for people."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, StatementError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from eoffice import audit
from storage.errors import AppError, Conflict, Denied, Invalid, NotFound
from web.inputs import ID_MAX

log = logging.getLogger(__name__)

HTTP_MESSAGES = {
    400: "Yêu cầu không hợp lệ.",
    401: "Vui lòng đăng nhập.",
    403: "Bạn không có quyền thực hiện thao tác này.",
    404: "Không tìm thấy trang hoặc dữ liệu yêu cầu.",
    405: "Phương thức không được hỗ trợ.",
    413: "Dữ liệu gửi lên vượt quá giới hạn cho phép.",
    429: "Quá nhiều yêu cầu, vui lòng thử lại sau.",
    500: "Đã có lỗi trong hệ thống. Sự cố đã được ghi lại.",
    503: "Dịch vụ tạm thời không sẵn sàng, vui lòng thử lại sau.",
}


RETRY_AFTER_UNAVAILABLE = 5  # seconds, on every 503
PLAIN_JSON_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})  # machines' endpoints: never a page


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/") or request.url.path in PLAIN_JSON_PATHS:
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(request: Request, status: int, code: str, message: str, **details: object) -> Response:
    headers = {}
    if status == 429 and "retry_after" in details:
        headers["Retry-After"] = str(details["retry_after"])
    if status == 503:  # a service behind us is down (database, S3): worth trying again soon
        headers["Retry-After"] = str(details.get("retry_after", RETRY_AFTER_UNAVAILABLE))
    if wants_json(request):
        return JSONResponse({"error": code, "message": message, **details}, status_code=status, headers=headers)
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status, headers=headers
    )


async def app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    if isinstance(exc, Denied):
        await record_denied(request, exc)
    return error_response(request, exc.status, exc.code, exc.message, **exc.details)


async def record_denied(request: Request, exc: Denied) -> None:
    """Audit a refused attempt (the service's own transaction rolled back with the error)."""
    action, object_type, object_id, data = exc.audit
    try:
        async with request.app.state.db.uow() as uow:
            await audit.record(uow, getattr(request.state, "user", None), action, object_type, object_id,
                               ip=request.client.host if request.client else "", **data)
            await uow.commit()
    except Exception:  # the refusal itself must still be answered
        log.exception("could not audit a refused access to %s %s", object_type, object_id)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # Starlette's own details are English ("Missing boundary in multipart."): people get the Vietnamese one.
    message = exc.detail if isinstance(exc.detail, str) and not exc.detail.isascii() else None
    if message is None and exc.status_code == 400 and "multipart" in str(exc.detail).lower():
        message = "Dữ liệu biểu mẫu (multipart) không hợp lệ."
    return error_response(request, exc.status_code, "http_error",
                          message or HTTP_MESSAGES.get(exc.status_code, "Lỗi."))


def as_app_error(exc: BaseException, path_params: dict[str, Any] | None = None) -> AppError | None:
    """What a client's bad input that slipped past the parsers is (a 4xx), or None for a real fault.

    Inputs are checked where they are read (web/inputs.py); this is the net under that: a number
    the database cannot hold, a string it cannot store or that is longer than its column, nesting
    deeper than Python recurses. An id in the URL that cannot exist is simply not found. A unique or
    foreign key the database refused is two requests that raced (the same member answering twice at once
    where SQLite has no row lock to serialise them): a 409 to try again, never a 500.
    """
    if isinstance(exc, IntegrityError):
        return Conflict("Dữ liệu vừa được một yêu cầu khác ghi cùng lúc; vui lòng tải lại trang và thử lại.")
    data_error = isinstance(exc, DataError)
    cause = exc.orig if isinstance(exc, StatementError) else None
    while cause is not None and not data_error:  # asyncpg's DataError sits under the adapter's generic Error
        data_error = isinstance(cause, OverflowError | UnicodeEncodeError) or (
            "DataError" in {c.__name__ for c in type(cause).__mro__})
        cause = cause.__cause__
    if not (data_error or isinstance(exc, OverflowError | RecursionError | UnicodeEncodeError)):
        return None
    if any(isinstance(v, int) and not 0 < v <= ID_MAX for v in (path_params or {}).values()):
        return NotFound("Không tìm thấy dữ liệu yêu cầu.")
    if isinstance(exc, RecursionError):
        return Invalid("Dữ liệu gửi lên lồng nhau quá sâu.")
    return Invalid("Dữ liệu gửi lên không hợp lệ hoặc vượt quá giới hạn cho phép (số quá lớn, chuỗi quá dài).")


async def server_error(request: Request, exc: Exception) -> Response:
    known = as_app_error(exc, request.path_params)
    if known is not None:
        log.info("bad input on %s %s: %r", request.method, request.url.path, exc)
        return error_response(request, known.status, known.code, known.message)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "server_error", HTTP_MESSAGES[500])


EXCEPTION_HANDLERS = {AppError: app_error, HTTPException: http_error, Exception: server_error}
