"""Speaking budgets per delegation (tổ đại biểu) for councils (#20).

A council's session groups its delegates into delegations; each gets a total speaking time for all its members'
turns. The chair, the secretary or the organiser names the delegations with their budget and puts seats in them.
A turn counts for the delegation of the seat it was asked from (``SpeakerRequest.participant_id``; a remote
site's turn belongs to no delegation). The budget is a guide, like a turn's limit: shown, never enforced.

While someone speaks, their turn carries its delegation's budget and the seconds its other turns used
(``turn_budget``), so the speaker's countdown on the chair's tablet and the room screen also shows what the
delegation has left (budget - used before - this turn's time), counted on the client like the turn's clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from eoffice import audit
from eoffice.org import User
from meetings import topics
from meetings.meetings import get_context, view_context
from meetings.schema import Delegation, Participant, SpeakerRequest
from storage.db import UnitOfWork
from storage.errors import Conflict, Invalid, NotFound

BUDGET_RANGE = (60, 24 * 3600)  # seconds


def _budget(value: int | None) -> int | None:
    if value is None:
        return None
    low, high = BUDGET_RANGE
    if not low <= int(value) <= high:
        raise Invalid(f"Thời gian của tổ từ {low // 60} phút đến {high // 3600} giờ.", field="budget")
    return int(value)


async def _emit(uow: UnitOfWork, meeting_id: int) -> None:
    from meetings import speakers  # the queue carries the speaking turn's budget (speakers reads this module)

    await uow.session.flush()
    uow.emit(topics.room(meeting_id), "delegations.changed")
    await speakers.emit_queue(uow, meeting_id)


async def save(uow: UnitOfWork, actor: User, meeting_id: int, *, name: str, budget: int | None,
               delegation_id: int | None = None) -> Delegation:
    """Add a delegation, or rename it and change its budget (seconds; None: no budget). Who manages the meeting."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    name = " ".join(str(name or "").split())
    if not name or len(name) > 200:
        raise Invalid("Cần nhập tên tổ đại biểu (tối đa 200 ký tự).", field="name")
    seconds = _budget(budget)
    clash = await uow.session.scalar(select(Delegation.id).where(
        Delegation.meeting_id == meeting_id, Delegation.name == name, Delegation.id != (delegation_id or 0)))
    if clash:
        raise Conflict(f"Đã có tổ đại biểu «{name}».", field="name")
    if delegation_id is None:
        d = Delegation(meeting_id=meeting_id, name=name, budget=seconds)
        uow.session.add(d)
    else:
        found = await uow.session.get(Delegation, delegation_id)
        if found is None or found.meeting_id != meeting_id:
            raise NotFound("Không tìm thấy tổ đại biểu.")
        d = found
        d.name, d.budget = name, seconds
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.delegation.save", "meeting", meeting_id, delegation_id=d.id,
                       name=d.name, budget=d.budget, created=delegation_id is None)
    await _emit(uow, meeting_id)
    return d


async def assign(uow: UnitOfWork, actor: User, meeting_id: int, participant_id: int,
                 delegation_id: int | None) -> Participant:
    """Put a seat in a delegation (None: in none)."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    p = await uow.session.get(Participant, participant_id)
    if p is None or p.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy người dự họp.")
    if delegation_id is not None:
        d = await uow.session.get(Delegation, delegation_id)
        if d is None or d.meeting_id != meeting_id:
            raise NotFound("Không tìm thấy tổ đại biểu.", field="delegation_id")
    p.delegation_id = delegation_id
    await audit.record(uow, actor, "meeting.participant.delegation", "meeting", meeting_id,
                       participant_id=p.id, delegation_id=delegation_id)
    await _emit(uow, meeting_id)
    return p


async def usage(uow: UnitOfWork, meeting_id: int, visible: set[int] | None = None,
                now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per delegation, in the order they were added: budget, seconds used (pauses left out, a turn going on
    counted to ``now``), what is left, turns and members. ``visible``: only turns on those agenda items (and
    those outside any item), as the minutes' speaker statistics."""
    delegations = (await uow.session.scalars(select(Delegation).where(Delegation.meeting_id == meeting_id)
                                             .order_by(Delegation.id))).all()
    if not delegations:
        return []
    seats: dict[int, int] = {pid: did for pid, did in (await uow.session.execute(
        select(Participant.id, Participant.delegation_id).where(
            Participant.meeting_id == meeting_id, Participant.delegation_id.is_not(None)))).tuples().all() if did}
    turns = (await uow.session.scalars(select(SpeakerRequest).where(
        SpeakerRequest.meeting_id == meeting_id, SpeakerRequest.granted_at.is_not(None),
        SpeakerRequest.participant_id.in_(list(seats) or [0])))).all()
    used: dict[int, int] = {d.id: 0 for d in delegations}
    count: dict[int, int] = {d.id: 0 for d in delegations}
    for t in turns:
        if visible is not None and t.item_id is not None and t.item_id not in visible:
            continue
        did = seats[t.participant_id or 0]
        used[did] += t.elapsed(now) or 0
        count[did] += 1
    out = [{"id": d.id, "name": d.name, "budget": d.budget, "used": used[d.id], "count": count[d.id],
            "remaining": None if d.budget is None else d.budget - used[d.id],
            "members": sum(1 for v in seats.values() if v == d.id)} for d in delegations]
    return out


async def turn_budget(uow: UnitOfWork, req: SpeakerRequest) -> dict[str, Any] | None:
    """The delegation of a turn with its budget and the seconds its other turns used (None: no delegation)."""
    if req.participant_id is None:
        return None
    p = await uow.session.get(Participant, req.participant_id)
    d = await uow.session.get(Delegation, p.delegation_id) if p is not None and p.delegation_id else None
    if d is None:
        return None
    others = (await uow.session.scalars(select(SpeakerRequest).join(
        Participant, Participant.id == SpeakerRequest.participant_id).where(
        Participant.delegation_id == d.id, SpeakerRequest.granted_at.is_not(None),
        SpeakerRequest.id != req.id))).all()
    return {"id": d.id, "name": d.name, "budget": d.budget, "used_before": sum(t.elapsed() or 0 for t in others)}


async def delegations_view(uow: UnitOfWork, actor: User, meeting_id: int) -> dict[str, Any]:
    """The delegations with their use, and which seat is in which: for whoever may view the meeting."""
    ctx = await view_context(uow, actor, meeting_id)
    seats = dict((await uow.session.execute(select(Participant.id, Participant.delegation_id).where(
        Participant.meeting_id == ctx.meeting.id))).tuples().all())
    return {"delegations": await usage(uow, ctx.meeting.id), "seats": {str(k): v for k, v in seats.items()},
            "may_manage": ctx.access.manager}
