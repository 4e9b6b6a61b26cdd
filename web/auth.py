"""Who is asking: session cookies, bearer tokens, CSRF, and the guards handlers use.

- Browser sessions: a random token in a signed, HttpOnly, SameSite=Lax cookie; the server
  keeps only its sha256 (eoffice.identity.UserSession), so logout really ends the session.
- API clients: ``Authorization: Bearer eo_...`` (``eoffice token create``). Bearer requests
  are not subject to CSRF: browsers never attach that header on their own.
- CSRF: a random nonce in its own cookie; the token expected in forms (``csrf_token``) and in
  ``X-CSRF-Token`` is an HMAC of it and of the session token, so a token made for another session
  (an attacker's own, with a nonce cookie planted from a sibling subdomain) is refused.
  Every unsafe cookie-carried request is checked here, in
  the middleware, so no handler can forget: url-encoded forms are read (bounded) and replayed;
  anything else (JSON, raw uploads) must carry the token in the header. Never in the query
  string: a URL ends up in access logs, proxies and the Referer of the next page.
- With ``EOFFICE_SECURE_COOKIES`` both cookies are named ``__Host-...``: the browser then only
  accepts them over HTTPS, for Path=/ and without a Domain, so no sibling subdomain can set them.
- Tokens with the ``read`` scope may only GET/HEAD (and follow WebSocket topics, not send commands).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import parse_qs, quote

from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy import select
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from eoffice import identity
from eoffice.org import Role, User
from storage.db import Database, UnitOfWork, utcnow
from storage.errors import Forbidden, Unauthenticated
from storage.settings import Settings
from web.errors import error_response
from web.inputs import json_body  # noqa: F401  # the one JSON reader (size, depth); re-exported for routes

SESSION_COOKIE = "eo_session"
CSRF_COOKIE = "eo_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_FORM_BYTES = 1024 * 1024
CHALLENGE_SECONDS = 5 * 60  # eoffice.two_factor.CHALLENGE_MINUTES


def signer(settings: Settings) -> TimestampSigner:
    return TimestampSigner(settings.secret_key, salt="eoffice.session")


HOST_PREFIX = "__Host-"
READ_METHODS = {"GET", "HEAD"}


def cookie_name(settings: Settings, base: str) -> str:
    """``__Host-`` + ``base`` with secure cookies (HTTPS, Path=/, no Domain: a subdomain cannot plant it)."""
    return HOST_PREFIX + base if settings.secure_cookies else base


def csrf_for(settings: Settings, nonce: str, session: str | None = None) -> str:
    """The CSRF token of a browser: its nonce cookie bound to its session token (``session``; None logged out)."""
    message = b"csrf:" + nonce.encode() + b":" + (session or "").encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def session_token(conn: HTTPConnection, settings: Settings) -> str | None:
    raw = conn.cookies.get(cookie_name(settings, SESSION_COOKIE))
    if not raw:
        return None
    try:
        return signer(settings).unsign(raw, max_age=settings.session_days * 86400).decode()
    except BadSignature:
        return None  # tampered or expired: treated as not logged in


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def credential(conn: HTTPConnection, settings: Settings) -> tuple[str, str] | None:
    """("bearer" | "session", sha256 of the token) that ``resolve_user`` authenticates ``conn`` with."""
    bearer = bearer_token(conn) or (conn.query_params.get("token") if conn.scope["type"] == "websocket" else None)
    if bearer:
        return "bearer", identity.sha256(bearer)
    token = session_token(conn, settings)
    return ("session", identity.sha256(token)) if token else None


async def _user_by(uow: UnitOfWork, kind: str, token_hash: str) -> User | None:
    """The active user of a live session or unrevoked API token (by the token's sha256), in one query."""
    if kind == "session":  # a session limited to enrolling a second factor commands nothing
        query = select(User).join(identity.UserSession, identity.UserSession.user_id == User.id).where(
            identity.UserSession.token_hash == token_hash, identity.UserSession.expires_at > utcnow(),
            identity.UserSession.enrol_only.is_(False))
    else:  # a command changes state: read-only tokens may not send one
        query = select(User).join(identity.ApiToken, identity.ApiToken.user_id == User.id).where(
            identity.ApiToken.token_hash == token_hash, identity.token_usable(utcnow()),  # type: ignore[arg-type]
            identity.ApiToken.scope == "full")
    return await uow.session.scalar(query.where(User.active.is_(True)))


async def credential_user(uow: UnitOfWork, cred: tuple[str, str] | None) -> User:
    """The active user a ``credential`` (a WebSocket's handshake) still authenticates, read in the caller's own
    transaction (one query): a command sent after a logout, an expiry, a revocation or a deactivation is refused
    (401) as an HTTP request would be. The user is read afresh, not the one kept since the handshake."""
    user = await _user_by(uow, *cred) if cred is not None else None
    if user is None:
        if cred is not None and cred[0] == "bearer" and await uow.session.scalar(  # only on refusal: which one
                select(identity.ApiToken.id).where(identity.ApiToken.token_hash == cred[1],
                                                   identity.token_usable(utcnow()))):  # type: ignore[arg-type]
            raise Forbidden("Mã truy cập API này chỉ được phép đọc (phạm vi «read»).")
        raise Unauthenticated("Phiên đăng nhập đã kết thúc. Vui lòng đăng nhập lại.")
    return user


async def resolve_user(conn: HTTPConnection, db: Database, settings: Settings) -> tuple[User | None, str]:
    """Returns (user, how) where how is 'bearer', 'bearer-read' (a read-only token), 'session' or ''.
    A session limited to enrolling a second factor is not a user here (sockets, commands)."""
    user, how, enrol_only = await resolve(conn, db, settings)
    return (None, "") if enrol_only else (user, how)


async def resolve(conn: HTTPConnection, db: Database, settings: Settings) -> tuple[User | None, str, bool]:
    """(user, how, enrol_only): ``resolve_user`` and whether the session may only enrol a second factor."""
    bearer = bearer_token(conn) or (conn.query_params.get("token") if conn.scope["type"] == "websocket" else None)
    if bearer:
        async with db.uow(readonly=True) as uow:
            user, stale, scope = await identity.token_lookup(uow, bearer)
        if user is None:
            raise Unauthenticated("Mã truy cập API không hợp lệ hoặc đã bị thu hồi.")
        if stale:  # after the read has given its connection back: never hold two at once
            async with db.uow() as touch:
                await identity.touch_token(touch, bearer)
                await touch.commit()
        return user, "bearer" if scope == "full" else "bearer-read", False
    token = session_token(conn, settings)
    if token:
        async with db.uow(readonly=True) as uow:  # the session and its user in one query
            row = (await uow.session.execute(
                select(User, identity.UserSession.enrol_only)
                .join(identity.UserSession, identity.UserSession.user_id == User.id)
                .where(identity.UserSession.token_hash == identity.sha256(token),
                       identity.UserSession.expires_at > utcnow(), User.active.is_(True)))).first()
        if row is not None:
            return row[0], "session", bool(row[1])
    return None, "", False


SIGNED_PATHS = ("/api/exchange/inbox",)  # authenticated by their own signature (eoffice.exchange), never a cookie
ENROL_PATHS = ("/account/two-factor", "/logout", "/static/")  # what an enrol-only session may reach
ENROL_PAGE = "/account/two-factor"


def enrol_allowed(path: str) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in ENROL_PATHS)


async def websocket_user(websocket: WebSocket) -> User | None:
    """The user behind a WebSocket handshake (cookie, bearer header or ?token=), or None."""
    state = websocket.app.state
    try:
        user, _how = await resolve_user(websocket, state.db, state.settings)
    except Unauthenticated:
        return None
    return user


class AuthMiddleware:
    """Resolves ``request.state.user`` and enforces CSRF on unsafe cookie-carried requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        state = scope["app"].state
        settings: Settings = state.settings
        scope.setdefault("state", {})
        try:
            user, how, enrol_only = await resolve(conn, state.db, settings)
        except Unauthenticated as exc:
            await _reject(scope, receive, send, exc.status, exc.code, exc.message)
            return
        if how == "bearer-read" and scope["method"] not in READ_METHODS:
            await _reject(scope, receive, send, 403, "read_only_token",
                          "Mã truy cập API này chỉ được phép đọc (phạm vi «read»).")
            return
        scope["state"]["user"] = user
        scope["state"]["auth"] = how
        csrf_cookie = cookie_name(settings, CSRF_COOKIE)
        nonce = conn.cookies.get(csrf_cookie) or ""
        new_nonce = "" if nonce else secrets.token_urlsafe(24)
        session = session_token(conn, settings) if user is not None and how == "session" else None
        scope["state"]["csrf_token"] = csrf_for(settings, nonce or new_nonce, session)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and new_nonce:
                headers = MutableHeaders(scope=message)
                secure = "; Secure" if settings.secure_cookies else ""
                headers.append("set-cookie", f"{csrf_cookie}={new_nonce}; Path=/; HttpOnly; SameSite=Strict{secure}")
            await send(message)

        if scope["method"] not in SAFE_METHODS and not how.startswith("bearer") and scope["path"] not in SIGNED_PATHS:
            ok, receive = await _check_csrf(conn, receive, settings, nonce, session)
            if not ok:
                await _reject(scope, receive, send, 403, "csrf",
                              "Phiên biểu mẫu đã hết hạn hoặc không hợp lệ. Vui lòng tải lại trang và thử lại.")
                return
        scope["state"]["enrol_only"] = enrol_only
        if enrol_only and not enrol_allowed(scope["path"]):
            # a role that requires two-factor login, not enrolled yet: nothing else until it is
            if scope["method"] in READ_METHODS and not scope["path"].startswith("/api/"):
                await RedirectResponse(ENROL_PAGE, status_code=303)(scope, receive, send_with_cookie)
            else:
                await _reject(scope, receive, send_with_cookie, 403, "two_factor_required",
                              "Vai trò của bạn bắt buộc xác thực hai lớp. Vui lòng bật xác thực hai lớp "
                              "trước khi sử dụng hệ thống.")
            return

        await self.app(scope, receive, send_with_cookie)


async def _check_csrf(conn: HTTPConnection, receive: Receive, settings: Settings, nonce: str,
                      session: str | None) -> tuple[bool, Receive]:
    if not nonce:
        return False, receive
    expected = csrf_for(settings, nonce, session)
    given = conn.headers.get(CSRF_HEADER)  # not the query string (?csrf_token=): see the module docstring
    if given is not None:
        return hmac.compare_digest(given, expected), receive
    if conn.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                return False, receive
        fields = parse_qs(body.decode("utf-8", "replace"))
        given = (fields.get(CSRF_FIELD) or [""])[0]
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        return hmac.compare_digest(given, expected), replay
    return False, receive


async def _reject(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
    request = Request(scope, receive)
    response = error_response(request, status, code, message)
    await response(scope, receive, send)


def current_user(request: Request) -> User | None:
    return request.state.user


def require_user(request: Request, *roles: Role) -> User:
    user: User | None = request.state.user
    if user is None:
        raise Unauthenticated("Vui lòng đăng nhập.")
    if roles and not user.has_role(*roles):
        raise Forbidden("Bạn không có quyền thực hiện thao tác này.")
    return user


Endpoint = Callable[[Request], Awaitable[Response]]


def login_required(*roles: Role) -> Callable[[Endpoint], Endpoint]:
    """For pages: redirect to the login page instead of a 401."""

    def wrap(fn: Endpoint) -> Endpoint:
        @wraps(fn)
        async def inner(request: Request) -> Response:
            if request.state.user is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            require_user(request, *roles)
            return await fn(request)

        return inner

    return wrap


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        cookie_name(settings, SESSION_COOKIE),
        signer(settings).sign(token).decode(),
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


CHALLENGE_COOKIE = "eo_2fa"


def challenge_signer(settings: Settings) -> TimestampSigner:
    return TimestampSigner(settings.secret_key, salt="eoffice.login-challenge")


def set_challenge_cookie(response: Response, settings: Settings, token: str) -> None:
    """The pending second login step (``eoffice.two_factor.start_challenge``), bound to this browser."""
    response.set_cookie(cookie_name(settings, CHALLENGE_COOKIE), challenge_signer(settings).sign(token).decode(),
                        max_age=CHALLENGE_SECONDS, httponly=True, samesite="strict", secure=settings.secure_cookies,
                        path="/")


def challenge_token(conn: HTTPConnection, settings: Settings) -> str | None:
    raw = conn.cookies.get(cookie_name(settings, CHALLENGE_COOKIE))
    if not raw:
        return None
    try:
        return challenge_signer(settings).unsign(raw, max_age=CHALLENGE_SECONDS).decode()
    except BadSignature:
        return None


def clear_challenge_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(cookie_name(settings, CHALLENGE_COOKIE), path="/", secure=settings.secure_cookies,
                           httponly=True, samesite="strict")


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(cookie_name(settings, SESSION_COOKIE), path="/", secure=settings.secure_cookies,
                           httponly=True, samesite="lax")


def client_ip(request: HTTPConnection) -> str:
    return request.client.host if request.client else ""
