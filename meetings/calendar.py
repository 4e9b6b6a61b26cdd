"""The meeting calendar (issue #21): a person's meetings by week or month in the agency's time zone,
Vietnamese weekday names, and scheduling conflicts (a leader already in another meeting at that time).

Parsing weeks and months and laying out the days are plain functions; the queries take a unit of work.
A conflict is a warning in the answer, never a refusal: leaders are often double-booked on purpose and
send a deputy.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from eoffice.agency_time import AGENCY_TZ
from eoffice.org import Role, User
from meetings import rules
from meetings.rules import State
from meetings.schema import AgendaItem, Meeting, Participant, Site
from storage.db import UnitOfWork
from storage.errors import Invalid

WEEKDAYS = ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật"]
MONTHS = [f"Tháng {n}" for n in range(1, 13)]
CONFIDENTIAL_TITLE = "Cuộc họp (mật)"
DEFAULT_LENGTH = dt.timedelta(hours=1)  # a meeting without an end, for overlaps and feeds
MIN_YEAR, MAX_YEAR = 1900, 2100

# ---------------------------------------------------------------- weeks and months (pure)

_WEEK = re.compile(r"(\d{4})-W(\d{1,2})")


def parse_week(value: str | None, today: dt.date) -> dt.date:
    """The Monday of an ISO week ``2026-W49`` (or of the week of a date ``2026-12-07``); today's week when empty."""
    text = (value or "").strip()
    if not text:
        return today - dt.timedelta(days=today.weekday())
    match = _WEEK.fullmatch(text)
    try:
        if match:
            year, week = int(match.group(1)), int(match.group(2))
            if not MIN_YEAR <= year <= MAX_YEAR:
                raise ValueError
            monday = dt.date.fromisocalendar(year, week, 1)
        else:
            day = dt.date.fromisoformat(text)
            if not MIN_YEAR <= day.year <= MAX_YEAR:
                raise ValueError
            monday = day - dt.timedelta(days=day.weekday())
    except ValueError:
        raise Invalid("Tuần không hợp lệ (dạng 2026-W49: năm, số tuần 1–52 hoặc 53).", field="week") from None
    return monday


def week_label(monday: dt.date) -> str:
    return monday.strftime("%G-W%V")


def parse_month(year: Any, month: Any, today: dt.date) -> dt.date:
    """The first day of the month; this month when both are empty."""
    if year in (None, "") and month in (None, ""):
        return today.replace(day=1)
    y = _number(year, "year", "Năm không hợp lệ (từ 1900 đến 2100).", MIN_YEAR, MAX_YEAR)
    m = _number(month, "month", "Tháng không hợp lệ (từ 1 đến 12).", 1, 12)
    return dt.date(y, m, 1)


def _number(value: Any, field: str, message: str, low: int, high: int) -> int:
    text = str(value if value is not None else "").strip()
    if not re.fullmatch(r"-?\d{1,6}", text) or not low <= int(text) <= high:
        raise Invalid(message, field=field)
    return int(text)


def next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)


def prev_month(first: dt.date) -> dt.date:
    return dt.date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def local_bounds(first: dt.date, last_exclusive: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants of the local midnights that bound these days."""
    start = dt.datetime.combine(first, dt.time(), AGENCY_TZ).astimezone(dt.UTC)
    end = dt.datetime.combine(last_exclusive, dt.time(), AGENCY_TZ).astimezone(dt.UTC)
    return start, end


def month_grid(first: dt.date) -> list[list[dt.date]]:
    """Weeks (Monday first) covering the month."""
    day = first - dt.timedelta(days=first.weekday())
    end = next_month(first)
    weeks: list[list[dt.date]] = []
    while day < end:
        weeks.append([day + dt.timedelta(days=i) for i in range(7)])
        day += dt.timedelta(days=7)
    return weeks


def date_label(day: dt.date) -> str:
    return f"{WEEKDAYS[day.weekday()]}, {day:%d/%m/%Y}"


def overlaps(a_start: dt.datetime, a_end: dt.datetime | None, b_start: dt.datetime, b_end: dt.datetime | None) -> bool:
    return a_start < (b_end or b_start + DEFAULT_LENGTH) and b_start < (a_end or a_start + DEFAULT_LENGTH)


# ---------------------------------------------------------------- a person's meetings


def mine(user: User) -> Any:
    """The SQL condition: meetings the user organises, chairs, minutes, is invited to (also as substitute or for
    their unit) or operates a site of; drafts only for their organisers (as ``meetings.list_for_user``)."""
    seat_meetings = select(Participant.meeting_id).where(or_(
        Participant.user_id == user.id, Participant.substitute_id == user.id,
        (Participant.unit_id == user.unit_id) & Participant.user_id.is_(None)
        if user.unit_id and user.has_role(Role.LEADER, Role.CLERK) else Participant.id.is_(None),
    ))
    site_meetings = select(Site.meeting_id).where(Site.operator_id == user.id)
    officer = or_(Meeting.created_by == user.id, Meeting.chair_id == user.id, Meeting.secretary_id == user.id)
    attendee = (Meeting.state != State.DRAFT) & or_(Meeting.id.in_(seat_meetings), Meeting.id.in_(site_meetings))
    return or_(officer, attendee)


async def meetings_between(uow: UnitOfWork, user: User, start: dt.datetime, end: dt.datetime, *,
                           drafts: bool = True, limit: int = 2000) -> list[Meeting]:
    """The user's meetings that overlap [start, end), earliest first."""
    q = select(Meeting).where(mine(user), Meeting.starts_at < end,
                              or_(Meeting.starts_at >= start - dt.timedelta(days=7), Meeting.ends_at > start))
    if not drafts:
        q = q.where(Meeting.state != State.DRAFT)
    rows = (await uow.session.scalars(q.order_by(Meeting.starts_at, Meeting.id).limit(limit))).all()
    return [m for m in rows if overlaps(m.starts_at, m.ends_at, start, end)]


async def confidential_ids(uow: UnitOfWork, meeting_ids: list[int]) -> set[int]:
    """Meetings with a confidential agenda item: calendars that others (or a bearer URL) read name them
    ``Cuộc họp (mật)``."""
    if not meeting_ids:
        return set()
    rows = await uow.session.scalars(select(AgendaItem.meeting_id).where(
        AgendaItem.meeting_id.in_(meeting_ids), AgendaItem.confidential.is_(True)).distinct())
    return set(rows.all())


def calendar_item(m: Meeting, *, confidential: bool = False, hide: bool = False) -> dict[str, Any]:
    """A meeting as calendars show it; ``hide``: a confidential meeting seen by someone not in it."""
    local = m.starts_at.astimezone(AGENCY_TZ)
    secret = confidential and hide
    return {"id": m.id, "title": CONFIDENTIAL_TITLE if secret else m.title, "place": "" if secret else m.place,
            "starts_at": m.starts_at.isoformat(), "ends_at": m.ends_at.isoformat() if m.ends_at else None,
            "date": local.date().isoformat(), "time": local.strftime("%H:%M"),
            "end_time": m.ends_at.astimezone(AGENCY_TZ).strftime("%H:%M") if m.ends_at else "",
            "state": m.state, "state_label": rules.STATE_LABELS[State(m.state)],
            "cancelled": m.state == State.CANCELLED, "confidential": confidential, "chair_id": m.chair_id}


@dataclass
class Span:
    first: dt.date
    last_exclusive: dt.date


async def person_calendar(uow: UnitOfWork, user: User, span: Span) -> dict[str, Any]:
    """Days of the span with the user's meetings on them (a meeting over several days shows on each)."""
    start, end = local_bounds(span.first, span.last_exclusive)
    rows = await meetings_between(uow, user, start, end)
    secret = await confidential_ids(uow, [m.id for m in rows])
    items = [calendar_item(m, confidential=m.id in secret) for m in rows]
    days = []
    day = span.first
    while day < span.last_exclusive:
        d_start, d_end = local_bounds(day, day + dt.timedelta(days=1))
        days.append({"date": day.isoformat(), "label": date_label(day), "weekday": WEEKDAYS[day.weekday()],
                     "meetings": [i for m, i in zip(rows, items, strict=True)
                                  if overlaps(m.starts_at, m.ends_at, d_start, d_end)]})
        day += dt.timedelta(days=1)
    return {"from": span.first.isoformat(), "to": (span.last_exclusive - dt.timedelta(days=1)).isoformat(),
            "days": days, "meetings": items}


# ---------------------------------------------------------------- conflicts


async def conflicts_for(uow: UnitOfWork, meeting: Meeting, user_ids: set[int] | None = None) -> list[dict[str, Any]]:
    """Leaders of this meeting (chair and invited people, or just ``user_ids``) who are already chairing or invited
    to another meeting (not a draft, not cancelled) that overlaps it in time."""
    if user_ids is None:
        seats = (await uow.session.scalars(select(Participant.user_id).where(
            Participant.meeting_id == meeting.id, Participant.user_id.is_not(None)))).all()
        user_ids = {u for u in seats if u is not None} | ({meeting.chair_id} if meeting.chair_id else set())
    if not user_ids:
        return []
    leaders = {u.id: u for u in (await uow.session.scalars(select(User).where(User.id.in_(user_ids)))).all()
               if u.has_role(Role.LEADER)}
    if not leaders:
        return []
    end = meeting.ends_at or meeting.starts_at + DEFAULT_LENGTH
    seated = select(Participant.meeting_id).where(or_(Participant.user_id.in_(leaders),
                                                      Participant.substitute_id.in_(leaders)))
    others = (await uow.session.scalars(select(Meeting).where(
        Meeting.id != meeting.id, Meeting.state.not_in([State.DRAFT, State.CANCELLED]),
        Meeting.starts_at < end, Meeting.starts_at > meeting.starts_at - dt.timedelta(days=7),
        or_(Meeting.chair_id.in_(leaders), Meeting.id.in_(seated))).order_by(Meeting.starts_at))).all()
    others = [o for o in others if overlaps(o.starts_at, o.ends_at, meeting.starts_at, meeting.ends_at)]
    if not others:
        return []
    seats_of: dict[int, set[int]] = {}
    for mid, uid, sub in (await uow.session.execute(select(
            Participant.meeting_id, Participant.user_id, Participant.substitute_id).where(
            Participant.meeting_id.in_([o.id for o in others]),
            or_(Participant.user_id.in_(leaders), Participant.substitute_id.in_(leaders))))).tuples():
        seats_of.setdefault(mid, set()).update(x for x in (uid, sub) if x in leaders)
    secret = await confidential_ids(uow, [o.id for o in others])
    out = []
    for o in others:
        who = seats_of.get(o.id, set()) | ({o.chair_id} if o.chair_id in leaders else set())
        for uid in sorted(who):
            leader = leaders[uid]
            title = CONFIDENTIAL_TITLE if o.id in secret else o.title
            local = o.starts_at.astimezone(AGENCY_TZ)
            out.append({"user_id": uid, "name": leader.full_name, "meeting_id": o.id, "title": title,
                        "starts_at": o.starts_at.isoformat(), "ends_at": o.ends_at.isoformat() if o.ends_at else None,
                        "message": f"{leader.full_name} đã có lịch «{title}» lúc {local:%H:%M %d/%m/%Y}."})
    return out


