"""The notification centre (issue #21): the bell's list page, marking read, and the JSON API; the
preferences (channels per kind, quiet hours for e-mail) are a section of the account page.

The bell of every page counts the unread ones and changes live: ``notification.new`` and
``notification.read`` on the user's own ``user:{id}`` topic carry the count (``web/static/js/page.js``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from eoffice import channels, notifications
from eoffice.schema.notifications import Notification
from storage.errors import AppError, Conflict, Invalid
from web.auth import client_ip, json_body, login_required, require_user
from web.contract import Empty, contract
from web.contract import notifications as c
from web.inputs import path_id, query_int

PAGE = 30


def _safe_link(link: str) -> str:
    """Only this server's own pages (a stored link is a path such as /tasks/12)."""
    return link if link.startswith("/") and not link.startswith("//") else "/notifications"


def _unread_only(request: Request) -> bool:
    return request.query_params.get("unread", "") in ("1", "true", "yes")


async def _rows(request: Request, limit: int) -> tuple[list[Notification], int, int, int | None]:
    user = require_user(request)
    before = query_int(request, "before", 0, minimum=0) or None
    async with request.app.state.db.uow(readonly=True) as uow:
        rows, unread, total = await notifications.list_for(uow, user, unread_only=_unread_only(request),
                                                           before=before, limit=limit)
    return rows, unread, total, rows[-1].id if len(rows) == limit else None


# -- pages ---------------------------------------------------------------------------------------

@login_required()
async def notifications_page(request: Request) -> Response:
    rows, unread, total, next_before = await _rows(request, PAGE)
    entries = [{"id": r.id, "text": r.text, "link": _safe_link(r.link), "read": r.read_at is not None,
                "at": r.created_at} for r in rows]
    return request.app.state.templates.TemplateResponse(
        request, "notifications.html", {"notifications": entries, "unread": unread, "total": total,
                                        "next_before": next_before, "unread_only": _unread_only(request)})


@login_required()
async def open_submit(request: Request) -> Response:
    """A click on an entry: marked read, then its page."""
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        row = await notifications.mark_read(uow, user, path_id(request))
        await uow.commit()
    return RedirectResponse(_safe_link(row.link), status_code=303)


@login_required()
async def read_all_submit(request: Request) -> Response:
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        await notifications.mark_all_read(uow, user)
        await uow.commit()
    return RedirectResponse("/notifications", status_code=303)


def _bool(value: Any) -> bool:
    return value in (True, "1", "on", "true")


@login_required()
async def preferences_submit(request: Request) -> Response:
    form = await request.form()
    push = request.app.state.settings.push_enabled  # without the push column, the choices stay as they were
    old = (await preferences_of(request))["kinds"] if not push else []
    kept = {k["kind"]: k["push"] for k in old}
    choices = {k: notifications.Pref(_bool(form.get(f"in_app:{k}")), _bool(form.get(f"email:{k}")),
                                     _bool(form.get(f"push:{k}")) if push else kept.get(k, True))
               for k in notifications.KINDS}
    try:
        quiet = (notifications.parse_minute(str(form.get("quiet_start", "") or "00:00"), "quiet_start"),
                 notifications.parse_minute(str(form.get("quiet_end", "") or "00:00"), "quiet_end"))
        await _save_preferences(request, choices, quiet)
    except AppError as exc:
        from web.routes.account import _page  # the account page shows the error where the form is

        return await _page(request, exc.status, error=exc.message)
    return RedirectResponse("/account?done=notifications#notifications", status_code=303)


async def _save_preferences(request: Request, choices: dict[str, notifications.Pref],
                            quiet: tuple[int, int] | None) -> dict[str, Any]:
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        prefs = await notifications.set_preferences(uow, user, choices, quiet, client_ip(request))
        await uow.commit()
    return {**prefs, "push_enabled": request.app.state.settings.push_enabled}


# -- API -----------------------------------------------------------------------------------------

@contract(ok=c.NotificationList)
async def api_list(request: Request) -> JSONResponse:
    """Your notifications, newest first. Query: `unread=1` (only unread), `limit` (1..100, default 30),
    `before` (an id: the page after the one that ended there)."""
    limit = query_int(request, "limit", PAGE, minimum=1, maximum=notifications.PAGE_LIMIT)
    rows, unread, total, next_before = await _rows(request, limit)
    return JSONResponse({"notifications": [r.public() for r in rows], "unread": unread, "total": total,
                         "next_before": next_before})


@contract(body=Empty, ok=c.Unread)
async def api_read(request: Request) -> JSONResponse:
    """Mark one of your notifications read (somebody else's: 404); answers the unread count."""
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        await notifications.mark_read(uow, user, path_id(request))
        unread = await notifications.unread_count(uow, user.id)
        await uow.commit()
    return JSONResponse({"unread": unread})


@contract(body=Empty, ok=c.MarkedAll)
async def api_read_all(request: Request) -> JSONResponse:
    """Mark all your notifications read."""
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        marked = await notifications.mark_all_read(uow, user)
        await uow.commit()
    return JSONResponse({"marked": marked, "unread": 0})


@contract(ok=c.Preferences)
async def api_preferences(request: Request) -> JSONResponse:
    """Your notification preferences: per kind, in the app, by e-mail and by Web Push; quiet hours for e-mail."""
    return JSONResponse(await preferences_of(request))


@contract(body=c.PreferencesChange, ok=c.Preferences, method="PUT")
async def api_preferences_put(request: Request) -> JSONResponse:
    """Change your preferences: the kinds given (others unchanged) and, when both are given, the quiet hours."""
    body = await json_body(request)
    raw = body.get("kinds") or {}
    if not isinstance(raw, dict):
        raise Invalid("«kinds» phải là một đối tượng.", field="kinds")
    choices: dict[str, notifications.Pref] = {}
    for kind, value in raw.items():
        if not isinstance(value, dict):
            raise Invalid(f"Lựa chọn cho «{str(kind)[:40]}» phải là một đối tượng.", field="kinds")
        choices[str(kind)] = notifications.Pref(value.get("in_app", True) is True, value.get("email", False) is True,
                                                value.get("push", True) is True)
    start, end = str(body.get("quiet_start") or ""), str(body.get("quiet_end") or "")
    quiet = None
    if start or end:
        quiet = (notifications.parse_minute(start or "00:00", "quiet_start"),
                 notifications.parse_minute(end or "00:00", "quiet_end"))
    return JSONResponse(await _save_preferences(request, choices, quiet))


async def preferences_of(request: Request) -> dict[str, Any]:
    """The user's preferences, and whether this server sends Web Push (the account page's section too)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        prefs = await notifications.preferences(uow, user)
    return {**prefs, "push_enabled": request.app.state.settings.push_enabled}


# -- Web Push subscriptions (eoffice.channels) ----------------------------------------------------

@contract(ok=c.PushKey)
async def api_push_key(request: Request) -> JSONResponse:
    """Whether this server sends Web Push, and its VAPID public key (the `applicationServerKey` to subscribe with)."""
    require_user(request)
    enabled = request.app.state.settings.push_enabled
    return JSONResponse({"enabled": enabled,
                         "public_key": channels.vapid_public(request.app.state.db.url) if enabled else ""})


@contract(body=c.PushSubscribe, ok=c.PushSubscribed, more={409: "Web Push is turned off on this server"})
async def api_push_subscribe(request: Request) -> JSONResponse:
    """Receive your notifications by Web Push in this browser (its `PushSubscription`); the same endpoint again
    updates it. Which kinds: the `push` choice of each kind in the preferences."""
    user = require_user(request)
    if not request.app.state.settings.push_enabled:
        raise Conflict("Máy chủ chưa bật thông báo đẩy (Web Push).")
    body = await json_body(request)
    raw_keys = body.get("keys")
    keys: dict[str, Any] = raw_keys if isinstance(raw_keys, dict) else {}
    async with request.app.state.db.uow() as uow:
        await channels.subscribe(uow, user, str(body.get("endpoint") or ""), str(keys.get("p256dh") or ""),
                                 str(keys.get("auth") or ""), hosts=request.app.state.settings.push_hosts,
                                 user_agent=request.headers.get("user-agent", ""), ip=client_ip(request))
        count = await channels.subscription_count(uow, user.id)
        await uow.commit()
    return JSONResponse({"ok": True, "subscriptions": count})


@contract(body=c.PushUnsubscribe, ok=c.PushSubscribed)
async def api_push_unsubscribe(request: Request) -> JSONResponse:
    """Stop Web Push to this browser (its endpoint); another user's or unknown: 404."""
    user = require_user(request)
    body = await json_body(request)
    async with request.app.state.db.uow() as uow:
        await channels.unsubscribe(uow, user, str(body.get("endpoint") or ""), ip=client_ip(request))
        count = await channels.subscription_count(uow, user.id)
        await uow.commit()
    return JSONResponse({"ok": True, "subscriptions": count})


routes = [
    Route("/notifications", notifications_page, methods=["GET"]),
    Route("/notifications/read-all", read_all_submit, methods=["POST"]),
    Route("/notifications/{id:int}/open", open_submit, methods=["POST"]),
    Route("/account/notifications", preferences_submit, methods=["POST"]),
    Route("/api/notifications", api_list, methods=["GET"]),
    Route("/api/notifications/read-all", api_read_all, methods=["POST"]),
    Route("/api/notifications/{id:int}/read", api_read, methods=["POST"]),
    Route("/api/notifications/preferences", api_preferences, methods=["GET"]),
    Route("/api/notifications/preferences", api_preferences_put, methods=["PUT"]),
    Route("/api/push/key", api_push_key, methods=["GET"]),
    Route("/api/push/subscriptions", api_push_subscribe, methods=["POST"]),
    Route("/api/push/unsubscribe", api_push_unsubscribe, methods=["POST"]),
]
