"""Two-factor login pages (``eoffice.two_factor``): the code step of the login, enrolment on the account
page (QR code served by us: no outside service ever sees the secret), disabling, and the administrator's
choice of roles that must use it."""

from __future__ import annotations

import io
from typing import Any

import segno
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from eoffice import identity, two_factor
from eoffice.login_throttle import ThrottlePolicy
from eoffice.org import ROLE_LABELS, Role
from storage.errors import AppError, Throttled, Unauthenticated
from web.auth import (
    challenge_token,
    clear_challenge_cookie,
    client_ip,
    login_required,
    require_user,
    set_session_cookie,
)
from web.routes.pages import login_form

NO_STORE = {"Cache-Control": "no-store"}


# -- the login's second step ---------------------------------------------------------------------

def _code_page(request: Request, status: int = 200, error: str | None = None,
               headers: dict[str, str] | None = None) -> Response:
    return request.app.state.templates.TemplateResponse(request, "login_code.html", {"error": error},
                                                        status_code=status, headers={**NO_STORE, **(headers or {})})


async def code_page(request: Request) -> Response:
    token = challenge_token(request, request.app.state.settings)
    if token:
        async with request.app.state.db.uow(readonly=True) as uow:
            pending = await two_factor.challenge_pending(uow, token)
        if pending:
            return _code_page(request)
    return RedirectResponse("/login", status_code=303)


async def code_submit(request: Request) -> Response:
    state = request.app.state
    settings = state.settings
    token = challenge_token(request, settings)
    form = await request.form()
    ip = client_ip(request)
    try:
        if not token:
            raise Unauthenticated(two_factor.EXPIRED, expired=True)
        async with state.db.uow() as uow:
            policy = ThrottlePolicy.from_settings(settings.login_max_failures, settings.login_window_seconds)
            user, target, sso_id_token = await two_factor.complete_login(uow, token, str(form.get("code", "")), ip,
                                                                         policy=policy)
            session = await identity.start_session(uow, user, settings.session_days, ip,
                                                   request.headers.get("user-agent", ""), sso_id_token=sso_id_token)
            await uow.commit()
    except Throttled as exc:
        return _code_page(request, 429, exc.message, {"Retry-After": str(exc.details["retry_after"])})
    except Unauthenticated as exc:
        if exc.details.get("expired"):
            response = login_form(request, 401, error=exc.message)
            clear_challenge_cookie(response, settings)
            return response
        return _code_page(request, 401, exc.message)
    response = RedirectResponse(target, status_code=303)
    clear_challenge_cookie(response, settings)
    set_session_cookie(response, settings, session)
    return response


# -- enrolment -----------------------------------------------------------------------------------

async def _page(request: Request, status: int = 200, **extra: Any) -> Response:
    user = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        enrolled = await two_factor.enrolled(uow, user)
        secret = None if enrolled else await two_factor.pending_secret(uow, user)
        required = await two_factor.is_required(uow, user)
        left = await two_factor.recovery_codes_left(uow, user) if enrolled else 0
    context = {"enrolled": enrolled, "secret": secret, "required": required, "recovery_left": left,
               "uri": two_factor.provisioning_uri(secret, user.username) if secret else None,
               "enrol_only": request.state.enrol_only, "codes": None, "error": None, "notice": None, **extra}
    return request.app.state.templates.TemplateResponse(request, "two_factor.html", context, status_code=status,
                                                        headers=NO_STORE)


@login_required()
async def enrol_page(request: Request) -> Response:
    notice = {"disabled": "Đã tắt xác thực hai lớp."}.get(request.query_params.get("done", ""))
    return await _page(request, notice=notice)


@login_required()
async def enrol_start(request: Request) -> Response:
    user = require_user(request)
    try:
        async with request.app.state.db.uow() as uow:
            await two_factor.start_enrolment(uow, await identity.get_user(uow, user.username))
            await uow.commit()
    except AppError as exc:
        return await _page(request, exc.status, error=exc.message)
    return RedirectResponse("/account/two-factor", status_code=303)


@login_required()
async def enrol_qr(request: Request) -> Response:
    """The pending enrolment's otpauth:// URI as an SVG QR code (made here: the secret goes nowhere else)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        secret = await two_factor.pending_secret(uow, user)
    if secret is None:
        return Response("Không có đăng ký xác thực hai lớp đang chờ.", status_code=404, headers=NO_STORE)
    out = io.BytesIO()  # a whole SVG document (with its namespace): an <img> shows nothing less
    segno.make(two_factor.provisioning_uri(secret, user.username), error="m").save(out, kind="svg", scale=5,
                                                                                   border=2)
    return Response(out.getvalue(), media_type="image/svg+xml", headers=NO_STORE)


@login_required()
async def enrol_confirm(request: Request) -> Response:
    user = require_user(request)
    form = await request.form()
    try:
        async with request.app.state.db.uow() as uow:
            codes = await two_factor.confirm_enrolment(uow, await identity.get_user(uow, user.username),
                                                       str(form.get("code", "")), client_ip(request))
            await uow.commit()
    except AppError as exc:
        return await _page(request, exc.status, error=exc.message)
    request.state.enrol_only = False
    return await _page(request, notice="Đã bật xác thực hai lớp. Hãy lưu các mã khôi phục dưới đây.", codes=codes)


@login_required()
async def disable_submit(request: Request) -> Response:
    user = require_user(request)
    form = await request.form()
    try:
        async with request.app.state.db.uow() as uow:
            await two_factor.disable(uow, await identity.get_user(uow, user.username), str(form.get("code", "")),
                                     client_ip(request))
            await uow.commit()
    except AppError as exc:
        return await _page(request, exc.status, error=exc.message)
    return RedirectResponse("/account/two-factor?done=disabled", status_code=303)


# -- administrators ------------------------------------------------------------------------------

async def _roles_page(request: Request, status: int = 200, **extra: Any) -> Response:
    async with request.app.state.db.uow(readonly=True) as uow:
        required = await two_factor.required_roles(uow)
    return request.app.state.templates.TemplateResponse(
        request, "admin_two_factor.html", {"roles": ROLE_LABELS, "required": required, "error": None,
                                           "notice": None, **extra}, status_code=status)


@login_required(Role.ADMIN)
async def roles_page(request: Request) -> Response:
    return await _roles_page(request)


@login_required(Role.ADMIN)
async def roles_submit(request: Request) -> Response:
    form = await request.form()
    try:
        async with request.app.state.db.uow() as uow:
            await two_factor.set_required_roles(uow, request.state.user, [str(r) for r in form.getlist("roles")],
                                                client_ip(request))
            await uow.commit()
    except AppError as exc:
        return await _roles_page(request, exc.status, error=exc.message)
    return await _roles_page(request, notice="Đã lưu. Người dùng thuộc các vai trò này phải bật xác thực hai lớp "
                                              "ở lần đăng nhập tới.")


routes = [
    Route("/login/code", code_page, methods=["GET"]),
    Route("/login/code", code_submit, methods=["POST"]),
    Route("/account/two-factor", enrol_page, methods=["GET"]),
    Route("/account/two-factor/start", enrol_start, methods=["POST"]),
    Route("/account/two-factor/qr.svg", enrol_qr, methods=["GET"]),
    Route("/account/two-factor/confirm", enrol_confirm, methods=["POST"]),
    Route("/account/two-factor/disable", disable_submit, methods=["POST"]),
    Route("/admin/two-factor", roles_page, methods=["GET"]),
    Route("/admin/two-factor", roles_submit, methods=["POST"]),
]
