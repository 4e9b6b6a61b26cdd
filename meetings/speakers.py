"""Speakers' queue: request to speak, the chair orders and grants the floor, timer, history with durations.

One person speaks at a time: granting the floor ends the current turn. The timer runs on the
clients from ``granted_at``, ``paused_at`` and ``paused_seconds`` (the snapshot carries the server time to
correct tablet clocks; ``web/static/js/speaking-clock.js``).

Speaking time (#20): a turn's limit is the one the chair set on the request, else the meeting's
``speaking_time``, else none. The clock starts when the floor is given; the chair pauses, resumes and
extends it. Over time is shown (in red), never cut. Every service that reads the time takes ``clock``
(``storage.db.utcnow`` by default) so tests move time without sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from eoffice import audit
from eoffice.org import User
from meetings import rules, speaking_budgets, topics
from meetings.agenda import can_see, items_of
from meetings.meetings import SPEAKING_TIME_RANGE, get_context, user_names
from meetings.rules import SpeakerState
from meetings.schema import AgendaItem, Meeting, Participant, Site, SpeakerRequest
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

HISTORY_IN_EVENTS = 30
NOTE_LIMIT = 2000
LIMIT_RANGE = SPEAKING_TIME_RANGE  # seconds a turn may be given
EXTEND_RANGE = (10, 3600)  # seconds added at once

Clock = Callable[[], dt.datetime]


def timing(req: SpeakerRequest, now: dt.datetime) -> dict[str, Any]:
    """Where a turn's clock stands at ``now``: seconds spoken, the limit, what is left (negative: over time)."""
    elapsed = req.elapsed(now) or 0
    limit = req.time_limit
    return {"elapsed": elapsed, "limit": limit, "remaining": None if limit is None else limit - elapsed,
            "over": limit is not None and elapsed > limit, "paused": req.paused_at is not None}


def _limit(value: int | None, field: str = "time_limit", bounds: tuple[int, int] = LIMIT_RANGE) -> int | None:
    if value is None:
        return None
    if not bounds[0] <= int(value) <= bounds[1]:
        low, high = bounds
        raise Invalid(f"Thời gian từ {low} giây đến {high // 60} phút.", field=field)
    return int(value)


async def queue_view(uow: UnitOfWork, meeting_id: int, history: int | None = None) -> dict[str, Any]:
    rows = (await uow.session.scalars(
        select(SpeakerRequest).where(SpeakerRequest.meeting_id == meeting_id)
        .order_by(SpeakerRequest.position, SpeakerRequest.id)
    )).all()
    waiting = [r.public() for r in rows if r.state == SpeakerState.WAITING]
    current = next((r for r in rows if r.state == SpeakerState.SPEAKING), None)
    speaking = None
    if current is not None:  # with its delegation's speaking budget (councils), for the countdown
        speaking = {**current.public(), "delegation": await speaking_budgets.turn_budget(uow, current)}
    done = sorted((r for r in rows if r.state == SpeakerState.DONE), key=lambda r: r.granted_at or r.requested_at)
    if history is not None:
        done = done[-history:]
    return {"queue": waiting, "speaking": speaking, "history": [r.public() for r in done]}


async def _emit(uow: UnitOfWork, meeting_id: int) -> None:
    await uow.session.flush()
    uow.emit(topics.room(meeting_id), "speakers.changed", **await queue_view(uow, meeting_id, HISTORY_IN_EVENTS))


emit_queue = _emit  # the delegations' budgets change what the queue shows (meetings.speaking_budgets)


async def _open_request(uow: UnitOfWork, meeting_id: int, *, user_id: int | None = None,
                        site_id: int | None = None) -> SpeakerRequest | None:
    q = select(SpeakerRequest).where(SpeakerRequest.meeting_id == meeting_id,
                                     SpeakerRequest.state.in_([SpeakerState.WAITING, SpeakerState.SPEAKING]))
    q = q.where(SpeakerRequest.site_id == site_id) if site_id is not None else q.where(
        SpeakerRequest.user_id == user_id, SpeakerRequest.site_id.is_(None))
    return await uow.session.scalar(q.limit(1))


async def request_floor(
    uow: UnitOfWork,
    actor: User,
    meeting_id: int,
    *,
    site_id: int | None = None,
    participant_id: int | None = None,
    item_id: int | None = None,
    note: str = "",
) -> SpeakerRequest:
    """Ask for the floor for oneself, for one's remote site (operator), or, as chair or secretary,
    put a participant without a tablet in the queue. Before the meeting (invitations sent) too: a registration
    with the question or topic (``note``) and the agenda item it is about, which the chair reads when preparing
    and which waits in the queue when the meeting starts."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    m = ctx.meeting
    if m.state != rules.State.INVITED:
        rules.require_live(m.state)
    note = str(note or "").strip()
    if len(note) > NOTE_LIMIT:
        raise Invalid(f"Nội dung đăng ký tối đa {NOTE_LIMIT} ký tự.", field="note")
    if item_id is not None:
        item = await uow.session.get(AgendaItem, item_id)
        if item is None or item.meeting_id != m.id or not await can_see(uow, ctx.access, item):
            raise NotFound("Không tìm thấy nội dung họp.")
    user_id: int | None = actor.id
    name = actor.full_name
    seat_id: int | None = None
    if participant_id is not None:
        p = await uow.session.get(Participant, participant_id)
        if p is None or p.meeting_id != m.id:
            raise NotFound("Không tìm thấy người dự họp.")
        if not (ctx.access.controller or p.id in ctx.access.seats):
            raise Forbidden("Chỉ chủ trì hoặc thư ký được đăng ký phát biểu thay người khác.")
        user_id, seat_id = p.attendee_id, p.id
        name = (await _seat_name(uow, p)) or name
    elif site_id is not None:
        site = await uow.session.get(Site, site_id)
        if site is None or site.meeting_id != m.id:
            raise NotFound("Không tìm thấy điểm cầu.")
        if not (site.id in ctx.access.sites or ctx.access.controller):
            raise Forbidden("Chỉ người vận hành điểm cầu được đăng ký phát biểu cho điểm cầu.")
        name = f"Điểm cầu {site.name}"
        user_id = site.operator_id
    else:
        if not ctx.access.seats and not ctx.access.controller:
            raise Forbidden("Chỉ người dự họp được đăng ký phát biểu.")
        seat_id = min(ctx.access.seats) if ctx.access.seats else None
    if await _open_request(uow, m.id, user_id=user_id, site_id=site_id):
        raise Conflict("Đã có trong danh sách chờ phát biểu.")
    last = await uow.session.scalar(select(func.max(SpeakerRequest.position))
                                    .where(SpeakerRequest.meeting_id == m.id)) or 0
    req = SpeakerRequest(meeting_id=m.id, item_id=item_id or m.current_item_id, user_id=user_id,
                         participant_id=seat_id, site_id=site_id, name=name[:300], position=last + 1,
                         created_by=actor.id, note=note, note_item_id=item_id)
    uow.session.add(req)
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.speaker.request", "meeting", m.id, request_id=req.id, site_id=site_id,
                       participant_id=seat_id, early=m.state == rules.State.INVITED, note_length=len(note))
    await _emit(uow, m.id)
    return req


async def _seat_name(uow: UnitOfWork, p: Participant) -> str:
    names = await user_names(uow, {p.attendee_id})
    if p.attendee_id in names:
        return names[p.attendee_id].full_name  # type: ignore[index]
    return p.guest_name


async def _request(uow: UnitOfWork, actor: User, request_id: int, *,
                   early: bool = False) -> tuple[SpeakerRequest, Meeting, rules.Access]:
    req = await uow.session.get(SpeakerRequest, request_id)
    if req is None:
        raise NotFound("Không tìm thấy lượt phát biểu.")
    ctx = await get_context(uow, actor, req.meeting_id, lock=True)
    if not (early and ctx.meeting.state == rules.State.INVITED):
        rules.require_live(ctx.meeting.state)
    await uow.session.refresh(req)  # re-read under the meeting lock
    return req, ctx.meeting, ctx.access


async def withdraw(uow: UnitOfWork, actor: User, request_id: int) -> SpeakerRequest:
    req, m, access = await _request(uow, actor, request_id, early=True)
    if not (access.controller or req.created_by == actor.id or req.user_id == actor.id):
        raise Forbidden("Bạn không rút được lượt phát biểu này.")
    if req.state != SpeakerState.WAITING:
        raise Conflict("Chỉ rút được lượt đang chờ.")
    req.state = SpeakerState.WITHDRAWN
    req.ended_at = utcnow()
    await audit.record(uow, actor, "meeting.speaker.withdraw", "meeting", m.id, request_id=req.id)
    await _emit(uow, m.id)
    return req


def _end(req: SpeakerRequest, now: dt.datetime) -> None:
    _settle_pause(req, now)
    req.state = SpeakerState.DONE
    req.ended_at = now


def _settle_pause(req: SpeakerRequest, now: dt.datetime) -> None:
    if req.paused_at is not None:
        req.paused_seconds = (req.paused_seconds or 0) + max(0, int((now - req.paused_at).total_seconds()))
        req.paused_at = None


async def _end_current(uow: UnitOfWork, meeting_id: int, now: dt.datetime) -> SpeakerRequest | None:
    current = await uow.session.scalar(select(SpeakerRequest).where(
        SpeakerRequest.meeting_id == meeting_id, SpeakerRequest.state == SpeakerState.SPEAKING))
    if current is not None:
        _end(current, now)
    return current


async def grant(uow: UnitOfWork, actor: User, request_id: int, *, time_limit: int | None = None,
                clock: Clock = utcnow) -> SpeakerRequest:
    """Give the floor; the limit is ``time_limit``, else the one set on the request, else the meeting's."""
    req, m, access = await _request(uow, actor, request_id)
    access.require_control()
    if req.state != SpeakerState.WAITING:
        raise Conflict("Lượt phát biểu này không còn chờ.")
    limit = _limit(time_limit)
    now = clock()
    previous = await _end_current(uow, m.id, now)
    req.state = SpeakerState.SPEAKING
    req.granted_at = now
    req.time_limit = limit or req.time_limit or m.speaking_time
    req.paused_at, req.paused_seconds = None, 0
    req.item_id = m.current_item_id
    await audit.record(uow, actor, "meeting.speaker.grant", "meeting", m.id, request_id=req.id,
                       ended_request_id=previous.id if previous else None, time_limit=req.time_limit)
    await _emit(uow, m.id)
    return req


async def finish(uow: UnitOfWork, actor: User, request_id: int, *, clock: Clock = utcnow) -> SpeakerRequest:
    req, m, access = await _request(uow, actor, request_id)
    if not (access.controller or req.user_id == actor.id):
        raise Forbidden("Chỉ chủ trì, thư ký hoặc người đang phát biểu được kết thúc lượt này.")
    if req.state != SpeakerState.SPEAKING:
        raise Conflict("Lượt này không đang phát biểu.")
    _end(req, clock())
    await audit.record(uow, actor, "meeting.speaker.finish", "meeting", m.id, request_id=req.id,
                       seconds=req.duration)
    await _emit(uow, m.id)
    return req


async def reorder_queue(uow: UnitOfWork, actor: User, meeting_id: int, request_ids: list[int]) -> list[int]:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_control()
    rules.require_live(ctx.meeting.state)
    waiting = (await uow.session.scalars(select(SpeakerRequest).where(
        SpeakerRequest.meeting_id == meeting_id, SpeakerRequest.state == SpeakerState.WAITING)
        .order_by(SpeakerRequest.position, SpeakerRequest.id))).all()
    by_id = {r.id: r for r in waiting}
    order = rules.reorder([r.id for r in waiting], [int(i) for i in request_ids])
    base = min((r.position for r in waiting), default=1)
    for offset, rid in enumerate(order):
        by_id[rid].position = base + offset
    await audit.record(uow, actor, "meeting.speaker.reorder", "meeting", meeting_id, order=order)
    await _emit(uow, meeting_id)
    return order


async def close_queue(uow: UnitOfWork, meeting_id: int, now: dt.datetime) -> None:
    """When the meeting ends: the current turn is over, nobody is still waiting."""
    rows = (await uow.session.scalars(select(SpeakerRequest).where(
        SpeakerRequest.meeting_id == meeting_id,
        SpeakerRequest.state.in_([SpeakerState.WAITING, SpeakerState.SPEAKING])))).all()
    for r in rows:
        if r.state == SpeakerState.SPEAKING:
            _end(r, now)
        else:
            r.state, r.ended_at = SpeakerState.WITHDRAWN, now


# ---------------------------------------------------------------- speaking time


async def set_limit(uow: UnitOfWork, actor: User, request_id: int, seconds: int | None) -> SpeakerRequest:
    """The chair sets a request's own limit (None: the meeting's default), before or during the turn."""
    req, m, access = await _request(uow, actor, request_id, early=True)
    access.require_control()
    if req.state not in (SpeakerState.WAITING, SpeakerState.SPEAKING):
        raise Conflict("Lượt phát biểu này đã kết thúc.")
    req.time_limit = _limit(seconds)
    if req.time_limit is None and req.state == SpeakerState.SPEAKING:
        req.time_limit = m.speaking_time
    await audit.record(uow, actor, "meeting.speaker.limit", "meeting", m.id, request_id=req.id,
                       time_limit=req.time_limit)
    await _emit(uow, m.id)
    return req


async def _speaking(uow: UnitOfWork, actor: User, request_id: int) -> tuple[SpeakerRequest, Meeting]:
    req, m, access = await _request(uow, actor, request_id)
    access.require_control()
    if req.state != SpeakerState.SPEAKING:
        raise Conflict("Lượt này không đang phát biểu.")
    return req, m


async def pause(uow: UnitOfWork, actor: User, request_id: int, *, clock: Clock = utcnow) -> SpeakerRequest:
    req, m = await _speaking(uow, actor, request_id)
    if req.paused_at is None:
        req.paused_at = clock()
        await audit.record(uow, actor, "meeting.speaker.pause", "meeting", m.id, request_id=req.id,
                           seconds=req.elapsed())
        await _emit(uow, m.id)
    return req


async def resume(uow: UnitOfWork, actor: User, request_id: int, *, clock: Clock = utcnow) -> SpeakerRequest:
    req, m = await _speaking(uow, actor, request_id)
    if req.paused_at is not None:
        _settle_pause(req, clock())
        await audit.record(uow, actor, "meeting.speaker.resume", "meeting", m.id, request_id=req.id)
        await _emit(uow, m.id)
    return req


async def extend(uow: UnitOfWork, actor: User, request_id: int, seconds: int, *,
                 clock: Clock = utcnow) -> SpeakerRequest:
    """Give more time: added to the limit (a turn without one gets its time so far plus ``seconds``)."""
    req, m = await _speaking(uow, actor, request_id)
    more = _limit(seconds, "seconds", EXTEND_RANGE) or 0
    base = req.time_limit if req.time_limit is not None else (req.elapsed(clock()) or 0)
    req.time_limit = min(base + more, LIMIT_RANGE[1] + EXTEND_RANGE[1])
    await audit.record(uow, actor, "meeting.speaker.extend", "meeting", m.id, request_id=req.id, seconds=more,
                       time_limit=req.time_limit)
    await _emit(uow, m.id)
    return req


async def speaker_stats(uow: UnitOfWork, meeting_id: int, visible: set[int] | None = None) -> list[dict[str, Any]]:
    """Per speaker, in order of first turn: turns taken and seconds spoken (pauses left out). ``visible``: only
    turns on those agenda items (and those outside any item)."""
    rows = (await uow.session.scalars(select(SpeakerRequest).where(
        SpeakerRequest.meeting_id == meeting_id, SpeakerRequest.granted_at.is_not(None))
        .order_by(SpeakerRequest.granted_at, SpeakerRequest.id))).all()
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        if visible is not None and r.item_id is not None and r.item_id not in visible:
            continue
        key = ("site", r.site_id) if r.site_id else ("user", r.user_id) if r.user_id else ("name", r.name)
        row = out.setdefault(key, {"name": r.name, "user_id": r.user_id, "site_id": r.site_id, "count": 0,
                                   "seconds": 0, "over": 0})
        row["count"] += 1
        row["seconds"] += r.elapsed() or 0
        if r.time_limit is not None and (r.elapsed() or 0) > r.time_limit:
            row["over"] += 1
    return list(out.values())


async def questions(uow: UnitOfWork, actor: User, meeting_id: int) -> dict[str, str]:
    """The registered questions of the turns waiting and speaking, by request id: for the chair's live queue
    (chair and secretary; the room's events never carry them)."""
    ctx = await get_context(uow, actor, meeting_id)
    ctx.access.require_control()
    rows = (await uow.session.execute(select(SpeakerRequest.id, SpeakerRequest.note).where(
        SpeakerRequest.meeting_id == meeting_id, SpeakerRequest.note != "",
        SpeakerRequest.state.in_([SpeakerState.WAITING, SpeakerState.SPEAKING])))).tuples().all()
    return {str(rid): note for rid, note in rows}


async def registrations(uow: UnitOfWork, actor: User, meeting_id: int) -> list[dict[str, Any]]:
    """Who is waiting to speak, in order, with their question or topic and its agenda item: what the chair reads
    when preparing (registrations sent before the meeting are marked ``early``). Chair, secretary, organiser."""
    ctx = await get_context(uow, actor, meeting_id)
    ctx.access.require_manage()
    m = ctx.meeting
    rows = (await uow.session.scalars(select(SpeakerRequest).where(
        SpeakerRequest.meeting_id == m.id, SpeakerRequest.state == SpeakerState.WAITING)
        .order_by(SpeakerRequest.position, SpeakerRequest.id))).all()
    items = {i.id: i for i in await items_of(uow, m.id)}
    numbers = {iid: n for n, iid in enumerate(items, start=1)}
    return [{**r.public(), "note": r.note, "item_title": items[r.item_id].title if r.item_id in items else "",
             "item_number": numbers.get(r.item_id or 0),
             "early": m.started_at is None or r.requested_at < m.started_at} for r in rows]
