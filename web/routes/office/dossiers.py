"""E-office API: dossiers (hồ sơ công việc) — open, list, contents, file documents and tasks, close."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eoffice import dossiers, ingest
from web import file_response
from web.contract import Binary, contract
from web.contract import office as c
from web.routes.office.plumbing import body, change, int_, ok, path_id, read, text


@contract(method="POST", body=c.OpenDossier, ok=c.Dossier, status=201)
@contract(method="GET", ok=c.DossierList)
async def dossiers_index(request: Request) -> Response:
    if request.method == "POST":
        b = await body(request)
        d = await change(request, lambda uow, user: dossiers.open_dossier(
            uow, user, text(b, "title"), int_(b.get("year"), "year", optional=True)))
        return ok(d.public(), 201)
    rows = await read(request, lambda uow, user: dossiers.list_dossiers(
        uow, user, request.query_params.get("status") or None))
    return ok({"items": [d.public() for d in rows]})


@contract(ok=c.DossierContents)
async def dossier(request: Request) -> Response:
    return ok(await read(request, lambda uow, user: dossiers.contents(uow, user, path_id(request))))


@contract(body=c.FileIntoDossier, ok=c.Created, status=201)
async def dossier_file(request: Request) -> Response:
    """File a document (``document_id``) or a task (``task_id``) into an open dossier."""
    b = await body(request)
    if b.get("task_id") is not None:
        item = await change(request, lambda uow, user: dossiers.file_task(
            uow, user, path_id(request), int_(b.get("task_id"), "task_id")))
    else:
        item = await change(request, lambda uow, user: dossiers.file_document(
            uow, user, path_id(request), int_(b.get("document_id"), "document_id")))
    return ok({"id": item.id}, 201)


@contract(body=c.CloseDossier, ok=c.Dossier)
async def dossier_close(request: Request) -> Response:
    b = await body(request)
    d = await change(request, lambda uow, user: dossiers.close_dossier(
        uow, user, path_id(request), file_code=text(b, "file_code"), retention=text(b, "retention")))
    return ok(d.public())


@contract(ok=Binary(("application/pdf",), "PDF"))
async def dossier_file_data(request: Request) -> Response:
    """A file held by the dossier (the signed minutes of a meeting), for the dossier's owner."""
    item = await read(request, lambda uow, user: dossiers.get_file(uow, user, path_id(request),
                                                                   path_id(request, "item_id")))
    assert item.blob_key is not None
    data = await request.app.state.blobs.read(item.blob_key, limit=ingest.MAX_PDF_BYTES)
    return Response(data, media_type="application/pdf", headers=file_response.download_headers(item.file_name))


routes: list[BaseRoute] = [
    Route("/api/dossiers", dossiers_index, methods=["GET", "POST"]),
    Route("/api/dossiers/{id:int}", dossier),
    Route("/api/dossiers/{id:int}/items", dossier_file, methods=["POST"]),
    Route("/api/dossiers/{id:int}/close", dossier_close, methods=["POST"]),
    Route("/api/dossiers/{id:int}/files/{item_id:int}", dossier_file_data, methods=["GET"]),
]
