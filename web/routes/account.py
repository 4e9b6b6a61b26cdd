"""The user's own account: change the password, API tokens (page and JSON API).

Whatever takes access away also closes the live sockets that used it, in every server process
(``web.hub.Hub.close_user`` through the broker).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from eoffice import accounts, channels, identity, notifications
from eoffice.accounts import Revoked
from meetings import feeds
from storage.errors import AppError, Invalid
from web.auth import client_ip, json_body, login_required, require_user, session_token
from web.contract import accounts as c
from web.contract import contract
from web.services import close_revoked


async def close_sockets(request: Request, revoked: Revoked | None, reason: str) -> None:
    """After the commit: close the sockets whose credentials ``revoked`` ended (all processes)."""
    if revoked is not None:
        await close_revoked(request.app.state.hub, reason, revoked)


def _session_hash(request: Request) -> str | None:
    token = session_token(request, request.app.state.settings) if request.state.auth == "session" else None
    return identity.sha256(token) if token else None


async def _change_password(request: Request, current: str, new: str, confirm: str | None) -> None:
    user = require_user(request)
    if confirm is not None and confirm != new:
        raise Invalid("Hai lần nhập mật khẩu mới không khớp.", field="confirm_password")
    async with request.app.state.db.uow() as uow:
        revoked = await accounts.change_own_password(uow, await accounts.user_by_id(uow, user.id), current, new,
                                                     _session_hash(request), client_ip(request))
        await uow.commit()
    await close_sockets(request, revoked, "password changed")


def _expires_days(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not str(value).isdigit():
        raise Invalid("Thời hạn phải là số ngày (số nguyên dương).", field="expires_days")
    return int(str(value)[:6])


async def _create_token(request: Request, name: str, scope: str, expires: Any) -> str:
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        token = await identity.create_token(uow, user, user, name, scope=scope or "full",
                                            expires_days=_expires_days(expires))
        await uow.commit()
    return token


async def _revoke_token(request: Request, token_id: Any) -> None:
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        revoked = await accounts.revoke_token(uow, user, accounts.parse_id(token_id, "mã truy cập"),
                                              client_ip(request))
        await uow.commit()
    await close_sockets(request, revoked, "token revoked")


# -- pages ---------------------------------------------------------------------------------------

async def _page(request: Request, status: int = 200, **extra: Any) -> Response:
    user = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        tokens = await accounts.list_tokens(uow, user, user)
        prefs = await notifications.preferences(uow, user)
        calendar_feeds = await feeds.feeds_of(uow, user)
    push = request.app.state.settings.push_enabled  # Web Push (eoffice.channels): its column and the browser's key
    prefs = {**prefs, "push_enabled": push, "push_key": channels.vapid_public(request.app.state.db.url) if push else ""}
    context = {"tokens": tokens, "prefs": prefs, "error": None, "notice": None, "new_token": None,
               "feeds": calendar_feeds, "feed_labels": feeds.KINDS, "new_feed": None, **extra}
    return request.app.state.templates.TemplateResponse(request, "account.html", context, status_code=status)


@login_required()
async def account_page(request: Request) -> Response:
    notice = {"password": "Đã đổi mật khẩu. Các phiên đăng nhập khác và mọi mã truy cập API đã bị thu hồi.",
              "revoked": "Đã thu hồi mã truy cập.",
              "notifications": "Đã lưu cách nhận thông báo."}.get(request.query_params.get("done", ""))
    return await _page(request, notice=notice)


@login_required()
async def feed_submit(request: Request) -> Response:
    """Make or reset (``/reset``) or turn off (``/off``) a calendar feed's secret URL (issue #21)."""
    user = request.state.user
    kind, action = request.path_params["kind"], request.path_params["action"]
    try:
        async with request.app.state.db.uow() as uow:
            if action == "off":
                await feeds.revoke(uow, user, kind)
                token = None
            elif action == "reset":
                token = await feeds.reset_token(uow, user, kind)
            else:
                raise Invalid("Thao tác không hợp lệ.")
            await uow.commit()
    except AppError as exc:
        return await _page(request, exc.status, error=exc.message)
    if token is None:
        return await _page(request, notice="Đã tắt đường dẫn lịch.")
    url = str(request.base_url).rstrip("/") + f"/calendar/feed/{token}.ics"
    return await _page(request, 201, new_feed={"kind": kind, "url": url})


@login_required()
async def password_submit(request: Request) -> Response:
    form = await request.form()
    try:
        await _change_password(request, str(form.get("current_password", "")), str(form.get("new_password", "")),
                               str(form.get("confirm_password", "")))
    except AppError as exc:
        return await _page(request, exc.status, error=exc.message)
    return RedirectResponse("/account?done=password", status_code=303)


@login_required()
async def token_submit(request: Request) -> Response:
    form = await request.form()
    try:
        token = await _create_token(request, str(form.get("name", "")), str(form.get("scope", "full")),
                                    form.get("expires_days"))
    except AppError as exc:
        return await _page(request, exc.status, error=exc.message)
    return await _page(request, 201, new_token=token)


@login_required()
async def token_revoke_submit(request: Request) -> Response:
    try:
        await _revoke_token(request, request.path_params["token_id"])
    except AppError as exc:
        return await _page(request, exc.status, error=exc.message)
    return RedirectResponse("/account?done=revoked", status_code=303)


# -- API -----------------------------------------------------------------------------------------

@contract(body=c.PasswordChange, ok=None, status=204)
async def api_password(request: Request) -> Response:
    """Change your own password (`current_password`, `new_password`). Ends your other sessions and revokes
    every API token of yours; their live sockets are closed."""
    require_user(request)
    body = await json_body(request)
    await _change_password(request, str(body.get("current_password", "")), str(body.get("new_password", "")), None)
    return Response(status_code=204)


@contract(ok=c.TokenList)
async def api_tokens(request: Request) -> JSONResponse:
    """Your API tokens (never the token itself: only its hash is stored)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        tokens = await accounts.list_tokens(uow, user, user)
    return JSONResponse({"tokens": [t.public() for t in tokens]})


@contract(body=c.TokenCreate, ok=c.TokenCreated, status=201)
async def api_token_create(request: Request) -> JSONResponse:
    """Create an API bearer token for yourself (shown once): `name`, `scope` (`full` or `read`: GET/HEAD only),
    `expires_days` (optional)."""
    body = await json_body(request)
    token = await _create_token(request, str(body.get("name", "")), str(body.get("scope", "full")),
                                body.get("expires_days"))
    return JSONResponse({"token": token}, status_code=201)


@contract(ok=None, status=204)
async def api_token_revoke(request: Request) -> Response:
    """Revoke one of your tokens (an administrator: anyone's); sockets using it are closed."""
    await _revoke_token(request, request.path_params["token_id"])
    return Response(status_code=204)


routes = [
    Route("/account", account_page, methods=["GET"]),
    Route("/account/password", password_submit, methods=["POST"]),
    Route("/account/tokens", token_submit, methods=["POST"]),
    Route("/account/calendar-feeds/{kind:str}/{action:str}", feed_submit, methods=["POST"]),
    Route("/account/tokens/{token_id}/revoke", token_revoke_submit, methods=["POST"]),
    Route("/api/account/password", api_password, methods=["POST"]),
    Route("/api/tokens", api_tokens, methods=["GET"]),
    Route("/api/tokens", api_token_create, methods=["POST"]),
    Route("/api/tokens/{token_id}", api_token_revoke, methods=["DELETE"]),
]
