"""Vote weights and proxies (ủy quyền) of a meeting, and who may vote when a poll opens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from eoffice import audit
from eoffice.org import User
from meetings import rules, topics
from meetings import voting_rules as vr
from meetings.meetings import get_context, view_context
from meetings.rules import State as MeetingState
from meetings.schema import Participant, Poll, VotingRight
from meetings.voting.views import iso
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound


async def _right(uow: UnitOfWork, meeting_id: int, participant_id: int) -> VotingRight:
    row = await uow.session.scalar(select(VotingRight).where(
        VotingRight.meeting_id == meeting_id, VotingRight.participant_id == participant_id))
    if row is None:
        row = VotingRight(meeting_id=meeting_id, participant_id=participant_id, weight=1, proxy_note="")
        uow.session.add(row)
    return row


async def _seat_of(uow: UnitOfWork, meeting_id: int, participant_id: int, field: str) -> Participant:
    p = await uow.session.get(Participant, participant_id)
    if p is None or p.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy người dự họp.", field=field)
    if not p.voting:
        raise Invalid("Người này không có quyền biểu quyết.", field=field)
    return p


async def set_weight(uow: UnitOfWork, actor: User, meeting_id: int, participant_id: int, weight: int) -> VotingRight:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    rules.require_editable(ctx.meeting.state)
    await _seat_of(uow, meeting_id, participant_id, "participant_id")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 1_000_000:
        raise Invalid("Trọng số phiếu phải là số nguyên từ 0 đến 1.000.000.", field="weight")
    row = await _right(uow, meeting_id, participant_id)
    row.weight = weight
    await audit.record(uow, actor, "poll.weight", "meeting", meeting_id, participant_id=participant_id, weight=weight)
    return row


async def grant_proxy(uow: UnitOfWork, actor: User, meeting_id: int, grantor_id: int, holder_id: int,
                      note: str = "") -> VotingRight:
    """Ủy quyền: the absent member (or the chair/secretary recording a signed paper) names a holder."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    grantor = await _seat_of(uow, meeting_id, grantor_id, "grantor_id")
    holder = await _seat_of(uow, meeting_id, holder_id, "holder_id")
    if not (ctx.access.controller or grantor.id in ctx.access.seats):
        raise Forbidden("Chỉ người ủy quyền, chủ trì hoặc thư ký được ghi nhận ủy quyền.")
    if MeetingState(ctx.meeting.state) not in (MeetingState.INVITED, MeetingState.IN_PROGRESS):
        raise Conflict("Chỉ ủy quyền khi cuộc họp đã gửi giấy mời và chưa kết thúc.")
    if grantor.id == holder.id:
        raise Invalid("Không thể tự ủy quyền cho chính mình.", field="holder_id")
    holder_right = await uow.session.scalar(select(VotingRight).where(
        VotingRight.meeting_id == meeting_id, VotingRight.participant_id == holder.id))
    if holder_right is not None and holder_right.proxy_holder_id is not None:
        raise Conflict("Người nhận đã ủy quyền cho người khác nên không nhận ủy quyền được.", field="holder_id")
    chained = await uow.session.scalar(select(VotingRight.id).where(
        VotingRight.meeting_id == meeting_id, VotingRight.proxy_holder_id == grantor.id))
    if chained:
        raise Conflict("Người này đang giữ ủy quyền của người khác nên không ủy quyền tiếp được.", field="grantor_id")
    row = await _right(uow, meeting_id, grantor.id)
    row.proxy_holder_id = holder.id
    row.proxy_given_at = utcnow()
    row.proxy_recorded_by = actor.id
    row.proxy_note = (note or "").strip()[:500]
    await audit.record(uow, actor, "poll.proxy.grant", "meeting", meeting_id, grantor_id=grantor.id,
                       holder_id=holder.id, note=row.proxy_note)
    uow.emit(topics.room(meeting_id), "poll.proxies", grantor_id=grantor.id, holder_id=holder.id)
    return row


async def revoke_proxy(uow: UnitOfWork, actor: User, meeting_id: int, grantor_id: int) -> None:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    if not (ctx.access.controller or grantor_id in ctx.access.seats):
        raise Forbidden("Chỉ người ủy quyền, chủ trì hoặc thư ký được hủy ủy quyền.")
    row = await uow.session.scalar(select(VotingRight).where(
        VotingRight.meeting_id == meeting_id, VotingRight.participant_id == grantor_id))
    if row is None or row.proxy_holder_id is None:
        raise NotFound("Người này chưa ủy quyền.")
    holder = row.proxy_holder_id
    row.proxy_holder_id = None
    row.proxy_given_at = None
    await audit.record(uow, actor, "poll.proxy.revoke", "meeting", meeting_id, grantor_id=grantor_id,
                       holder_id=holder)
    uow.emit(topics.room(meeting_id), "poll.proxies", grantor_id=grantor_id, holder_id=None)


async def rights_view(uow: UnitOfWork, user: User, meeting_id: int) -> list[dict[str, Any]]:
    await view_context(uow, user, meeting_id)
    rows = (await uow.session.scalars(select(VotingRight).where(VotingRight.meeting_id == meeting_id)
                                      .order_by(VotingRight.participant_id))).all()
    return [{"participant_id": r.participant_id, "weight": r.weight, "proxy_holder_id": r.proxy_holder_id,
             "proxy_given_at": iso(r.proxy_given_at), "note": r.proxy_note} for r in rows]


async def eligibility_of(uow: UnitOfWork, meeting_id: int, poll: Poll) -> vr.Eligibility:
    seats = (await uow.session.scalars(select(Participant).where(Participant.meeting_id == meeting_id))).all()
    extra = {r.participant_id: r for r in (await uow.session.scalars(
        select(VotingRight).where(VotingRight.meeting_id == meeting_id))).all()}
    members = [vr.Member(p.id, p.attendee_id, voting=p.voting, present=p.present,
                         weight=extra[p.id].weight if p.id in extra else 1) for p in seats]
    proxies = [vr.Proxy(r.participant_id, r.proxy_holder_id, order=int(r.proxy_given_at.timestamp() * 1e6))
               for r in extra.values() if r.proxy_holder_id is not None and r.proxy_given_at is not None]
    return vr.eligibility(members, proxies, proxy_cap=poll.proxy_cap, weighted=poll.weighted)

