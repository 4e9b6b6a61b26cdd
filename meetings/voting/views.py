"""What people see of a poll: the public and the redacted (confidential item) views, the live tally of
a named poll shown live, the events of a state change, loading a poll with access checks, and the
lists (polls of a meeting, one's own rights, who has voted)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from eoffice.org import Unit, User
from meetings import topics
from meetings import voting_rules as vr
from meetings.agenda import item_viewers, visible_item_ids
from meetings.meetings import Ctx, user_names, view_context
from meetings.rules import State as MeetingState
from meetings.schema import Meeting, Participant, Poll, PollBallot, PollVoter
from meetings.voting_rules import State
from storage.db import UnitOfWork
from storage.errors import Denied, Forbidden, NotFound


def results_visible(poll: Poll, controller: bool) -> bool:
    state = State(poll.state)
    if state is State.PUBLISHED:
        return True
    if state is State.CLOSED:
        return controller or poll.visibility != vr.Visibility.PUBLISHED
    if state is State.OPEN:
        return poll.visibility == vr.Visibility.LIVE
    return False


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def rule_label(poll: Poll) -> str:
    """The preset's name ("Quá nửa tổng số thành viên") or the majority over its base."""
    preset = vr.preset_of(poll.majority, poll.base)
    if preset is not None:
        return preset.label
    return f"{vr.MAJORITY_LABELS[vr.Majority(poll.majority)]} ({vr.BASE_LABELS[vr.Base(poll.base)]})"


def public_view(poll: Poll, *, controller: bool = False, tally: dict[str, int] | None = None) -> dict[str, Any]:
    """What any participant may see; the result only when it is visible to them."""
    out: dict[str, Any] = {
        "id": poll.id, "meeting_id": poll.meeting_id, "item_id": poll.item_id, "title": poll.title,
        "description": poll.description, "method": poll.method,
        "method_label": vr.METHOD_LABELS[vr.Method(poll.method)],
        "options": [{"key": i + 1, "label": label} for i, label in enumerate(poll.options)],
        "max_choices": poll.max_choices, "seats": poll.seats,
        "allow_abstain": poll.allow_abstain or poll.method == vr.Method.YES_NO_ABSTAIN,
        "secret": poll.secret, "allow_change": poll.allow_change, "visibility": poll.visibility,
        "majority": poll.majority, "majority_label": vr.MAJORITY_LABELS[vr.Majority(poll.majority)],
        "base": poll.base, "base_label": vr.BASE_LABELS[vr.Base(poll.base)], "quorum_rule": poll.quorum_rule,
        "rule_label": rule_label(poll), "tie_rule": poll.tie_rule or "",
        "tie_rule_label": vr.TIE_RULE_LABELS[vr.TieRule(poll.tie_rule or "")],
        "proxy_cap": poll.proxy_cap, "weighted": poll.weighted, "duration_seconds": poll.duration_seconds,
        "state": poll.state, "state_label": vr.STATE_LABELS[State(poll.state)], "rerun_of_id": poll.rerun_of_id,
        "opened_at": iso(poll.opened_at), "closes_at": iso(poll.closes_at), "closed_at": iso(poll.closed_at),
        "published_at": iso(poll.published_at), "close_reason": poll.close_reason,
        "cast": poll.votes_cast, "eligible": poll.eligible_count, "cast_weight": poll.weight_cast,
        "eligible_weight": poll.eligible_weight, "present": poll.present_count, "entitled": poll.entitled_count,
        "quorum_needed": poll.quorum_needed, "result": None, "restricted": False,
    }
    if results_visible(poll, controller):
        if poll.result is not None:
            out["result"] = poll.result
        elif tally is not None:
            out["tally"] = tally
    return out


RESTRICTED_TITLE = "Biểu quyết về nội dung mật"


def restricted_view(poll: Poll) -> dict[str, Any]:
    """A poll on a confidential item, for someone who may not see the item: that it exists, its state and
    counts; never its title, description, options or result."""
    out = public_view(poll)
    out.update(title=RESTRICTED_TITLE, description="", options=[], result=None, restricted=True, max_choices=0,
               seats=0)
    out.pop("tally", None)
    return out


async def viewers_of(uow: UnitOfWork, poll: Poll, meeting: Meeting | None = None) -> set[int] | None:
    """Who may see (and vote on) the poll when its item is confidential; None: every participant."""
    if poll.item_id is None:
        return None
    meeting = meeting or await uow.session.get(Meeting, poll.meeting_id)
    assert meeting is not None
    return await item_viewers(uow, meeting, poll.item_id)


def confidential_refusal() -> Forbidden:
    return Forbidden("Biểu quyết này thuộc nội dung mật: chỉ người được xem nội dung mới được bỏ phiếu.",
                     reason="confidential")


async def live_tally(uow: UnitOfWork, poll: Poll) -> dict[str, int]:
    """Running counts of a named poll whose results are shown live (never for a secret one)."""
    if poll.secret:
        return {}
    rows = (await uow.session.execute(
        select(PollBallot.choice, PollBallot.weight).where(PollBallot.poll_id == poll.id))).all()
    out: dict[str, int] = {}
    for choice, weight in rows:
        if vr.is_abstain(choice):
            keys: list[str] = ["abstain"]
        elif "v" in choice:
            keys = [choice["v"]]
        else:
            keys = [str(k) for k in (choice.get("o") or choice.get("r", [])[:1])]
        for k in keys:
            out[k] = out.get(k, 0) + weight
    return out


def progress_data(poll: Poll) -> dict[str, Any]:
    return {"poll_id": poll.id, "state": poll.state, "cast": poll.votes_cast, "eligible": poll.eligible_count,
            "cast_weight": poll.weight_cast, "eligible_weight": poll.eligible_weight,
            "closes_at": iso(poll.closes_at)}


async def emit_changed(uow: UnitOfWork, poll: Poll, meeting: Meeting, *, opened: bool = False) -> None:
    """``poll.changed`` on the room (redacted for a confidential item) and the item's topic; ``opened``: the
    poll has just been opened (its voters get a notification, ``meetings.notices``)."""
    if meeting.state == MeetingState.DRAFT:
        return
    extra = {"opened": True} if opened else {}
    tally = await live_tally(uow, poll) if poll.state == State.OPEN and results_visible(poll, False) else None
    if await viewers_of(uow, poll, meeting) is not None:  # confidential: content only on the item's topic
        uow.emit(topics.room(poll.meeting_id), "poll.changed", poll_id=poll.id, state=poll.state,
                 poll=restricted_view(poll), **extra)
        assert poll.item_id is not None
        uow.emit(topics.item(poll.meeting_id, poll.item_id), "poll.changed", poll_id=poll.id, state=poll.state,
                 poll=public_view(poll, tally=tally))
        return
    uow.emit(topics.room(poll.meeting_id), "poll.changed", poll_id=poll.id, state=poll.state,
             poll=public_view(poll, tally=tally), **extra)


@dataclass
class PollCtx:
    poll: Poll
    meeting: Meeting
    ctx: Ctx


async def find_poll(uow: UnitOfWork, poll_id: int, *, lock: bool = False) -> Poll:
    q = select(Poll).where(Poll.id == poll_id)
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    poll = await uow.session.scalar(q)
    if poll is None:
        raise NotFound("Không tìm thấy biểu quyết.")
    return poll


async def load_poll(uow: UnitOfWork, user: User, poll_id: int, *, lock: bool = False,
                lock_meeting: bool = False) -> PollCtx:
    poll = await find_poll(uow, poll_id)
    ctx = await view_context(uow, user, poll.meeting_id, lock=lock_meeting)
    if lock:
        poll = await find_poll(uow, poll_id, lock=True)
    if poll.state == State.DRAFT and not ctx.access.controller:
        raise NotFound("Không tìm thấy biểu quyết.")
    viewers = await viewers_of(uow, poll, ctx.meeting)
    if viewers is not None and user.id not in viewers:
        raise Denied("Biểu quyết này thuộc nội dung mật, bạn không có trong danh sách được xem.",
                     audit=("poll.denied", "poll", poll.id, {"meeting_id": poll.meeting_id, "item_id": poll.item_id}))
    return PollCtx(poll, ctx.meeting, ctx)


async def list_polls(uow: UnitOfWork, user: User, meeting_id: int) -> list[dict[str, Any]]:
    ctx = await view_context(uow, user, meeting_id)
    q = select(Poll).where(Poll.meeting_id == meeting_id)
    if not ctx.access.controller:
        q = q.where(Poll.state != State.DRAFT)
    polls = (await uow.session.scalars(q.order_by(Poll.id))).all()
    visible: set[int] | None = None
    out = []
    for p in polls:
        if p.item_id is not None:
            if visible is None:
                visible = await visible_item_ids(uow, ctx.access, meeting_id)
            if p.item_id not in visible:
                out.append(restricted_view(p))
                continue
        tally = await live_tally(uow, p) if p.state == State.OPEN and results_visible(p, False) else None
        out.append(public_view(p, controller=ctx.access.controller, tally=tally))
    return out


async def my_rights(uow: UnitOfWork, user: User, poll: Poll) -> list[dict[str, Any]]:
    rows = (await uow.session.scalars(select(PollVoter).where(PollVoter.poll_id == poll.id,
                                                               PollVoter.user_id == user.id)
                                      .order_by(PollVoter.proxy, PollVoter.participant_id))).all()
    names = await seat_names(uow, {r.participant_id for r in rows})
    out = []
    for r in rows:
        item: dict[str, Any] = {"participant_id": r.participant_id, "name": names.get(r.participant_id, ""),
                                "proxy": r.proxy, "weight": r.weight, "voted": r.voted_at is not None,
                                "method": r.method, "choice": None}
        if r.ballot_id and not poll.secret:
            item["choice"] = await uow.session.scalar(select(PollBallot.choice).where(PollBallot.id == r.ballot_id))
        out.append(item)
    return out


async def get_poll(uow: UnitOfWork, user: User, poll_id: int) -> dict[str, Any]:
    pc = await load_poll(uow, user, poll_id)
    poll = pc.poll
    tally = await live_tally(uow, poll) if poll.state == State.OPEN and results_visible(poll, False) else None
    view = public_view(poll, controller=pc.ctx.access.controller, tally=tally)
    view["me"] = await my_rights(uow, user, poll)
    view["controller"] = pc.ctx.access.controller
    if pc.ctx.access.controller:
        view["refused_proxies"] = poll.refused_proxies
    return view


async def seat_names(uow: UnitOfWork, participant_ids: set[int]) -> dict[int, str]:
    if not participant_ids:
        return {}
    seats = (await uow.session.scalars(select(Participant).where(Participant.id.in_(participant_ids)))).all()
    users = await user_names(uow, {p.user_id for p in seats} | {p.substitute_id for p in seats})
    unit_ids = {p.unit_id for p in seats if p.unit_id}
    units = {u.id: u.name for u in (await uow.session.scalars(select(Unit).where(Unit.id.in_(unit_ids)))).all()} \
        if unit_ids else {}
    out = {}
    for p in seats:
        if p.user_id and p.user_id in users:
            name = users[p.user_id].full_name
        elif p.unit_id:
            name = units.get(p.unit_id, "")
        else:
            name = p.guest_name
        if p.substitute_id and p.substitute_id in users:
            name += f" (dự thay: {users[p.substitute_id].full_name})"
        out[p.id] = name
    return out


async def voters_view(uow: UnitOfWork, user: User, poll_id: int) -> list[dict[str, Any]]:
    """Chair and secretary: every right of the poll and whether it has voted (named polls: also how)."""
    pc = await load_poll(uow, user, poll_id)
    pc.ctx.access.require_control()
    poll = pc.poll
    rows = (await uow.session.scalars(select(PollVoter).where(PollVoter.poll_id == poll.id)
                                      .order_by(PollVoter.participant_id))).all()
    names = await seat_names(uow, {r.participant_id for r in rows} | {r.holder_id for r in rows})
    show_choice = not poll.secret and results_visible(poll, True) and poll.state != State.OPEN
    choices: dict[str, Any] = {}
    if show_choice:
        ids = [r.ballot_id for r in rows if r.ballot_id]
        if ids:
            choices = dict((await uow.session.execute(
                select(PollBallot.id, PollBallot.choice).where(PollBallot.id.in_(ids)))).all())
    out = []
    for r in rows:
        item: dict[str, Any] = {"participant_id": r.participant_id, "name": names.get(r.participant_id, ""),
                                "proxy": r.proxy, "holder": names.get(r.holder_id, "") if r.proxy else "",
                                "weight": r.weight, "tablet": r.user_id is not None,
                                "voted": r.voted_at is not None}
        if not poll.secret:
            item["method"] = r.method
            if show_choice:
                item["choice"] = choices.get(r.ballot_id or "")
        out.append(item)
    return out

