"""Exchange between installations (#16): the signed inbox and the clerk's JSON lists and actions.

- ``POST /api/exchange/inbox``: a package from a peer installation, signed with its Ed25519 key
  (``eoffice.exchange_sign``; no session, no CSRF: the signature is the authentication). 201 imported,
  200 duplicate (the same DocumentId and kind imported before), 422 refused (quarantined here), 401 bad or old
  signature, 403 unknown peer, 409 replayed request id, 413 too large.
- ``GET /api/exchange/received|refused|sent``: the clerk's lists; ``GET /api/exchange/refused/{id}/file``
  the quarantined package, always as a download.
- ``POST /api/exchange/sent/{id}/resend``, ``POST /api/exchange/refused/{id}/reimport``,
  ``POST /api/documents/{id}/exchange`` (``organ_id``: send an issued document to a peer by hand) (clerk).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eoffice import exchange
from storage.errors import Conflict
from web import file_response
from web.auth import require_user
from web.contract import Binary, Empty, contract
from web.contract import office as c
from web.routes.edxml import _body
from web.routes.office.plumbing import body, change, path_id, text


@contract(body=Binary(("application/xml", "text/xml", "application/octet-stream")), ok=c.ExchangeReceived,
          status=201, more={200: "Gói tin đã nhận trước đó (không nhập lại)", 401: "Chữ ký không hợp lệ hoặc quá hạn",
                            403: "Cơ quan gửi chưa được đăng ký", 409: "Yêu cầu gửi lại (trùng mã yêu cầu)",
                            413: "Vượt quá giới hạn kích thước", 422: "Gói tin bị từ chối (đưa vào khu cách ly)"})
async def inbox(request: Request) -> Response:
    """A package from a peer installation (signed request, see the module docstring)."""
    state = request.app.state
    data = await _body(request, state.settings.exchange_max_bytes)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        async with state.db.uow() as uow:
            peer, env = await exchange.authenticate(uow, request.method, request.url.path, headers, data)
            got = await exchange.receive(uow, state.blobs, peer, env, data)
            await uow.commit()
    except IntegrityError as exc:  # the same request id, arrived twice at once: the other one was taken
        if "exchange_receipts" not in str(exc.orig):
            raise
        raise Conflict("Yêu cầu này đã được nhận (gửi lại cùng mã yêu cầu).", problem="replay") from None
    return JSONResponse(got.public(), status_code=got.status)


@contract(ok=c.Items)
async def received(request: Request) -> Response:
    """Packages that arrived from peer installations, newest first (clerk)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return JSONResponse({"items": await exchange.received(uow, user)})


@contract(ok=c.Items)
async def refused(request: Request) -> Response:
    """Refused (quarantined) packages of your agency with the reason, newest first (clerk)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return JSONResponse({"items": await exchange.refused(uow, user)})


@contract(ok=c.Items)
async def sent(request: Request) -> Response:
    """Packages sent to peers, their delivery attempts and the statuses received back, newest first (clerk)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return JSONResponse({"items": await exchange.sent(uow, user)})


@contract(ok=Binary(("application/xml",), "Gói tin bị cách ly"))
async def refused_file(request: Request) -> Response:
    """The quarantined package as received, always downloaded (never shown in the browser)."""
    user = require_user(request)
    state = request.app.state
    async with state.db.uow(readonly=True) as uow:
        q = await exchange.quarantined_package(uow, user, path_id(request, "id"))
    data = await state.blobs.read(q.blob_key, limit=max(q.size, 1))
    return Response(data, media_type="application/octet-stream",
                    headers=file_response.download_headers(q.filename, "goi-tin-cach-ly.xml"))


@contract(body=c.ExchangeSend, ok=c.ExchangeSent, status=201)
async def send(request: Request) -> Response:
    """Queue an issued outgoing document for a registered peer (``organ_id``) by hand (clerk)."""
    b = await body(request)
    row = await change(request, lambda uow, user: exchange.send_document(uow, user, path_id(request),
                                                                          text(b, "organ_id")))
    return JSONResponse(row.public(), status_code=201)


@contract(body=Empty, ok=c.ExchangeSent)
async def resend(request: Request) -> Response:
    """Deliver a package to its peer again now (clerk)."""
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        row = await exchange.resend(uow, user, path_id(request, "id"))
        await uow.commit()
    return JSONResponse(row.public())


@contract(body=Empty, ok=c.EdxmlResult, more={422: "Gói tin vẫn bị từ chối (cách ly lại)"})
async def reimport(request: Request) -> Response:
    """Import a quarantined package again (clerk); refused again: 422 with the new quarantine id."""
    user = require_user(request)
    state = request.app.state
    async with state.db.uow() as uow:
        result = await exchange.reimport(uow, user, state.blobs, path_id(request, "id"))
        await uow.commit()
    if not result.ok:
        return JSONResponse({"error": "edxml_rejected", **result.public()}, status_code=422)
    return JSONResponse(result.public())


routes: list[BaseRoute] = [
    Route(exchange.INBOX_PATH, inbox, methods=["POST"]),
    Route("/api/exchange/received", received),
    Route("/api/exchange/refused", refused),
    Route("/api/exchange/refused/{id:int}/file", refused_file),
    Route("/api/exchange/refused/{id:int}/reimport", reimport, methods=["POST"]),
    Route("/api/exchange/sent", sent),
    Route("/api/exchange/sent/{id:int}/resend", resend, methods=["POST"]),
    Route("/api/documents/{id:int}/exchange", send, methods=["POST"]),
]
