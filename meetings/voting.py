"""Polls in the meeting room: named and secret ballots, proxies and weights, the life cycle
draft -> open (optionally with a countdown) -> closed -> published, cancel and re-run.

Rules that need no I/O live in ``meetings.voting_rules``; this module stores and checks.

Integrity
    A cast is one transaction: ``UPDATE meeting_polls SET votes_cast = votes_cast + 1 WHERE
    state = 'open' AND (closes_at IS NULL OR closes_at > now)`` takes the poll's row lock (so a
    cast and the close are ordered: a cast waiting behind the close finds the poll closed and is
    refused, and the counter is exact and monotonic), then the voter's "has voted" row is claimed
    with ``UPDATE ... WHERE voted_at IS NULL`` (unique per poll and seat: one vote per voter and
    per proxy, a concurrent duplicate finds nothing to claim and gets ``Conflict``), then the
    ballot is inserted and the audit entry written. The HTTP answer is sent after the commit, so
    an acknowledged vote is durable; a crashed process loses only unacknowledged ones. Under the
    same lock a cast checks that the meeting is in progress: ending a meeting closes and counts
    its open poll in the ending transaction (``close_for_meeting_end``, reason ``meeting_end``,
    audited like every close), so a cast waiting behind it finds the poll closed.

Secret ballots
    ``meeting_poll_ballots`` has no column that could name a voter or a time: a random UUID
    (not an autoincrement, which would order ballots by time), the poll, the choice and the
    weight. On SQLite the table is WITHOUT ROWID, so rows sit in the order of their random keys.
    Who has voted is in ``meeting_poll_voters`` (unique per poll and seat); for named polls that
    row also holds the ballot id, for secret polls it never does.

    That is not enough on PostgreSQL while the poll is open: the has-voted UPDATE and the ballot
    INSERT are one transaction (they must be: a vote is acknowledged after one commit), so the
    system column ``xmin`` of a voter's row equals the ``xmin`` of the ballot written with it, and
    ``ctid`` (physical position) orders ballots by arrival, as ``voted_at`` orders voters. Any role
    with SELECT could run ``... JOIN meeting_poll_ballots b ON b.xmin = v.xmin`` and read each
    voter's choice. So while a secret poll is open its ballots are *sealed*: the stored choice is
    ``{"sealed": base64(nonce || AES-256-GCM(choice padded to a length fixed per poll))}``, with a
    fresh random nonce per ballot and the poll id as associated data, under a random key of the
    poll's own (``meetings.ballot_keys``), created when it opens and stored only wrapped (AES-GCM)
    under a key derived from the application's secret, which is not in the database nor, by
    default, in the data directory (``EOFFICE_SECRET_KEY`` or the key directory, ``storage.keys``).
    The wrapped key is in the database so a restarted process (even after ``kill -9``) goes on.
    The xmin join or the ctid order still pair a voter with *a row*, but the row says nothing: two
    "yes" ballots differ, every ballot of a poll has the same length, and the choice is unreadable
    without the key. When a secret poll closes (or is cancelled) the closing transaction unseals the
    ballots, counts them, deletes them and writes them back in plaintext, in a random order, with new
    ids (so their ids, ctid and xmin are the closing transaction's and say nothing about when each
    was cast), then overwrites the poll's key row with zeros and deletes it: from then on nothing
    opens a sealed ballot, wherever a copy of it survives. After the commit ``scrub`` makes the
    storage forget the old versions: PostgreSQL vacuums the dead sealed ballots and key row; SQLite
    (where ``secure_delete`` is on for every connection, so deleted rows and freed pages are zeroed
    in the file) checkpoints the write-ahead log into the file and truncates it, so the log no longer
    keeps the sealed ballots in commit order next to the voters' rows, nor the wrapped key.
    ``tests/meetings/test_voting_raw_files.py`` reads the raw files after a close to check this.

    Cost: sealing is about 9 µs of CPU per vote and unsealing 5 µs per ballot at the close (2,000
    ballots: 10 ms), against 0.5-0.9 ms of server CPU per vote in ``bench/voting.py``.
    Weighed and rejected: re-touching a random sample of k other ballots per batch only blurs the
    join into k+1 candidates for the newest batch, an earlier voter's ballot may keep its own xmin,
    and ctid/xmin order still follow arrival; re-touching every ballot of the poll per batch is
    O(N) per batch and O(N²) row versions per poll (measured at 2,000 ballots in batches of 4:
    17-20 ms per batch instead of 1.4-4.3 ms), and an UPDATE keeps a row in its page (HOT), so ctid
    order still follows arrival; per-option counter rows instead of ballots cannot serve ranked
    methods and a counter row still changes in the voter's transaction unless every counter is
    rewritten each batch. Re-touching voter rows does not help while ballots keep their arrival
    order (``voted_at`` order against ballot order).

    Residual risk, honestly: (1) someone who holds *both* the application's secret and read
    access to the database while the poll is open (in practice the server's operator) can unwrap
    the poll's key and link; so can someone who copies the sealed rows with their xmin (or the
    SQLite write-ahead log) while the poll is open and obtains the secret *before the close*: once
    the poll's key row is destroyed, the secret alone opens nothing. (2) Bytes the database freed
    may stay on the storage device below the file system (SSD wear levelling, file-system journals,
    snapshots, backups taken while the poll was open). On PostgreSQL the vacuumed key row's bytes
    may stay in the page until reused, and the write-ahead log segments (and a WAL archive, if one
    is kept) hold the wrapped key and the sealed ballots until recycled: whoever has those *and* the
    secret can still link, so the secret must be kept apart from database backups (SQLite: the file
    is zeroed and the log truncated, see above).
    ``scrub`` runs after a close and at start-up; if a reader kept the SQLite log busy it tries again
    at the next one. (3) Anyone watching the has-voted rows live learns who voted when (the chair
    sees that too), never what. (4) Weighted secret polls reveal the weight of each ballot after the
    close, which identifies a voter whose weight is unique; with one voter, or a unanimous result,
    the count itself tells. (5) If the secret changes while a secret poll is open its key cannot be
    unwrapped: casting and closing refuse with a clear message (the chair cancels and re-runs). A
    process that did not register the secret (a script with its own ``Database``) wraps with a key of
    its own process, and only that process can close such a poll. Polls opened before per-poll keys
    existed are sealed with a key derived from the secret itself until they close. (6) Paper ballots
    entered one seat at a time are known to whoever enters them, as a single paper is to a teller
    (``record_paper_ballots``).

Paper ballots
    In a secret poll, people without a tablet vote on paper (``record_paper_ballots``): the chair
    or secretary records which seats put a paper in the box (their has-voted rows, method
    "paper") and enters the papers' choices as one batch, as many as the seats, shuffled and
    sealed like any secret ballot, with an audit entry naming the seats and the number of papers,
    never a choice. A named poll uses the roll call instead (each vote stays with its voter).

Vote changes
    A poll may allow changing one's vote until it closes: for named polls the ballot is updated
    in place (and the audit log keeps each change). Secret polls cannot allow it: changing a
    ballot needs something linking it to its voter (a receipt), and a receipt lets a voter prove
    their vote to someone who bought or coerced it. ``voting_rules.make_spec`` refuses the
    combination.

Eligibility is fixed when the poll opens (``meeting_poll_voters``): voting members checked in at
that moment, and the proxies they hold (``meeting_voting_rights``, capped by the poll). A member
who arrives later votes in the next poll, or the chair re-runs this one.

Events (``meeting:{id}``): ``poll.changed`` [poll_id, state, poll{public view}] on every state
change; ``poll.progress`` [poll_id, cast, eligible, cast_weight, eligible_weight, tally?] coalesced
by ``meetings.polls_live`` at most every 100 ms while votes arrive (never one per vote: a hall of
tablets would receive N² messages). The chair's list of who has not voted (``voters_view``, named
polls) is refetched on those progress events rather than pushed per vote.

Confidential items
    A poll on a confidential agenda item (``item_id`` naming one) is seen, and voted on, only by those
    who may see the item (``agenda.item_viewers``: the people listed on it, their approved
    substitutes, the chair, secretary and organiser). On the room topic its ``poll.changed`` carries a
    redacted view (``restricted_view``: ids, state and counts, no title, description, options or
    result) and its progress no tally; the full view goes to the item's own topic
    (``meeting:{id}:item:{item_id}``), whose subscribers may see the item. The poll list shows others
    the redacted view; the detail, CSV export and a cast answer 403 (``storage.errors.Denied``, audited
    as ``poll.denied``; a refused cast as ``poll.vote.refused`` with reason ``confidential``). When the
    poll opens, the seats whose voter may not see the item get no right (they are not counted as
    eligible); the check is made again at every cast, because access may shrink while the poll is open.

Throughput: ``polls_live.CastBatcher`` runs the casts that arrive together in one transaction
(``cast_votes``: the poll's row locked first, then one SELECT of the voters' rights, one UPDATE of
their has-voted rows, one INSERT of the ballots, one UPDATE of the counters and one batched audit
append, ``audit.record_many``), and answers them all after the one commit (group commit: one write
lock and one fsync for many votes). A refused cast (already voted, not eligible, malformed, a
logged-out WebSocket) gets its own error and leaves the others alone, and is audited
(``poll.vote.refused``: who, the seat when known, a reason code, never the choice). Eligibility needs no cache:
it is fixed when the poll opens (``meeting_poll_voters``), and the one SELECT per batch that reads it
is the same one that reads who has voted, under the lock.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import random
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from eoffice import audit, spreadsheet
from eoffice.identity import ApiToken, UserSession, token_usable
from eoffice.org import Unit, User
from meetings import ballot_keys, rules, schema, topics
from meetings import voting_rules as vr
from meetings.agenda import item_viewers, visible_item_ids
from meetings.meetings import Ctx, get_context, user_names, view_context
from meetings.rules import State as MeetingState
from meetings.schema import AgendaItem, Meeting, Participant, Poll, PollBallot, PollVoter, VotingRight
from meetings.voting_rules import State
from storage import keys
from storage.db import Database, UnitOfWork, checkpoint_truncate, utcnow
from storage.errors import AppError, Conflict, Denied, Forbidden, Invalid, NotFound, Unauthenticated

log = logging.getLogger(__name__)

MAX_DURATION = 24 * 3600


def new_ballot_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------- sealed secret ballots (meetings.ballot_keys)

seal, unseal, sealed_size, sealer = ballot_keys.seal, ballot_keys.unseal, ballot_keys.sealed_size, ballot_keys.sealer


def use_ballot_key(db: Database, secret_key: str) -> None:
    """Wrap the ballot keys of secret polls written through ``db`` with a key derived from the application's
    secret (without one, this process's own random key is used: see the module docstring, residual risk 5)."""
    keys.register(db.url, secret_key)


def _stored_choice(cipher: AESGCM | None, poll: Poll, choice: dict[str, Any]) -> dict[str, Any]:
    return seal(cipher, poll, choice) if poll.secret and cipher is not None else choice


async def _cipher(uow: UnitOfWork, poll: Poll) -> AESGCM | None:
    return await sealer(uow, poll) if poll.secret else None


async def _ballots(uow: UnitOfWork, poll: Poll) -> list[tuple[dict[str, Any], int]]:
    """The poll's ballots as (choice, weight), unsealed."""
    rows = (await uow.session.execute(
        select(PollBallot.choice, PollBallot.weight).where(PollBallot.poll_id == poll.id))).all()
    if not poll.secret:
        return [(c, w) for c, w in rows]
    cipher = await sealer(uow, poll)
    return [(unseal(cipher, poll, c), w) for c, w in rows]


# ---------------------------------------------------------------- views


def results_visible(poll: Poll, controller: bool) -> bool:
    state = State(poll.state)
    if state is State.PUBLISHED:
        return True
    if state is State.CLOSED:
        return controller or poll.visibility != vr.Visibility.PUBLISHED
    if state is State.OPEN:
        return poll.visibility == vr.Visibility.LIVE
    return False


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


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
        "proxy_cap": poll.proxy_cap, "weighted": poll.weighted, "duration_seconds": poll.duration_seconds,
        "state": poll.state, "state_label": vr.STATE_LABELS[State(poll.state)], "rerun_of_id": poll.rerun_of_id,
        "opened_at": _iso(poll.opened_at), "closes_at": _iso(poll.closes_at), "closed_at": _iso(poll.closed_at),
        "published_at": _iso(poll.published_at), "close_reason": poll.close_reason,
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


def _confidential_refusal() -> Forbidden:
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
            "closes_at": _iso(poll.closes_at)}


async def _emit_changed(uow: UnitOfWork, poll: Poll, meeting: Meeting) -> None:
    if meeting.state == MeetingState.DRAFT:
        return
    tally = await live_tally(uow, poll) if poll.state == State.OPEN and results_visible(poll, False) else None
    if await viewers_of(uow, poll, meeting) is not None:  # confidential: content only on the item's topic
        uow.emit(topics.room(poll.meeting_id), "poll.changed", poll_id=poll.id, state=poll.state,
                 poll=restricted_view(poll))
        assert poll.item_id is not None
        uow.emit(topics.item(poll.meeting_id, poll.item_id), "poll.changed", poll_id=poll.id, state=poll.state,
                 poll=public_view(poll, tally=tally))
        return
    uow.emit(topics.room(poll.meeting_id), "poll.changed", poll_id=poll.id, state=poll.state,
             poll=public_view(poll, tally=tally))


# ---------------------------------------------------------------- loading


@dataclass
class PollCtx:
    poll: Poll
    meeting: Meeting
    ctx: Ctx


async def _poll(uow: UnitOfWork, poll_id: int, *, lock: bool = False) -> Poll:
    q = select(Poll).where(Poll.id == poll_id)
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    poll = await uow.session.scalar(q)
    if poll is None:
        raise NotFound("Không tìm thấy biểu quyết.")
    return poll


async def _load(uow: UnitOfWork, user: User, poll_id: int, *, lock: bool = False,
                lock_meeting: bool = False) -> PollCtx:
    poll = await _poll(uow, poll_id)
    ctx = await view_context(uow, user, poll.meeting_id, lock=lock_meeting)
    if lock:
        poll = await _poll(uow, poll_id, lock=True)
    if poll.state == State.DRAFT and not ctx.access.controller:
        raise NotFound("Không tìm thấy biểu quyết.")
    viewers = await viewers_of(uow, poll, ctx.meeting)
    if viewers is not None and user.id not in viewers:
        raise Denied("Biểu quyết này thuộc nội dung mật, bạn không có trong danh sách được xem.",
                     audit=("poll.denied", "poll", poll.id, {"meeting_id": poll.meeting_id, "item_id": poll.item_id}))
    return PollCtx(poll, ctx.meeting, ctx)


# ---------------------------------------------------------------- creating


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
                        allow_change=bool(allow_change), visibility=visibility)
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
        quorum_rule=rule, proxy_cap=proxy_cap, weighted=bool(weighted), duration_seconds=_duration(duration_seconds),
        state=State.DRAFT, created_by=actor.id, rerun_of_id=rerun_of_id,
        votes_cast=0, weight_cast=0, eligible_count=0, eligible_weight=0, present_count=0, entitled_count=0,
        entitled_weight=0, quorum_needed=0, refused_proxies=[],
    )
    uow.session.add(poll)
    await uow.session.flush()
    await audit.record(uow, actor, "poll.create", "poll", poll.id, meeting_id=meeting_id, title=poll.title,
                       method=poll.method, secret=poll.secret, majority=poll.majority, base=poll.base,
                       rerun_of_id=rerun_of_id)
    await _emit_changed(uow, poll, ctx.meeting)
    return poll


async def rerun_poll(uow: UnitOfWork, actor: User, poll_id: int, *, options: list[str] | None = None,
                     title: str | None = None) -> Poll:
    """A new draft with the same settings, linked to the old poll (for example among tied candidates)."""
    pc = await _load(uow, actor, poll_id)
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
    )


# ---------------------------------------------------------------- weights and proxies


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
             "proxy_given_at": _iso(r.proxy_given_at), "note": r.proxy_note} for r in rows]


# ---------------------------------------------------------------- opening


async def _eligibility(uow: UnitOfWork, meeting_id: int, poll: Poll) -> vr.Eligibility:
    seats = (await uow.session.scalars(select(Participant).where(Participant.meeting_id == meeting_id))).all()
    extra = {r.participant_id: r for r in (await uow.session.scalars(
        select(VotingRight).where(VotingRight.meeting_id == meeting_id))).all()}
    members = [vr.Member(p.id, p.attendee_id, voting=p.voting, present=p.present,
                         weight=extra[p.id].weight if p.id in extra else 1) for p in seats]
    proxies = [vr.Proxy(r.participant_id, r.proxy_holder_id, order=int(r.proxy_given_at.timestamp() * 1e6))
               for r in extra.values() if r.proxy_holder_id is not None and r.proxy_given_at is not None]
    return vr.eligibility(members, proxies, proxy_cap=poll.proxy_cap, weighted=poll.weighted)


async def open_poll(uow: UnitOfWork, actor: User, poll_id: int, *, duration_seconds: int | None = None) -> Poll:
    pc = await _load(uow, actor, poll_id, lock=True, lock_meeting=True)
    pc.ctx.access.require_control()
    poll, m = pc.poll, pc.meeting
    rules.require_live(m.state)
    if poll.state != State.DRAFT:
        raise Conflict(f"Biểu quyết đang ở trạng thái «{vr.STATE_LABELS[State(poll.state)]}», không mở được.")
    other = await uow.session.scalar(select(Poll.id).where(Poll.meeting_id == m.id, Poll.state == State.OPEN))
    if other:
        raise Conflict("Đang có một biểu quyết khác chưa kết thúc.", poll_id=other)
    elig = await _eligibility(uow, m.id, poll)
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
        await ballot_keys.create(uow, poll)
    await audit.record(uow, actor, "poll.open", "poll", poll.id, meeting_id=m.id, eligible=poll.eligible_count,
                       eligible_weight=poll.eligible_weight, present=elig.present, entitled=elig.entitled,
                       closes_at=_iso(poll.closes_at), refused_proxies=poll.refused_proxies)
    await _emit_changed(uow, poll, m)
    return poll


async def set_countdown(uow: UnitOfWork, actor: User, poll_id: int, seconds: int | None) -> Poll:
    """Start (or change, or with None stop) the countdown of an open poll."""
    pc = await _load(uow, actor, poll_id, lock=True)
    pc.ctx.access.require_control()
    poll = pc.poll
    if poll.state != State.OPEN:
        raise Conflict("Chỉ đặt giờ cho biểu quyết đang mở.")
    duration = _duration(seconds)
    poll.closes_at = utcnow() + dt.timedelta(seconds=duration) if duration else None
    poll.duration_seconds = duration
    await audit.record(uow, actor, "poll.countdown", "poll", poll.id, meeting_id=poll.meeting_id,
                       closes_at=_iso(poll.closes_at))
    await _emit_changed(uow, poll, pc.meeting)
    return poll


# ---------------------------------------------------------------- casting


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
                id=ballot_id, poll_id=poll.id, choice=_stored_choice(await _cipher(uow, poll), poll, ballot),
                weight=voter.weight))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Phiếu này đã được bỏ (có một phiếu khác vừa được ghi nhận trước).")
    return int(row[0]), change


async def _my_right(uow: UnitOfWork, user: User, poll: Poll, participant_id: int | None) -> PollVoter:
    q = select(PollVoter).where(PollVoter.poll_id == poll.id, PollVoter.user_id == user.id)
    q = q.order_by(PollVoter.proxy, PollVoter.participant_id).execution_options(populate_existing=True)
    return _pick_right(list((await uow.session.scalars(q)).all()), participant_id)


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


async def cast_vote(uow: UnitOfWork, actor: User, poll_id: int, choice: Any, *,
                    participant_id: int | None = None) -> Receipt:
    """Cast (or, when the poll allows it, change) the actor's vote, or the one of a proxy they hold."""
    poll = await _poll(uow, poll_id)
    now = utcnow()
    voter = await _my_right(uow, actor, poll, participant_id) if poll.state != State.DRAFT else None
    if voter is None:
        raise NotFound("Không tìm thấy biểu quyết.")
    _refuse_state(poll.state, poll.closes_at, now)
    viewers = await viewers_of(uow, poll)
    if viewers is not None and actor.id not in viewers:
        raise _confidential_refusal()
    ballot = vr.validate_ballot(poll.spec(), choice)
    cast, changed = await _claim(uow, poll, voter, ballot, method="tablet", recorded_by=None)
    await _after_vote(uow, actor, poll, voter, ballot, changed, "poll.vote")
    return Receipt(poll.id, voter.participant_id, cast, poll.eligible_count, changed)


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
    """Many casts in one poll, in order, with the checks of ``cast_vote`` and far fewer statements.

    For the group commit (``polls_live.CastBatcher``): the poll's row is locked first (``FOR UPDATE``;
    every other way of claiming a vote takes that lock too), so the has-voted rows read next are the
    truth until the commit; the claims, ballots and counter are then written in bulk. Each request
    gets its receipt or its refusal; a refusal leaves the others alone.
    """
    now = utcnow()
    # the poll's row lock and its meeting's state in one statement (no extra round trip per batch)
    found = (await uow.session.execute(
        select(Poll, Meeting.state, schema.PollKey.wrapped).join(Meeting, Meeting.id == Poll.meeting_id)
        .outerjoin(schema.PollKey, schema.PollKey.poll_id == Poll.id).where(Poll.id == poll_id)
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
        cipher = ballot_keys.sealer_from(uow.db, poll.id, wrapped) if poll.secret else None
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
                raise _confidential_refusal()
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
            pending[voter.id]["choice"] = _stored_choice(cipher, poll, ballot)
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
            pending[voter.id] = {"id": ballot_id, "poll_id": poll.id, "choice": _stored_choice(cipher, poll, ballot),
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


async def record_roll_call(uow: UnitOfWork, actor: User, poll_id: int, votes: list[dict[str, Any]]) -> list[Receipt]:
    """The chair or secretary records votes by roll call or show of hands (people without a tablet)."""
    pc = await _load(uow, actor, poll_id)
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
    pc = await _load(uow, actor, poll_id)
    pc.ctx.access.require_control()
    if not pc.poll.secret:
        raise Conflict("Biểu quyết công khai: ghi nhận theo hình thức giơ tay hoặc điểm danh, không dùng phiếu giấy.")
    now = utcnow()
    poll = await _poll(uow, poll_id, lock=True)  # every way of counting a vote takes this lock first
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


# ---------------------------------------------------------------- closing, publishing, cancelling


async def _shuffle_secret(uow: UnitOfWork, poll: Poll,
                          rows: list[tuple[dict[str, Any], int]] | None = None) -> None:
    """Rewrite a secret poll's ballots unsealed, in a random order, with new random ids (module docstring)."""
    if rows is None:
        rows = await _ballots(uow, poll)
    if not rows:
        return
    shuffled = list(rows)
    random.SystemRandom().shuffle(shuffled)
    # (SQLite: secure_delete, on for every connection, zeroes the deleted sealed rows in the file)
    await uow.session.execute(delete(PollBallot).where(PollBallot.poll_id == poll.id)
                              .execution_options(synchronize_session=False))
    await uow.session.execute(insert(PollBallot), [
        {"id": new_ballot_id(), "poll_id": poll.id, "choice": choice, "weight": weight} for choice, weight in shuffled])


async def _close(uow: UnitOfWork, actor: User | None, poll: Poll, meeting: Meeting, reason: str) -> Poll:
    ballots = await _ballots(uow, poll)
    seed = secrets.token_hex(8)
    result = vr.count(poll.spec(), ballots, present=poll.eligible_weight,
                      entitled=poll.entitled_weight, seed=seed)
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
        await ballot_keys.destroy(uow, poll)
    await audit.record(uow, actor, "poll.close", "poll", poll.id, meeting_id=poll.meeting_id, reason=reason,
                       cast=poll.votes_cast, eligible=poll.eligible_count, passed=result.passed,
                       counts=result.counts, winners=result.winners, seed=seed)
    await _emit_changed(uow, poll, meeting)
    return poll


async def close_poll(uow: UnitOfWork, actor: User, poll_id: int) -> Poll:
    pc = await _load(uow, actor, poll_id, lock=True)
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
        poll = await _poll(uow, poll_id, lock=True)
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
        poll = await _poll(uow, poll_id, lock=True)
        if poll.state != State.OPEN or poll.closes_at is None or poll.closes_at > now:
            continue  # another process got there first
        meeting = await uow.session.get(Meeting, poll.meeting_id)
        assert meeting is not None
        closed.append(await _close(uow, None, poll, meeting, "timer"))
    return closed


async def publish_poll(uow: UnitOfWork, actor: User, poll_id: int) -> Poll:
    pc = await _load(uow, actor, poll_id, lock=True)
    pc.ctx.access.require_control()
    poll = pc.poll
    if poll.state != State.CLOSED:
        raise Conflict("Chỉ công bố kết quả của biểu quyết đã kết thúc.")
    poll.state = State.PUBLISHED
    poll.published_at = utcnow()
    await audit.record(uow, actor, "poll.publish", "poll", poll.id, meeting_id=poll.meeting_id)
    await _emit_changed(uow, poll, pc.meeting)
    return poll


async def cancel_poll(uow: UnitOfWork, actor: User, poll_id: int, reason: str = "") -> Poll:
    pc = await _load(uow, actor, poll_id, lock=True)
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
        await ballot_keys.destroy(uow, poll)
    await audit.record(uow, actor, "poll.cancel", "poll", poll.id, meeting_id=poll.meeting_id,
                       reason=(reason or "").strip()[:500], cast=poll.votes_cast)
    await _emit_changed(uow, poll, pc.meeting)
    return poll


async def scrub(db: Database) -> None:
    """After a secret poll closed (and at start-up): make the storage forget the sealed ballots and the
    destroyed poll key. PostgreSQL: vacuum their dead row versions. SQLite: copy the write-ahead log into
    the database file and truncate it (the file's deleted rows are already zeroed by ``secure_delete``)."""
    if db.dialect == "sqlite":
        if not await checkpoint_truncate(db):
            log.warning("the write-ahead log was busy; secret ballots' old pages stay in it until the next scrub")
        return
    if db.dialect != "postgresql":
        return
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM meeting_poll_ballots")
        await conn.exec_driver_sql("VACUUM meeting_poll_keys")


# ---------------------------------------------------------------- reading


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
    pc = await _load(uow, user, poll_id)
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
    pc = await _load(uow, user, poll_id)
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


def choice_label(poll: Poll, choice: dict[str, Any] | None) -> str:
    if not choice:
        return ""
    if vr.is_abstain(choice):
        return "Không biểu quyết"
    if "v" in choice:
        return vr.YES_NO_LABELS[choice["v"]]
    if "r" in choice:
        return " > ".join(poll.options[k - 1] for k in choice["r"])
    return "; ".join(poll.options[k - 1] for k in choice.get("o", []))


def _result_lines(poll: Poll) -> list[tuple[str, int]]:
    r = poll.result or {}
    counts = r.get("counts", {})
    if poll.method in (vr.Method.YES_NO, vr.Method.YES_NO_ABSTAIN):
        return [(vr.YES_NO_LABELS[k], int(v)) for k, v in counts.items()]
    lines = [(poll.options[int(k) - 1], int(v)) for k, v in counts.items()]
    if r.get("abstain"):
        lines.append(("Không biểu quyết", int(r["abstain"])))
    return lines


async def export_csv(uow: UnitOfWork, user: User, poll_id: int) -> tuple[str, str]:
    """(file name, CSV text): the poll, its result and, for a named poll, each vote."""
    pc = await _load(uow, user, poll_id)
    poll = pc.poll
    if not results_visible(poll, pc.ctx.access.controller) or poll.result is None:
        raise Forbidden("Kết quả biểu quyết chưa được công bố.")
    out = io.StringIO()
    w = spreadsheet.CsvWriter(out)  # titles, names and option labels are typed by people
    r = poll.result
    w.writerow(["Biểu quyết", poll.title])
    w.writerow(["Cuộc họp", pc.meeting.title])
    w.writerow(["Hình thức", vr.METHOD_LABELS[vr.Method(poll.method)], "Phiếu kín" if poll.secret else "Công khai"])
    w.writerow(["Trạng thái", vr.STATE_LABELS[State(poll.state)]])
    w.writerow(["Số đại biểu có quyền biểu quyết có mặt", poll.eligible_count])
    w.writerow(["Số phiếu đã bỏ", poll.votes_cast])
    w.writerow(["Cách tính", vr.MAJORITY_LABELS[vr.Majority(poll.majority)], vr.BASE_LABELS[vr.Base(poll.base)],
                r.get("threshold", "")])
    w.writerow(["Kết quả", "Thông qua" if r.get("passed") else "Không thông qua", r.get("summary", "")])
    w.writerow([])
    w.writerow(["Phương án", "Số phiếu"])
    for label, value in _result_lines(poll):
        w.writerow([label, value])
    if not poll.secret:
        w.writerow([])
        w.writerow(["Đại biểu", "Ủy quyền cho", "Trọng số", "Lựa chọn", "Hình thức"])
        for v in await voters_view(uow, user, poll_id) if pc.ctx.access.controller else []:
            w.writerow([v["name"], v["holder"], v["weight"],
                        choice_label(poll, v.get("choice")) if v["voted"] else "Chưa bỏ phiếu",
                        {"tablet": "Máy tính bảng", "roll_call": "Giơ tay / điểm danh"}.get(v.get("method", ""), "")])
    await audit.record(uow, user, "poll.export", "poll", poll.id, meeting_id=poll.meeting_id)
    return f"bieu-quyet-{poll.id}.csv", "\ufeff" + out.getvalue()


async def unpublished_results(uow: UnitOfWork, meeting_id: int) -> list[str]:
    """Titles of the meeting's closed polls whose result waits for the chair to publish it."""
    polls = (await uow.session.scalars(select(Poll).where(
        Poll.meeting_id == meeting_id, Poll.state == State.CLOSED).order_by(Poll.closed_at, Poll.id))).all()
    return [p.title for p in polls if not results_visible(p, controller=False)]


async def poll_results_for_meeting(uow: UnitOfWork, meeting_id: int) -> list[dict[str, Any]]:
    """Closed and published polls of a meeting whose result every participant may see, for the minutes (the
    caller checks access to the meeting). A result the chair has not published yet (visibility "published")
    is left out, whoever reads: the minutes are one record for all, and ``minutes.approve`` waits for it."""
    polls = (await uow.session.scalars(select(Poll).where(
        Poll.meeting_id == meeting_id, Poll.state.in_([State.CLOSED, State.PUBLISHED])).order_by(Poll.closed_at,
                                                                                                  Poll.id))).all()
    out = []
    for p in polls:
        if not results_visible(p, controller=False):
            continue
        r = p.result or {}
        out.append({
            "poll_id": p.id, "item_id": p.item_id, "title": p.title, "secret": p.secret,
            "method_label": vr.METHOD_LABELS[vr.Method(p.method)], "closed_at": _iso(p.closed_at),
            "eligible": p.eligible_count, "cast": p.votes_cast, "passed": bool(r.get("passed")),
            "lines": [{"label": label, "votes": v} for label, v in _result_lines(p)],
            "winners": [p.options[k - 1] for k in r.get("winners", []) if isinstance(k, int)],
            "summary": r.get("summary", ""), "threshold": r.get("threshold", ""),
            "text": (f"{p.title}: {r.get('summary', '')} (có {p.eligible_count} đại biểu có quyền biểu quyết, "
                     f"{p.votes_cast} đã bỏ phiếu; {'phiếu kín' if p.secret else 'biểu quyết công khai'})."),
        })
    return out


async def counts(uow: UnitOfWork, poll_id: int) -> dict[str, Any] | None:
    """Progress of one poll (for the coalescing ticker): reads the counters under the poll's row lock."""
    poll = await uow.session.scalar(select(Poll).where(Poll.id == poll_id).with_for_update()
                                    .execution_options(populate_existing=True))  # the counters as of now
    if poll is None:
        return None
    data = progress_data(poll)
    if poll.state == State.OPEN and results_visible(poll, False) and await viewers_of(uow, poll) is None:
        data["tally"] = await live_tally(uow, poll)  # never on the room topic for a confidential item
    return {"meeting_id": poll.meeting_id, **data}


async def open_poll_ids(uow: UnitOfWork) -> list[int]:
    return list((await uow.session.scalars(select(Poll.id).where(Poll.state == State.OPEN))).all())


async def next_deadline(uow: UnitOfWork) -> dt.datetime | None:
    return await uow.session.scalar(select(func.min(Poll.closes_at)).where(Poll.state == State.OPEN))
