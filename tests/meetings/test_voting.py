"""Poll services on SQLite and PostgreSQL: life cycle, eligibility, proxies, secret ballots, concurrency."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, text, update

from eoffice.audit import AuditEntry
from eoffice.org import User
from meetings import attendance, lifecycle, meetings, schema, voting
from meetings.schema import Poll, PollBallot, PollVoter
from storage.db import Database, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound
from storage.events import Event
from tests.meetings.conftest import World, call, cast_one, password_hash, run


async def live_meeting(world: World, present: tuple[str, ...] = ("chair", "member", "member2")) -> dict[str, Any]:
    out = await world.meeting(start=True)
    for key in present:
        participant_id = out["seats"].get(key) or await seat(world, out, key)
        await call(world.db, attendance.check_in, world.users["chair"], participant_id)
    return out


async def seat(world: World, m: dict[str, Any], key: str) -> int:
    async with world.db.uow() as uow:
        p = await meetings._seat_for(uow, m["meeting_id"], world.users[key].id)
        assert p is not None
        return p.id


async def new_poll(world: World, m: dict[str, Any], **kw: Any) -> int:
    kw.setdefault("title", "Thông qua Đề án chuyển đổi số tỉnh Quảng Ninh giai đoạn 2026-2030")
    kw.setdefault("method", "yes_no_abstain")
    poll = await call(world.db, voting.create_poll, world.chair, m["meeting_id"], **kw)
    return int(poll.id)


async def open_(world: World, poll_id: int, **kw: Any) -> Poll:
    return await call(world.db, voting.open_poll, world.chair, poll_id, **kw)


async def cast(world: World, who: str | User, poll_id: int, choice: Any, **kw: Any) -> voting.Receipt:
    user = world.users[who] if isinstance(who, str) else who
    return await call(world.db, cast_one, user, poll_id, choice, **kw)


async def audit_rows(db: Database, prefix: str = "poll.") -> list[AuditEntry]:
    async with db.uow() as uow:
        return list((await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.action.like(prefix + "%")).order_by(AuditEntry.seq))).all())


# ---------------------------------------------------------------- the life cycle


async def test_named_poll_life_cycle(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m, majority="absolute", base="present")
    # a draft is the chair's and secretary's business only
    with pytest.raises(NotFound):
        await call(world.db, voting.get_poll, world.member, poll_id)
    async with world.db.uow() as uow:
        assert await voting.list_polls(uow, world.member, m["meeting_id"]) == []
    with pytest.raises(NotFound):
        await call(world.db, voting.open_poll, world.member, poll_id)
    with pytest.raises(NotFound):
        await call(world.db, cast_one, world.chair, poll_id, "yes")

    poll, events = await run(world.db, voting.open_poll, world.chair, poll_id)
    assert (poll.state, poll.eligible_count, poll.present_count, poll.entitled_count) == ("open", 3, 3, 4)
    assert [e["type"] for e in events] == ["poll.changed"] and events[0]["data"]["poll"]["eligible"] == 3

    r = await cast(world, "chair", poll_id, "yes")
    assert (r.cast, r.eligible, r.changed) == (1, 3, False)
    receipt, events = await run(world.db, cast_one, world.member, poll_id, "no")
    assert receipt.cast == 2
    assert events == []  # progress is coalesced by the runner, never one event per vote

    with pytest.raises(Conflict, match="đã được bỏ"):
        await cast(world, "member", poll_id, "yes")
    with pytest.raises(Forbidden, match="không có quyền biểu quyết"):
        await cast(world, "secretary", poll_id, "yes")  # the secretary minutes, does not vote
    with pytest.raises(Forbidden):
        await cast(world, "outsider", poll_id, "yes")
    with pytest.raises(Invalid, match="Phiếu không hợp lệ"):
        await cast(world, "member2", poll_id, "đồng ý")

    async with world.db.uow() as uow:
        view = await voting.get_poll(uow, world.member2, poll_id)
        assert view["cast"] == 2 and view["result"] is None and view["me"][0]["voted"] is False
        missing = [v["name"] for v in await voting.voters_view(uow, world.chair, poll_id) if not v["voted"]]
        assert missing == ["Hoàng Đức Thắng"]
        with pytest.raises(Forbidden):
            await voting.voters_view(uow, world.member, poll_id)

    await cast(world, "member2", poll_id, "yes")
    poll, events = await run(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.state == "closed" and poll.close_reason == "chair"
    result = poll.result
    assert result["counts"] == {"yes": 2, "no": 1, "abstain": 0}
    assert result["base_value"] == 3 and result["passed"] is True  # 2 of 3 present is more than half
    assert events[0]["data"]["poll"]["result"]["passed"] is True  # visible to all at close by default
    with pytest.raises(Conflict, match="đã kết thúc"):
        await cast(world, "member2", poll_id, "no")

    poll = await call(world.db, voting.publish_poll, world.chair, poll_id)
    assert poll.state == "published"
    actions = [a.action for a in await audit_rows(world.db)]
    assert actions == ["poll.create", "poll.open", "poll.vote", "poll.vote", "poll.vote", "poll.close",
                       "poll.publish"]

    async with world.db.uow() as uow:
        minutes = await voting.poll_results_for_meeting(uow, m["meeting_id"])
    assert len(minutes) == 1 and minutes[0]["passed"] and minutes[0]["lines"][0] == {"label": "Tán thành",
                                                                                      "votes": 2}
    assert "Được thông qua" in minutes[0]["text"]


async def test_quorum_needed_to_open(world: World) -> None:
    m = await live_meeting(world, present=("chair",))
    poll_id = await new_poll(world, m)
    with pytest.raises(Conflict, match=r"Chưa đủ túc số để biểu quyết: có mặt 1/4, cần 3") as info:
        await open_(world, poll_id)
    assert info.value.details["quorum"]["needed"] == 3
    poll_id = await new_poll(world, m, quorum_rule="none")
    assert (await open_(world, poll_id)).eligible_count == 1


async def test_only_one_open_poll_and_only_in_a_live_meeting(world: World) -> None:
    m = await live_meeting(world)
    a = await new_poll(world, m)
    b = await new_poll(world, m)
    await open_(world, a)
    with pytest.raises(Conflict, match="khác chưa kết thúc"):
        await open_(world, b)
    other = await world.meeting(start=False)
    c = await new_poll(world, other)
    with pytest.raises(Conflict, match="chưa diễn ra"):
        await open_(world, c)


async def test_tie_does_not_pass_and_rerun_links_the_old_poll(world: World) -> None:
    m = await live_meeting(world, present=("chair", "member", "member2"))
    poll_id = await new_poll(world, m, method="yes_no")
    await open_(world, poll_id)
    await cast(world, "chair", poll_id, "yes")
    await cast(world, "member", poll_id, "no")
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["passed"] is False and poll.result["tie"] == ["yes", "no"]
    assert poll.result["not_voted"] == 1
    again = await call(world.db, voting.rerun_poll, world.chair, poll_id)
    assert again.rerun_of_id == poll_id and again.state == "draft" and again.method == "yes_no"


async def test_cancel(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m)
    await open_(world, poll_id)
    await cast(world, "chair", poll_id, "yes")
    with pytest.raises(Forbidden):
        await call(world.db, voting.cancel_poll, world.member, poll_id)
    poll = await call(world.db, voting.cancel_poll, world.chair, poll_id, "Nhầm nội dung")
    assert poll.state == "cancelled" and poll.result is None
    with pytest.raises(Conflict):
        await cast(world, "member", poll_id, "yes")
    with pytest.raises(Conflict):
        await call(world.db, voting.close_poll, world.chair, poll_id)


async def test_vote_change_when_allowed(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m, allow_change=True, visibility="live")
    await open_(world, poll_id)
    await cast(world, "member", poll_id, "no")
    r = await cast(world, "member", poll_id, "yes")
    assert r.changed and r.cast == 1
    async with world.db.uow() as uow:
        view = await voting.get_poll(uow, world.member2, poll_id)
    assert view["tally"] == {"yes": 1}  # live results for a named poll that says so
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["counts"]["yes"] == 1 and poll.result["ballots"] == 1
    assert [a.action for a in await audit_rows(world.db, "poll.vote")] == ["poll.vote", "poll.vote.change"]


async def test_countdown_closes_on_time_even_without_the_runner(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m)
    poll = await open_(world, poll_id, duration_seconds=60)
    assert poll.closes_at is not None and 59 <= (poll.closes_at - utcnow()).total_seconds() <= 60
    await cast(world, "chair", poll_id, "yes")
    async with world.db.uow() as uow:  # the minute passes
        await uow.session.execute(update(Poll).where(Poll.id == poll_id)
                                  .values(closes_at=utcnow() - dt.timedelta(seconds=1)))
        await uow.commit()
    with pytest.raises(voting.PollExpired, match="hết thời gian"):
        await cast(world, "member", poll_id, "yes")
    closed = await call(world.db, voting.close_expired)
    assert [p.id for p in closed] == [poll_id] and closed[0].close_reason == "timer"
    assert closed[0].result["ballots"] == 1
    assert await call(world.db, voting.close_expired) == []  # idempotent


async def test_countdown_started_by_the_chair(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m)
    await open_(world, poll_id)
    poll = await call(world.db, voting.set_countdown, world.secretary, poll_id, 30)
    assert poll.closes_at is not None
    with pytest.raises(Invalid, match="10 giây"):
        await call(world.db, voting.set_countdown, world.chair, poll_id, 3)
    poll = await call(world.db, voting.set_countdown, world.chair, poll_id, None)
    assert poll.closes_at is None


async def test_roll_call_for_members_without_a_tablet(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m)
    await open_(world, poll_id)
    receipts = await call(world.db, voting.record_roll_call, world.secretary, poll_id, [
        {"participant_id": m["seats"]["member"], "choice": "yes"},
        {"participant_id": m["seats"]["member2"], "choice": "abstain"}])
    assert [r.cast for r in receipts] == [1, 2]
    with pytest.raises(Forbidden):
        await call(world.db, voting.record_roll_call, world.member, poll_id,
                   [{"participant_id": m["seats"]["member2"], "choice": "yes"}])
    with pytest.raises(Conflict, match="đã được bỏ"):
        await cast(world, "member", poll_id, "no")
    async with world.db.uow() as uow:
        voters = {v["participant_id"]: v for v in await voting.voters_view(uow, world.chair, poll_id)}
    assert voters[m["seats"]["member"]]["method"] == "roll_call"
    secret = await new_poll(world, m, secret=True)
    await call(world.db, voting.close_poll, world.chair, poll_id)
    await open_(world, secret)
    with pytest.raises(Conflict, match="kín"):
        await call(world.db, voting.record_roll_call, world.chair, secret,
                   [{"participant_id": m["seats"]["member"], "choice": "yes"}])


# ---------------------------------------------------------------- proxies and weights


async def test_proxy_from_an_absent_member_with_a_cap(world: World) -> None:
    m = await world.meeting(start=True)
    await call(world.db, meetings.respond, world.district, m["seats"]["unit_dt"], "accepted")
    for key in ("chair", "member", "unit_dt"):
        await call(world.db, attendance.check_in, world.chair, m["seats"].get(key) or await seat(world, m, key))
    chair_seat = await seat(world, m, "chair")
    # member2 is absent and gives a proxy to member; the chair's own proxy is refused (present)
    with pytest.raises(Forbidden):
        await call(world.db, voting.grant_proxy, world.member, m["meeting_id"], m["seats"]["member2"],
                   m["seats"]["member"])
    await call(world.db, voting.grant_proxy, world.member2, m["meeting_id"], m["seats"]["member2"],
               m["seats"]["member"], "Giấy ủy quyền số 12/UQ")
    with pytest.raises(Conflict, match="giữ ủy quyền"):
        await call(world.db, voting.grant_proxy, world.chair, m["meeting_id"], m["seats"]["member"], chair_seat)
    poll_id = await new_poll(world, m, proxy_cap=1, weighted=True)
    await call(world.db, voting.set_weight, world.organiser, m["meeting_id"], m["seats"]["member2"], 3)
    poll = await open_(world, poll_id)
    assert (poll.eligible_count, poll.present_count, poll.eligible_weight, poll.entitled_weight) == (4, 3, 6, 6)
    async with world.db.uow() as uow:
        view = await voting.get_poll(uow, world.member, poll_id)
    assert [(x["proxy"], x["weight"]) for x in view["me"]] == [(False, 1), (True, 3)]
    await cast(world, "member", poll_id, "no")  # own seat by default
    r = await cast(world, "member", poll_id, "yes", participant_id=m["seats"]["member2"])
    assert r.participant_id == m["seats"]["member2"]
    with pytest.raises(Conflict):
        await cast(world, "member", poll_id, "yes", participant_id=m["seats"]["member2"])
    with pytest.raises(Forbidden):
        await cast(world, "chair", poll_id, "yes", participant_id=m["seats"]["member2"])
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["counts"]["yes"] == 3 and poll.result["counts"]["no"] == 1 and poll.weight_cast == 4


async def test_proxy_cap_zero_refuses_proxies_at_opening(world: World) -> None:
    m = await live_meeting(world, present=("chair", "member"))
    await call(world.db, voting.grant_proxy, world.chair, m["meeting_id"], m["seats"]["member2"],
               m["seats"]["member"])
    poll_id = await new_poll(world, m, proxy_cap=0, quorum_rule="none")
    poll = await open_(world, poll_id)
    assert poll.eligible_count == 2 and poll.refused_proxies[0]["reason"] == "Biểu quyết này không nhận ủy quyền."
    await call(world.db, voting.revoke_proxy, world.member2, m["meeting_id"], m["seats"]["member2"])
    with pytest.raises(NotFound):
        await call(world.db, voting.revoke_proxy, world.member2, m["meeting_id"], m["seats"]["member2"])


# ---------------------------------------------------------------- secret ballots


async def test_secret_ballot_is_unlinkable(world: World) -> None:
    m = await live_meeting(world)
    with pytest.raises(Invalid, match="không cho phép sửa phiếu"):
        await new_poll(world, m, secret=True, allow_change=True)
    poll_id = await new_poll(world, m, secret=True, method="single",
                             options=["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường"])
    await open_(world, poll_id)
    _receipt, events = await run(world.db, cast_one, world.member, poll_id, [2])
    assert events == []  # nothing per vote for a secret poll, not even to the chair
    await cast(world, "chair", poll_id, [1])
    await cast(world, "member2", poll_id, [2])

    # the schema itself: a ballot has no column for a person or a time, and its key is not a counter
    cols = {c.key for c in sa_inspect(PollBallot).columns}
    assert cols == {"id", "poll_id", "choice", "weight"}
    async with world.db.uow() as uow:
        ballots = (await uow.session.scalars(select(PollBallot).where(PollBallot.poll_id == poll_id))).all()
        voters = (await uow.session.scalars(select(PollVoter).where(PollVoter.poll_id == poll_id))).all()
        before = {b.id for b in ballots}
        assert len(before) == 3 and all(len(i) == 32 and int(i, 16) for i in before)
        assert all(v.ballot_id is None for v in voters) and all(v.voted_at is not None for v in voters)
        if uow.dialect == "sqlite":  # WITHOUT ROWID: no hidden insertion counter
            with pytest.raises(Exception, match="rowid"):
                await uow.session.execute(text("SELECT rowid FROM meeting_poll_ballots"))
        view = await voting.get_poll(uow, world.member, poll_id)
        assert view["me"][0]["voted"] and view["me"][0]["choice"] is None
        assert not any("choice" in v for v in await voting.voters_view(uow, world.chair, poll_id))

    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["counts"] == {"1": 1, "2": 2, "3": 0} and poll.result["winners"] == [2]
    async with world.db.uow() as uow:
        after = (await uow.session.execute(select(PollBallot.id).where(PollBallot.poll_id == poll_id))).scalars().all()
        assert len(after) == 3 and not set(after) & before  # rewritten with fresh ids at close
        if uow.dialect == "postgresql":  # one transaction wrote them all: xmin says nothing about who was first
            xmins = (await uow.session.execute(text(
                "SELECT DISTINCT xmin::text FROM meeting_poll_ballots WHERE poll_id = :p"), {"p": poll_id})).all()
            assert len(xmins) == 1
    await voting.scrub(world.db)

    # the audit log knows who voted, never what or which ballot
    votes = await audit_rows(world.db, "poll.vote")
    assert len(votes) == 3
    for entry in votes:
        assert set(entry.data) == {"meeting_id", "participant_id", "proxy", "changed"}
        assert not any(b in str(entry.data) for b in before | set(after))
    async with world.db.uow() as uow:  # nor does any event
        events = (await uow.session.scalars(select(Event))).all()
        assert not any(b in str(e.data) for e in events for b in before | set(after))


async def test_secret_poll_csv_has_counts_only(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m, secret=True, visibility="published")
    await open_(world, poll_id)
    await cast(world, "member", poll_id, "yes")
    await call(world.db, voting.close_poll, world.chair, poll_id)
    with pytest.raises(Forbidden, match="chưa được công bố"):
        await call(world.db, voting.export_csv, world.member, poll_id)
    async with world.db.uow() as uow:
        assert (await voting.get_poll(uow, world.member, poll_id))["result"] is None  # until published
        assert (await voting.get_poll(uow, world.chair, poll_id))["result"]["passed"] is True
    await call(world.db, voting.publish_poll, world.chair, poll_id)
    name, body = await call(world.db, voting.export_csv, world.member, poll_id)
    assert name == f"bieu-quyet-{poll_id}.csv" and body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert ["Tán thành", "1"] in rows and ["Hình thức", "Tán thành / Không tán thành / Không biểu quyết",
                                           "Phiếu kín"] in rows
    assert not any("Lê Minh Tuấn" in c for row in rows for c in row)


async def test_named_poll_csv_lists_each_vote(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m, method="multiple", options=["Hạ Long", "Cẩm Phả", "Uông Bí"], seats=2,
                             max_choices=2)
    await open_(world, poll_id)
    await cast(world, "member", poll_id, [1, 3])
    await cast(world, "chair", poll_id, [1])
    await call(world.db, voting.close_poll, world.chair, poll_id)
    _name, body = await call(world.db, voting.export_csv, world.chair, poll_id)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert ["Lê Minh Tuấn", "", "1", "Hạ Long; Uông Bí", "Máy tính bảng"] in rows
    assert ["Hoàng Đức Thắng", "", "1", "Chưa bỏ phiếu", ""] in rows


# ---------------------------------------------------------------- concurrency


async def crowd(world: World, n: int) -> tuple[dict[str, Any], list[User]]:
    """A meeting with ``n`` extra voting members, all checked in."""
    m = await world.meeting(start=True)
    users = []
    async with world.db.uow() as uow:
        for i in range(n):
            u = User(username=f"daibieu{i:03d}", full_name=f"Đại biểu Nguyễn Văn Số {i}", password_hash=password_hash(),
                     roles=["specialist"], unit_id=world.units["UBND"].id)
            uow.session.add(u)
            users.append(u)
        await uow.session.flush()
        for u in users:
            p = await meetings.add_participant(uow, world.organiser, m["meeting_id"], user_id=u.id)
            await attendance.check_in(uow, world.chair, p.id)
        await uow.commit()
    return m, users


async def test_concurrent_casts_each_counted_once(world: World) -> None:
    m, users = await crowd(world, 50)
    poll_id = await new_poll(world, m, quorum_rule="none")
    await open_(world, poll_id)

    async def attempt(u: User, choice: str) -> str:
        try:
            await cast(world, u, poll_id, choice)
            return "ok"
        except Conflict:
            return "duplicate"

    # every voter twice at once, with different choices: exactly one of the two counts
    outcomes = await asyncio.gather(*(attempt(u, c) for u in users for c in ("yes", "no")))
    assert outcomes.count("ok") == 50 and outcomes.count("duplicate") == 50
    async with world.db.uow() as uow:
        poll = await uow.session.get(Poll, poll_id)
        assert poll is not None and poll.votes_cast == 50
        n = (await uow.session.execute(select(PollBallot.id).where(PollBallot.poll_id == poll_id))).all()
        assert len(n) == 50
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["ballots"] == 50 and poll.result["counts"]["yes"] + poll.result["counts"]["no"] == 50


async def test_close_during_casts_counts_every_acknowledged_vote(world: World) -> None:
    m, users = await crowd(world, 40)
    poll_id = await new_poll(world, m, quorum_rule="none")
    await open_(world, poll_id)
    acknowledged = refused = 0
    closing, closed = asyncio.Event(), asyncio.Event()

    async def voter(u: User) -> None:
        nonlocal acknowledged, refused
        try:
            await cast(world, u, poll_id, "yes")
            acknowledged += 1
        except Conflict as exc:
            assert "đã kết thúc" in exc.message
            refused += 1

    async def racing(u: User, i: int) -> None:
        # these cast while the close is under way: each is either counted or refused, never lost
        await closing.wait()
        await asyncio.sleep(i * 0.002)
        await voter(u)

    async def late(u: User) -> None:
        await closed.wait()
        await voter(u)

    async def chair() -> Poll:
        closing.set()
        try:
            return await call(world.db, voting.close_poll, world.chair, poll_id)
        finally:
            closed.set()

    early, middle, after = users[:10], users[10:30], users[30:]
    await asyncio.gather(*(voter(u) for u in early))
    results = await asyncio.gather(
        chair(), *(racing(u, i) for i, u in enumerate(middle)), *(late(u) for u in after)
    )
    poll = results[0]
    assert acknowledged >= 10 and refused >= 10 and acknowledged + refused == 40
    # every acknowledged vote is in the result, and nothing else is
    assert poll.result["ballots"] == acknowledged == poll.votes_cast


async def test_batched_casts_each_get_their_own_answer(world: World) -> None:
    from meetings.polls_live import CastBatcher

    m, users = await crowd(world, 12)
    poll_id = await new_poll(world, m, quorum_rule="none")
    await open_(world, poll_id)
    batcher = CastBatcher(world.db)

    async def attempt(u: User, choice: Any) -> str:
        try:
            r = await batcher.submit(poll_id, voting.CastRequest(u, choice))
            return f"ok:{r.cast}"
        except (Conflict, Invalid, Forbidden) as exc:
            return type(exc).__name__

    calls = [attempt(u, "yes") for u in users] + [attempt(users[0], "no"), attempt(users[1], "có"),
                                                  attempt(world.outsider, "yes")]
    outcomes = await asyncio.gather(*calls)
    assert sorted(o for o in outcomes if o.startswith("ok")) == sorted(f"ok:{i}" for i in range(1, 13))
    assert outcomes[12:] == ["Conflict", "Invalid", "Forbidden"]
    assert batcher.batches < 15 and batcher.casts == 15  # grouped
    async with world.db.uow() as uow:
        poll = await uow.session.get(Poll, poll_id)
        assert poll is not None and poll.votes_cast == 12
    actions = [e.action for e in await audit_rows(world.db, "poll.vote")]
    assert actions.count("poll.vote") == 12 and actions.count("poll.vote.refused") == 3


async def test_drain_commits_casts_whose_requests_were_cut_off(world: World) -> None:
    """Shutdown (web.services.Workers.stop) drains the batcher: casts whose request tasks the server cancelled
    at the end of its grace period are still committed before the database is closed."""
    from meetings.polls_live import CastBatcher

    m, users = await crowd(world, 6)
    poll_id = await new_poll(world, m, quorum_rule="none")
    await open_(world, poll_id)
    batcher = CastBatcher(world.db)
    requests = [asyncio.create_task(batcher.submit(poll_id, voting.CastRequest(u, "yes"))) for u in users]
    await asyncio.sleep(0)  # every request has queued its cast
    for r in requests:
        r.cancel()
    await batcher.drain()
    outcomes = await asyncio.gather(*requests, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)  # no caller is left to be answered
    async with world.db.uow() as uow:
        poll = await uow.session.get(Poll, poll_id)
        assert poll is not None and poll.votes_cast == 6
    await batcher.drain()  # nothing queued: returns at once


async def test_batched_vote_changes_and_closed_polls(world: World) -> None:
    from meetings.polls_live import CastBatcher

    m = await live_meeting(world)
    poll_id = await new_poll(world, m, allow_change=True)
    await open_(world, poll_id)
    batcher = CastBatcher(world.db)
    member = voting.CastRequest(world.member, "no")
    receipts = await asyncio.gather(batcher.submit(poll_id, member), batcher.submit(poll_id, voting.CastRequest(
        world.member, "yes")), batcher.submit(poll_id, voting.CastRequest(world.chair, "abstain")))
    assert [(r.cast, r.changed) for r in receipts] == [(1, False), (1, True), (2, False)]
    r = await batcher.submit(poll_id, voting.CastRequest(world.chair, "no"))  # a later batch: a real change
    assert (r.cast, r.changed) == (2, True)
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["counts"] == {"yes": 1, "no": 1, "abstain": 0} and poll.result["ballots"] == 2
    with pytest.raises(Conflict, match="đã kết thúc"):
        await batcher.submit(poll_id, voting.CastRequest(world.member2, "yes"))
    with pytest.raises(NotFound):
        await batcher.submit(10_000, voting.CastRequest(world.member2, "yes"))


async def test_batches_carry_the_progress_events_and_counts_never_go_down(world: World) -> None:
    """With a runner, a due batch emits poll.progress in its own transaction; the runner sends the trailing
    edge. Counts in successive events only grow, the last one is exact, and there are far fewer events
    than votes."""
    from meetings.polls_live import CastBatcher, PollRunner
    from storage.events import Event

    m, users = await crowd(world, 30)
    poll_id = await new_poll(world, m, quorum_rule="none")
    await open_(world, poll_id)
    runner = PollRunner(world.db, interval=0.05)
    batcher = CastBatcher(world.db, runner=runner)
    try:
        async def voter(i: int, u: User) -> None:
            await asyncio.sleep(i * 0.01)
            await batcher.submit(poll_id, voting.CastRequest(u, "yes"))

        await asyncio.gather(*(voter(i, u) for i, u in enumerate(users)))
        await asyncio.sleep(0.5)  # the trailing edge
    finally:
        await runner.stop()
    async with world.db.uow() as uow:
        rows = (await uow.session.scalars(select(Event).where(
            Event.topic == f"meeting:{m['meeting_id']}", Event.type == "poll.progress").order_by(Event.seq))).all()
    counts = [r.data["cast"] for r in rows]
    assert counts == sorted(counts) and counts[-1] == 30
    assert len(counts) < 30
    assert runner.flushes == len(counts)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_batch_of_secret_ballots_is_not_stored_in_the_order_of_arrival(world: World) -> None:
    """One INSERT writes a whole batch; for a secret poll its rows are shuffled first, so their physical order
    (PostgreSQL's ctid) says nothing about who came first. PostgreSQL only: SQLite keeps ballots in the order
    of their random keys (WITHOUT ROWID) whether or not the batch is shuffled, so there it proves nothing."""
    from meetings.polls_live import CastBatcher

    m, users = await crowd(world, 40)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True)
    await open_(world, poll_id)
    batcher = CastBatcher(world.db)
    arrival = ["yes" if i % 2 else "no" for i in range(40)]
    await asyncio.gather(*(batcher.submit(poll_id, voting.CastRequest(u, c)) for u, c in zip(users, arrival,
                                                                                               strict=True)))
    assert batcher.batches == 1
    async with world.db.uow() as uow:
        poll = await uow.session.get(Poll, poll_id)
        assert poll is not None
        cipher = await voting.sealer(uow, poll)
        rows = (await uow.session.scalars(select(PollBallot.choice).where(
            PollBallot.poll_id == poll_id).order_by(text("ctid")))).all()
        stored = [voting.unseal(cipher, poll, c)["v"] for c in rows]
    assert sorted(stored) == sorted(arrival) and stored != arrival


# ---------------------------------------------------------------- the meeting ends


async def test_ending_the_meeting_closes_and_counts_its_open_poll(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m, secret=True)
    await open_(world, poll_id)
    await cast(world, "member", poll_id, "yes")
    await cast(world, "member2", poll_id, "no")
    meeting, events = await run(world.db, lifecycle.end_meeting, world.chair, m["meeting_id"])
    assert meeting.state == "ended"
    changed = [e["data"] for e in events if e["type"] == "poll.changed"]
    assert [(c["poll_id"], c["state"]) for c in changed] == [(poll_id, "closed")]
    async with world.db.uow() as uow:
        poll = await uow.session.get(Poll, poll_id)
        assert poll is not None and poll.state == "closed" and poll.close_reason == "meeting_end"
        assert poll.result["counts"] == {"yes": 1, "no": 1, "abstain": 0}
    closes = await audit_rows(world.db, "poll.close")
    assert len(closes) == 1 and closes[0].data["reason"] == "meeting_end" and closes[0].actor_id == world.chair.id
    with pytest.raises(Conflict, match="đã kết thúc"):
        await cast(world, "chair", poll_id, "yes")


async def test_no_vote_counts_in_a_poll_left_open_by_an_ended_meeting(world: World) -> None:
    """A poll open in a meeting that is not in progress (ended before ending closed polls) takes no vote, by
    any way of casting; the chair can still close it."""
    from meetings.polls_live import CastBatcher

    m = await live_meeting(world)
    poll_id = await new_poll(world, m)
    await open_(world, poll_id)
    await cast(world, "member", poll_id, "yes")
    async with world.db.uow() as uow:
        await uow.session.execute(update(schema.Meeting).where(schema.Meeting.id == m["meeting_id"])
                                  .values(state="ended"))
        await uow.commit()
    with pytest.raises(Conflict, match="không còn diễn ra"):
        await cast(world, "member2", poll_id, "no")
    with pytest.raises(Conflict, match="không còn diễn ra"):
        await CastBatcher(world.db).submit(poll_id, voting.CastRequest(world.member2, "no"))
    with pytest.raises(Conflict, match="không còn diễn ra"):
        await call(world.db, voting.record_roll_call, world.chair, poll_id,
                   [{"participant_id": m["seats"]["member2"], "choice": "no"}])
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.votes_cast == 1 and poll.result["counts"]["yes"] == 1 and poll.result["counts"]["no"] == 0


async def test_casts_racing_the_end_of_the_meeting(world: World) -> None:
    """Votes arriving while the chair ends the meeting: each is counted and acknowledged, or refused because
    the poll closed; the result counts exactly the acknowledged ones."""
    from meetings.polls_live import CastBatcher

    m, users = await crowd(world, 30)
    poll_id = await new_poll(world, m, quorum_rule="none")
    await open_(world, poll_id)
    batcher = CastBatcher(world.db)
    outcomes: list[str] = []
    ended, started = asyncio.Event(), asyncio.Event()

    async def voter(i: int, u: User) -> None:
        if i >= 20:  # the last ten surely come after the end, however slow the machine
            await ended.wait()
        else:  # the others race it
            await asyncio.sleep(i * 0.006)
        try:
            await batcher.submit(poll_id, voting.CastRequest(u, "yes"))
            outcomes.append("ok")
            if outcomes.count("ok") >= 3:
                started.set()
        except Conflict as exc:
            assert "đã kết thúc" in exc.message or "không còn diễn ra" in exc.message
            outcomes.append("refused")

    async def chair() -> None:  # ends the meeting once the first votes are in, while the others arrive
        await started.wait()
        await call(world.db, lifecycle.end_meeting, world.chair, m["meeting_id"])
        ended.set()

    await asyncio.gather(chair(), *(voter(i, u) for i, u in enumerate(users)))
    async with world.db.uow() as uow:
        poll = await uow.session.get(Poll, poll_id)
        assert poll is not None and poll.state == "closed" and poll.close_reason == "meeting_end"
    assert outcomes.count("ok") == poll.votes_cast == poll.result["ballots"]
    assert outcomes.count("refused") >= 10 and outcomes.count("ok") > 0, outcomes


async def test_refused_casts_are_audited_without_the_choice(world: World) -> None:
    from meetings.polls_live import CastBatcher

    m = await live_meeting(world)
    poll_id = await new_poll(world, m, secret=True)
    await open_(world, poll_id)
    batcher = CastBatcher(world.db)
    with pytest.raises(Forbidden):
        await batcher.submit(poll_id, voting.CastRequest(world.outsider, "yes"))
    with pytest.raises(Invalid):
        await batcher.submit(poll_id, voting.CastRequest(world.member, "tán thành"))
    await batcher.submit(poll_id, voting.CastRequest(world.member, "no"))
    with pytest.raises(Conflict, match="đã được bỏ"):
        await batcher.submit(poll_id, voting.CastRequest(world.member, "yes"))
    await call(world.db, voting.close_poll, world.chair, poll_id)
    with pytest.raises(Conflict, match="đã kết thúc"):
        await batcher.submit(poll_id, voting.CastRequest(world.member2, "yes"))
    refused = await audit_rows(world.db, "poll.vote.refused")
    assert [(e.actor_id, e.data["reason"], e.data["participant_id"]) for e in refused] == [
        (world.outsider.id, "not_eligible", None), (world.member.id, "malformed", m["seats"]["member"]),
        (world.member.id, "already_voted", m["seats"]["member"]), (world.member2.id, "closed", None)]
    assert all("choice" not in e.data and "yes" not in str(e.data) and "tán" not in str(e.data) for e in refused)


# ---------------------------------------------------------------- the chair's tie rule, the result headline


async def test_tie_decided_by_the_chairs_vote(world: World) -> None:
    m = await live_meeting(world)
    for chair_choice, member_choice, passed, headline in (
        ("yes", "no", True, "Được thông qua theo ý kiến của Chủ tọa (số phiếu ngang nhau)"),
        ("no", "yes", False, "Không được thông qua theo ý kiến của Chủ tọa (số phiếu ngang nhau)"),
    ):
        poll_id = await new_poll(world, m, majority="absolute", base="entitled", tie_rule="chair")
        await open_(world, poll_id)
        await cast(world, "chair", poll_id, chair_choice)
        await cast(world, "member", poll_id, member_choice)
        await cast(world, "member2", poll_id, "abstain")
        poll = await call(world.db, voting.close_poll, world.chair, poll_id)
        assert poll.tie_rule == "chair"
        assert (poll.result["passed"], poll.result["headline"], poll.result["tie"]) == (passed, headline, [])
        async with world.db.uow() as uow:
            view = await voting.get_poll(uow, world.member, poll_id)
            _name, body = await voting.export_csv(uow, world.chair, poll_id)
        assert view["tie_rule_label"] == "Số phiếu ngang nhau thì theo ý kiến của Chủ tọa"
        assert view["rule_label"] == "Quá nửa tổng số thành viên" and view["result"]["headline"] == headline
        assert headline in body and "HÒA PHIẾU" not in body.upper()

    # the chair abstains: the tie stays unresolved and the headline says why
    poll_id = await new_poll(world, m, tie_rule="chair")
    await open_(world, poll_id)
    await cast(world, "chair", poll_id, "abstain")
    await cast(world, "member", poll_id, "yes")
    await cast(world, "member2", poll_id, "no")
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["passed"] is False and poll.result["tie_outcome"] == "unresolved"
    assert poll.result["headline"].startswith("Chưa phân định: số phiếu ngang nhau")

    async with world.db.uow() as uow:
        minutes = await voting.poll_results_for_meeting(uow, m["meeting_id"])
    assert [r["headline"] for r in minutes][:2] == [
        "Được thông qua theo ý kiến của Chủ tọa (số phiếu ngang nhau)",
        "Không được thông qua theo ý kiến của Chủ tọa (số phiếu ngang nhau)"]
    assert "theo ý kiến của Chủ tọa" in minutes[0]["text"]


async def test_tie_rule_refused_on_a_secret_poll(world: World) -> None:
    m = await live_meeting(world)
    with pytest.raises(Invalid, match="Bỏ phiếu kín không áp dụng được") as info:
        await new_poll(world, m, secret=True, tie_rule="chair")
    assert info.value.details["field"] == "tie_rule"


async def test_headline_over_all_members(world: World) -> None:
    """4 voting members, 3 present: 2 yes of 3 cast is not more than half of all 4 members."""
    m = await live_meeting(world)
    poll_id = await new_poll(world, m, majority="absolute", base="entitled")
    await open_(world, poll_id)
    await cast(world, "chair", poll_id, "yes")
    await cast(world, "member", poll_id, "yes")
    await cast(world, "member2", poll_id, "no")
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["passed"] is False
    assert poll.result["headline"] == "Không được thông qua: 2/4 thành viên tán thành, chưa quá nửa tổng số thành viên"
