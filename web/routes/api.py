"""JSON API basics: who am I, file uploads, the OpenAPI description (tokens: ``web.routes.account``)."""

from __future__ import annotations

from importlib.metadata import version

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eoffice import upload_limits, uploads
from storage.errors import TooLarge
from web.auth import require_user
from web.contract import Binary, contract
from web.contract import accounts as c
from web.openapi import build_openapi, describe
from web.uploads import receive_file


@contract(ok=c.User)
async def me(request: Request) -> JSONResponse:
    """The logged-in user."""
    user = require_user(request)
    return JSONResponse(user.public())


@describe(
    parameters=[{"name": "X-Filename", "in": "header", "required": True, "schema": {"type": "string"},
                 "description": "Tên tệp (mã hóa URL)"}],
    responses={"201": {"description": "Đã lưu"},
               "413": {"description": "Vượt giới hạn kích thước, hoặc hạn mức tệp chưa đính kèm"},
               "503": {"description": "Kho lưu trữ tệp không phản hồi"}},
)
@contract(body=Binary(('application/octet-stream', '*/*')), ok=c.Upload, status=201)
async def upload_file(request: Request) -> JSONResponse:
    """Upload a file (the raw body), to attach it to a document afterwards.

    The answer's `id` is what document and meeting endpoints take as an attachment.
    """
    user = require_user(request)
    state = request.app.state
    settings = state.settings
    limit, room = settings.upload_limit, None
    if settings.upload_quota > 0:  # what the user has uploaded and not attached counts (eoffice.upload_limits)
        room = await upload_limits.room_for(state.db, user.id, settings.upload_quota, settings.upload_keep_hours)
        limit = min(limit, room)
    try:
        info, filename = await receive_file(request, state.blobs, limit)
    except TooLarge:
        if room is None or room >= settings.upload_limit:
            raise
        used = settings.upload_quota - room
        raise TooLarge(upload_limits.quota_message(settings.upload_quota, used), reason="quota",
                       quota=settings.upload_quota, used=used) from None
    async with state.db.uow() as uow:
        upload = await uploads.record_upload(uow, user, info, filename)
        await uow.commit()
    return JSONResponse(upload.public(), status_code=201)


@contract(ok=c.OpenApiDocument)
async def openapi(request: Request) -> JSONResponse:
    """This description."""
    return JSONResponse(build_openapi(list(request.app.routes), version("eoffice")))


routes = [
    Route("/api/me", me),
    Route("/api/files", upload_file, methods=["POST"]),
    Route("/api/openapi.json", openapi),
]
