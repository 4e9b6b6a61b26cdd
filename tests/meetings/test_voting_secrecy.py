"""Secret ballots while the poll is open: what a database reader (any role with SELECT) can learn.

The has-voted row and the ballot are written by one transaction, so on PostgreSQL they share ``xmin``,
and ``ctid`` orders ballots by arrival. The ballots are sealed while the poll is open (see the docstring
of ``meetings.voting``): these tests run the reader's queries and check they name nobody's choice.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import select, text

from meetings import schema, voting
from meetings.polls_live import CastBatcher
from meetings.schema import PollBallot
from storage import keys
from storage.errors import Conflict
from tests.meetings.conftest import World, call, cast_one
from tests.meetings.test_voting import crowd, new_poll, open_

CHOICES = ("yes", "no", "abstain")


def readable(stored: str) -> dict[str, object] | None:
    """What a reader without the application's key makes of a stored choice: the choice, or None."""
    value = json.loads(stored)
    return None if set(value) == {"sealed"} else value


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_xmin_join_and_ctid_order_name_no_choice_while_the_poll_is_open(world: World) -> None:
    m, users = await crowd(world, 12)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True)
    await open_(world, poll_id)
    batcher = CastBatcher(world.db)
    sent = {u.id: CHOICES[i % 3] for i, u in enumerate(users)}
    for u in users:  # one by one: each vote is its own transaction, the easiest case for the reader
        await batcher.submit(poll_id, voting.CastRequest(u, sent[u.id]))
    assert batcher.batches == 12

    async with world.db.uow() as uow:
        joined = (await uow.session.execute(text(
            "SELECT v.user_id, b.choice::text FROM meeting_poll_voters v JOIN meeting_poll_ballots b "
            "ON b.xmin = v.xmin WHERE v.poll_id = :p AND b.poll_id = :p"), {"p": poll_id})).all()
        by_ctid = (await uow.session.execute(text(
            "SELECT choice::text FROM meeting_poll_ballots WHERE poll_id = :p ORDER BY ctid"), {"p": poll_id})
        ).scalars().all()
        by_xmin = (await uow.session.execute(text(
            "SELECT choice::text FROM meeting_poll_ballots WHERE poll_id = :p ORDER BY xmin::text::bigint"),
            {"p": poll_id})).scalars().all()
    # the join still pairs each voter with a row (one transaction wrote both) ...
    assert {u for u, _c in joined} == set(sent) and len(joined) == 12
    # ... but no row says what was chosen, in the join or in storage order (which follows arrival)
    assert [readable(c) for _u, c in joined] == [None] * 12
    assert [readable(c) for c in by_ctid] == [None] * 12 and [readable(c) for c in by_xmin] == [None] * 12
    # equal choices are not recognisable as equal, and the length of a sealed ballot is the same for all
    assert len(set(by_ctid)) == 12 and len({len(c) for c in by_ctid}) == 1
    assert not any(choice in c for c in by_ctid for choice in ('"yes"', '"no"', '"abstain"'))

    # the close unseals and counts every ballot, then stores them in plaintext in one transaction, shuffled
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["counts"] == dict(Counter(sent.values()))
    async with world.db.uow() as uow:
        after = (await uow.session.execute(text(
            "SELECT v.user_id, b.choice::text FROM meeting_poll_voters v JOIN meeting_poll_ballots b "
            "ON b.xmin = v.xmin WHERE v.poll_id = :p AND b.poll_id = :p"), {"p": poll_id})).all()
        stored = (await uow.session.execute(text(
            "SELECT choice::text, xmin::text FROM meeting_poll_ballots WHERE poll_id = :p"), {"p": poll_id})).all()
    assert after == []  # the voters' xmin are the casts', the ballots' the close's
    assert Counter(json.loads(c)["v"] for c, _x in stored) == Counter(sent.values())
    assert len({x for _c, x in stored}) == 1
    await voting.scrub(world.db)


async def test_secret_ballots_are_sealed_until_the_close(world: World) -> None:
    m, users = await crowd(world, 4)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True, method="ranked", seats=1,
                             options=["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường"])
    await open_(world, poll_id)
    rankings = [[1, 2, 3], [1], [2, 3, 1], [1, 3]]
    for u, r in zip(users, rankings, strict=True):
        await call(world.db, cast_one, u, poll_id, r)
    async with world.db.uow() as uow:
        stored = (await uow.session.scalars(select(PollBallot.choice).where(PollBallot.poll_id == poll_id))).all()
        poll = await uow.session.get(schema.Poll, poll_id)
        assert poll is not None
        assert [set(c) for c in stored] == [{"sealed"}] * 4
        assert len({len(c["sealed"]) for c in stored}) == 1  # [1] and [1, 2, 3] look alike
        cipher = await voting.sealer(uow, poll)
        assert sorted(map(str, (voting.unseal(cipher, poll, c) for c in stored))) == sorted(
            str({"r": r}) for r in rankings)
    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.result["winners"] == [1]
    async with world.db.uow() as uow:
        stored = (await uow.session.scalars(select(PollBallot.choice).where(PollBallot.poll_id == poll_id))).all()
    assert sorted(len(c["r"]) for c in stored) == [1, 2, 3, 3]  # plaintext once closed


async def test_ballots_sealed_under_another_key_are_not_counted(world: World, db_url: str) -> None:
    """The key is not in the database: a server with another secret cannot unwrap the poll's key, and says so."""
    m, users = await crowd(world, 3)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True)
    await open_(world, poll_id)
    original = keys.secret_for(db_url)
    try:
        for u in users[:2]:
            await call(world.db, cast_one, u, poll_id, "yes")
        voting.use_ballot_key(world.db, "bí-mật-đã-đổi")  # the server restarted with another secret
        with pytest.raises(Conflict, match="khóa bí mật của máy chủ đã thay đổi"):
            await call(world.db, voting.close_poll, world.chair, poll_id)
        with pytest.raises(Conflict, match="khóa bí mật của máy chủ đã thay đổi"):
            await call(world.db, cast_one, users[2], poll_id, "no")
        poll = await call(world.db, voting.cancel_poll, world.chair, poll_id, "Đổi khóa máy chủ")
        assert poll.state == "cancelled"
        async with world.db.uow() as uow:
            assert (await uow.session.scalars(select(PollBallot).where(PollBallot.poll_id == poll_id))).all() == []
            assert await uow.session.get(schema.PollKey, poll_id) is None
    finally:
        keys.register(db_url, original)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_startup_vacuums_the_sealed_ballots_a_close_left_behind(world: World, settings: object) -> None:
    """A secret poll closed without the scrub that follows (the process died, or the meeting's end closed it):
    the deleted sealed rows stay in the table's pages until the next start vacuums them."""
    async def autovacuum(on: bool) -> None:  # earlier tests' inserts may make autovacuum visit the table now
        async with world.db.uow() as uow:
            await uow.session.execute(text(
                f"ALTER TABLE meeting_poll_ballots SET (autovacuum_enabled = {'true' if on else 'false'})"))
            await uow.commit()

    await autovacuum(False)
    try:
        await _startup_vacuums(world, settings)
    finally:
        await autovacuum(True)


async def _startup_vacuums(world: World, settings: object) -> None:
    from starlette.testclient import TestClient

    from web.app import create_app

    m, users = await crowd(world, 3)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True)
    await open_(world, poll_id)
    for u in users:
        await call(world.db, cast_one, u, poll_id, "no")
    await call(world.db, voting.close_poll, world.chair, poll_id)  # no scrub after it

    async def dead_versions() -> int:
        async with world.db.uow() as uow:
            await uow.session.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
            pages = (await uow.session.execute(text(
                "SELECT pg_relation_size('meeting_poll_ballots') / current_setting('block_size')::int"))).scalar_one()
            n = 0
            for page in range(pages):
                n += (await uow.session.execute(text(
                    "SELECT count(*) FROM heap_page_items(get_raw_page('meeting_poll_ballots', :n)) "
                    "WHERE lp_flags = 1 AND t_xmax::text <> '0'"), {"n": page})).scalar_one()
            await uow.commit()
            return int(n)

    assert await dead_versions() == 3  # the sealed ballots, deleted by the close
    with TestClient(create_app(settings)):  # type: ignore[arg-type]
        pass
    assert await dead_versions() == 0
