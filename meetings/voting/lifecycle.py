"""A poll's life: create (and re-run), open with eligibility fixed, countdown, close and count, publish,
cancel. A secret poll's ballots are unsealed, counted and written back shuffled in the closing
transaction, and its key destroyed (``meetings.voting``, "Secret ballots")."""

from __future__ import annotations

import datetime as dt
import random
import secrets
from typing import Any

from sqlalchemy import delete, insert, select

from eoffice import audit
from eoffice.org import User
from meetings import rules
from meetings import voting_rules as vr
from meetings.meetings import get_context
from meetings.schema import AgendaItem, Meeting, Poll, PollBallot, PollVoter
from meetings.voting.rights import eligibility_of
from meetings.voting.sealing import ballots_of, create_key, destroy_key, new_ballot_id
from meetings.voting.views import emit_changed, find_poll, iso, load_poll, viewers_of
from meetings.voting_rules import State
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Invalid

MAX_DURATION = 24 * 3600


def _duration(value: Any) -> int | None:
    if value in (None, "", 0):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 10 <= value <= MAX_DURATION:
        raise Invalid("Thời gian biểu quyết phải từ 10 giây đến 24 giờ.", field="duration_seconds")
    return value


async def create_poll(
    uow: UnitOfWork, actor: User, meeting_id: int, *, title: str, method: str, description: str = "",
    options: list[str] | None = None, max_choices: int | None = None, seats: int | None = None,
    allow_abstain: bool = True, secret: bool = False, allow_change: bool = False,
    visibility: str = vr.Visibility.CLOSED, majority: str = vr.Majority.SIMPLE, base: str = vr.Base.VALID,
    quorum_rule: str | None = None, proxy_cap: int = 1, weighted: bool = False,
    duration_seconds: int | None = None, item_id: int | None = None, rerun_of_id: int | None = None,
    tie_rule: str = vr.TieRule.NONE,
) -> Poll:
    """Chair or secretary prepare a poll (a draft) before or during the meeting."""
    ctx = await get_context(uow, actor, meeting_id)
    ctx.access.require_control()
    rules.require_editable(ctx.meeting.state)
    title = (title or "").strip()
    if not title:
        raise Invalid("Cần nhập nội dung biểu quyết.", field="title")
    if not isinstance(options, list | tuple | type(None)):
        raise Invalid("Danh sách phương án không hợp lệ.", field="options")
    spec = vr.make_spec(method=method, options=list(options or []), max_choices=max_choices, seats=seats,
                        allow_abstain=bool(allow_abstain), majority=majority, base=base, secret=bool(secret),
                        allow_change=bool(allow_change), visibility=visibility, tie_rule=tie_rule)
    rule = quorum_rule or ctx.meeting.quorum_rule
    vr.quorum_to_open(0, 0, rule)  # validates the rule
    if isinstance(proxy_cap, bool) or not isinstance(proxy_cap, int) or not 0 <= proxy_cap <= 10:
        raise Invalid("Số ủy quyền tối đa mỗi người phải từ 0 đến 10.", field="proxy_cap")
    if item_id is not None:
        item = await uow.session.get(AgendaItem, item_id)
        if item is None or item.meeting_id != meeting_id:
            raise Invalid("Nội dung chương trình không thuộc cuộc họp này.", field="item_id")
    poll = Poll(
        meeting_id=meeting_id, item_id=item_id, title=title[:500], description=(description or "").strip(),
        method=spec.method.value, options=[str(o).strip() for o in (options or [])], max_choices=spec.max_choices,
        seats=spec.seats, allow_abstain=spec.allow_abstain, secret=bool(secret), allow_change=bool(allow_change),
        visibility=vr.Visibility(visibility).value, majority=spec.majority.value, base=spec.base.value,
        tie_rule=spec.tie_rule.value, quorum_rule=rule, proxy_cap=proxy_cap, weighted=bool(weighted),
        duration_seconds=_duration(duration_seconds),
        state=State.DRAFT, created_by=actor.id, rerun_of_id=rerun_of_id,
        votes_cast=0, weight_cast=0, eligible_count=0, eligible_weight=0, present_count=0, entitled_count=0,
        entitled_weight=0, quorum_needed=0, refused_proxies=[],
    )
    uow.session.add(poll)
    await uow.session.flush()
    await audit.record(uow, actor, "poll.create", "poll", poll.id, meeting_id=meeting_id, title=poll.title,
                       method=poll.method, secret=poll.secret, majority=poll.majority, base=poll.base,
                       tie_rule=poll.tie_rule, rerun_of_id=rerun_of_id)
    await emit_changed(uow, poll, ctx.meeting)
    return poll


async def rerun_poll(uow: UnitOfWork, actor: User, poll_id: int, *, options: list[str] | None = None,
                     title: str | None = None) -> Poll:
    """A new draft with the same settings, linked to the old poll (for example among tied candidates)."""
    pc = await load_poll(uow, actor, poll_id)
    pc.ctx.access.require_control()
    old = pc.poll
    if old.state not in (State.CLOSED, State.PUBLISHED, State.CANCELLED):
        raise Conflict("Chỉ biểu quyết lại khi biểu quyết trước đã kết thúc hoặc đã hủy.")
    seats = old.seats
    new_options = list(old.options) if options is None else options
    if old.method in (vr.Method.MULTIPLE, vr.Method.RANKED):
        seats = min(seats, max(1, len(new_options) - 1))
    return await create_poll(
        uow, actor, old.meeting_id, title=title or old.title, method=old.method, description=old.description,
        options=new_options, max_choices=min(old.max_choices, max(1, len(new_options))), seats=seats,
        allow_abstain=old.allow_abstain, secret=old.secret, allow_change=old.allow_change, visibility=old.visibility,
        majority=old.majority, base=old.base, quorum_rule=old.quorum_rule, proxy_cap=old.proxy_cap,
        weighted=old.weighted, duration_seconds=old.duration_seconds, item_id=old.item_id, rerun_of_id=old.id,
        tie_rule=old.tie_rule,
    )


async def open_poll(uow: UnitOfWork, actor: User, poll_id: int, *, duration_seconds: int | None = None) -> Poll:
    pc = await load_poll(uow, actor, poll_id, lock=True, lock_meeting=True)
    pc.ctx.access.require_control()
    poll, m = pc.poll, pc.meeting
    rules.require_live(m.state)
    if poll.state != State.DRAFT:
        raise Conflict(f"Biểu quyết đang ở trạng thái «{vr.STATE_LABELS[State(poll.state)]}», không mở được.")
    other = await uow.session.scalar(select(Poll.id).where(Poll.meeting_id == m.id, Poll.state == State.OPEN))
    if other:
        raise Conflict("Đang có một biểu quyết khác chưa kết thúc.", poll_id=other)
    elig = await eligibility_of(uow, m.id, poll)
    q = vr.quorum_to_open(elig.present, elig.entitled, poll.quorum_rule)
    if not q.met:
        raise Conflict(f"Chưa đủ túc số để biểu quyết: có mặt {q.present}/{q.entitled}, cần {q.needed}.",
                       quorum=q.public())
    viewers = await viewers_of(uow, poll, m)
    if viewers is not None:  # a confidential item: only those who may see it vote (roll-call seats stay)
        kept = [r for r in elig.rights if r.user_id is None or r.user_id in viewers]
        elig = vr.Eligibility(rights=kept, refused=elig.refused, present=elig.present, entitled=elig.entitled,
                              present_weight=sum(r.weight for r in kept), entitled_weight=elig.entitled_weight)
    if not elig.rights:
        raise Conflict("Không có đại biểu nào có quyền biểu quyết đang có mặt.")
    now = utcnow()
    duration = _duration(duration_seconds) if duration_seconds is not None else poll.duration_seconds
    await uow.session.execute(insert(PollVoter), [
        {"poll_id": poll.id, "participant_id": r.participant_id, "holder_id": r.holder_id, "user_id": r.user_id,
         "weight": r.weight, "proxy": r.proxy, "method": "", "changes": 0} for r in elig.rights])
    poll.state = State.OPEN
    poll.opened_at = now
    poll.opened_by = actor.id
    poll.duration_seconds = duration
    poll.closes_at = now + dt.timedelta(seconds=duration) if duration else None
    poll.eligible_count = len(elig.rights)
    poll.eligible_weight = elig.present_weight
    poll.present_count = elig.present
    poll.entitled_count = elig.entitled
    poll.entitled_weight = elig.entitled_weight
    poll.quorum_needed = q.needed
    poll.refused_proxies = [{"grantor_id": p.grantor, "holder_id": p.holder, "reason": reason}
                            for p, reason in elig.refused]
    poll.votes_cast = poll.weight_cast = 0
    if poll.secret:
        await create_key(uow, poll)
    await audit.record(uow, actor, "poll.open", "poll", poll.id, meeting_id=m.id, eligible=poll.eligible_count,
                       eligible_weight=poll.eligible_weight, present=elig.present, entitled=elig.entitled,
                       closes_at=iso(poll.closes_at), refused_proxies=poll.refused_proxies)
    await emit_changed(uow, poll, m, opened=True)  # ``opened``: its voters are notified (meetings.notices)
    return poll


async def set_countdown(uow: UnitOfWork, actor: User, poll_id: int, seconds: int | None) -> Poll:
    """Start (or change, or with None stop) the countdown of an open poll."""
    pc = await load_poll(uow, actor, poll_id, lock=True)
    pc.ctx.access.require_control()
    poll = pc.poll
    if poll.state != State.OPEN:
        raise Conflict("Chỉ đặt giờ cho biểu quyết đang mở.")
    duration = _duration(seconds)
    poll.closes_at = utcnow() + dt.timedelta(seconds=duration) if duration else None
    poll.duration_seconds = duration
    await audit.record(uow, actor, "poll.countdown", "poll", poll.id, meeting_id=poll.meeting_id,
                       closes_at=iso(poll.closes_at))
    await emit_changed(uow, poll, pc.meeting)
    return poll


async def _shuffle_secret(uow: UnitOfWork, poll: Poll,
                          rows: list[tuple[dict[str, Any], int]] | None = None) -> None:
    """Rewrite a secret poll's ballots unsealed, in a random order, with new random ids (``meetings.voting``,
    "Secret ballots")."""
    if rows is None:
        rows = await ballots_of(uow, poll)
    if not rows:
        return
    shuffled = list(rows)
    random.SystemRandom().shuffle(shuffled)
    # (SQLite: secure_delete, on for every connection, zeroes the deleted sealed rows in the file)
    await uow.session.execute(delete(PollBallot).where(PollBallot.poll_id == poll.id)
                              .execution_options(synchronize_session=False))
    await uow.session.execute(insert(PollBallot), [
        {"id": new_ballot_id(), "poll_id": poll.id, "choice": choice, "weight": weight} for choice, weight in shuffled])


async def chair_vote(uow: UnitOfWork, poll: Poll, meeting: Meeting) -> str | None:
    """The chair's own ballot in a named poll ("yes" | "no" | "abstain"), None when the chair did not vote, or
    always None for a secret poll (nothing links a secret ballot to a voter, and this does not try)."""
    if poll.secret or (poll.tie_rule or "") != vr.TieRule.CHAIR or meeting.chair_id is None:
        return None
    ballot_id = await uow.session.scalar(select(PollVoter.ballot_id).where(
        PollVoter.poll_id == poll.id, PollVoter.user_id == meeting.chair_id, PollVoter.proxy.is_(False),
        PollVoter.voted_at.is_not(None)).order_by(PollVoter.id).limit(1))
    if ballot_id is None:
        return None
    choice = await uow.session.scalar(select(PollBallot.choice).where(PollBallot.id == ballot_id))
    vote = choice.get("v") if isinstance(choice, dict) else None
    return vote if vote in ("yes", "no", "abstain") else None


async def _close(uow: UnitOfWork, actor: User | None, poll: Poll, meeting: Meeting, reason: str) -> Poll:
    ballots = await ballots_of(uow, poll)
    seed = secrets.token_hex(8)
    result = vr.count(poll.spec(), ballots, present=poll.eligible_weight,
                      entitled=poll.entitled_weight, seed=seed, chair_vote=await chair_vote(uow, poll, meeting))
    now = utcnow()
    poll.state = State.CLOSED
    poll.closed_at = now
    poll.closed_by = actor.id if actor else None
    poll.close_reason = reason
    data = result.public()
    data["threshold"] = vr.threshold_text(poll.majority, result.base_value) if poll.method != vr.Method.RANKED else ""
    data["eligible"] = poll.eligible_count
    data["not_voted"] = poll.eligible_count - poll.votes_cast
    poll.result = data
    if poll.secret:
        await _shuffle_secret(uow, poll, ballots)
        await destroy_key(uow, poll)
    await audit.record(uow, actor, "poll.close", "poll", poll.id, meeting_id=poll.meeting_id, reason=reason,
                       cast=poll.votes_cast, eligible=poll.eligible_count, passed=result.passed,
                       counts=result.counts, winners=result.winners, seed=seed)
    await emit_changed(uow, poll, meeting)
    return poll


async def close_poll(uow: UnitOfWork, actor: User, poll_id: int) -> Poll:
    pc = await load_poll(uow, actor, poll_id, lock=True)
    pc.ctx.access.require_control()
    if pc.poll.state != State.OPEN:
        raise Conflict(f"Biểu quyết đang ở trạng thái «{vr.STATE_LABELS[State(pc.poll.state)]}», không kết thúc được.")
    return await _close(uow, actor, pc.poll, pc.meeting, "chair")


async def close_for_meeting_end(uow: UnitOfWork, actor: User, meeting: Meeting) -> list[Poll]:
    """The meeting is ending (``lifecycle.end_meeting``, which holds the meeting's row lock): close and count
    its open polls. A cast waiting for a poll's row lock then finds the poll closed."""
    ids = (await uow.session.scalars(select(Poll.id).where(Poll.meeting_id == meeting.id, Poll.state == State.OPEN)
                                     .order_by(Poll.id))).all()
    closed = []
    for poll_id in ids:
        poll = await find_poll(uow, poll_id, lock=True)
        if poll.state == State.OPEN:
            closed.append(await _close(uow, actor, poll, meeting, "meeting_end"))
    return closed


async def close_expired(uow: UnitOfWork, now: dt.datetime | None = None) -> list[Poll]:
    """Close every open poll whose countdown has run out (the background runner, or a late cast)."""
    now = now or utcnow()
    ids = (await uow.session.scalars(select(Poll.id).where(
        Poll.state == State.OPEN, Poll.closes_at.is_not(None), Poll.closes_at <= now).order_by(Poll.id))).all()
    closed = []
    for poll_id in ids:
        poll = await find_poll(uow, poll_id, lock=True)
        if poll.state != State.OPEN or poll.closes_at is None or poll.closes_at > now:
            continue  # another process got there first
        meeting = await uow.session.get(Meeting, poll.meeting_id)
        assert meeting is not None
        closed.append(await _close(uow, None, poll, meeting, "timer"))
    return closed


async def publish_poll(uow: UnitOfWork, actor: User, poll_id: int) -> Poll:
    pc = await load_poll(uow, actor, poll_id, lock=True)
    pc.ctx.access.require_control()
    poll = pc.poll
    if poll.state != State.CLOSED:
        raise Conflict("Chỉ công bố kết quả của biểu quyết đã kết thúc.")
    poll.state = State.PUBLISHED
    poll.published_at = utcnow()
    await audit.record(uow, actor, "poll.publish", "poll", poll.id, meeting_id=poll.meeting_id)
    await emit_changed(uow, poll, pc.meeting)
    return poll


async def cancel_poll(uow: UnitOfWork, actor: User, poll_id: int, reason: str = "") -> Poll:
    pc = await load_poll(uow, actor, poll_id, lock=True)
    pc.ctx.access.require_control()
    poll = pc.poll
    if poll.state not in (State.DRAFT, State.OPEN):
        raise Conflict("Chỉ hủy biểu quyết chưa kết thúc.")
    was_open = poll.state == State.OPEN
    poll.state = State.CANCELLED
    poll.cancelled_at = utcnow()
    if was_open and poll.secret:
        try:
            await _shuffle_secret(uow, poll)
        except Conflict:  # sealed under a key this server no longer has: nobody will count them, drop them
            await uow.session.execute(delete(PollBallot).where(PollBallot.poll_id == poll.id)
                                      .execution_options(synchronize_session=False))
        await destroy_key(uow, poll)
    await audit.record(uow, actor, "poll.cancel", "poll", poll.id, meeting_id=poll.meeting_id,
                       reason=(reason or "").strip()[:500], cast=poll.votes_cast)
    await emit_changed(uow, poll, pc.meeting)
    return poll

