"""Calendars (issue #21): a person's meeting calendar (week, month), the leaders' weekly work calendar of the
agency (lịch công tác tuần) with its page without login, and the iCalendar feeds at secret URLs.

Pages work without JavaScript (links and forms: nothing to allow in the CSP); every change goes through
``meetings.work_calendar`` / ``meetings.feeds`` services (permission, change, audit) committed here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from eoffice.agency_time import AGENCY_TZ
from eoffice.org import Role, Unit, User
from meetings import calendar as mcal
from meetings import feeds
from meetings import work_calendar as wc
from storage.db import UnitOfWork
from storage.errors import AppError, Invalid, NotFound
from web import inputs
from web.auth import json_body, login_required, require_user
from web.contract import Empty, Ok, contract
from web.contract import calendar as c

# ---------------------------------------------------------------- reading the query


def today() -> dt.date:
    return dt.datetime.now(AGENCY_TZ).date()


def _week(request: Request) -> dt.date:
    return mcal.parse_week(request.query_params.get("week"), today())


def _month(request: Request) -> dt.date:
    q = request.query_params
    return mcal.parse_month(q.get("year"), q.get("month"), today())


def _span(request: Request, view: str) -> tuple[mcal.Span, dict[str, str]]:
    """The days shown and the prev / next / today links' query strings."""
    if view == "month":
        first = _month(request)
        prev, nxt = mcal.prev_month(first), mcal.next_month(first)
        return mcal.Span(first, nxt), {
            "prev": urlencode({"year": prev.year, "month": prev.month}),
            "next": urlencode({"year": nxt.year, "month": nxt.month}), "today": ""}
    monday = _week(request)
    week = dt.timedelta(days=7)
    return mcal.Span(monday, monday + week), {
        "prev": urlencode({"week": mcal.week_label(monday - week)}),
        "next": urlencode({"week": mcal.week_label(monday + week)}), "today": ""}


def _view(request: Request) -> str:
    view = request.query_params.get("view", "week") or "week"
    if view not in ("week", "month"):
        raise Invalid("Kiểu xem không hợp lệ (week hoặc month).", field="view")
    return view


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


async def _run(request: Request, fn: Any) -> Any:
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        result = await fn(uow, user)
        await uow.commit()
    return result


# ---------------------------------------------------------------- the meeting calendar


@contract(ok=c.MeetingCalendar)
async def api_calendar(request: Request) -> JSONResponse:
    """My meetings (organised, chaired, minuted, invited to, also as a substitute or for my unit) by week
    (`view=week`, `week=2026-W49`) or month (`view=month`, `year`, `month`), day by day in Asia/Ho_Chi_Minh."""
    user = require_user(request)
    view = _view(request)
    span, links = _span(request, view)
    async with request.app.state.db.uow(readonly=True) as uow:
        cal = await mcal.person_calendar(uow, user, span)
    return JSONResponse({"view": view, **cal, "prev": links["prev"], "next": links["next"]})


@login_required()
async def calendar_page(request: Request) -> Response:
    user = request.state.user
    view = "month" if request.url.path.endswith("/month") else "week"
    span, links = _span(request, view)
    async with request.app.state.db.uow(readonly=True) as uow:
        cal = await mcal.person_calendar(uow, user, span)
    if view == "month":
        by_day = {d["date"]: d for d in cal["days"]}
        grid = [[{"day": day, "in_month": day.month == span.first.month, "is_today": day == today(),
                  "meetings": by_day.get(day.isoformat(), {}).get("meetings", [])} for day in week]
                for week in mcal.month_grid(span.first)]
        return _page(request, "calendar_month.html", cal=cal, grid=grid, links=links, weekdays=mcal.WEEKDAYS,
                     title=f"{mcal.MONTHS[span.first.month - 1]} năm {span.first.year}", first=span.first)
    first, last = span.first, span.last_exclusive - dt.timedelta(days=1)
    return _page(request, "calendar_week.html", cal=cal, links=links, today=today().isoformat(),
                 title=f"Tuần {first:%V}: {first:%d/%m} – {last:%d/%m/%Y}", week=mcal.week_label(first),
                 month_query=urlencode({"year": first.year, "month": first.month}))


# ---------------------------------------------------------------- the leaders' work calendar


async def _agency_for(uow: UnitOfWork, user: User) -> tuple[Unit, bool, bool]:
    """The user's agency, whether they see drafts (its office and leaders) and whether they draft."""
    agency = await wc.agency_of_user(uow, user)
    member = user.unit_id in await wc.agency_units(uow, agency.id)
    drafter = user.is_admin or (member and user.has_role(Role.CLERK))
    sees_drafts = drafter or (member and user.has_role(Role.LEADER))
    return agency, sees_drafts, drafter


@contract(ok=c.WorkWeek)
async def api_work_week(request: Request) -> JSONResponse:
    """The week (`week=2026-W49`) of my agency's leaders: the office's entries (drafts only for the office and
    the leaders) and the meetings a leader chairs or is invited to (confidential ones as «Cuộc họp (mật)»)."""
    user = require_user(request)
    monday = _week(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        agency, drafts, _ = await _agency_for(uow, user)
        view = await wc.week_view(uow, agency.id, monday, drafts=drafts)
    return JSONResponse({**view, "agency": {"id": agency.id, "name": agency.name}})


def _entry_fields(request: Request, body: dict[str, Any], partial: bool) -> dict[str, Any]:
    tz = request.app.state.settings.timezone
    out: dict[str, Any] = {}
    for key in ("content", "place", "participants", "preparing_unit"):
        if key in body or (key == "content" and not partial):
            out[key] = inputs.str_value(body.get(key), key, max_length=20000)
    if "starts_at" in body or not partial:
        start = inputs.datetime_value(body.get("starts_at"), "starts_at", tz)
        if start is None:
            raise Invalid("Cần nhập thời gian bắt đầu.", field="starts_at")
        out["starts_at"] = start
    if "ends_at" in body:
        out["ends_at"] = inputs.datetime_value(body.get("ends_at"), "ends_at", tz)
    if "leader_ids" in body or not partial:
        out["leader_ids"] = inputs.ids_value(body.get("leader_ids") or [], "leader_ids")
    return out


@contract(body=c.EntryCreate, ok=c.WorkEntry, status=201)
async def api_add_entry(request: Request) -> JSONResponse:
    """The office adds a line to the week of `starts_at` (created as a draft if needed); after publishing the
    line is marked «Điều chỉnh»."""
    fields = _entry_fields(request, await json_body(request), partial=False)
    entry = await _run(request, lambda uow, user: wc.add_entry(uow, user, **fields))
    return JSONResponse(entry.public(), status_code=201)


@contract(method="PATCH", body=c.EntryFields, ok=c.WorkEntry)
@contract(method="DELETE", ok=Ok)
async def api_entry(request: Request) -> JSONResponse:
    """PATCH: change a line (after publishing it is marked «Điều chỉnh» with what changed); DELETE: remove it
    (after publishing it stays, cancelled and marked)."""
    entry_id = inputs.path_id(request, "entry_id")
    if request.method == "DELETE":
        await _run(request, lambda uow, user: wc.remove_entry(uow, user, entry_id))
        return JSONResponse({"ok": True})
    fields = _entry_fields(request, await json_body(request), partial=True)
    entry = await _run(request, lambda uow, user: wc.update_entry(uow, user, entry_id, **fields))
    return JSONResponse(entry.public())


def _week_state(week: Any) -> dict[str, Any]:
    return {"id": week.id, "week": mcal.week_label(week.week_start), "state": week.state,
            "state_label": wc.STATE_LABELS[week.state], "public": week.public, "revision": week.revision}


@contract(body=c.Publish, ok=c.WeekState, choices={"action": ("approve", "publish", "public")})
async def api_week_action(request: Request) -> JSONResponse:
    """approve (a leader of the agency), publish (`public`: also on the page without login; after approval),
    public (open or close the published week to the page without login)."""
    week_id, action = inputs.path_id(request, "week_id"), request.path_params["action"]
    if action == "approve":
        week = await _run(request, lambda uow, user: wc.approve_week(uow, user, week_id))
    elif action in ("publish", "public"):
        public = bool((await json_body(request)).get("public", False))
        fn = wc.publish_week if action == "publish" else wc.set_public
        week = await _run(request, lambda uow, user: fn(uow, user, week_id, public=public))
    else:
        raise NotFound("Không có thao tác này.")
    return JSONResponse(_week_state(week))


def _form_time(day: str, time: str, field: str, *, optional: bool = False) -> dt.datetime | None:
    day, time = day.strip(), time.strip()
    if optional and not time:
        return None
    d = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", day)
    t = re.fullmatch(r"([01]?\d|2[0-3])[:h.]([0-5]\d)", time)
    if not d:
        raise Invalid("Ngày không hợp lệ (dd/mm/yyyy).", field="day")
    if not t:
        raise Invalid("Giờ không hợp lệ (hh:mm).", field=field)
    try:
        date = dt.date(int(d.group(3)), int(d.group(2)), int(d.group(1)))
    except ValueError:
        raise Invalid("Ngày không hợp lệ (dd/mm/yyyy).", field="day") from None
    return dt.datetime.combine(date, dt.time(int(t.group(1)), int(t.group(2))), AGENCY_TZ)


async def _work_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    user = request.state.user
    monday = _week(request) if error is None else _week_or_today(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        agency, drafts, drafter = await _agency_for(uow, user)
        view = await wc.week_view(uow, agency.id, monday, drafts=drafts)
        member = user.unit_id in await wc.agency_units(uow, agency.id)
    week = dt.timedelta(days=7)
    last = monday + dt.timedelta(days=6)
    return _page(request, "work_calendar.html", status, view=view, agency=agency, drafter=drafter,
                 approver=member and user.has_role(Role.LEADER), publisher=(member or user.is_admin)
                 and wc.user_may_publish(user), error=error,
                 notice={"added": "Đã thêm vào lịch.", "cancelled": "Đã hủy mục lịch.", "approved": "Đã duyệt lịch.",
                         "published": "Đã ban hành lịch.", "changed": "Đã sửa mục lịch.",
                         "public": "Đã đổi chế độ công khai."}.get(request.query_params.get("done", "")),
                 title=f"Tuần {monday:%V}: {monday:%d/%m} – {last:%d/%m/%Y}",
                 prev=mcal.week_label(monday - week), next=mcal.week_label(monday + week), week=view["week"],
                 default_day=max(monday, min(today(), last)).strftime("%d/%m/%Y"))


def _week_or_today(request: Request) -> dt.date:
    try:
        return _week(request)
    except Invalid:
        return mcal.parse_week("", today())


@login_required()
async def work_calendar_page(request: Request) -> Response:
    return await _work_page(request)


async def _form_action(request: Request, fn: Any, done: str, week: str | None = None) -> Response:
    try:
        result = await _run(request, fn)
    except AppError as exc:
        return await _work_page(request, exc.status, error=exc.message)
    target = week or request.query_params.get("week", "")
    if result is not None and hasattr(result, "week_start"):
        target = mcal.week_label(result.week_start)
    return RedirectResponse("/work-calendar?" + urlencode({"week": target, "done": done}), status_code=303)


@login_required()
async def work_entry_submit(request: Request) -> Response:
    form = await request.form()
    try:
        starts_at = _form_time(str(form.get("day", "")), str(form.get("time", "")), "time")
        ends_at = _form_time(str(form.get("day", "")), str(form.get("end_time", "")), "end_time", optional=True)
        leader_ids = [inputs.req_id(v, "leader_ids") for v in form.getlist("leader_ids")]
    except AppError as exc:
        return await _work_page(request, exc.status, error=exc.message)
    assert starts_at is not None
    fields: dict[str, Any] = {"starts_at": starts_at, "ends_at": ends_at, "leader_ids": leader_ids,
              **{k: str(form.get(k, "")) for k in ("content", "place", "participants", "preparing_unit")}}
    local = starts_at.date()
    return await _form_action(request, lambda uow, user: wc.add_entry(uow, user, **fields), "added",
                              mcal.week_label(local - dt.timedelta(days=local.weekday())))


@login_required()
async def work_entry_edit(request: Request) -> Response:
    """The page's edit form of one line (after publishing the line is marked «Điều chỉnh» with what changed)."""
    entry_id = inputs.path_id(request, "entry_id")
    form = await request.form()
    try:
        day = str(form.get("day", ""))
        starts_at = _form_time(day, str(form.get("time", "")), "time")
        ends_at = _form_time(day, str(form.get("end_time", "")), "end_time", optional=True)
        leader_ids = [inputs.req_id(v, "leader_ids") for v in form.getlist("leader_ids")]
    except AppError as exc:
        return await _work_page(request, exc.status, error=exc.message)
    fields: dict[str, Any] = {"starts_at": starts_at, "ends_at": ends_at, "leader_ids": leader_ids,
                              **{k: str(form.get(k, "")) for k in ("content", "place", "participants",
                                                                    "preparing_unit")}}
    return await _form_action(request, lambda uow, user: wc.update_entry(uow, user, entry_id, **fields), "changed")


@login_required()
async def work_entry_cancel(request: Request) -> Response:
    entry_id = inputs.path_id(request, "entry_id")
    return await _form_action(request, lambda uow, user: wc.remove_entry(uow, user, entry_id), "cancelled")


@login_required()
async def work_week_submit(request: Request) -> Response:
    week_id, action = inputs.path_id(request, "week_id"), request.path_params["action"]
    if action == "approve":
        return await _form_action(request, lambda uow, user: wc.approve_week(uow, user, week_id), "approved")
    if action == "public":
        public = (await request.form()).get("public") == "1"
        return await _form_action(request, lambda uow, user: wc.set_public(uow, user, week_id, public), "public")
    if action == "publish":
        public = (await request.form()).get("public") == "1"
        return await _form_action(request, lambda uow, user: wc.publish_week(uow, user, week_id, public=public),
                                  "published")
    raise NotFound("Không có thao tác này.")


async def public_work_calendar(request: Request) -> Response:
    """The page without login: a published week the agency opened to the public."""
    agency_id = inputs.path_id(request, "agency_id")
    monday = _week(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        agency = await uow.session.get(Unit, agency_id)
        if agency is None or not agency.is_agency:
            raise NotFound("Không tìm thấy cơ quan.")
        view = await wc.week_view(uow, agency.id, monday, drafts=False, public_only=True)
    week, last = dt.timedelta(days=7), monday + dt.timedelta(days=6)
    return _page(request, "work_calendar_public.html", view=view, agency=agency,
                 title=f"Tuần {monday:%V}: {monday:%d/%m} – {last:%d/%m/%Y}",
                 prev=mcal.week_label(monday - week), next=mcal.week_label(monday + week))


# ---------------------------------------------------------------- iCalendar feeds


def feed_url(request: Request, token: str) -> str:
    return str(request.base_url).rstrip("/") + f"/calendar/feed/{token}.ics"


async def feed(request: Request) -> Response:
    """An iCalendar feed: the token in the URL is the credential (no session, no CSRF: read only)."""
    token = request.path_params["token"]
    async with request.app.state.db.uow(readonly=True) as uow:
        owner, kind = await feeds.owner_of(uow, token)
        body = await feeds.render(uow, owner, kind)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, no-store", "Content-Disposition": "inline; filename=lich.ics",
                             "Referrer-Policy": "no-referrer"})


@contract(ok=c.FeedStatus)
async def api_feeds(request: Request) -> JSONResponse:
    """Which of my feeds (personal; leader: my public calendar) have a URL (the URL itself is shown only when
    made: only its hash is stored)."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return JSONResponse(await feeds.feeds_of(uow, user))


@contract(method="POST", body=Empty, ok=c.FeedUrl, status=201, choices={"kind": ("personal", "leader")})
@contract(method="DELETE", ok=None, status=204)
async def api_feed_reset(request: Request) -> Response:
    """POST: make (or reset) the secret URL of my feed `kind`: the old URL stops working at once; the new one is
    shown once. DELETE: turn the feed off."""
    kind = request.path_params["kind"]
    if request.method == "DELETE":
        await _run(request, lambda uow, user: feeds.revoke(uow, user, kind))
        return Response(status_code=204)
    token = await _run(request, lambda uow, user: feeds.reset_token(uow, user, kind))
    return JSONResponse({"kind": kind, "url": feed_url(request, token)}, status_code=201)


routes = [
    Route("/calendar", calendar_page, methods=["GET"], name="calendar"),
    Route("/calendar/month", calendar_page, methods=["GET"], name="calendar_month"),
    Route("/calendar/feed/{token}.ics", feed, methods=["GET"], name="calendar_feed"),
    Route("/work-calendar", work_calendar_page, methods=["GET"], name="work_calendar"),
    Route("/work-calendar/entries", work_entry_submit, methods=["POST"]),
    Route("/work-calendar/entries/{entry_id:int}/cancel", work_entry_cancel, methods=["POST"]),
    Route("/work-calendar/entries/{entry_id:int}/edit", work_entry_edit, methods=["POST"]),
    Route("/work-calendar/weeks/{week_id:int}/{action:str}", work_week_submit, methods=["POST"]),
    Route("/public/work-calendar/{agency_id:int}", public_work_calendar, methods=["GET"]),
    Route("/api/calendar", api_calendar, methods=["GET"]),
    Route("/api/calendar/feeds", api_feeds, methods=["GET"]),
    Route("/api/calendar/feeds/{kind:str}", api_feed_reset, methods=["POST", "DELETE"]),
    Route("/api/work-calendar", api_work_week, methods=["GET"]),
    Route("/api/work-calendar/entries", api_add_entry, methods=["POST"]),
    Route("/api/work-calendar/entries/{entry_id:int}", api_entry, methods=["PATCH", "DELETE"]),
    Route("/api/work-calendar/weeks/{week_id:int}/{action:str}", api_week_action, methods=["POST"]),
]
