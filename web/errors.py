"""The one place where errors become responses: JSON for the API, a page for people."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from storage.errors import AppError, Denied

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


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/") or request.url.path == "/healthz":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(request: Request, status: int, code: str, message: str, **details: object) -> Response:
    headers = {}
    if status == 429 and "retry_after" in details:
        headers["Retry-After"] = str(details["retry_after"])
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
    from eoffice import audit

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
    message = exc.detail if exc.detail and exc.detail not in ("Not Found", "Method Not Allowed") else None
    return error_response(request, exc.status_code, "http_error",
                          message or HTTP_MESSAGES.get(exc.status_code, "Lỗi."))


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "server_error", HTTP_MESSAGES[500])


EXCEPTION_HANDLERS = {AppError: app_error, HTTPException: http_error, Exception: server_error}
