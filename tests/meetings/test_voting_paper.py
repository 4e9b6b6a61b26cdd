"""Paper ballots in a secret poll for people without a tablet: the service (SQLite and PostgreSQL) and the API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from eoffice import identity
from meetings import lifecycle, meetings, schema, voting
from meetings.schema import Poll, PollBallot, PollVoter
from storage.errors import Conflict, Forbidden, Invalid
from storage.settings import Settings
from tests.meetings.conftest import World, call
from tests.meetings.test_voting import audit_rows, cast, crowd, live_meeting, new_poll, open_
from web.app import create_app


async def seats_of(world: World, meeting_id: int, users: list) -> list[int]:
    async with world.db.uow() as uow:
        out = []
        for u in users:
            p = await meetings._seat_for(uow, meeting_id, u.id)
            assert p is not None
            out.append(p.id)
        return out


async def test_paper_ballots_are_counted_with_no_link_to_the_seats(world: World) -> None:
    m, users = await crowd(world, 6)
    mid = m["meeting_id"]
    tablets, paper = users[:3], users[3:]
    paper_seats = await seats_of(world, mid, paper)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True)
    named_id = await new_poll(world, m, quorum_rule="none", title="Thông qua chương trình làm việc")
    await open_(world, poll_id)
    for u, c in zip(tablets, ("yes", "yes", "abstain"), strict=True):
        await cast(world, u, poll_id, c)
    tablet_seat = (await seats_of(world, mid, tablets[:1]))[0]

    record = voting.record_paper_ballots
    with pytest.raises(Forbidden):
        await call(world.db, record, world.member, poll_id, paper_seats, ["yes", "no", "no"])
    with pytest.raises(Invalid, match=r"Số phiếu giấy nhập vào \(2\) phải bằng số người đã bỏ phiếu giấy \(3\)"):
        await call(world.db, record, world.chair, poll_id, paper_seats, ["yes", "no"])
    with pytest.raises(Invalid, match="Phiếu giấy thứ 2"):
        await call(world.db, record, world.secretary, poll_id, paper_seats, ["yes", "đồng ý", "no"])
    with pytest.raises(Conflict, match="Đã bỏ phiếu rồi: Đại biểu Nguyễn Văn Số 0"):
        await call(world.db, record, world.chair, poll_id, [tablet_seat, *paper_seats[:1]], ["no", "no"])
    with pytest.raises(Forbidden, match="không có quyền biểu quyết"):
        await call(world.db, record, world.chair, poll_id, [m["seats"]["guest"]], ["no"])
    with pytest.raises(Invalid, match="một lần"):
        await call(world.db, record, world.chair, poll_id, [paper_seats[0], paper_seats[0]], ["no", "no"])
    async with world.db.uow() as uow:  # nothing of the refused attempts stayed
        poll = await uow.session.get(Poll, poll_id)
        assert poll is not None and poll.votes_cast == 3

    out = await call(world.db, record, world.secretary, poll_id, paper_seats, ["yes", "no", "no"])
    assert out == {"poll_id": poll_id, "recorded": 3, "cast": 6, "eligible": 6}
    async with world.db.uow() as uow:
        rows = {v.participant_id: v for v in (await uow.session.scalars(
            select(PollVoter).where(PollVoter.poll_id == poll_id))).all()}
        assert all(rows[s].voted_at is not None and rows[s].method == "paper" and rows[s].ballot_id is None
                   and rows[s].recorded_by == world.secretary.id for s in paper_seats)
        stored = (await uow.session.scalars(select(PollBallot.choice).where(PollBallot.poll_id == poll_id))).all()
        assert len(stored) == 6 and all(set(c) == {"sealed"} for c in stored)
        view = await voting.voters_view(uow, world.chair, poll_id)
        assert all(v["voted"] and "method" not in v and "choice" not in v for v in view
                   if v["participant_id"] in paper_seats)
    with pytest.raises(Conflict, match="đã được bỏ"):  # the paper voter cannot vote again on a tablet
        await cast(world, paper[0], poll_id, "yes")
    with pytest.raises(Conflict, match="Đã bỏ phiếu rồi"):
        await call(world.db, record, world.chair, poll_id, paper_seats[:1], ["yes"])

    # the audit names the seats and the number of papers, never a choice
    entries = await audit_rows(world.db, "poll.paper")
    assert len(entries) == 1 and entries[0].actor_id == world.secretary.id
    assert entries[0].data == {"meeting_id": mid, "participant_ids": sorted(paper_seats), "ballots": 3}

    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["counts"] == {"yes": 3, "no": 2, "abstain": 1} and poll.votes_cast == 6

    await open_(world, named_id)  # a named poll keeps each vote with its voter: roll call, not paper
    with pytest.raises(Conflict, match="giơ tay hoặc điểm danh"):
        await call(world.db, record, world.chair, named_id, paper_seats[:1], ["yes"])
    await call(world.db, lifecycle.end_meeting, world.chair, mid)


async def test_paper_ballots_in_a_weighted_poll_share_one_weight(world: World) -> None:
    m, users = await crowd(world, 4)
    seats = await seats_of(world, m["meeting_id"], users)
    for seat, weight in zip(seats, (2, 2, 3, 1), strict=True):
        await call(world.db, voting.set_weight, world.organiser, m["meeting_id"], seat, weight)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True, weighted=True)
    await open_(world, poll_id)
    with pytest.raises(Invalid, match="cùng trọng số"):
        await call(world.db, voting.record_paper_ballots, world.chair, poll_id, seats[1:3], ["yes", "no"])
    await call(world.db, voting.record_paper_ballots, world.chair, poll_id, seats[:2], ["yes", "no"])
    await call(world.db, voting.record_paper_ballots, world.chair, poll_id, seats[2:3], ["no"])
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["counts"] == {"yes": 2, "no": 5, "abstain": 0} and poll.weight_cast == 7


async def test_paper_ballots_only_while_the_poll_is_open_in_a_live_meeting(world: World) -> None:
    m = await live_meeting(world)
    poll_id = await new_poll(world, m, secret=True)
    seat = m["seats"]["member"]
    with pytest.raises(Conflict, match="chưa mở"):
        await call(world.db, voting.record_paper_ballots, world.chair, poll_id, [seat], ["yes"])
    await open_(world, poll_id)
    async with world.db.uow() as uow:  # a meeting that stopped without closing the poll (before that rule)
        await uow.session.execute(update(schema.Meeting).where(schema.Meeting.id == m["meeting_id"])
                                  .values(state="ended"))
        await uow.commit()
    with pytest.raises(Conflict, match="không còn diễn ra"):
        await call(world.db, voting.record_paper_ballots, world.chair, poll_id, [seat], ["yes"])


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_batch_of_paper_ballots_is_not_stored_in_the_order_entered(world: World) -> None:
    m, users = await crowd(world, 40)
    seats = await seats_of(world, m["meeting_id"], users)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True)
    await open_(world, poll_id)
    entered = ["yes" if i % 2 else "no" for i in range(40)]
    await call(world.db, voting.record_paper_ballots, world.chair, poll_id, seats, entered)
    async with world.db.uow() as uow:
        poll = await uow.session.get(Poll, poll_id)
        assert poll is not None
        cipher = await voting.sealer(uow, poll)
        stored = [voting.unseal(cipher, poll, c)["v"] for c in (await uow.session.execute(text(
            "SELECT choice FROM meeting_poll_ballots WHERE poll_id = :p ORDER BY ctid"), {"p": poll_id})).scalars()]
    assert Counter(stored) == Counter(entered) and stored != entered


# ---------------------------------------------------------------- the API


@pytest.fixture
def app_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


async def test_paper_ballots_through_the_api(app_client: TestClient, world: World) -> None:
    c = app_client
    tokens = {}
    for key in ("chair", "member", "secretary"):
        async with world.db.uow() as uow:
            tokens[key] = {"Authorization": f"Bearer {await identity.create_token(uow, None, world.users[key])}"}
            await uow.commit()
    m = await live_meeting(world)
    created = c.post("/api/polls", json={"meeting_id": m["meeting_id"], "title": "Bầu Trưởng ban kiểm phiếu",
                                         "method": "single", "secret": True,
                                         "options": ["Phạm Thị Hồng", "Đặng Văn Lâm"]}, headers=tokens["chair"])
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert c.post(f"/api/polls/{pid}/open", headers=tokens["chair"]).status_code == 200
    url = f"/api/polls/{pid}/paper-ballots"
    seats = [m["seats"]["member"], m["seats"]["member2"]]
    r = c.post(url, json={"participant_ids": seats, "choices": [[2], [1]]}, headers=tokens["member"])
    assert r.status_code == 403
    r = c.post(url, json={"participant_ids": seats, "choices": [[2]]}, headers=tokens["secretary"])
    assert r.status_code == 400 and "phải bằng" in r.json()["message"]
    r = c.post(url, json={"participant_ids": seats, "choices": [[2], [1]]}, headers=tokens["secretary"])
    assert r.status_code == 201 and r.json() == {"ok": True, "poll_id": pid, "recorded": 2, "cast": 2,
                                                 "eligible": 3}
    again = c.post(url, json={"participant_ids": seats[:1], "choices": [[1]]}, headers=tokens["chair"])
    assert again.status_code == 409 and "Đã bỏ phiếu rồi" in again.json()["message"]
    view = c.get(f"/api/polls/{pid}", headers=tokens["chair"]).json()
    assert view["cast"] == 2
    closed = c.post(f"/api/polls/{pid}/close", headers=tokens["chair"]).json()
    assert closed["result"]["counts"] == {"1": 1, "2": 1}
