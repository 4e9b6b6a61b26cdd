"""Counting votes: the one tablet cast path (``cast_votes``, a batch of casts in one transaction, used by
``polls_live.CastBatcher`` and, with a batch of one, wherever a single vote is cast), the chair's roll
call for named polls and the paper ballots of secret ones. Every way of counting a vote takes the
poll's row lock first (``meetings.voting``, "Integrity")."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, or_, select, update

from eoffice import audit
from eoffice.identity import ApiToken, UserSession, token_usable
from eoffice.org import User
from meetings import rules
from meetings import voting_rules as vr
from meetings.rules import State as MeetingState
from meetings.schema import Meeting, Poll, PollBallot, PollKey, PollVoter
from meetings.voting.sealing import cipher_for, new_ballot_id, seal, sealer, sealer_from, stored_choice
from meetings.voting.views import confidential_refusal, find_poll, load_poll, seat_names, viewers_of
from meetings.voting_rules import State
from storage.db import UnitOfWork, utcnow
from storage.errors import AppError, Conflict, Forbidden, Invalid, NotFound, Unauthenticated


@dataclass
class Receipt:
    poll_id: int
    participant_id: int
    cast: int
    eligible: int
    changed: bool

    def public(self) -> dict[str, Any]:
        return {"poll_id": self.poll_id, "participant_id": self.participant_id, "cast": self.cast,
                "eligible": self.eligible, "changed": self.changed}


class PollExpired(Conflict):
    """The countdown has run out but the poll is not closed yet: the caller closes it."""


def _refuse_state(poll_state: str, closes_at: dt.datetime | None, now: dt.datetime) -> None:
    state = State(poll_state)
    if state is State.DRAFT:
        raise Conflict("Biểu quyết chưa mở.", state=poll_state)
    if state is not State.OPEN:
        raise Conflict(f"Biểu quyết đã kết thúc, không nhận thêm phiếu (trạng thái «{vr.STATE_LABELS[state]}»).",
                       state=poll_state)
    if closes_at is not None and closes_at <= now:
        raise PollExpired("Đã hết thời gian biểu quyết, không nhận thêm phiếu.", state="expired")


async def _require_live_meeting(uow: UnitOfWork, poll: Poll) -> None:
    """A vote counts only while its meeting is in progress (ending the meeting closes its polls; this also
    refuses votes in a poll left open by a meeting that ended before that rule)."""
    _refuse_meeting(await uow.session.scalar(select(Meeting.state).where(Meeting.id == poll.meeting_id)))


def _refuse_meeting(state: str | None) -> None:
    if state != MeetingState.IN_PROGRESS:
        label = rules.STATE_LABELS[MeetingState(state)] if state else ""
        raise Conflict(f"Cuộc họp không còn diễn ra (trạng thái «{label}»), không nhận thêm phiếu biểu quyết.",
                       state=f"meeting_{state}")


async def _claim(uow: UnitOfWork, poll: Poll, voter: PollVoter, ballot: dict[str, Any], *, method: str,
                 recorded_by: int | None) -> tuple[int, bool]:
    """Count one vote under the poll's row lock; returns (votes cast, changed an earlier vote)."""
    now = utcnow()
    change = voter.voted_at is not None
    if change and not poll.allow_change:
        raise Conflict("Phiếu này đã được bỏ; biểu quyết không cho phép sửa phiếu.")
    row = (await uow.session.execute(
        update(Poll).where(Poll.id == poll.id, Poll.state == State.OPEN,
                           or_(Poll.closes_at.is_(None), Poll.closes_at > now))
        .values(votes_cast=Poll.votes_cast + (0 if change else 1),
                weight_cast=Poll.weight_cast + (0 if change else voter.weight))
        .returning(Poll.votes_cast)
        .execution_options(synchronize_session=False)
    )).first()
    if row is None:  # closed or run out meanwhile: tell which
        fresh = (await uow.session.execute(select(Poll.state, Poll.closes_at).where(Poll.id == poll.id))).one()
        _refuse_state(fresh[0], fresh[1], now)
        raise PollExpired("Đã hết thời gian biểu quyết, không nhận thêm phiếu.", state="expired")
    await _require_live_meeting(uow, poll)  # under the poll's row lock (the caller's transaction rolls back)
    if change:
        assert voter.ballot_id is not None and not poll.secret
        done = await uow.session.execute(
            update(PollVoter).where(PollVoter.id == voter.id, PollVoter.voted_at.is_not(None))
            .values(voted_at=now, method=method, recorded_by=recorded_by, changes=PollVoter.changes + 1)
            .execution_options(synchronize_session=False))
        await uow.session.execute(update(PollBallot).where(PollBallot.id == voter.ballot_id)
                                  .values(choice=ballot).execution_options(synchronize_session=False))
    else:
        ballot_id = new_ballot_id()
        done = await uow.session.execute(
            update(PollVoter).where(PollVoter.id == voter.id, PollVoter.voted_at.is_(None))
            .values(voted_at=now, method=method, recorded_by=recorded_by,
                    ballot_id=None if poll.secret else ballot_id)
            .execution_options(synchronize_session=False))
        if done.rowcount == 1:  # type: ignore[attr-defined]
            await uow.session.execute(insert(PollBallot).values(
                id=ballot_id, poll_id=poll.id, choice=stored_choice(await cipher_for(uow, poll), poll, ballot),
                weight=voter.weight))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Phiếu này đã được bỏ (có một phiếu khác vừa được ghi nhận trước).")
    return int(row[0]), change


def _pick_right(rights: list[PollVoter], participant_id: int | None) -> PollVoter:
    """The right a cast is for: the seat asked for, else the user's own seat (not a proxy they hold)."""
    if participant_id is not None:
        rights = [r for r in rights if r.participant_id == participant_id]
    elif len(rights) > 1:
        rights = [r for r in rights if not r.proxy] or rights[:1]
    if not rights:
        raise Forbidden("Bạn không có quyền biểu quyết lần này (chỉ đại biểu có quyền biểu quyết đã điểm danh "
                        "khi mở biểu quyết, hoặc người nhận ủy quyền, mới được bỏ phiếu).")
    return rights[0]


@dataclass
class CastRequest:
    actor: User
    choice: Any
    participant_id: int | None = None
    # ("session" | "bearer", sha256 of the token) when the caller authenticated earlier (a WebSocket's
    # handshake): checked in the cast's transaction, so a logged-out session or revoked token votes no more
    credential: tuple[str, str] | None = None


async def _live_credentials(uow: UnitOfWork, requests: list[CastRequest],
                            now: dt.datetime) -> dict[tuple[str, str], int]:
    """Of the requests' credentials, those still valid: (kind, hash) -> the user they belong to (active users only)."""
    wanted = {r.credential for r in requests if r.credential is not None}
    sessions = [h for kind, h in wanted if kind == "session"]
    tokens = [h for kind, h in wanted if kind == "bearer"]
    live: dict[tuple[str, str], int] = {}
    if sessions:
        rows = await uow.session.execute(select(UserSession.token_hash, UserSession.user_id)
                                         .join(User, User.id == UserSession.user_id)
                                         .where(UserSession.token_hash.in_(sessions), UserSession.expires_at > now,
                                                User.active.is_(True)))
        live.update({("session", h): uid for h, uid in rows.all()})
    if tokens:
        rows = await uow.session.execute(select(ApiToken.token_hash, ApiToken.user_id)
                                         .join(User, User.id == ApiToken.user_id)
                                         .where(ApiToken.token_hash.in_(tokens), token_usable(now),  # type: ignore[arg-type]
                                                ApiToken.scope == "full", User.active.is_(True)))
        live.update({("bearer", h): uid for h, uid in rows.all()})
    return live


async def cast_votes(uow: UnitOfWork, poll_id: int, requests: list[CastRequest]) -> list[Receipt | AppError]:
    """Many casts in one poll, in order: the one way a tablet's vote is counted (HTTP and WebSocket go through
    ``polls_live.CastBatcher``; a single vote is a batch of one).

    For the group commit (``polls_live.CastBatcher``): the poll's row is locked first (``FOR UPDATE``;
    every other way of claiming a vote takes that lock too), so the has-voted rows read next are the
    truth until the commit; the claims, ballots and counter are then written in bulk. Each request
    gets its receipt or its refusal; a refusal leaves the others alone.
    """
    now = utcnow()
    # the poll's row lock and its meeting's state in one statement (no extra round trip per batch)
    found = (await uow.session.execute(
        select(Poll, Meeting.state, PollKey.wrapped).join(Meeting, Meeting.id == Poll.meeting_id)
        .outerjoin(PollKey, PollKey.poll_id == Poll.id).where(Poll.id == poll_id)
        .with_for_update(of=Poll).execution_options(populate_existing=True))).first()
    if found is None:
        raise NotFound("Không tìm thấy biểu quyết.")
    poll, meeting_state, wrapped = found
    out: list[Receipt | AppError | None] = [None] * len(requests)
    try:
        _refuse_state(poll.state, poll.closes_at, now)
        _refuse_meeting(meeting_state)
    except AppError as refused:
        if poll.state == State.DRAFT:
            return [NotFound("Không tìm thấy biểu quyết.")] * len(requests)
        await audit.record_many(uow, [_refusal_entry(r, poll, None, refused) for r in requests])
        return [refused] * len(requests)
    spec = poll.spec()
    viewers = await viewers_of(uow, poll)  # None unless the poll's item is confidential
    try:
        cipher = sealer_from(uow.db, poll.id, wrapped) if poll.secret else None
    except AppError as refused:
        await audit.record_many(uow, [_refusal_entry(r, poll, None, refused) for r in requests])
        return [refused] * len(requests)
    live = await _live_credentials(uow, requests, now)
    user_ids = {r.actor.id for r in requests}
    rows = (await uow.session.scalars(
        select(PollVoter).where(PollVoter.poll_id == poll.id, PollVoter.user_id.in_(user_ids))
        .order_by(PollVoter.proxy, PollVoter.participant_id).execution_options(populate_existing=True))).all()
    by_user: dict[int, list[PollVoter]] = {}
    for row in rows:
        by_user.setdefault(row.user_id or 0, []).append(row)
    claims: list[dict[str, Any]] = []
    pending: dict[int, dict[str, Any]] = {}  # voter row id -> the ballot this batch will insert for it
    accepted: list[tuple[int, PollVoter, dict[str, Any], bool]] = []
    weight = 0
    refusals: list[audit.Entry] = []  # audited too, without the choice
    for i, req in enumerate(requests):
        voter = None
        try:
            if req.credential is not None and live.get(req.credential) != req.actor.id:
                raise Unauthenticated("Phiên đăng nhập đã kết thúc. Vui lòng đăng nhập lại để bỏ phiếu.")
            if viewers is not None and req.actor.id not in viewers:
                raise confidential_refusal()
            voter = _pick_right(by_user.get(req.actor.id, []), req.participant_id)
            ballot = vr.validate_ballot(spec, req.choice)
            changed = voter.voted_at is not None or voter.id in pending
            if changed and not poll.allow_change:
                raise Conflict("Phiếu này đã được bỏ; biểu quyết không cho phép sửa phiếu.")
        except AppError as exc:
            out[i] = exc
            refusals.append(_refusal_entry(req, poll, voter, exc))
            continue
        if voter.id in pending:  # cast earlier in this very batch: change what will be inserted
            pending[voter.id]["choice"] = stored_choice(cipher, poll, ballot)
        elif changed:
            assert voter.ballot_id is not None and not poll.secret
            await uow.session.execute(update(PollBallot).where(PollBallot.id == voter.ballot_id)
                                      .values(choice=ballot).execution_options(synchronize_session=False))
            await uow.session.execute(update(PollVoter).where(PollVoter.id == voter.id)
                                      .values(voted_at=now, method="tablet", changes=PollVoter.changes + 1)
                                      .execution_options(synchronize_session=False))
        else:
            ballot_id = new_ballot_id()
            claims.append({"id": voter.id, "voted_at": now, "method": "tablet",
                           "ballot_id": None if poll.secret else ballot_id})
            pending[voter.id] = {"id": ballot_id, "poll_id": poll.id, "choice": stored_choice(cipher, poll, ballot),
                                 "weight": voter.weight}
            weight += voter.weight
        accepted.append((i, voter, ballot, changed))
    if refusals:
        await audit.record_many(uow, refusals)
    if not accepted:
        return [r for r in out if r is not None]  # type: ignore[misc]
    if claims:
        await uow.session.execute(update(PollVoter), claims)
        ballots = list(pending.values())
        if poll.secret:  # rows of one statement are stored in the order given: never the order of arrival
            random.SystemRandom().shuffle(ballots)
        await uow.session.execute(insert(PollBallot), ballots)
    total = (await uow.session.execute(
        update(Poll).where(Poll.id == poll.id).values(votes_cast=Poll.votes_cast + len(claims),
                                                     weight_cast=Poll.weight_cast + weight)
        .returning(Poll.votes_cast).execution_options(synchronize_session=False))).scalar_one()
    running = total - len(claims)
    entries = []
    for i, voter, ballot, changed in accepted:
        if not changed:
            running += 1
        entries.append(_vote_entry(requests[i].actor, poll, voter, ballot, changed, "poll.vote"))
        out[i] = Receipt(poll.id, voter.participant_id, running, poll.eligible_count, changed)
    await audit.record_many(uow, entries)  # one audit entry per vote, written with one statement
    return out  # type: ignore[return-value]


def _refusal_reason(exc: AppError) -> str:
    if isinstance(exc, Unauthenticated):
        return "logged_out"
    if isinstance(exc, Forbidden):
        return "confidential" if exc.details.get("reason") == "confidential" else "not_eligible"
    if isinstance(exc, Invalid):
        return "malformed"
    state = exc.details.get("state") if isinstance(exc.details, dict) else None
    return str(state) if state else "already_voted"


def _refusal_entry(req: CastRequest, poll: Poll, voter: PollVoter | None, exc: AppError) -> audit.Entry:
    """A refused cast, audited with who and why (closed, not eligible, malformed, ...), never with the choice."""
    return audit.Entry(req.actor, "poll.vote.refused", "poll", poll.id, data={
        "meeting_id": poll.meeting_id, "reason": _refusal_reason(exc),
        "participant_id": voter.participant_id if voter is not None else req.participant_id})


def _vote_entry(actor: User, poll: Poll, voter: PollVoter, ballot: dict[str, Any], changed: bool,
                action: str) -> audit.Entry:
    detail: dict[str, Any] = {"meeting_id": poll.meeting_id, "participant_id": voter.participant_id,
                              "proxy": voter.proxy, "changed": changed}
    if not poll.secret:
        detail["choice"] = ballot  # a named vote is public; a secret one is never written here
    return audit.Entry(actor, action + (".change" if changed else ""), "poll", poll.id, data=detail)


async def _after_vote(uow: UnitOfWork, actor: User, poll: Poll, voter: PollVoter, ballot: dict[str, Any],
                      changed: bool, action: str) -> None:
    await audit.record_many(uow, [_vote_entry(actor, poll, voter, ballot, changed, action)])


async def record_roll_call(uow: UnitOfWork, actor: User, poll_id: int, votes: Any) -> list[Receipt]:
    """The chair or secretary records votes by roll call or show of hands (people without a tablet);
    ``votes`` as it came in (checked here to be a list of ``{participant_id, choice}``)."""
    pc = await load_poll(uow, actor, poll_id)
    pc.ctx.access.require_control()
    poll = pc.poll
    if poll.secret:
        raise Conflict("Bỏ phiếu kín không ghi nhận theo hình thức giơ tay hoặc điểm danh; người không có máy tính "
                       "bảng bỏ phiếu giấy (chủ trì hoặc thư ký nhập các phiếu giấy).")
    _refuse_state(poll.state, poll.closes_at, utcnow())
    if not isinstance(votes, list) or not votes:
        raise Invalid("Cần danh sách phiếu [{participant_id, choice}].", field="votes")
    spec = poll.spec()
    receipts = []
    seen: set[int] = set()
    for entry in votes:
        if not isinstance(entry, dict) or isinstance(entry.get("participant_id"), bool) \
                or not isinstance(entry.get("participant_id"), int):
            raise Invalid("Mỗi phiếu cần participant_id và choice.", field="votes")
        pid = entry["participant_id"]
        if pid in seen:
            raise Invalid("Một người chỉ được ghi một phiếu.", field="votes")
        seen.add(pid)
        voter = await uow.session.scalar(select(PollVoter).where(PollVoter.poll_id == poll.id,
                                                                  PollVoter.participant_id == pid))
        if voter is None:
            raise Forbidden("Người này không có quyền biểu quyết lần này.", participant_id=pid)
        ballot = vr.validate_ballot(spec, entry.get("choice"))
        cast, changed = await _claim(uow, poll, voter, ballot, method="roll_call", recorded_by=actor.id)
        await _after_vote(uow, actor, poll, voter, ballot, changed, "poll.roll_call")
        receipts.append(Receipt(poll.id, pid, cast, poll.eligible_count, changed))
    return receipts


async def record_paper_ballots(uow: UnitOfWork, actor: User, poll_id: int, participant_ids: Any,
                               choices: Any) -> dict[str, Any]:
    """Secret poll, people without a tablet: the chair or secretary records that these seats voted on paper
    (their has-voted rows, method "paper") and enters the paper ballots taken from the box, as a batch with no
    link to the seats: the count must equal the number of seats, the choices are shuffled and sealed like any
    secret ballot, and the audit entry names the seats, never a choice. In a weighted poll the seats of one
    batch must have the same weight (a ballot's weight would otherwise say whose it is). A batch of one seat
    is allowed (someone alone without a tablet must be able to vote), but then whoever enters it knows the
    choice, as a teller counting a single paper would: collect the papers of several people first."""
    pc = await load_poll(uow, actor, poll_id)
    pc.ctx.access.require_control()
    if not pc.poll.secret:
        raise Conflict("Biểu quyết công khai: ghi nhận theo hình thức giơ tay hoặc điểm danh, không dùng phiếu giấy.")
    now = utcnow()
    poll = await find_poll(uow, poll_id, lock=True)  # every way of counting a vote takes this lock first
    _refuse_state(poll.state, poll.closes_at, now)
    await _require_live_meeting(uow, poll)
    if not isinstance(participant_ids, list) or not participant_ids or any(
            isinstance(i, bool) or not isinstance(i, int) for i in participant_ids):
        raise Invalid("Chọn những người đã bỏ phiếu giấy.", field="participant_ids")
    if len(set(participant_ids)) != len(participant_ids):
        raise Invalid("Mỗi người chỉ được ghi nhận một lần.", field="participant_ids")
    if not isinstance(choices, list) or len(choices) != len(participant_ids):
        raise Invalid(f"Số phiếu giấy nhập vào ({len(choices) if isinstance(choices, list) else 0}) phải bằng số "
                      f"người đã bỏ phiếu giấy ({len(participant_ids)}).", field="choices")
    spec = poll.spec()
    ballots = []
    for i, choice in enumerate(choices):
        try:
            ballots.append(vr.validate_ballot(spec, choice))
        except Invalid as exc:
            raise Invalid(f"Phiếu giấy thứ {i + 1}: {exc.message}", field="choices", index=i) from None
    voters = (await uow.session.scalars(select(PollVoter).where(
        PollVoter.poll_id == poll.id, PollVoter.participant_id.in_(participant_ids))
        .execution_options(populate_existing=True))).all()
    found = {v.participant_id: v for v in voters}
    missing = [i for i in participant_ids if i not in found]
    if missing:
        raise Forbidden("Có người không có quyền biểu quyết lần này.", participant_ids=missing)
    voted = [i for i in participant_ids if found[i].voted_at is not None]
    if voted:
        names = await seat_names(uow, set(voted))
        raise Conflict("Đã bỏ phiếu rồi: " + ", ".join(names.get(i, str(i)) for i in voted) + ".",
                       participant_ids=voted)
    weights = {v.weight for v in voters}
    if len(weights) != 1:
        raise Invalid("Những người trong một lần nhập phiếu giấy phải có cùng trọng số phiếu; hãy nhập riêng "
                      "từng nhóm trọng số.", field="participant_ids")
    weight = weights.pop()
    done = await uow.session.execute(
        update(PollVoter).where(PollVoter.poll_id == poll.id, PollVoter.participant_id.in_(participant_ids),
                                PollVoter.voted_at.is_(None))
        .values(voted_at=now, method="paper", recorded_by=actor.id, ballot_id=None)
        .execution_options(synchronize_session=False))
    if done.rowcount != len(participant_ids):  # type: ignore[attr-defined]
        raise Conflict("Có người vừa bỏ phiếu trong lúc nhập phiếu giấy; hãy tải lại danh sách.")
    random.SystemRandom().shuffle(ballots)
    cipher = await sealer(uow, poll)
    await uow.session.execute(insert(PollBallot), [
        {"id": new_ballot_id(), "poll_id": poll.id, "choice": seal(cipher, poll, b), "weight": weight}
        for b in ballots])
    n = len(ballots)
    total = (await uow.session.execute(
        update(Poll).where(Poll.id == poll.id).values(votes_cast=Poll.votes_cast + n,
                                                     weight_cast=Poll.weight_cast + n * weight)
        .returning(Poll.votes_cast).execution_options(synchronize_session=False))).scalar_one()
    await audit.record(uow, actor, "poll.paper", "poll", poll.id, meeting_id=poll.meeting_id,
                       participant_ids=sorted(participant_ids), ballots=n)
    return {"poll_id": poll.id, "recorded": n, "cast": int(total), "eligible": poll.eligible_count}

