"""Check-in (on the tablet, by the secretary, or by a remote site's operator) and the live quorum."""

from __future__ import annotations

from sqlalchemy import func, select

from eoffice import audit
from eoffice.org import User
from meetings import rules, topics
from meetings.meetings import get_context
from meetings.rules import Quorum, State
from meetings.schema import Meeting, Participant
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, NotFound

CHECK_IN_STATES = {State.INVITED, State.IN_PROGRESS}


async def quorum_of(uow: UnitOfWork, meeting: Meeting) -> Quorum:
    entitled = await uow.session.scalar(select(func.count()).select_from(Participant).where(
        Participant.meeting_id == meeting.id, Participant.entitled.is_(True))) or 0
    present = await uow.session.scalar(select(func.count()).select_from(Participant).where(
        Participant.meeting_id == meeting.id, Participant.entitled.is_(True),
        Participant.checked_in_at.is_not(None), Participant.checked_out_at.is_(None))) or 0
    return rules.quorum(int(present), int(entitled), meeting.quorum_rule)


async def _seat(uow: UnitOfWork, participant_id: int) -> Participant:
    p = await uow.session.get(Participant, participant_id)
    if p is None:
        raise NotFound("Không tìm thấy người dự họp.")
    return p


async def check_in(uow: UnitOfWork, actor: User, participant_id: int) -> Participant:
    p = await _seat(uow, participant_id)
    ctx = await get_context(uow, actor, p.meeting_id, lock=True)
    m = ctx.meeting
    if not rules.may_check_in(ctx.access, p.seat()):
        raise Forbidden("Bạn không điểm danh được cho người này.")
    if State(m.state) not in CHECK_IN_STATES:
        raise Conflict("Chỉ điểm danh khi cuộc họp đã gửi giấy mời và chưa kết thúc.")
    if p.response == rules.Response.DECLINED and not ctx.access.controller:
        raise Conflict("Bạn đã báo vắng; hãy đổi phản hồi trước khi điểm danh.")
    if p.attendee_id is None and p.user_id is None and p.unit_id is not None:
        raise Conflict("Đơn vị chưa cử người dự họp.")
    if p.present:
        return p
    now = utcnow()
    p.checked_in_at = now
    p.checked_out_at = None
    p.checked_in_by = actor.id
    p.check_in_method = ("tablet" if p.attendee_id == actor.id else
                         "secretary" if ctx.access.controller else "operator")
    if p.response == rules.Response.PENDING:
        p.response = rules.Response.ACCEPTED
    await _after(uow, actor, m, p, "meeting.check_in")
    return p


async def check_out(uow: UnitOfWork, actor: User, participant_id: int) -> Participant:
    p = await _seat(uow, participant_id)
    ctx = await get_context(uow, actor, p.meeting_id, lock=True)
    if not rules.may_check_in(ctx.access, p.seat()):
        raise Forbidden("Bạn không điểm danh được cho người này.")
    if State(ctx.meeting.state) not in CHECK_IN_STATES:
        raise Conflict("Chỉ cập nhật điểm danh khi cuộc họp chưa kết thúc.")
    if not p.present:
        return p
    p.checked_out_at = utcnow()
    await _after(uow, actor, ctx.meeting, p, "meeting.check_out")
    return p


async def _after(uow: UnitOfWork, actor: User, m: Meeting, p: Participant, action: str) -> None:
    await uow.session.flush()
    q = await quorum_of(uow, m)
    await audit.record(uow, actor, action, "meeting", m.id, participant_id=p.id, method=p.check_in_method,
                       present=q.present, entitled=q.entitled)
    uow.emit(topics.room(m.id), "attendance.changed", participant_id=p.id, present=p.present,
             method=p.check_in_method, quorum=q.public())
