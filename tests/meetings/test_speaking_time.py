"""Speaking time (#20): the meeting's default and a request's own limit, the clock from the floor given, pause,
resume and extend by the chair, over time shown not cut, statistics per speaker in the minutes. Time moves
through an injected clock: no sleeping (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pymupdf
import pytest

from meetings import agenda, meetings, minutes, speakers
from storage.errors import Conflict, Forbidden, Invalid
from tests.meetings.conftest import World, call, run

T0 = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


class Clock:
    """The time the services read; tests move it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, seconds: int) -> Clock:
        self.now = T0 + dt.timedelta(seconds=seconds)
        return self


async def test_countdown_pause_extend_over_time_and_statistics(world: World) -> None:
    m = await world.meeting(start=True)
    mid = m["meeting_id"]
    clock = Clock()
    with pytest.raises(Invalid):
        await call(world.db, meetings.update_meeting, world.organiser, mid, speaking_time=5)
    meeting = await call(world.db, meetings.update_meeting, world.organiser, mid, speaking_time=120)
    assert meeting.public()["speaking_time"] == 120

    a = await call(world.db, speakers.request_floor, world.member, mid)
    b = await call(world.db, speakers.request_floor, world.member2, mid)
    with pytest.raises(Forbidden):
        await call(world.db, speakers.set_limit, world.member, a.id, 90)
    with pytest.raises(Invalid):
        await call(world.db, speakers.set_limit, world.chair, a.id, 3)
    assert (await call(world.db, speakers.set_limit, world.chair, a.id, 90)).time_limit == 90  # before the turn

    # the clock starts when the floor is given; the event carries what every screen counts from
    g, events = await run(world.db, speakers.grant, world.chair, a.id, clock=clock.at(0))
    assert g.time_limit == 90
    speaking = next(e for e in events if e["type"] == "speakers.changed")["data"]["speaking"]
    assert speaking["granted_at"] == T0.isoformat() and speaking["paused_at"] is None
    assert speaking["paused_seconds"] == 0 and speaking["time_limit"] == 90
    assert speakers.timing(g, clock.at(30)()) == {"elapsed": 30, "limit": 90, "remaining": 60, "over": False,
                                                   "paused": False}

    # paused by the chair (not by the speaker): the clock stands still
    with pytest.raises(Forbidden):
        await call(world.db, speakers.pause, world.member, a.id, clock=clock.at(40))
    p = await call(world.db, speakers.pause, world.secretary, a.id, clock=clock.at(40))
    assert speakers.timing(p, clock.at(100)())["elapsed"] == 40 and speakers.timing(p, clock())["paused"]
    r = await call(world.db, speakers.resume, world.chair, a.id, clock=clock.at(100))
    assert r.paused_at is None and r.paused_seconds == 60
    assert speakers.timing(r, clock.at(150)())["remaining"] == 0
    over = speakers.timing(r, clock.at(160)())
    assert over["over"] and over["remaining"] == -10  # over time is shown, the turn goes on

    e = await call(world.db, speakers.extend, world.chair, a.id, 60, clock=clock.at(160))
    assert e.time_limit == 150 and speakers.timing(e, clock())["remaining"] == 50
    with pytest.raises(Invalid):
        await call(world.db, speakers.extend, world.chair, a.id, 4 * 3600)

    # the next turn ends this one (140 s spoken: 200 s minus the 60 s pause); the meeting's default applies
    g2 = await call(world.db, speakers.grant, world.chair, b.id, clock=clock.at(200))
    assert g2.time_limit == 120
    async with world.db.uow() as uow:
        view = await speakers.queue_view(uow, mid)
    assert view["history"][0]["duration"] == 140 and view["speaking"]["id"] == b.id
    with pytest.raises(Conflict):
        await call(world.db, speakers.pause, world.chair, a.id)
    done = await call(world.db, speakers.finish, world.member2, b.id, clock=clock.at(330))
    assert done.duration == 130 and done.ended_at == clock()

    # a second turn for the first speaker, paused when it ends: the pause is not counted
    a2 = await call(world.db, speakers.request_floor, world.member, mid)
    await call(world.db, speakers.grant, world.chair, a2.id, time_limit=30, clock=clock.at(400))
    await call(world.db, speakers.pause, world.chair, a2.id, clock=clock.at(420))
    assert (await call(world.db, speakers.finish, world.chair, a2.id, clock=clock.at(500))).duration == 20

    async with world.db.uow() as uow:
        stats = await speakers.speaker_stats(uow, mid)
    assert [(s["name"], s["count"], s["seconds"], s["over"]) for s in stats] == [
        ("Lê Minh Tuấn", 2, 160, 0), ("Hoàng Đức Thắng", 1, 130, 1)]

    # listed in the minutes
    _, pdf = await call(world.db, minutes.export_pdf, world.chair, mid)
    text = "".join(page.get_text() for page in pymupdf.open(stream=pdf, filetype="pdf"))
    assert "THỐNG KÊ PHÁT BIỂU" in text
    assert "Lê Minh Tuấn: 2 lượt, tổng thời gian 2 phút 40 giây." in text
    assert "Hoàng Đức Thắng: 1 lượt, tổng thời gian 2 phút 10 giây; quá giờ 1 lượt." in text


async def test_turns_on_a_confidential_item_stay_out_of_the_minutes_of_those_who_may_not_see_it(world: World) -> None:
    m = await world.meeting(start=True, items=2, confidential_for=["member2"])
    mid, (open_item, secret) = m["meeting_id"], m["item_ids"]
    await call(world.db, agenda.set_current_item, world.chair, mid, secret)
    a = await call(world.db, speakers.request_floor, world.member2, mid)
    await call(world.db, speakers.grant, world.chair, a.id)
    await call(world.db, speakers.finish, world.chair, a.id)
    async with world.db.uow() as uow:
        assert [s["count"] for s in await speakers.speaker_stats(uow, mid)] == [1]
        assert await speakers.speaker_stats(uow, mid, visible={open_item}) == []
