"""iCalendar feeds at secret URLs (issue #21), for phones and Outlook to subscribe to.

* ``personal``: the owner's meetings (as their calendar page shows them, drafts left out) and the published
  work-calendar entries that name them as the leader.
* ``leader``: a leader's public calendar: what the page without login shows for them (entries of published
  weeks opened to the public, and their meetings in those weeks).

The URL is a bearer credential: only its sha256 is stored, resetting replaces it (the old URL stops at once),
and a feed never says more than its owner may see. Meetings with a confidential agenda item are always called
``Cuộc họp (mật)``, without place or description, because the URL may travel further than its owner.
Times carry TZID Asia/Ho_Chi_Minh with its VTIMEZONE; UIDs are stable so a client updates, not duplicates.
"""

from __future__ import annotations

import datetime as dt
import secrets

import anyio
from icalendar import Calendar, Event, Timezone
from sqlalchemy import select

from eoffice import audit
from eoffice.agency_time import AGENCY_TZ
from eoffice.identity import sha256
from eoffice.org import Role, User
from meetings import calendar as mcal
from meetings import work_calendar as wc
from meetings.calendar_schema import CalendarFeed, WorkEntry, WorkWeek
from meetings.rules import State
from meetings.schema import Meeting
from storage.db import UnitOfWork
from storage.errors import Forbidden, Invalid, NotFound

KINDS = {"personal": "Lịch cá nhân", "leader": "Lịch công tác công khai của lãnh đạo"}
PAST, FUTURE = dt.timedelta(days=90), dt.timedelta(days=400)
UID_DOMAIN = "eoffice.invalid"  # stable UIDs: meeting-42@..., workcal-7@...


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise Invalid("Loại lịch không hợp lệ (personal hoặc leader).", field="kind")
    return kind


async def reset_token(uow: UnitOfWork, actor: User, kind: str) -> str:
    """A new secret for the actor's feed of this kind (shown once); the previous URL stops working."""
    _kind(kind)
    if kind == "leader" and not actor.has_role(Role.LEADER):
        raise Forbidden("Chỉ lãnh đạo có lịch công tác công khai.")
    token = secrets.token_urlsafe(32)
    feed = await uow.session.scalar(select(CalendarFeed).where(CalendarFeed.user_id == actor.id,
                                                               CalendarFeed.kind == kind).with_for_update())
    if feed is None:
        uow.session.add(CalendarFeed(user_id=actor.id, kind=kind, token_hash=sha256(token)))
    else:
        feed.token_hash = sha256(token)
    await uow.session.flush()
    await audit.record(uow, actor, "calendar.feed.reset", "user", actor.id, kind=kind)
    return token


async def revoke(uow: UnitOfWork, actor: User, kind: str) -> None:
    feed = await uow.session.scalar(select(CalendarFeed).where(CalendarFeed.user_id == actor.id,
                                                               CalendarFeed.kind == _kind(kind)))
    if feed is None:
        raise NotFound("Chưa có đường dẫn lịch loại này.")
    await uow.session.delete(feed)
    await audit.record(uow, actor, "calendar.feed.revoke", "user", actor.id, kind=kind)


async def feeds_of(uow: UnitOfWork, user: User) -> dict[str, bool]:
    rows = (await uow.session.scalars(select(CalendarFeed.kind).where(CalendarFeed.user_id == user.id))).all()
    return {k: k in rows for k in KINDS}


async def owner_of(uow: UnitOfWork, token: str) -> tuple[User, str]:
    """The feed's owner and kind, or NotFound (the same for a wrong, reset or disabled token)."""
    if not token or len(token) > 200:
        raise NotFound("Không tìm thấy lịch.")
    feed = await uow.session.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == sha256(token)))
    user = await uow.session.get(User, feed.user_id) if feed else None
    if feed is None or user is None or not user.active:
        raise NotFound("Không tìm thấy lịch.")
    if feed.kind == "leader" and not user.has_role(Role.LEADER):
        raise NotFound("Không tìm thấy lịch.")
    return user, feed.kind


# ---------------------------------------------------------------- building the calendar


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", "-//eOffice//Lich cong tac//VI")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", AGENCY_TZ.key)
    cal.add("method", "PUBLISH")
    cal.add("x-published-ttl", "PT1H")  # subscribers look again hourly (Outlook, Apple)
    cal.add("refresh-interval", dt.timedelta(hours=1), parameters={"VALUE": "DURATION"})
    start = dt.datetime.now(dt.UTC) - PAST
    cal.add_component(Timezone.from_tzinfo(AGENCY_TZ, first_date=start.date(),
                                           last_date=(start + PAST + FUTURE).date()))
    return cal


def _event(uid: str, summary: str, start: dt.datetime, end: dt.datetime | None, *, place: str = "",
           description: str = "", cancelled: bool = False, stamp: dt.datetime) -> Event:
    ev = Event()
    ev.add("uid", f"{uid}@{UID_DOMAIN}")
    ev.add("dtstamp", stamp.astimezone(dt.UTC))
    ev.add("last-modified", stamp.astimezone(dt.UTC))
    ev.add("summary", summary)
    ev.add("dtstart", start.astimezone(AGENCY_TZ))
    ev.add("dtend", (end or start + mcal.DEFAULT_LENGTH).astimezone(AGENCY_TZ))
    if place:
        ev.add("location", place)
    if description:
        ev.add("description", description)
    ev.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return ev


def _entry_event(e: WorkEntry, names: dict[int, str]) -> Event:
    leaders = ", ".join(names.get(i, "") for i in e.leader_ids)
    lines = [f"Lãnh đạo: {leaders}"] if leaders else []
    if e.participants:
        lines.append(f"Thành phần: {e.participants}")
    if e.preparing_unit:
        lines.append(f"Đơn vị chuẩn bị: {e.preparing_unit}")
    if e.adjusted:
        lines.append(e.adjustment)
    return _event(f"workcal-{e.id}", e.content, e.starts_at, e.ends_at, place=e.place, description="\n".join(lines),
                  cancelled=e.cancelled, stamp=e.updated_at)


def _meeting_event(m: Meeting, secret: bool) -> Event:
    return _event(f"meeting-{m.id}", mcal.CONFIDENTIAL_TITLE if secret else m.title, m.starts_at, m.ends_at,
                  place="" if secret else m.place, cancelled=m.state == State.CANCELLED, stamp=m.updated_at)


async def _names(uow: UnitOfWork, entries: list[WorkEntry]) -> dict[int, str]:
    ids = {i for e in entries for i in e.leader_ids}
    if not ids:
        return {}
    return dict((await uow.session.execute(select(User.id, User.full_name).where(User.id.in_(ids)))).tuples().all())


async def render(uow: UnitOfWork, owner: User, kind: str) -> bytes:
    now = dt.datetime.now(dt.UTC)
    start, end = now - PAST, now + FUTURE
    if kind == "personal":
        cal = _calendar(f"Lịch của {owner.full_name}")
        rows = await mcal.meetings_between(uow, owner, start, end, drafts=False)
        secret = await mcal.confidential_ids(uow, [m.id for m in rows])
        for m in rows:
            cal.add_component(_meeting_event(m, m.id in secret))
        entries = await wc.published_entries_of(uow, owner.id, start, end, public_only=False)
    else:
        cal = _calendar(f"Lịch công tác của {owner.full_name}")
        weeks = (await uow.session.scalars(select(WorkWeek).where(
            WorkWeek.state == wc.PUBLISHED, WorkWeek.public.is_(True),
            WorkWeek.week_start >= (start - dt.timedelta(days=7)).date(), WorkWeek.week_start < end.date()))).all()
        entries = await wc.published_entries_of(uow, owner.id, start, end, public_only=True)
        seen: set[int] = set()
        for week in weeks:  # the leader's meetings in weeks opened to the public, as the public page shows them
            w_start, w_end = mcal.local_bounds(week.week_start, week.week_start + dt.timedelta(days=7))
            found = await wc.leader_meetings(uow, [owner.id], w_start, w_end)
            secret = await mcal.confidential_ids(uow, [m.id for m, _ in found])
            for m, _ in found:
                if m.id not in seen:
                    seen.add(m.id)
                    cal.add_component(_meeting_event(m, m.id in secret))
    names = await _names(uow, entries)
    for e in entries:
        cal.add_component(_entry_event(e, names))
    # serialising is ~0.5 ms a meeting (160 ms for 300): in a thread, not on the loop every tablet shares
    return await anyio.to_thread.run_sync(cal.to_ical)
