"""E-office API: full-text search, the agency register export (csv, xlsx), statistics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eoffice import export, search, stats
from eoffice.registers import local_date
from storage.db import utcnow
from storage.errors import Invalid
from web import file_response
from web.auth import require_user
from web.contract import Binary, contract
from web.contract import office as c
from web.routes.office.plumbing import date, int_, ok, read

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@contract(ok=c.SearchResults)
async def search_documents(request: Request) -> Response:
    """Full-text search, insensitive to diacritics, ranked; filters ``direction``, ``doc_type``,
    ``sender``, ``from``/``to`` (date issued), ``status``, ``unit_id``, ``confidentiality``."""
    require_user(request)
    q = request.query_params
    filters = search.Filters(
        direction=q.get("direction") or None, doc_type=q.get("doc_type") or None, sender=q.get("sender") or None,
        date_from=date(q.get("from"), "from"), date_to=date(q.get("to"), "to"), status=q.get("status") or None,
        unit_id=int_(q.get("unit_id"), "unit_id", optional=True), confidentiality=q.get("confidentiality") or None)
    limit, offset = int_(q.get("limit", 20), "limit"), int_(q.get("offset", 0), "offset")
    hits = await read(request, lambda uow, user: search.search(uow, user, q.get("q", ""), filters, limit=limit,
                                                               offset=offset))
    return ok({"items": [{**h.document.public(), "rank": h.rank} for h in hits]})


@contract(ok=Binary(("text/csv", XLSX), "Sổ văn bản"))
async def export_register(request: Request) -> Response:
    """The agency register (``direction`` in/out, ``year``, ``format`` csv/xlsx, ``confidential``)."""
    require_user(request)
    q = request.query_params
    fmt = q.get("format", "xlsx")
    name, data = await read(request, lambda uow, user: export.export_register(
        uow, user, direction=q.get("direction", "in"), year=int_(q.get("year") or local_date(utcnow()).year, "year"),
        fmt=fmt, confidential=q.get("confidential") in ("1", "true")))
    media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX
    return Response(data, media_type=media, headers=file_response.download_headers(name, "so-van-ban"))


@contract(ok=c.Statistics)
async def statistics(request: Request) -> Response:
    """Received, on time, late, in progress, overdue and on-time rate for ``from``..``to`` at
    ``level`` agency | unit | person."""
    require_user(request)
    q = request.query_params
    date_from, date_to = date(q.get("from"), "from"), date(q.get("to"), "to")
    if date_from is None or date_to is None:
        raise Invalid("Cần chọn khoảng thời gian (from, to).")
    return ok(await read(request, lambda uow, user: stats.statistics(
        uow, user, date_from=date_from, date_to=date_to, level=q.get("level", "agency"))))


routes: list[BaseRoute] = [
    Route("/api/search", search_documents),
    Route("/api/registers/export", export_register),
    Route("/api/statistics", statistics),
]
