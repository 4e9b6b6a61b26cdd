"""JSON API of edXML exchange and PDF signatures (issue 9).

- ``POST /api/edxml``: the body is the package (clerk). 201 with the document (or the status event);
  a refused package answers 422 with the Vietnamese message, the problem code and the quarantine id.
- ``GET /api/documents/{id}/edxml``: an issued outgoing document as an edXML package (clerk); its
  PDFs are signed with the agency certificate first when one is configured.
- ``GET /api/documents/{id}/edxml/timeline``: exchange state (recalled, superseded) and status events.
- ``GET /api/edxml/status/{id}``: one of our status events as an edXML Status package.
- ``GET /api/edxml/quarantine``: refused packages of the clerk's agency.
- ``GET /api/edxml/unmatched``: status packages about documents the agency does not have.
- ``GET /api/documents/{id}/signatures``: the signatures of every PDF attachment, checked.
- ``POST /api/documents/{id}/sign``: sign an issued outgoing document now (clerk).

No watched folder: packages come through this endpoint or ``eoffice edxml import``.
"""

from __future__ import annotations

from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eoffice import documents, edxml, signatures
from storage.errors import Invalid, TooLarge
from web import file_response
from web.auth import require_user
from web.contract import Binary, Empty, contract
from web.contract import office as c
from web.inputs import filename_value, path_id
from web.uploads import limit_message


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit_message(limit), limit=limit)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TooLarge(limit_message(limit), limit=limit)
    if not data:
        raise Invalid("Gói tin rỗng.")
    return bytes(data)


def _xml(data: bytes, filename: str) -> Response:
    return Response(data, media_type="application/xml", headers=file_response.download_headers(filename, "goi-tin.xml"))


@contract(body=Binary(('application/xml', 'text/xml', 'application/octet-stream')), ok=c.EdxmlResult, status=201,
          more={422: 'Gói tin bị từ chối (đưa vào khu cách ly: quarantine_id)', 413: 'Vượt quá giới hạn kích thước'})
async def import_package(request: Request) -> Response:
    """Import an edXML package (body) as an incoming document, a recall/update/replacement or a status.

    422 with ``message``, ``problem`` and ``quarantine_id`` when the package is refused."""
    user = require_user(request)
    state = request.app.state
    edxml.require_clerk(user)
    data = await _body(request, state.settings.upload_limit)
    filename = unquote(request.headers.get("x-filename", "")) or request.query_params.get("filename", "")
    filename = filename_value(filename) if filename else ""
    async with state.db.uow() as uow:
        result = await edxml.import_package(uow, user, state.blobs, data, filename)
        await uow.commit()
    if not result.ok:
        return JSONResponse({"error": "edxml_rejected", **result.public()}, status_code=422)
    body = result.public()
    if result.action in ("registered", "replaced") and result.document is not None:
        async with state.db.uow(readonly=True) as uow:  # the signatures as received, for the clerk's first look
            body["signatures"] = await signatures.verify_document(uow, user, state.blobs, result.document.id)
    return JSONResponse(body, status_code=201)


@contract(ok=Binary(('application/xml',), 'Gói tin edXML'))
async def export_package(request: Request) -> Response:
    """An issued outgoing document as an edXML package, its PDFs signed by the agency."""
    user = require_user(request)
    state = request.app.state
    doc_id = path_id(request, "id")
    async with state.db.uow() as uow:
        data = await edxml.export_document(uow, user, state.blobs, doc_id)
        await uow.commit()
    return _xml(data, f"van-ban-{doc_id}.edxml")


@contract(ok=c.EdxmlTimeline)
async def timeline(request: Request) -> Response:
    """edXML exchange state of a document and its status events (01 ... 16)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return JSONResponse(await edxml.timeline(uow, user, path_id(request, "id")))


@contract(ok=Binary(('application/xml',), 'Gói tin trạng thái edXML'))
async def status_package(request: Request) -> Response:
    """One of our status events as an edXML Status package for the sending agency."""
    user = require_user(request)
    event_id = path_id(request, "id")
    async with request.app.state.db.uow(readonly=True) as uow:
        data = await edxml.status_package(uow, user, event_id)
    return _xml(data, f"trang-thai-{event_id}.edxml")


@contract(ok=c.Items)
async def quarantine(request: Request) -> Response:
    """Refused edXML packages of your agency, newest first (clerk)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await edxml.quarantined(uow, user)
    return JSONResponse({"items": [q.public() for q in rows]})


@contract(ok=c.Items)
async def unmatched(request: Request) -> Response:
    """Status packages about documents your agency does not have (kept, not refused), newest first (clerk)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await edxml.unmatched_statuses(uow, user)
    return JSONResponse({"items": [m.public() for m in rows]})


@contract(ok=c.DocumentSignatures)
async def document_signatures(request: Request) -> Response:
    """Digital signatures of the document's PDF attachments: signer, time, integrity, changes, trust."""
    user = require_user(request)
    state = request.app.state
    async with state.db.uow(readonly=True) as uow:
        items = await signatures.verify_document(uow, user, state.blobs, path_id(request, "id"))
    return JSONResponse({"attachments": items})


@contract(body=Empty, ok=c.Signed)
async def sign(request: Request) -> Response:
    """Sign an issued outgoing document's PDFs with the agency certificate (clerk)."""
    user = require_user(request)
    state = request.app.state
    edxml.require_clerk(user)
    config = signatures.SigningConfig.from_env()
    if config is None:
        raise Invalid("Chưa cấu hình chứng thư số của cơ quan (EOFFICE_SIGNING_P12).")
    async with state.db.uow() as uow:
        doc = await documents.get_document(uow, user, path_id(request, "id"))
        signed = await signatures.sign_issued(uow, user, state.blobs, doc, config=config)
        await uow.commit()
    return JSONResponse({"signed_attachments": [a.id for a in signed]})


routes: list[BaseRoute] = [
    Route("/api/edxml", import_package, methods=["POST"]),
    Route("/api/edxml/quarantine", quarantine),
    Route("/api/edxml/unmatched", unmatched),
    Route("/api/edxml/status/{id:int}", status_package),
    Route("/api/documents/{id:int}/edxml", export_package),
    Route("/api/documents/{id:int}/edxml/timeline", timeline),
    Route("/api/documents/{id:int}/signatures", document_signatures),
    Route("/api/documents/{id:int}/sign", sign, methods=["POST"]),
]
