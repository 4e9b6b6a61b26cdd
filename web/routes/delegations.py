"""Ủy quyền (#18): a leader delegates directing and/or approving to a deputy for a period, and revokes it;
the deputy sees what they received. Service: ``eoffice.delegation``."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from eoffice import delegation
from eoffice.org import Role, User
from storage.db import UnitOfWork, utcnow
from storage.errors import AppError, Invalid, NotFound
from web import inputs
from web.auth import login_required
from web.routes.office_common import agency_choices, render


async def _deputies(uow: UnitOfWork, user: User) -> list[User]:
    """Leaders of the user's agency tree, to choose the deputy from (never the user)."""
    choices = await agency_choices(uow, user)
    return [p for p, _ in choices["leaders"] if p.id != user.id]


async def _page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    user: User = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        rows = await delegation.mine(uow, user)
        ids = {i for d in rows for i in (d.from_user_id, d.to_user_id)}
        people = {u.id: u for u in await _people(uow, ids)}
        try:
            deputies = await _deputies(uow, user) if user.has_role(Role.LEADER) else []
        except NotFound:
            deputies = []
    now = utcnow()
    return render(
        request,
        "delegations.html",
        status_code=status,
        rows=rows,
        people=people,
        deputies=deputies,
        scopes=delegation.SCOPES,
        now=now,
        error=error,
        ok={"created": "Đã ủy quyền.", "revoked": "Đã thu hồi ủy quyền."}.get(request.query_params.get("ok", "")),
    )


async def _people(uow: UnitOfWork, ids: set[int]) -> list[User]:
    return list((await uow.session.scalars(select(User).where(User.id.in_(ids)))).all()) if ids else []


@login_required(Role.LEADER, Role.ADMIN)
async def delegations_page(request: Request) -> Response:
    return await _page(request)


@login_required(Role.LEADER)
async def delegation_create(request: Request) -> Response:
    form = await request.form()
    try:
        deputy = inputs.req_id(form.get("to_user_id"), "to_user_id")
        starts = inputs.datetime_value(form.get("starts_at") or None, "starts_at") or utcnow()
        ends = inputs.datetime_value(str(form.get("ends_at", "")), "ends_at")
        if ends is None:
            raise Invalid("Cần nhập thời điểm kết thúc ủy quyền.", field="ends_at")
        async with request.app.state.db.uow() as uow:
            await delegation.create(
                uow,
                request.state.user,
                to_user_id=deputy,
                scopes=[str(s) for s in form.getlist("scopes")],
                starts_at=starts,
                ends_at=ends,
                note=str(form.get("note", "")),
            )
            await uow.commit()
    except AppError as exc:
        return await _page(request, error=exc.message, status=exc.status)
    return RedirectResponse("/delegations?ok=created", status_code=303)


@login_required(Role.LEADER, Role.ADMIN)
async def delegation_revoke(request: Request) -> Response:
    try:
        async with request.app.state.db.uow() as uow:
            await delegation.revoke(uow, request.state.user, request.path_params["id"])
            await uow.commit()
    except AppError as exc:
        return await _page(request, error=exc.message, status=exc.status)
    return RedirectResponse("/delegations?ok=revoked", status_code=303)


routes = [
    Route("/delegations", delegations_page, methods=["GET"]),
    Route("/delegations", delegation_create, methods=["POST"]),
    Route("/delegations/{id:int}/revoke", delegation_revoke, methods=["POST"]),
]
