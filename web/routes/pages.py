"""Login, logout and the home page."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from eoffice import audit, identity, two_factor
from eoffice.login_throttle import ThrottlePolicy
from eoffice.org import Unit
from meetings import meetings as meeting_service
from meetings.rules import State
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


def safe_next(target: str | None) -> str:
    """Only local paths: never redirect a freshly logged-in user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def login_page(request: Request) -> Response:
    if request.state.user is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": safe_next(request.query_params.get("next")), "error": None, "username": ""}
    )


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
            user = await identity.authenticate(uow, username, password, ip, policy=policy, finish=False)
            if await two_factor.enrolled(uow, user):  # the password was right: now the code (/login/code)
                challenge = await two_factor.start_challenge(uow, user, target, ip)
                await uow.commit()
                response = RedirectResponse("/login/code", status_code=303)
                set_challenge_cookie(response, settings, challenge)
                return response
            await identity.login_succeeded(uow, user, ip)
            enrol_only = await two_factor.is_required(uow, user)  # sent to enrol, nothing else until done
            token = await identity.start_session(uow, user, settings.session_days, ip,
                                                 request.headers.get("user-agent", ""), enrol_only=enrol_only)
            await uow.commit()
            if enrol_only:
                target = ENROL_PAGE
    except (Unauthenticated, Throttled) as exc:
        status = 429 if isinstance(exc, Throttled) else 401
        headers = {"Retry-After": str(exc.details["retry_after"])} if isinstance(exc, Throttled) else None
        return state.templates.TemplateResponse(
            request, "login.html", {"next": target, "error": exc.message, "username": username}, status_code=status,
            headers=headers)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, settings, token)
    return response


async def logout(request: Request) -> Response:
    token = session_token(request, request.app.state.settings)
    user = request.state.user
    if token:
        async with request.app.state.db.uow() as uow:
            await identity.end_session(uow, user, token, client_ip(request))
            await uow.commit()
        if user is not None:  # this session's live sockets close too (in every server process)
            await request.app.state.hub.close_user(user.id, "logout", only=[("session", identity.sha256(token))])
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request.app.state.settings)
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
