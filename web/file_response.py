"""The one way a stored file (an upload, an attachment, an edXML file, a draft, a meeting document) is served.

- The type is decided here from the bytes (``web.file_types``), never from the declared type; only raster images
  are shown ``inline``, everything else (PDF included: see web.file_types) is a download (``attachment``).
- Every file response carries ``X-Content-Type-Options: nosniff`` and a CSP with ``sandbox``: even a file the
  browser would render as a document gets an opaque origin, no script and no access to the app's cookies.
- With ``EOFFICE_FILES_ORIGIN`` set (production), the app's own origin never serves a file: after its access check
  it answers 303 to the same path on the files origin with a short-lived token signed for that user, that path and
  that blob (``?t=``). Requests on the files origin carry no cookie (host-only cookies never reach another host):
  ``FilesOriginGuard`` lets through only GET/HEAD with a valid token for the requested path, and the route checks
  the user's access again (``requester``) before serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from eoffice.org import User
from storage.errors import NotFound
from storage.settings import Settings
from web import file_types
from web.auth import require_user

FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
FILE_TOKEN_SECONDS = 120  # the redirect is followed at once; a copied link stops working soon after
GRANT = "file_grant"
NOT_FOUND = "Không tìm thấy tệp."


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="eoffice.files-origin")


def files_host(settings: Settings) -> str | None:
    """``host[:port]`` of the separate files origin, lower case, or None when files are served by the app."""
    return (urlsplit(settings.files_origin).netloc.lower() or None) if settings.files_origin else None


def request_host(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value.decode("latin-1").lower()
    return ""


def file_token(settings: Settings, user_id: int, path: str, blob_key: str) -> str:
    return _serializer(settings).dumps({"u": user_id, "p": path, "b": blob_key})


def read_token(settings: Settings, token: str, path: str) -> dict[str, Any] | None:
    """The grant in ``token`` if its signature holds, it is younger than FILE_TOKEN_SECONDS and names ``path``."""
    try:
        grant = _serializer(settings).loads(token, max_age=FILE_TOKEN_SECONDS)
    except BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(grant, dict) or grant.get("p") != path or not isinstance(grant.get("u"), int):
        return None
    return grant


async def requester(request: Request) -> User:
    """Who asks for a file: the signed-in user on the app's origin, or the (still active) user a files-origin
    token was signed for. The caller then checks that user's access to the file as usual."""
    grant = request.scope.get("state", {}).get(GRANT)
    if grant is None:
        return require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        user = await uow.session.scalar(select(User).where(User.id == grant["u"], User.active.is_(True)))
    if user is None:
        raise NotFound(NOT_FOUND)
    return user


async def serve_blob(request: Request, user: User, blob_key: str | None, filename: str | None, *,
                     fallback_name: str = "tep", cache: str = "private, no-store",
                     etag: str | None = None) -> Response:
    """The blob ``blob_key`` as a file answer for ``user`` (whose access the caller has checked)."""
    settings: Settings = request.app.state.settings
    if not blob_key:
        raise NotFound(NOT_FOUND)
    host = files_host(settings)
    grant = request.scope.get("state", {}).get(GRANT)
    if host is not None and grant is None:
        token = file_token(settings, user.id, request.url.path, blob_key)
        target = f"{settings.files_origin.rstrip('/')}{request.url.path}?{urlencode({'t': token})}"
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    if grant is not None and grant.get("b") != blob_key:
        raise NotFound(NOT_FOUND)  # the token was for another version of this file
    if etag is not None and request.headers.get("if-none-match") == etag:  # content-addressed: still the same
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache, **SANDBOX_HEADERS})
    blobs = request.app.state.blobs
    info = await blobs.stat(blob_key)  # NotFound here is a 404, before the response starts
    name = file_types.clean_filename(filename or "", fallback_name)
    head = await blobs.read_range(blob_key, 0, file_types.HEAD_BYTES)
    tail = b""
    if head.startswith(file_types.ZIP_MAGIC):
        tail = await blobs.read_range(blob_key, max(0, info.size - file_types.TAIL_BYTES), file_types.TAIL_BYTES)
    served = file_types.sniff(head, name, tail)
    headers = file_headers(served, name, fallback_name)
    headers["Cache-Control"] = cache
    if etag is not None:
        headers["ETag"] = etag
    headers["Content-Length"] = str(info.size)
    return StreamingResponse(await primed(blobs.open(blob_key)), media_type=served.content_type, headers=headers)


async def primed(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``stream`` with its first chunk already read: a store that fails to open the file (S3 gone since the
    ``stat``) raises here, before the response starts, and becomes a 503 instead of a 200 with a cut body."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = b""

    async def chunks() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in stream:
            yield chunk

    return chunks()


def file_headers(served: file_types.Served, filename: str, fallback_name: str = "tep") -> dict[str, str]:
    """Content-Type, Content-Disposition and the sandboxing headers of a file answer."""
    return {
        "Content-Type": served.content_type,
        "Content-Disposition": file_types.content_disposition("inline" if served.inline else "attachment",
                                                              filename, fallback_name),
        **SANDBOX_HEADERS,
    }


SANDBOX_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": FILE_CSP}


def download_headers(filename: str, fallback_name: str = "tep") -> dict[str, str]:
    """Headers for a file the server generated itself (an export, minutes): a download, sandboxed all the same."""
    return {"Content-Disposition": file_types.content_disposition("attachment", filename, fallback_name),
            "Cache-Control": "private, no-store", **SANDBOX_HEADERS}


class FilesOriginGuard:
    """On the files origin's host, only a GET/HEAD carrying a valid file token for its own path gets through
    (the grant is left in ``scope["state"]`` for ``requester``); everything else there is a 404, WebSockets are
    refused. Requests for the app's own host pass untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.host = files_host(settings)
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.host is None or scope["type"] not in ("http", "websocket") or request_host(scope) != self.host:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope)
        grant = None
        if scope["method"] in ("GET", "HEAD"):
            grant = read_token(self.settings, request.query_params.get("t", ""), scope["path"])
        if grant is None:
            response = PlainTextResponse("Không tìm thấy tệp hoặc liên kết đã hết hạn.", status_code=404,
                                         headers=SANDBOX_HEADERS)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[GRANT] = grant
        await self.app(scope, receive, send)
