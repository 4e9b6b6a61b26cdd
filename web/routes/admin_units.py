"""Administration of units and positions (#18): the tree with national agency codes, create, rename, move,
close, merge (with a dry-run preview first) and the positions' rank order. Administrators only; the
services (``eoffice.org_admin``, ``eoffice.org_merge``) check it again and audit every change."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from eoffice import org_admin, org_merge
from eoffice.org import UNIT_KIND_LABELS, UNIT_STATUS_LABELS, Role, UnitKind
from storage.errors import AppError, Invalid
from web.auth import login_required

NOTICES = {
    "created": "Đã thêm đơn vị.",
    "update": "Đã lưu thông tin đơn vị.",
    "move": "Đã chuyển đơn vị.",
    "close": "Đã giải thể đơn vị: đơn vị không nhận văn bản, nhiệm vụ mới; lịch sử được giữ nguyên.",
    "merged": "Đã sáp nhập đơn vị.",
    "position": "Đã lưu thứ tự chức vụ.",
}


def _int(form: FormData, name: str, label: str, *, optional: bool = False) -> int | None:
    raw = str(form.get(name, "")).strip()
    if not raw and optional:
        return None
    if not raw.isdigit():
        raise Invalid(f"{label} không hợp lệ.", field=name)
    return int(raw)


def _ids(form: FormData, name: str) -> list[int]:
    return [int(str(v)) for v in form.getlist(name) if str(v).isdigit()]


async def _render(
    request: Request, template: str, *, error: str | None = None, status: int = 200, **extra: Any
) -> Response:
    async with request.app.state.db.uow(readonly=True) as uow:
        tree = await org_admin.unit_tree(uow, request.state.user)
        positions = await org_admin.positions(uow, request.state.user) if template == "admin_positions.html" else []
    names = {r.unit.id: r.unit.name for r in tree}
    context = {
        "tree": tree,
        "open_rows": [r for r in tree if r.unit.is_open],
        "names": names,
        "kinds": UNIT_KIND_LABELS,
        "statuses": UNIT_STATUS_LABELS,
        "positions": positions,
        "error": error,
        "notice": NOTICES.get(request.query_params.get("ok", "")),
        "form": {},
        **extra,
    }
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


@login_required(Role.ADMIN)
async def units_page(request: Request) -> Response:
    return await _render(request, "admin_units.html")


@login_required(Role.ADMIN)
async def unit_create(request: Request) -> Response:
    form = await request.form()
    try:
        async with request.app.state.db.uow() as uow:
            await org_admin.create_unit(
                uow,
                request.state.user,
                code=str(form.get("code", "")),
                name=str(form.get("name", "")),
                kind=str(form.get("kind", UnitKind.OFFICE)),
                parent_id=_int(form, "parent_id", "Đơn vị cấp trên", optional=True),
                agency_code=str(form.get("agency_code", "")),
                is_agency=form.get("is_agency") == "1",
            )
            await uow.commit()
    except AppError as exc:
        return await _render(request, "admin_units.html", error=exc.message, status=exc.status, form=dict(form))
    return RedirectResponse("/admin/units?ok=created", status_code=303)


@login_required(Role.ADMIN)
async def unit_action(request: Request) -> Response:
    action = request.path_params["action"]
    if action not in ("update", "move", "close"):
        return Response(status_code=404)
    form = await request.form()
    user = request.state.user
    unit_id: int = request.path_params["unit_id"]
    try:
        async with request.app.state.db.uow() as uow:
            if action == "update":
                await org_admin.update_unit(
                    uow,
                    user,
                    unit_id,
                    name=str(form.get("name", "")),
                    agency_code=str(form.get("agency_code", "")),
                    rank=_int(form, "rank", "Thứ tự", optional=True),
                )
            elif action == "move":
                await org_admin.move_unit(uow, user, unit_id, _int(form, "parent_id", "Đơn vị cấp trên", optional=True))
            else:
                await org_admin.close_unit(uow, user, unit_id, str(form.get("reason", "")))
            await uow.commit()
    except AppError as exc:
        return await _render(request, "admin_units.html", error=exc.message, status=exc.status)
    return RedirectResponse(f"/admin/units?ok={action}#unit-{unit_id}", status_code=303)


@login_required(Role.ADMIN)
async def merge_page(request: Request) -> Response:
    return await _render(request, "admin_merge.html", preview=None, form={})


@login_required(Role.ADMIN)
async def merge_submit(request: Request) -> Response:
    """Preview (dry run: counts of what moves) unless ``confirm`` is sent; then merge, in one transaction."""
    form = await request.form()
    user = request.state.user
    sources = _ids(form, "source_ids")
    new_unit = form.get("target_id") == "new"
    fields = {**dict(form), "source_ids": sources}
    try:
        target_id = None if new_unit else _int(form, "target_id", "Đơn vị nhận sáp nhập")
        new = (
            org_merge.NewUnit(
                code=str(form.get("new_code", "")),
                name=str(form.get("new_name", "")),
                kind=str(form.get("new_kind", UnitKind.COMMUNE)),
                parent_id=_int(form, "new_parent_id", "Đơn vị cấp trên", optional=True),
                agency_code=str(form.get("new_agency_code", "")),
            )
            if new_unit
            else None
        )
        if form.get("confirm") != "1":
            async with request.app.state.db.uow(readonly=True) as uow:
                counts = await org_merge.preview_merge(uow, user, sources, target_id)
            return await _render(request, "admin_merge.html", preview=counts, form=fields)
        async with request.app.state.db.uow() as uow:
            target, _ = await org_merge.merge_units(uow, user, sources, target_id=target_id, new=new)
            await uow.commit()
    except AppError as exc:
        return await _render(
            request, "admin_merge.html", error=exc.message, status=exc.status, preview=None, form=fields
        )
    return RedirectResponse(f"/admin/units?ok=merged#unit-{target.id}", status_code=303)


@login_required(Role.ADMIN)
async def positions_page(request: Request) -> Response:
    return await _render(request, "admin_positions.html")


@login_required(Role.ADMIN)
async def position_set(request: Request) -> Response:
    form = await request.form()
    try:
        rank = _int(form, "rank", "Thứ tự")
        assert rank is not None
        async with request.app.state.db.uow() as uow:
            await org_admin.set_position(uow, request.state.user, str(form.get("name", "")), rank)
            await uow.commit()
    except AppError as exc:
        return await _render(request, "admin_positions.html", error=exc.message, status=exc.status)
    return RedirectResponse("/admin/positions?ok=position", status_code=303)


routes = [
    Route("/admin/units", units_page, methods=["GET"]),
    Route("/admin/units", unit_create, methods=["POST"]),
    Route("/admin/units/merge", merge_page, methods=["GET"]),
    Route("/admin/units/merge", merge_submit, methods=["POST"]),
    Route("/admin/units/{unit_id:int}/{action}", unit_action, methods=["POST"]),
    Route("/admin/positions", positions_page, methods=["GET"]),
    Route("/admin/positions", position_set, methods=["POST"]),
]
