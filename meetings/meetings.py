"""Meetings: details, officers, participants (people, units, guests), remote sites, invitations,
responses with substitutes, and sending the invitations (draft -> invited); the later steps of the life
cycle (in progress -> ended -> archived, cancelled) are ``meetings.lifecycle``.

Services take a unit of work and the acting user, check permission, change state, write the audit
entry and queue the event; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import literal, null, or_, select, union_all

from eoffice import audit
from eoffice.org import Role, Unit, User
from meetings import calendar, rules, topics
from meetings.rules import Access, ParticipantRole, Response, Seat, State
from meetings.schema import Meeting, Participant, Site
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

# ---------------------------------------------------------------- loading with access


@dataclass
class Ctx:
    meeting: Meeting
    access: Access


async def get_context(uow: UnitOfWork, user: User, meeting_id: int, *, lock: bool = False) -> Ctx:
    """The meeting and the user's standing in it. ``lock``: serialise room changes on PostgreSQL."""
    q = select(Meeting).where(Meeting.id == meeting_id)
    if lock:
        q = q.with_for_update()
    meeting = await uow.session.scalar(q)
    if meeting is None:
        raise NotFound("Không tìm thấy cuộc họp.")
    access = await access_of(uow, user, meeting)
    if not access.can_view and meeting.state == State.DRAFT:
        raise NotFound("Không tìm thấy cuộc họp.")  # a draft does not exist for anyone but its organisers
    return Ctx(meeting, access)


async def access_of(uow: UnitOfWork, user: User, meeting: Meeting) -> Access:
    conds = [Participant.user_id == user.id, Participant.substitute_id == user.id]
    if user.unit_id is not None:
        conds.append((Participant.unit_id == user.unit_id) & Participant.user_id.is_(None))
    # the user's seats and the sites they operate in one query (this runs on nearly every request of a meeting)
    seats_q = select(literal(0), Participant.id, Participant.user_id, Participant.unit_id, Participant.substitute_id,
                     Participant.site_id, Participant.substitute_approved).where(
        Participant.meeting_id == meeting.id, or_(*conds))
    sites_q = select(literal(1), Site.id, null(), null(), null(), null(), literal(False)).where(
        Site.meeting_id == meeting.id, Site.operator_id == user.id)
    rows: Sequence[Any] = (await uow.session.execute(union_all(seats_q, sites_q))).all()
    seats = [Seat(id=r[1], user_id=r[2], unit_id=r[3], substitute_id=r[4], site_id=r[5],
                  substitute_approved=bool(r[6])) for r in rows if r[0] == 0]
    return rules.access_for(
        user.id, state=meeting.state, created_by=meeting.created_by, chair_id=meeting.chair_id,
        secretary_id=meeting.secretary_id, seats=seats,
        site_operators=[(r[1], user.id) for r in rows if r[0] == 1], user_unit_id=user.unit_id,
        user_answers_for_unit=user.has_role(Role.LEADER, Role.CLERK), admin=user.is_admin,
    )


async def view_context(uow: UnitOfWork, user: User, meeting_id: int, *, lock: bool = False) -> Ctx:
    ctx = await get_context(uow, user, meeting_id, lock=lock)
    return viewable(ctx)


async def view_context_of(uow: UnitOfWork, user: User, meeting: Meeting) -> Ctx:
    """``view_context`` for a meeting already loaded (in a join with what the caller needed)."""
    return viewable(Ctx(meeting, await access_of(uow, user, meeting)))


def viewable(ctx: Ctx) -> Ctx:
    """The context if the user may view the meeting; a draft does not exist for anyone but its organisers."""
    if not ctx.access.can_view:
        raise NotFound("Không tìm thấy cuộc họp.") if ctx.meeting.state == State.DRAFT else Forbidden(
            "Bạn không tham dự cuộc họp này.")
    return ctx


def touch(meeting: Meeting) -> None:
    meeting.updated_at = utcnow()


# ---------------------------------------------------------------- creating and editing

QUORUM_VALUES = {r.value for r in rules.QuorumRule}


async def _user(uow: UnitOfWork, user_id: int | None, field: str) -> User | None:
    if user_id is None:
        return None
    user = await uow.session.get(User, int(user_id))
    if user is None or not user.active:
        raise NotFound("Không tìm thấy người dùng.", field=field)
    return user


def _clean_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise Invalid("Cần nhập tên cuộc họp.", field="title")
    return title[:500]


def _check_times(starts_at: dt.datetime, ends_at: dt.datetime | None) -> None:
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise Invalid("Thời gian phải kèm múi giờ.", field="starts_at")
    if ends_at is not None and ends_at <= starts_at:
        raise Invalid("Giờ kết thúc phải sau giờ bắt đầu.", field="ends_at")


async def _seat_for(uow: UnitOfWork, meeting_id: int, user_id: int) -> Participant | None:
    return await uow.session.scalar(
        select(Participant).where(Participant.meeting_id == meeting_id, Participant.user_id == user_id)
    )


async def _ensure_officer_seat(uow: UnitOfWork, meeting: Meeting, user_id: int | None, role: ParticipantRole) -> None:
    if user_id is None:
        return
    seat = await _seat_for(uow, meeting.id, user_id)
    if seat is None:
        seat = Participant(meeting_id=meeting.id, user_id=user_id, response=Response.ACCEPTED)
        uow.session.add(seat)
    seat.role = role
    seat.entitled = seat.voting = role is ParticipantRole.CHAIR  # the secretary minutes, does not vote


async def create_meeting(
    uow: UnitOfWork,
    actor: User,
    *,
    title: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
    place: str = "",
    description: str = "",
    chair_id: int | None = None,
    secretary_id: int | None = None,
    quorum_rule: str = rules.QuorumRule.HALF,
    speaking_time: int | None = None,
) -> Meeting:
    """Any active account may organise a meeting; it stays a draft, seen by its organisers only."""
    _check_times(starts_at, ends_at)
    _check_speaking_time(speaking_time)
    if quorum_rule not in QUORUM_VALUES:
        raise Invalid("Quy tắc túc số không hợp lệ.", field="quorum_rule")
    await _user(uow, chair_id, "chair_id")
    await _user(uow, secretary_id, "secretary_id")
    if chair_id is not None and chair_id == secretary_id:
        raise Invalid("Chủ trì và thư ký phải là hai người khác nhau.", field="secretary_id")
    starts_at, ends_at = starts_at.astimezone(dt.UTC), ends_at.astimezone(dt.UTC) if ends_at else None
    meeting = Meeting(title=_clean_title(title), starts_at=starts_at, ends_at=ends_at, place=place.strip()[:300],
                      description=description.strip(), chair_id=chair_id, secretary_id=secretary_id,
                      quorum_rule=quorum_rule, speaking_time=speaking_time, created_by=actor.id,
                      state=State.DRAFT)
    uow.session.add(meeting)
    await uow.session.flush()
    await _ensure_officer_seat(uow, meeting, chair_id, ParticipantRole.CHAIR)
    await _ensure_officer_seat(uow, meeting, secretary_id, ParticipantRole.SECRETARY)
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.create", "meeting", meeting.id, title=meeting.title,
                       starts_at=starts_at.isoformat(), chair_id=chair_id, secretary_id=secretary_id)
    return meeting


EDITABLE_FIELDS = {"title", "description", "place", "starts_at", "ends_at", "chair_id", "secretary_id", "quorum_rule",
                   "speaking_time"}
SPEAKING_TIME_RANGE = (10, 3 * 3600)  # seconds, as meetings.speakers.LIMIT_RANGE


def _check_speaking_time(value: int | None) -> None:
    if value is not None and not SPEAKING_TIME_RANGE[0] <= value <= SPEAKING_TIME_RANGE[1]:
        raise Invalid("Thời gian phát biểu mặc định từ 10 giây đến 3 giờ.", field="speaking_time")


async def update_meeting(uow: UnitOfWork, actor: User, meeting_id: int, **changes: Any) -> Meeting:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    m = ctx.meeting
    rules.require_editable(m.state)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise Invalid(f"Không sửa được trường: {', '.join(sorted(unknown))}.")
    if "title" in changes:
        changes["title"] = _clean_title(changes["title"])
    if "quorum_rule" in changes and changes["quorum_rule"] not in QUORUM_VALUES:
        raise Invalid("Quy tắc túc số không hợp lệ.", field="quorum_rule")
    if ("chair_id" in changes or "secretary_id" in changes) and not (ctx.access.organiser or ctx.access.chair):
        raise Forbidden("Chỉ người tổ chức hoặc chủ trì được đổi chủ trì, thư ký.")
    _check_times(changes.get("starts_at", m.starts_at), changes.get("ends_at", m.ends_at))
    _check_speaking_time(changes.get("speaking_time"))
    chair = changes.get("chair_id", m.chair_id)
    secretary = changes.get("secretary_id", m.secretary_id)
    if chair is not None and chair == secretary:
        raise Invalid("Chủ trì và thư ký phải là hai người khác nhau.", field="secretary_id")
    for key in ("chair_id", "secretary_id"):
        if key in changes:
            await _user(uow, changes[key], key)
    for key in ("starts_at", "ends_at"):
        if changes.get(key) is not None:
            changes[key] = changes[key].astimezone(dt.UTC)
    before = {k: getattr(m, k) for k in changes}
    for key, value in changes.items():
        setattr(m, key, value.strip() if isinstance(value, str) and key != "quorum_rule" else value)
    if "chair_id" in changes:
        await _demote(uow, m.id, before["chair_id"], ParticipantRole.CHAIR)
        await _ensure_officer_seat(uow, m, m.chair_id, ParticipantRole.CHAIR)
    if "secretary_id" in changes:
        await _demote(uow, m.id, before["secretary_id"], ParticipantRole.SECRETARY)
        await _ensure_officer_seat(uow, m, m.secretary_id, ParticipantRole.SECRETARY)
    touch(m)
    changed = sorted(k for k in changes if before[k] != getattr(m, k))
    await audit.record(uow, actor, "meeting.update", "meeting", m.id,
                       changes={k: str(getattr(m, k)) for k in changed})
    if changed and m.state != State.DRAFT:
        uow.emit(topics.room(m.id), "meeting.updated", fields=changed)
    return m


async def _demote(uow: UnitOfWork, meeting_id: int, user_id: int | None, role: ParticipantRole) -> None:
    if user_id is None:
        return
    seat = await _seat_for(uow, meeting_id, user_id)
    if seat is not None and seat.role == role:
        seat.role = ParticipantRole.MEMBER
        seat.entitled = True
        seat.voting = True


# ---------------------------------------------------------------- participants and sites

ROLE_VALUES = {r.value for r in ParticipantRole}


async def add_participant(
    uow: UnitOfWork,
    actor: User,
    meeting_id: int,
    *,
    user_id: int | None = None,
    unit_id: int | None = None,
    guest_name: str = "",
    guest_title: str = "",
    role: str = ParticipantRole.MEMBER,
    entitled: bool | None = None,
    voting: bool | None = None,
    site_id: int | None = None,
) -> Participant:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    m = ctx.meeting
    rules.require_editable(m.state)
    if sum(x is not None and x != "" for x in (user_id, unit_id, guest_name.strip() or None)) != 1:
        raise Invalid("Chọn đúng một: một người, một đơn vị, hoặc nhập tên khách mời.")
    if role not in ROLE_VALUES or role in (ParticipantRole.CHAIR, ParticipantRole.SECRETARY):
        raise Invalid("Vai trò người dự họp không hợp lệ (chủ trì, thư ký đặt trong thông tin cuộc họp).",
                      field="role")
    if user_id is not None:
        await _user(uow, user_id, "user_id")
        if await _seat_for(uow, m.id, user_id) is not None:
            raise Conflict("Người này đã có trong danh sách mời.", field="user_id")
        if await uow.session.scalar(select(Participant.id).where(
                Participant.meeting_id == m.id, Participant.substitute_id == user_id)):
            raise Conflict("Người này đã được cử dự thay trong cuộc họp.", field="user_id")
    if unit_id is not None:
        if await uow.session.get(Unit, unit_id) is None:
            raise NotFound("Không tìm thấy đơn vị.", field="unit_id")
        if await uow.session.scalar(select(Participant.id).where(
                Participant.meeting_id == m.id, Participant.unit_id == unit_id, Participant.user_id.is_(None))):
            raise Conflict("Đơn vị này đã có trong danh sách mời.", field="unit_id")
    if site_id is not None:
        site = await uow.session.get(Site, site_id)
        if site is None or site.meeting_id != m.id:
            raise NotFound("Không tìm thấy điểm cầu.", field="site_id")
    guest = user_id is None and unit_id is None
    member = role == ParticipantRole.MEMBER and not guest
    p = Participant(
        meeting_id=m.id, user_id=user_id, unit_id=unit_id, guest_name=guest_name.strip()[:200],
        guest_title=guest_title.strip()[:300], role=role,
        entitled=member if entitled is None else bool(entitled) and not guest,
        voting=member if voting is None else bool(voting) and not guest, site_id=site_id,
        response=Response.ACCEPTED if guest else Response.PENDING,
    )
    uow.session.add(p)
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.participant.add", "meeting", m.id, participant_id=p.id,
                       user_id=user_id, unit_id=unit_id, guest=p.guest_name, role=role)
    if m.state != State.DRAFT:
        uow.emit(topics.room(m.id), "participants.changed", participant_id=p.id)
        for uid in await _notify_targets(uow, p):
            notify(uow, uid, f"Bạn được mời dự cuộc họp: {m.title}", m.id)
    return p


async def remove_participant(uow: UnitOfWork, actor: User, participant_id: int) -> None:
    p = await uow.session.get(Participant, participant_id)
    if p is None:
        raise NotFound("Không tìm thấy người dự họp.")
    ctx = await get_context(uow, actor, p.meeting_id, lock=True)
    ctx.access.require_manage()
    rules.require_editable(ctx.meeting.state)
    if p.role in (ParticipantRole.CHAIR, ParticipantRole.SECRETARY):
        raise Conflict("Đổi chủ trì hoặc thư ký trong thông tin cuộc họp, không xóa ở đây.")
    if p.checked_in_at is not None:
        raise Conflict("Người này đã điểm danh, không xóa khỏi danh sách được.")
    await uow.session.delete(p)
    await audit.record(uow, actor, "meeting.participant.remove", "meeting", p.meeting_id, participant_id=p.id)
    if ctx.meeting.state != State.DRAFT:
        uow.emit(topics.room(p.meeting_id), "participants.changed", participant_id=p.id)


async def add_site(uow: UnitOfWork, actor: User, meeting_id: int, *, name: str, unit_id: int | None = None,
                   operator_id: int | None = None) -> Site:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    rules.require_editable(ctx.meeting.state)
    if not name.strip():
        raise Invalid("Cần nhập tên điểm cầu.", field="name")
    if unit_id is not None and await uow.session.get(Unit, unit_id) is None:
        raise NotFound("Không tìm thấy đơn vị.", field="unit_id")
    await _user(uow, operator_id, "operator_id")
    site = Site(meeting_id=meeting_id, name=name.strip()[:300], unit_id=unit_id, operator_id=operator_id)
    uow.session.add(site)
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.site.add", "meeting", meeting_id, site_id=site.id, name=site.name,
                       operator_id=operator_id)
    if ctx.meeting.state != State.DRAFT:
        uow.emit(topics.room(meeting_id), "participants.changed", site_id=site.id)
        if operator_id:
            notify(uow, operator_id, f"Bạn vận hành điểm cầu «{site.name}» cuộc họp: {ctx.meeting.title}",
                   meeting_id)
    return site


# ---------------------------------------------------------------- notifications


def notify(uow: UnitOfWork, user_id: int, message: str, meeting_id: int, *, urgent: bool = False) -> None:
    """A personal notification on the user's own topic (shown by page.js on every page); ``urgent``: sent by
    SMS too (``eoffice.channels``)."""
    uow.emit(topics.user(user_id), "notification", message=message, url=f"/meetings/{meeting_id}",
             meeting_id=meeting_id, **({"urgent": True} if urgent else {}))


async def _notify_targets(uow: UnitOfWork, p: Participant) -> list[int]:
    if p.user_id is not None:
        return [p.user_id]
    if p.unit_id is not None:  # the unit's leaders and clerks answer for it
        users = (await uow.session.scalars(select(User).where(User.unit_id == p.unit_id, User.active.is_(True)))).all()
        return [u.id for u in users if u.has_role(Role.LEADER, Role.CLERK)]
    return []


# ---------------------------------------------------------------- life cycle


async def send_invitations(uow: UnitOfWork, actor: User, meeting_id: int) -> Meeting:
    """draft -> invited: everyone invited gets a notification and may read the documents."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    m = ctx.meeting
    rules.check_transition(m.state, State.INVITED)
    m.state = State.INVITED
    m.invited_at = utcnow()
    touch(m)
    seats = (await uow.session.scalars(select(Participant).where(Participant.meeting_id == m.id))).all()
    targets: set[int] = set()
    for p in seats:
        targets.update(await _notify_targets(uow, p))
    sites = (await uow.session.scalars(select(Site).where(Site.meeting_id == m.id))).all()
    targets.update(s.operator_id for s in sites if s.operator_id)
    targets.discard(actor.id)
    for uid in sorted(targets):
        notify(uow, uid, f"Giấy mời họp: {m.title}", m.id)
    await audit.record(uow, actor, "meeting.invite", "meeting", m.id, notified=len(targets))
    uow.emit(topics.room(m.id), "meeting.state", state=m.state, at=m.invited_at.isoformat(),
             current_item_id=m.current_item_id)
    return m


# ---------------------------------------------------------------- responses


async def respond(
    uow: UnitOfWork,
    actor: User,
    participant_id: int,
    response: str,
    *,
    substitute_id: int | None = None,
    note: str = "",
) -> Participant:
    """Accept, decline, or send a substitute (who then carries the invitee's access to this meeting).

    A unit's leader or clerk answers for the unit: ``accepted`` means they attend themselves,
    ``substitute`` names who goes.
    """
    p = await uow.session.get(Participant, participant_id)
    if p is None:
        raise NotFound("Không tìm thấy giấy mời.")
    ctx = await get_context(uow, actor, p.meeting_id, lock=True)
    m = ctx.meeting
    if not rules.may_respond(ctx.access, p.seat()):
        raise Forbidden("Giấy mời này không gửi cho bạn.")
    if State(m.state) not in (State.INVITED, State.IN_PROGRESS):
        raise Conflict("Chỉ phản hồi được khi cuộc họp đã gửi giấy mời và chưa kết thúc.")
    if p.checked_in_at is not None:
        raise Conflict("Đã điểm danh, không thay đổi phản hồi được.")
    try:
        answer = Response(response)
    except ValueError:
        raise Invalid("Phản hồi không hợp lệ.", field="response") from None
    if answer is Response.PENDING:
        raise Invalid("Phản hồi không hợp lệ.", field="response")
    unit_seat = p.user_id is None
    new_sub: int | None = None
    if answer is Response.SUBSTITUTE:
        if substitute_id is None:
            raise Invalid("Cần chọn người dự thay.", field="substitute_id")
        sub = await _user(uow, substitute_id, "substitute_id")
        assert sub is not None
        if sub.id == p.user_id:
            raise Invalid("Người dự thay phải là người khác.", field="substitute_id")
        taken = await uow.session.scalar(select(Participant.id).where(
            Participant.meeting_id == m.id, Participant.id != p.id,
            or_(Participant.user_id == sub.id, Participant.substitute_id == sub.id)))
        if taken:
            raise Conflict("Người này đã có trong danh sách dự họp.", field="substitute_id")
        new_sub = sub.id
    elif answer is Response.ACCEPTED and unit_seat:
        new_sub = actor.id  # the unit's representative attends in person
    previous_sub = p.substitute_id
    if new_sub != previous_sub:  # a new substitute starts unapproved, unless they work in the invitee's unit
        p.substitute_approved = new_sub is not None and await _same_unit(uow, p.user_id, new_sub)
    p.response = answer
    p.substitute_id = new_sub
    p.response_note = note.strip()[:500]
    p.responded_at = utcnow()
    await audit.record(uow, actor, "meeting.respond", "meeting", m.id, participant_id=p.id, response=answer.value,
                       substitute_id=new_sub)
    uow.emit(topics.room(m.id), "participants.changed", participant_id=p.id)
    if new_sub and new_sub != actor.id and new_sub != previous_sub:
        notify(uow, new_sub, f"Bạn được cử dự thay cuộc họp: {m.title}", m.id)
    for officer in {m.secretary_id, m.created_by} - {None, actor.id}:
        assert officer is not None
        notify(uow, officer, f"{actor.full_name}: {rules.RESPONSE_LABELS[answer].lower()} — {m.title}", m.id)
    return p


async def _same_unit(uow: UnitOfWork, invitee_id: int | None, substitute_id: int) -> bool:
    if invitee_id is None:
        return True  # a unit's seat: whoever the unit sends is its own delegate
    units = dict((await uow.session.execute(
        select(User.id, User.unit_id).where(User.id.in_([invitee_id, substitute_id])))).tuples().all())
    return units.get(invitee_id) is not None and units.get(invitee_id) == units.get(substitute_id)


async def approve_substitute(uow: UnitOfWork, actor: User, participant_id: int, approved: bool = True) -> Participant:
    """The chair approves (or withdraws the approval of) a substitute: only an approved substitute, or one
    from the invitee's own unit, sees the confidential items the invitee may see. Withdrawing takes
    effect at once: the hub re-checks live subscriptions on ``participants.changed``."""
    p = await uow.session.get(Participant, participant_id)
    if p is None:
        raise NotFound("Không tìm thấy người dự họp.")
    ctx = await get_context(uow, actor, p.meeting_id, lock=True)
    ctx.access.require_chair()
    if p.substitute_id is None or p.user_id is None:
        raise Conflict("Giấy mời này không có người dự thay cần phê duyệt.")
    if not isinstance(approved, bool):
        raise Invalid("Giá trị «approved» phải là true hoặc false.", field="approved")
    p.substitute_approved = approved
    await audit.record(uow, actor, "meeting.substitute.approve" if approved else "meeting.substitute.withdraw",
                       "meeting", p.meeting_id, participant_id=p.id, substitute_id=p.substitute_id)
    uow.emit(topics.room(p.meeting_id), "participants.changed", participant_id=p.id)
    if approved:
        notify(uow, p.substitute_id, f"Chủ trì đã phê duyệt bạn dự thay cuộc họp: {ctx.meeting.title}", p.meeting_id)
    return p


# ---------------------------------------------------------------- reading


async def list_for_user(uow: UnitOfWork, user: User, *, limit: int = 200) -> list[Meeting]:
    """Meetings the user organises, chairs, minutes, attends (also as substitute or for their unit) or operates
    (the same condition as their calendar, ``meetings.calendar.mine``)."""
    rows = (await uow.session.scalars(
        select(Meeting).where(calendar.mine(user)).order_by(Meeting.starts_at.desc()).limit(limit)
    )).all()
    return list(rows)


async def user_names(uow: UnitOfWork, ids: set[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in (await uow.session.scalars(select(User).where(User.id.in_(wanted)))).all()}


async def participants_view(uow: UnitOfWork, meeting: Meeting) -> list[dict[str, Any]]:
    seats = (await uow.session.scalars(
        select(Participant).where(Participant.meeting_id == meeting.id).order_by(Participant.id)
    )).all()
    users = await user_names(uow, {p.user_id for p in seats} | {p.substitute_id for p in seats})
    unit_ids = {p.unit_id for p in seats if p.unit_id}
    units = {u.id: u for u in (await uow.session.scalars(select(Unit).where(Unit.id.in_(unit_ids)))).all()} \
        if unit_ids else {}
    order = {ParticipantRole.CHAIR: 0, ParticipantRole.MEMBER: 1, ParticipantRole.INVITED: 2,
             ParticipantRole.SECRETARY: 3}
    out = []
    for p in sorted(seats, key=lambda s: (order.get(ParticipantRole(s.role), 9), s.id)):
        invitee = users.get(p.user_id) if p.user_id else None
        sub = users.get(p.substitute_id) if p.substitute_id else None
        unit = units.get(p.unit_id) if p.unit_id else None
        name = invitee.full_name if invitee else unit.name if unit else p.guest_name
        title = invitee.title if invitee else p.guest_title
        out.append({
            "id": p.id, "kind": p.kind, "user_id": p.user_id, "unit_id": p.unit_id, "name": name, "title": title,
            "role": p.role, "role_label": rules.ROLE_LABELS[ParticipantRole(p.role)], "entitled": p.entitled,
            "voting": p.voting, "site_id": p.site_id, "response": p.response,
            "response_label": rules.RESPONSE_LABELS[Response(p.response)],
            "substitute": {"id": sub.id, "name": sub.full_name, "title": sub.title,
                           "approved": p.substitute_approved} if sub else None,
            "attendee_id": p.attendee_id, "present": p.present,
            "checked_in_at": p.checked_in_at.isoformat() if p.checked_in_at else None,
            "check_in_method": p.check_in_method, "note": p.response_note,
        })
    return out


async def sites_view(uow: UnitOfWork, meeting: Meeting) -> list[dict[str, Any]]:
    sites = (await uow.session.scalars(select(Site).where(Site.meeting_id == meeting.id).order_by(Site.id))).all()
    users = await user_names(uow, {s.operator_id for s in sites})
    return [{**s.public(), "operator": users[s.operator_id].full_name if s.operator_id in users else ""}
            for s in sites]
