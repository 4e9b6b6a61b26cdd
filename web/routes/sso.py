"""Login through an OpenID Provider (issue #18), beside local passwords: ``/login/sso`` sends the browser to the
provider, ``/login/sso/callback`` takes it back. The protocol is ``eoffice.oidc_client``, the accounts
``eoffice.sso``; the session, the second factor and logout are the password login's own (``web.routes.pages``).

Off unless ``EOFFICE_OIDC_ISSUER`` (and the client's id and secret) are set: then both paths answer 404 and the
login page shows no button. The pending login's cookie is SameSite=Lax (the provider's redirect back is a
top-level navigation from another site), HttpOnly, signed, and lives as long as the pending login.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, TimestampSigner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from eoffice import audit, sso
from eoffice.oidc_client import OidcClient
from storage.errors import AppError, Unauthenticated
from storage.settings import Settings
from web.auth import client_ip, cookie_name
from web.routes.pages import after_first_factor, login_form, public_base, safe_next

SSO_COOKIE = "eo_sso"
CALLBACK = "/login/sso/callback"
PENDING_SECONDS = sso.PENDING_MINUTES * 60
NO_STORE = {"Cache-Control": "no-store"}


def configured(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def setup(app: Starlette) -> None:
    settings: Settings = app.state.settings
    if configured(settings):
        app.state.oidc = OidcClient(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret,
                                    settings.oidc_scopes)


async def shutdown(app: Starlette) -> None:
    if app.state.oidc is not None:
        await app.state.oidc.close()


def _signer(settings: Settings) -> TimestampSigner:
    return TimestampSigner(settings.secret_key, salt="eoffice.sso-login")


def _browser_token(request: Request) -> str | None:
    settings = request.app.state.settings
    raw = request.cookies.get(cookie_name(settings, SSO_COOKIE))
    if not raw:
        return None
    try:
        return _signer(settings).unsign(raw, max_age=PENDING_SECONDS).decode()
    except BadSignature:
        return None


def _set_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(cookie_name(settings, SSO_COOKIE), _signer(settings).sign(token).decode(),
                        max_age=PENDING_SECONDS, httponly=True, samesite="lax", secure=settings.secure_cookies,
                        path="/")


def _clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(cookie_name(settings, SSO_COOKIE), path="/", secure=settings.secure_cookies,
                           httponly=True, samesite="lax")


def _redirect_uri(request: Request) -> str:
    return public_base(request) + CALLBACK


async def _refusal(request: Request, exc: AppError, status: int = 401, **data: Any) -> Response:
    """The login page with the reason, the refusal audited (in a transaction of its own), the cookie gone."""
    reason = str(exc.details.get("reason", exc.code))
    async with request.app.state.db.uow() as uow:
        await audit.record(uow, None, "login.failed", "user", "", ip=client_ip(request), via="sso", reason=reason,
                           username=str(exc.details.get("username", "")), **data)
        await uow.commit()
    response = login_form(request, status, error=exc.message, headers=NO_STORE)
    _clear_cookie(response, request.app.state.settings)
    return response


async def sso_start(request: Request) -> Response:
    """Send the browser to the provider's authorization endpoint (code flow, PKCE S256, state, nonce)."""
    oidc: OidcClient | None = request.app.state.oidc
    if oidc is None:
        return Response("Chưa cấu hình đăng nhập một cửa (SSO).", status_code=404)
    target = safe_next(request.query_params.get("next"))
    if request.state.user is not None:
        return RedirectResponse(target, status_code=303)
    async with request.app.state.db.uow() as uow:
        pending = await sso.begin(uow, target)
        await uow.commit()
    try:
        url = await oidc.authorization_url(_redirect_uri(request), pending.state, pending.nonce, pending.verifier)
    except Unauthenticated as exc:
        return login_form(request, 503, next_path=target, error=exc.message, headers=NO_STORE)
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    _set_cookie(response, request.app.state.settings, pending.browser)
    return response


async def sso_callback(request: Request) -> Response:
    """The provider's answer: the pending login used up, the code exchanged, the ID token checked, the account
    found (or created), then the second factor or a session as for a password login."""
    oidc: OidcClient | None = request.app.state.oidc
    if oidc is None:
        return Response("Chưa cấu hình đăng nhập một cửa (SSO).", status_code=404)
    query = request.query_params
    try:
        async with request.app.state.db.uow() as uow:  # used up whatever comes next: committed now
            try:
                pending = await sso.take(uow, _browser_token(request), query.get("state", ""))
            finally:
                await uow.commit()
        if query.get("error"):
            detail = query.get("error_description") or query["error"]
            raise Unauthenticated(f"Hệ thống đăng nhập một cửa từ chối đăng nhập: {detail[:200]}",
                                  reason=f"provider:{query['error'][:50]}")
        id_token = await oidc.exchange(query.get("code", ""), _redirect_uri(request), pending.verifier)
        claims = await oidc.validate(id_token, pending.nonce)
        policy = sso.SsoPolicy.from_settings(request.app.state.settings)
        provider_mfa = sso.provider_mfa(claims, policy)
        async with request.app.state.db.uow() as uow:
            user, created = await sso.account_for(uow, claims, policy)
            await audit.record(uow, user, "login.sso", "user", user.id, ip=client_ip(request), sub=claims["sub"],
                               issuer=claims["iss"], amr=claims.get("amr"), acr=claims.get("acr"),
                               provider_mfa=provider_mfa, created=created)
            response = await after_first_factor(request, uow, user, pending.next_path, sso_id_token=id_token,
                                                provider_mfa=provider_mfa, via="sso")
    except AppError as exc:  # Unauthenticated mostly; Invalid when a created account's claims break our rules
        return await _refusal(request, exc)
    _clear_cookie(response, request.app.state.settings)
    return response


routes = [
    Route("/login/sso", sso_start, methods=["GET"]),
    Route(CALLBACK, sso_callback, methods=["GET"]),
]
