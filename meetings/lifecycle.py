"""A meeting's state changes after the invitations: start, end, archive, cancel.

Ending a meeting reaches into other aggregates in the same transaction: it closes the current agenda
item and the speakers' queue, and closes and counts the meeting's open poll (``voting``). Those
services import ``meetings.meetings`` (contexts, names), so the transitions live here, above them,
instead of in ``meetings.meetings`` with imports inside functions.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from eoffice import audit
from eoffice.org import User
from meetings import rules, topics
from meetings.meetings import get_context, notify, touch
from meetings.rules import State
from meetings.schema import AgendaItem, Meeting, Participant
from meetings.speakers import close_queue
from meetings.voting import close_for_meeting_end
from storage.db import UnitOfWork, utcnow

__all__ = ["archive_meeting", "cancel_meeting", "end_meeting", "start_meeting"]


async def _transition(uow: UnitOfWork, actor: User, meeting_id: int, target: State, action: str,
                      chair_only: bool = True) -> Meeting:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    if chair_only:
        ctx.access.require_chair()
    else:
        ctx.access.require_manage()
    m = ctx.meeting
    rules.check_transition(m.state, target)
    now = utcnow()
    m.state = target
    touch(m)
    if target is State.IN_PROGRESS:
        m.started_at = now
    elif target is State.ENDED:
        m.ended_at = now
        await _close_room(uow, m, now)
        await _close_polls(uow, actor, m)
    await audit.record(uow, actor, action, "meeting", m.id)
    uow.emit(topics.room(m.id), "meeting.state", state=m.state, at=now.isoformat(), current_item_id=m.current_item_id)
    return m


async def _close_polls(uow: UnitOfWork, actor: User, m: Meeting) -> None:
    """Ending the meeting closes its open poll and counts it (reason "meeting_end", audited as every close):
    the votes were cast in the meeting, and refusing to end would leave the chair to find and close a poll
    while the room is leaving. Only a live meeting can have an open poll, and only ending leaves that state."""
    await close_for_meeting_end(uow, actor, m)


async def _close_room(uow: UnitOfWork, m: Meeting, now: dt.datetime) -> None:
    if m.current_item_id is not None:
        item = await uow.session.get(AgendaItem, m.current_item_id)
        if item is not None and item.ended_at is None:
            item.ended_at = now
            item.status = "done"
    m.presenter_id = None
    m.presentation = None
    await close_queue(uow, m.id, now)


async def start_meeting(uow: UnitOfWork, actor: User, meeting_id: int) -> Meeting:
    return await _transition(uow, actor, meeting_id, State.IN_PROGRESS, "meeting.start")


async def end_meeting(uow: UnitOfWork, actor: User, meeting_id: int) -> Meeting:
    return await _transition(uow, actor, meeting_id, State.ENDED, "meeting.end")


async def archive_meeting(uow: UnitOfWork, actor: User, meeting_id: int) -> Meeting:
    return await _transition(uow, actor, meeting_id, State.ARCHIVED, "meeting.archive", chair_only=False)


async def cancel_meeting(uow: UnitOfWork, actor: User, meeting_id: int, reason: str = "") -> Meeting:
    m = await _transition(uow, actor, meeting_id, State.CANCELLED, "meeting.cancel", chair_only=False)
    if m.invited_at is not None:
        seats = (await uow.session.scalars(select(Participant).where(Participant.meeting_id == m.id))).all()
        for uid in sorted({a for p in seats if (a := p.attendee_id) and a != actor.id}):
            notify(uow, uid, f"Cuộc họp đã bị hủy: {m.title}" + (f" ({reason.strip()})" if reason.strip() else ""),
                   m.id, urgent=True)
    return m
