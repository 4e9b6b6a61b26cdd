"""Login, logout and the home page."""

from __future__ import annotations

import logging

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from eoffice import audit, identity, two_factor
from eoffice.directory import DirectoryUnavailable
from eoffice.login_throttle import ThrottlePolicy
from eoffice.org import Unit, User
from meetings import meetings as meeting_service
from meetings.rules import State
from storage.db import UnitOfWork
from storage.errors import Throttled, Unauthenticated
from web.auth import (
    ENROL_PAGE,
    clear_session_cookie,
    client_ip,
    login_required,
    session_token,
    set_challenge_cookie,
    set_session_cookie,
)

log = logging.getLogger(__name__)


def safe_next(target: str | None) -> str:
    """Only local paths: never redirect a freshly logged-in user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def public_base(request: Request) -> str:
    """The server's address as browsers reach it: ``EOFFICE_PUBLIC_URL``, else this request's."""
    return request.app.state.settings.public_url or str(request.base_url).rstrip("/")


async def after_first_factor(request: Request, uow: UnitOfWork, user: User, target: str, *,
                             sso_id_token: str | None = None, provider_mfa: bool = False,
                             via: str = "password") -> Response:
    """The password (or the OpenID Provider, ``web.routes.sso``) proved who this is: the code step for an enrolled
    user, an enrolment-only session for a role that requires two-factor login, else a session. ``provider_mfa``:
    the provider did a second factor itself, ours is skipped. Commits."""
    settings = request.app.state.settings
    ip = client_ip(request)
    if not provider_mfa and await two_factor.enrolled(uow, user):  # now the code (/login/code)
        challenge = await two_factor.start_challenge(uow, user, target, ip, sso_id_token=sso_id_token)
        await uow.commit()
        response = RedirectResponse("/login/code", status_code=303)
        set_challenge_cookie(response, settings, challenge)
        return response
    if via == "password":
        await identity.login_succeeded(uow, user, ip)
    else:
        await identity.login_succeeded(uow, user, ip, via=via)
    enrol_only = not provider_mfa and await two_factor.is_required(uow, user)  # sent to enrol, nothing else
    token = await identity.start_session(uow, user, settings.session_days, ip, request.headers.get("user-agent", ""),
                                         enrol_only=enrol_only, sso_id_token=sso_id_token)
    await uow.commit()
    response = RedirectResponse(ENROL_PAGE if enrol_only else target, status_code=303)
    set_session_cookie(response, settings, token)
    return response


def login_form(request: Request, status: int = 200, *, next_path: str = "/", error: str | None = None,
               username: str = "", notice: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The login page; with a button to the OpenID Provider when one is configured (``web.routes.sso``)."""
    settings = request.app.state.settings
    sso = settings.oidc_button if request.app.state.oidc is not None else None
    return request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": next_path, "error": error, "username": username, "notice": notice,
                                "sso_button": sso}, status_code=status, headers=headers)


async def login_page(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if request.state.user is not None:
        return RedirectResponse(target, status_code=303)
    notice = "Bạn đã đăng xuất." if request.query_params.get("done") == "logout" else None
    return login_form(request, next_path=target, notice=notice)


async def login_submit(request: Request) -> Response:
    state = request.app.state
    settings = state.settings
    form = await request.form()
    username = str(form.get("username", ""))
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    ip = client_ip(request)
    try:
        async with state.db.uow() as uow:
            policy = ThrottlePolicy.from_settings(settings.login_max_failures, settings.login_window_seconds)
            user = await identity.authenticate(uow, username, password, ip, policy=policy, finish=False,
                                               directory_config=state.directory)
            return await after_first_factor(request, uow, user, target)
    except (Unauthenticated, Throttled, DirectoryUnavailable) as exc:
        status = exc.status
        headers = {"Retry-After": str(exc.details["retry_after"])} if isinstance(exc, Throttled) else None
        message = exc.message
        if isinstance(exc, DirectoryUnavailable):  # the details (host, error) go to the log, not to the page
            log.warning("login: %s", exc.message)
            message = "Máy chủ thư mục (LDAP) tạm thời không trả lời. Vui lòng thử lại sau ít phút."
        return login_form(request, status, next_path=target, error=message, username=username, headers=headers)


async def logout(request: Request) -> Response:
    """End this session (its live sockets close at once, in every server process); a session opened through the
    OpenID Provider then goes on to the provider's own logout (RP-initiated logout, ``eoffice.oidc_client``)."""
    settings = request.app.state.settings
    token = session_token(request, settings)
    user = request.state.user
    sso_id_token = None
    if token:
        async with request.app.state.db.uow() as uow:
            sso_id_token = await identity.end_session(uow, user, token, client_ip(request))
            await uow.commit()
        if user is not None:
            await request.app.state.hub.close_user(user.id, "logout", only=[("session", identity.sha256(token))])
    target = "/login"
    oidc = request.app.state.oidc
    if sso_id_token and oidc is not None:  # the provider's end_session, which sends the browser back to us
        target = await oidc.logout_url(sso_id_token, public_base(request) + "/login?done=logout") or target
    response = RedirectResponse(target, status_code=303)
    clear_session_cookie(response, settings)
    return response


HOME_MEETINGS = 3  # meetings on the home page: those going on, then the next ones
HOME_MEETINGS_SCAN = 30  # the latest meetings (by start) looked at for them
STATE_NAMES = {State.IN_PROGRESS.value: "Đang họp", State.INVITED.value: "Sắp họp"}


@login_required()
async def home(request: Request) -> Response:
    user = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        unit = await uow.session.get(Unit, user.unit_id) if user.unit_id else None
        recent = (
            await uow.session.scalars(
                select(audit.AuditEntry).where(audit.AuditEntry.actor_id == user.id)
                .order_by(audit.AuditEntry.seq.desc()).limit(8)
            )
        ).all()
        from web.routes.office_pages import todo_summary  # here: office_pages imports this module

        todo = await todo_summary(uow, user)
        # A delegate opening the app on a tablet finds the meeting going on (or the next one) on the first screen.
        rows = await meeting_service.list_for_user(uow, user, limit=HOME_MEETINGS_SCAN)
    live = [m for m in rows if m.state == State.IN_PROGRESS]
    upcoming = sorted((m for m in rows if m.state == State.INVITED), key=lambda m: m.starts_at)
    my_meetings = (live + upcoming)[:HOME_MEETINGS]
    return request.app.state.templates.TemplateResponse(
        request, "home.html",
        {"unit": unit, "recent": recent, "todo": todo, "my_meetings": my_meetings, "meeting_states": STATE_NAMES})


routes = [
    Route("/", home, name="home"),
    Route("/login", login_page, methods=["GET"], name="login"),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
