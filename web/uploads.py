"""Streaming a request body into the blob store, within the upload limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote

from starlette.requests import Request

from storage.blobs import BlobInfo, BlobStore
from storage.errors import Invalid, TooLarge
from web.inputs import filename_value


def limit_message(limit: int) -> str:
    return f"Tệp vượt quá giới hạn {limit / (1024 * 1024):.0f} MB cho phép."


async def receive_file(request: Request, store: BlobStore, limit: int) -> tuple[BlobInfo, str]:
    """Store the raw request body (the file itself, not multipart) and return it with its filename.

    The client sends the file as the body with ``Content-Type`` and the name in
    ``X-Filename`` (URL-encoded) or ``?filename=``. A declared length over the limit is refused
    before reading; an undeclared one is cut off as soon as it passes the limit.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit_message(limit), limit=limit)
    filename = unquote(request.headers.get("x-filename", "")) or request.query_params.get("filename", "")
    if not filename:
        raise Invalid("Thiếu tên tệp (X-Filename).")
    filename = filename_value(filename)
    content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip()

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    try:
        info = await store.put(chunks(), limit=limit, content_type=content_type)
    except TooLarge as exc:
        raise TooLarge(limit_message(limit), limit=limit) from exc
    if info.size == 0:
        raise Invalid("Tệp rỗng.")
    return info, filename
