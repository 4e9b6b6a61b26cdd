"""Administration: accounts (pages and JSON API: reset a password, deactivate, reactivate, tokens) and the audit log.

Deactivating, resetting a password or revoking a token closes the user's live sockets at once, in
every server process (``web.routes.account.close_sockets``)."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from eoffice import accounts, audit, identity, jobs, two_factor
from eoffice.org import ROLE_LABELS, Role, Unit, User
from storage.errors import AppError
from web.auth import client_ip, json_body, login_required, require_user
from web.contract import Empty, contract
from web.contract import accounts as c
from web.routes.account import close_sockets


async def _users_context(request: Request) -> dict[str, object]:
    async with request.app.state.db.uow(readonly=True) as uow:
        users = (await uow.session.scalars(select(User).order_by(User.username))).all()
        units = (await uow.session.scalars(select(Unit).order_by(Unit.id))).all()
    return {"users": users, "units": [u for u in units if u.is_open], "unit_names": {u.id: u.name for u in units},
            "roles": ROLE_LABELS,
            "error": None, "form": {}, "notice": None}


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


async def _account_action(request: Request, action: str, password: str = "") -> None:
    """``password`` (reset), ``deactivate`` or ``activate`` the account in the path, as the logged-in admin."""
    actor = require_user(request)
    async with request.app.state.db.uow() as uow:
        user = await accounts.user_by_id(uow, accounts.parse_id(request.path_params["user_id"], "mã người dùng"))
        if action == "password":
            revoked: accounts.Revoked | None = await accounts.reset_password(uow, actor, user, password,
                                                                             client_ip(request))
        else:
            revoked = await accounts.set_active(uow, actor, user, action == "activate", client_ip(request))
        await uow.commit()
    await close_sockets(request, revoked, {"password": "password reset"}.get(action, "account deactivated"))


NOTICES = {"password": "Đã đặt lại mật khẩu; mọi phiên đăng nhập và mã truy cập của tài khoản đã bị thu hồi.",
           "deactivate": "Đã khóa tài khoản; mọi phiên đăng nhập, kết nối và mã truy cập đã dừng.",
           "activate": "Đã mở khóa tài khoản.", "revoke": "Đã thu hồi mã truy cập.",
           "two-factor-reset": "Đã đặt lại xác thực hai lớp; người dùng cần đăng ký lại thiết bị."}


@login_required(Role.ADMIN)
async def user_action_submit(request: Request) -> Response:
    action = request.path_params["action"]
    form = await request.form()
    try:
        if action == "revoke":
            async with request.app.state.db.uow() as uow:
                revoked = await accounts.revoke_token(uow, request.state.user,
                                                      accounts.parse_id(form.get("token_id", ""), "mã truy cập"),
                                                      client_ip(request))
                await uow.commit()
            await close_sockets(request, revoked, "token revoked")
        elif action == "two-factor-reset":
            async with request.app.state.db.uow() as uow:
                user = await accounts.user_by_id(uow, accounts.parse_id(request.path_params["user_id"],
                                                                        "mã người dùng"))
                await two_factor.admin_reset(uow, request.state.user, user, client_ip(request))
                await uow.commit()
        elif action in ("password", "deactivate", "activate"):
            await _account_action(request, action, str(form.get("password", "")))
        else:
            return Response(status_code=404)
    except AppError as exc:
        context = await _users_context(request)
        context.update(error=exc.message)
        return request.app.state.templates.TemplateResponse(request, "admin_users.html", context,
                                                            status_code=exc.status)
    context = await _users_context(request)
    context.update(notice=NOTICES[action])
    return request.app.state.templates.TemplateResponse(request, "admin_users.html", context)


@login_required(Role.ADMIN)
async def user_tokens_page(request: Request) -> Response:
    async with request.app.state.db.uow(readonly=True) as uow:
        user = await accounts.user_by_id(uow, accounts.parse_id(request.path_params["user_id"], "mã người dùng"))
        tokens = await accounts.list_tokens(uow, request.state.user, user)
    return request.app.state.templates.TemplateResponse(request, "admin_user_tokens.html",
                                                        {"target": user, "tokens": tokens})


async def _jobs_page(request: Request, notice: str | None = None, error: str | None = None,
                     status: int = 200) -> Response:
    async with request.app.state.db.uow(readonly=True) as uow:
        listed = await jobs.problem_jobs(uow, request.state.user)
    return request.app.state.templates.TemplateResponse(
        request, "admin_jobs.html", {"jobs": listed, "notice": notice, "error": error}, status_code=status)


@login_required(Role.ADMIN)
async def jobs_page(request: Request) -> Response:
    """Failed background jobs (text extraction, renditions, OCR, e-mail) with a retry button each."""
    return await _jobs_page(request)


@login_required(Role.ADMIN)
async def jobs_retry(request: Request) -> Response:
    form = await request.form()
    key = None if form.get("all") else str(form.get("job", ""))
    try:
        async with request.app.state.db.uow() as uow:
            count = await jobs.retry(uow, request.state.user, key, client_ip(request))
            await uow.commit()
    except AppError as exc:
        return await _jobs_page(request, error=exc.message, status=exc.status)
    return await _jobs_page(request, notice=f"Đã xếp {count} tác vụ chạy lại.")


# -- JSON API (administrators) -------------------------------------------------------------------

def _user_json(user: identity.User) -> dict[str, object]:
    return {**user.public(), "active": user.active}


@contract(ok=c.UserList)
async def api_users(request: Request) -> JSONResponse:
    """Every account, with whether it is active (administrators)."""
    actor = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        users = await accounts.list_users(uow, actor)
    return JSONResponse({"users": [_user_json(u) for u in users]})


@contract(body=c.PasswordSet, ok=None, status=204)
async def api_user_password(request: Request) -> Response:
    """Set a new password (`password`) for an account: its sessions end, its tokens are revoked, its sockets close."""
    body = await json_body(request)
    await _account_action(request, "password", str(body.get("password", "")))
    return Response(status_code=204)


@contract(body=Empty, ok=None, status=204)
async def api_user_deactivate(request: Request) -> Response:
    """Deactivate an account: it cannot log in; its sessions, tokens and live sockets stop at once."""
    await _account_action(request, "deactivate")
    return Response(status_code=204)


@contract(body=Empty, ok=None, status=204)
async def api_user_activate(request: Request) -> Response:
    """Reactivate an account (no old session or token comes back)."""
    await _account_action(request, "activate")
    return Response(status_code=204)


@contract(ok=c.TokenList)
async def api_user_tokens(request: Request) -> JSONResponse:
    """An account's API tokens (administrators)."""
    actor = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        user = await accounts.user_by_id(uow, accounts.parse_id(request.path_params["user_id"], "mã người dùng"))
        tokens = await accounts.list_tokens(uow, actor, user)
    return JSONResponse({"tokens": [t.public() for t in tokens]})


routes = [
    Route("/admin/users", users_page, methods=["GET"]),
    Route("/admin/users", users_add, methods=["POST"]),
    Route("/admin/users/{user_id}/tokens", user_tokens_page, methods=["GET"]),
    Route("/admin/users/{user_id}/{action}", user_action_submit, methods=["POST"]),
    Route("/api/users", api_users, methods=["GET"]),
    Route("/api/users/{user_id}/password", api_user_password, methods=["POST"]),
    Route("/api/users/{user_id}/deactivate", api_user_deactivate, methods=["POST"]),
    Route("/api/users/{user_id}/activate", api_user_activate, methods=["POST"]),
    Route("/api/users/{user_id}/tokens", api_user_tokens, methods=["GET"]),
    Route("/admin/audit", audit_page),
    Route("/admin/jobs", jobs_page, methods=["GET"]),
    Route("/admin/jobs/retry", jobs_retry, methods=["POST"]),
]
