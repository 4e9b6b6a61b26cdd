"""Speaking time (#20): the meeting's default and a request's own limit, the clock from the floor given, pause,
resume and extend by the chair, over time shown not cut, statistics per speaker in the minutes. Time moves
through an injected clock: no sleeping (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json

import pymupdf
import pytest

from meetings import agenda, lifecycle, meetings, minutes, speakers
from storage.errors import Conflict, Forbidden, Invalid, NotFound
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
    assert speakers.timing(g, clock.at(30)()) == {
        "elapsed": 30,
        "limit": 90,
        "remaining": 60,
        "over": False,
        "paused": False,
    }

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
        ("Lê Minh Tuấn", 2, 160, 0),
        ("Hoàng Đức Thắng", 1, 130, 1),
    ]

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


async def test_registrations_and_questions_sent_before_the_meeting(world: World) -> None:
    draft = await world.meeting(invite=False)
    with pytest.raises(Conflict):  # a draft: not yet (its chair may see it, the members do not)
        await call(world.db, speakers.request_floor, world.chair, draft["meeting_id"])
    m = await world.meeting(items=2, confidential_for=["member2"])
    mid, (open_item, secret_item) = m["meeting_id"], m["item_ids"]
    question = "Đề nghị làm rõ tiến độ kết nối hệ thống quản lý văn bản đến cấp xã của thị xã Đông Triều?"
    a, events = await run(world.db, speakers.request_floor, world.member, mid, item_id=open_item, note=question)
    assert question not in json.dumps(events, ensure_ascii=False)  # the room hears names only
    with pytest.raises(NotFound):  # an item one may not see
        await call(world.db, speakers.request_floor, world.member2, mid, item_id=secret_item + 1000)
    with pytest.raises(NotFound):
        await call(world.db, speakers.request_floor, world.member, mid, item_id=secret_item)
    with pytest.raises(Forbidden):
        await call(world.db, speakers.request_floor, world.outsider, mid)
    with pytest.raises(Invalid):
        await call(world.db, speakers.request_floor, world.member2, mid, note="x" * 2001)
    b = await call(
        world.db, speakers.request_floor, world.member2, mid, item_id=secret_item, note="Ý kiến về phương án nhân sự"
    )
    withdrawn = await call(world.db, speakers.request_floor, world.chair, mid)
    await call(world.db, speakers.withdraw, world.chair, withdrawn.id)  # before the meeting, too

    with pytest.raises(Forbidden):
        await call(world.db, speakers.registrations, world.member, mid)
    rows = await call(world.db, speakers.registrations, world.chair, mid)
    assert [(r["id"], r["note"], r["item_number"], r["early"]) for r in rows] == [
        (a.id, question, 1, True),
        (b.id, "Ý kiến về phương án nhân sự", 2, True),
    ]
    assert rows[1]["item_title"] == "Phương án nhân sự (mật)"  # the chair sees the confidential item

    # the meeting starts: they wait in the queue, in order, and the chair gives the floor
    await call(world.db, lifecycle.start_meeting, world.chair, mid)
    async with world.db.uow() as uow:
        assert [r["id"] for r in (await speakers.queue_view(uow, mid))["queue"]] == [a.id, b.id]
    assert (await call(world.db, speakers.grant, world.chair, a.id)).state == "speaking"
    later = await call(world.db, speakers.request_floor, world.chair, mid)
    rows = await call(world.db, speakers.registrations, world.secretary, mid)
    assert [(r["id"], r["early"]) for r in rows] == [(b.id, True), (later.id, False)]
