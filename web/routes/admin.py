"""Administration pages: accounts and the audit log."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from eoffice import audit, identity
from eoffice.org import ROLE_LABELS, Role, Unit, User
from storage.errors import AppError
from web.auth import login_required


async def _users_context(request: Request) -> dict[str, object]:
    async with request.app.state.db.uow(readonly=True) as uow:
        users = (await uow.session.scalars(select(User).order_by(User.username))).all()
        units = (await uow.session.scalars(select(Unit).order_by(Unit.id))).all()
    return {"users": users, "units": units, "unit_names": {u.id: u.name for u in units}, "roles": ROLE_LABELS,
            "error": None, "form": {}}


@login_required(Role.ADMIN)
async def users_page(request: Request) -> Response:
    return request.app.state.templates.TemplateResponse(request, "admin_users.html", await _users_context(request))


@login_required(Role.ADMIN)
async def users_add(request: Request) -> Response:
    form = await request.form()
    unit = str(form.get("unit_id", ""))
    try:
        async with request.app.state.db.uow() as uow:
            await identity.create_user(
                uow, request.state.user, username=str(form.get("username", "")),
                full_name=str(form.get("full_name", "")), password=str(form.get("password", "")),
                roles=[str(r) for r in form.getlist("roles")] or [Role.SPECIALIST],
                unit_id=int(unit) if unit.isdigit() else None, title=str(form.get("title", "")),
            )
            await uow.commit()
    except AppError as exc:
        context = await _users_context(request)
        context.update(error=exc.message, form=dict(form))
        return request.app.state.templates.TemplateResponse(request, "admin_users.html", context,
                                                            status_code=exc.status)
    return RedirectResponse("/admin/users", status_code=303)


@login_required(Role.ADMIN)
async def audit_page(request: Request) -> Response:
    verify = request.query_params.get("verify") == "1"
    async with request.app.state.db.uow(readonly=True) as uow:
        entries = (
            await uow.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq.desc()).limit(200))
        ).all()
        result = await audit.verify(uow.session) if verify else None
    return request.app.state.templates.TemplateResponse(request, "admin_audit.html",
                                                        {"entries": entries, "result": result})


routes = [
    Route("/admin/users", users_page, methods=["GET"]),
    Route("/admin/users", users_add, methods=["POST"]),
    Route("/admin/audit", audit_page),
]
