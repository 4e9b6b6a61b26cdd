"""In the room: agenda navigation, check-in and quorum, speakers, presenter, snapshots, catch-up,
and confidential items kept out of what others receive (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest

from meetings import agenda, attendance, lifecycle, meetings, presenter, room, speakers
from storage.db import Database
from storage.errors import Conflict, Forbidden
from storage.events import events_since
from tests.meetings.conftest import World, call, run


async def test_chair_moves_through_the_agenda(world: World) -> None:
    m = await world.meeting(start=True, items=3)
    mid, items = m["meeting_id"], m["item_ids"]
    with pytest.raises(Forbidden):
        await call(world.db, agenda.step, world.member, mid, 1)
    meeting, events = await run(world.db, agenda.step, world.chair, mid, 1)
    assert meeting.current_item_id == items[0]
    ev = next(e for e in events if e["type"] == "agenda.current")
    assert ev["topic"] == f"meeting:{mid}" and ev["data"]["item_id"] == items[0] and ev["data"]["previous_id"] is None
    await call(world.db, agenda.step, world.secretary, mid, 1)  # the secretary may drive too
    await call(world.db, agenda.set_current_item, world.chair, mid, items[2])
    with pytest.raises(Conflict, match="cuối cùng"):
        await call(world.db, agenda.step, world.chair, mid, 1)
    async with world.db.uow() as uow:
        ctx = await meetings.view_context(uow, world.member, mid)
        view = await agenda.agenda_view(uow, ctx.access, ctx.meeting)
        assert [i["status"] for i in view] == ["done", "done", "current"]
        assert all(i["started_at"] for i in view)
    await call(world.db, lifecycle.end_meeting, world.chair, mid)
    with pytest.raises(Conflict, match="chưa diễn ra hoặc đã kết thúc"):
        await call(world.db, agenda.step, world.chair, mid, -1)


async def test_confidential_item_is_redacted_in_views_and_events(world: World) -> None:
    m = await world.meeting(start=True, items=2, confidential_for=["member2"])
    mid, (open_item, secret) = m["meeting_id"], m["item_ids"]
    pdf = await world.upload_pdf(world.organiser, [["Dự kiến bổ nhiệm Giám đốc Sở, hồ sơ nhân sự mật"]],
                                 "Tờ trình nhân sự")
    from meetings import documents

    (doc, version), events = await run(world.db, documents.add_document, world.organiser, world.blobs, mid,
                                       upload_id=pdf, item_id=secret)
    _, more = await run(world.db, agenda.update_item, world.organiser, secret, title="Phương án nhân sự 2027 (mật)")
    _, nav = await run(world.db, agenda.set_current_item, world.chair, mid, secret)
    wire = json.dumps(events + more + nav, ensure_ascii=False)
    assert "nhân sự" not in wire and "Tờ trình" not in wire  # ids only on the room topic
    async with world.db.uow() as uow:
        ctx = await meetings.view_context(uow, world.member, mid)
        view = await agenda.agenda_view(uow, ctx.access, ctx.meeting)
        assert view[1] == {**view[1], "id": secret, "title": "Nội dung mật", "restricted": True}
        assert view[0]["title"].startswith("Nội dung 1")
        snap = await room.room_snapshot(uow, world.member, mid)
        assert "nhân sự" not in json.dumps(snap, ensure_ascii=False)
        assert [d["item_id"] for d in snap["documents"]] == []
        with pytest.raises(Forbidden):
            await documents.version_context(uow, world.member, version.id)
        # the listed member, chair and secretary see it
        for who in (world.member2, world.chair, world.secretary):
            snap = await room.room_snapshot(uow, who, mid)
            assert snap["agenda"][1]["title"] == "Phương án nhân sự 2027 (mật)"
            assert [d["id"] for d in snap["documents"]] == [doc.id]
        # topic authorisation
        assert await room.authorize(uow, world.member, f"meeting:{mid}")
        assert await room.authorize(uow, world.operator, f"meeting:{mid}")
        assert not await room.authorize(uow, world.outsider, f"meeting:{mid}")
        assert await room.authorize(uow, world.member, f"meeting:{mid}:item:{open_item}")
        assert not await room.authorize(uow, world.member, f"meeting:{mid}:item:{secret}")
        assert await room.authorize(uow, world.member2, f"meeting:{mid}:item:{secret}")
        assert not await room.authorize(uow, world.member, f"meeting:{mid}:control")
        assert await room.authorize(uow, world.secretary, f"meeting:{mid}:control")
        assert not await room.authorize(uow, world.member, f"meeting:{mid + 1000}")
        assert not await room.authorize(uow, world.member, f"meeting:{mid}:item:{open_item + 1000}")


async def test_check_in_and_live_quorum(world: World) -> None:
    m = await world.meeting()
    mid, seats = m["meeting_id"], m["seats"]
    # entitled: chair, member, member2, the district (unit) = 4; "half" needs 3
    p, events = await run(world.db, attendance.check_in, world.member, seats["member"])
    assert p.check_in_method == "tablet" and p.present
    q = next(e for e in events if e["type"] == "attendance.changed")["data"]["quorum"]
    assert (q["present"], q["entitled"], q["needed"], q["met"]) == (1, 4, 3, False)
    with pytest.raises(Forbidden):
        await call(world.db, attendance.check_in, world.member, seats["member2"])
    with pytest.raises(Conflict, match="chưa cử người"):
        await call(world.db, attendance.check_in, world.secretary, seats["unit_dt"])
    await call(world.db, meetings.respond, world.district, seats["unit_dt"], "substitute",
               substitute_id=world.district2.id)
    p = await call(world.db, attendance.check_in, world.operator, seats["unit_dt"])  # the site's operator
    assert p.check_in_method == "operator"
    p = await call(world.db, attendance.check_in, world.secretary, seats["member2"])
    assert p.check_in_method == "secretary"
    guest = await call(world.db, attendance.check_in, world.secretary, seats["guest"])
    assert guest.present
    async with world.db.uow() as uow:
        q2 = await attendance.quorum_of(uow, (await meetings.get_context(uow, world.chair, mid)).meeting)
        assert (q2.present, q2.met) == (3, True)  # the guest does not count
    _, events = await run(world.db, attendance.check_out, world.member, seats["member"])
    assert next(e for e in events if e["type"] == "attendance.changed")["data"]["quorum"]["met"] is False
    await call(world.db, lifecycle.start_meeting, world.chair, mid)
    await call(world.db, lifecycle.end_meeting, world.chair, mid)
    with pytest.raises(Conflict):
        await call(world.db, attendance.check_in, world.member, seats["member"])


async def test_speakers_queue(world: World) -> None:
    m = await world.meeting(start=True)
    mid, seats = m["meeting_id"], m["seats"]
    await call(world.db, agenda.step, world.chair, mid, 1)
    a = await call(world.db, speakers.request_floor, world.member, mid)
    with pytest.raises(Conflict, match="Đã có"):
        await call(world.db, speakers.request_floor, world.member, mid)
    b = await call(world.db, speakers.request_floor, world.operator, mid, site_id=m["site_id"])
    assert b.name == "Điểm cầu Điểm cầu thị xã Đông Triều"
    c = await call(world.db, speakers.request_floor, world.secretary, mid, participant_id=seats["guest"])
    assert c.name == "Ông Phan Văn Khải"
    with pytest.raises(Forbidden):
        await call(world.db, speakers.request_floor, world.outsider, mid)
    with pytest.raises(Forbidden):
        await call(world.db, speakers.grant, world.member, a.id)
    order, events = await run(world.db, speakers.reorder_queue, world.chair, mid, [c.id, b.id])
    assert order == [c.id, b.id, a.id]
    assert [r["name"] for r in events[0]["data"]["queue"]] == ["Ông Phan Văn Khải",
                                                                 "Điểm cầu Điểm cầu thị xã Đông Triều", "Lê Minh Tuấn"]
    g, events = await run(world.db, speakers.grant, world.chair, c.id, time_limit=180)
    assert events[0]["data"]["speaking"]["id"] == c.id and events[0]["data"]["speaking"]["time_limit"] == 180
    await call(world.db, speakers.grant, world.chair, a.id)  # ends the guest's turn
    await call(world.db, speakers.withdraw, world.operator, b.id)
    with pytest.raises(Conflict):
        await call(world.db, speakers.withdraw, world.operator, b.id)
    await call(world.db, speakers.finish, world.member, a.id)  # the speaker ends their own turn
    async with world.db.uow() as uow:
        view = await speakers.queue_view(uow, mid)
    assert view["queue"] == [] and view["speaking"] is None
    assert [h["name"] for h in view["history"]] == ["Ông Phan Văn Khải", "Lê Minh Tuấn"]
    assert all(h["duration"] is not None and h["duration"] >= 0 for h in view["history"])
    assert all(h["item_id"] == g.item_id for h in view["history"])


async def test_presenter_follow(world: World) -> None:
    m = await world.meeting(start=True)
    mid = m["meeting_id"]
    pdf = await world.upload_pdf(world.member2, [["Trang 1"], ["Trang 2"], ["Trang 3"]], "Báo cáo chuyển đổi số")
    from meetings import documents

    _, v = await call(world.db, documents.add_document, world.member2, world.blobs, mid, upload_id=pdf,
                      item_id=m["item_ids"][0])  # the item's presenter brings the report
    with pytest.raises(Forbidden):
        await call(world.db, presenter.take, world.member2, mid)  # not the current item yet
    meeting = await call(world.db, agenda.step, world.chair, mid, 1)
    assert meeting.presenter_id == world.member2.id  # the item's presenter presents by default
    _, events = await run(world.db, presenter.move, world.member2, mid, version_id=v.id, page=2, zoom=1.5, x=0.2,
                          y=0.4)
    data = events[0]["data"]
    assert (data["presenter_id"], data["version_id"], data["page"], data["zoom"]) == (world.member2.id, v.id, 2, 1.5)
    with pytest.raises(Conflict):
        await call(world.db, presenter.move, world.member, mid, version_id=v.id, page=1)
    from storage.errors import Invalid

    with pytest.raises(Invalid):
        await call(world.db, presenter.move, world.member2, mid, version_id=v.id, page=9)
    await call(world.db, presenter.take, world.chair, mid)
    async with world.db.uow() as uow:
        snap = await room.room_snapshot(uow, world.member, mid)
        assert snap["presenter"]["presenter_id"] == world.chair.id and snap["presenter"]["page"] is None
    await call(world.db, presenter.stop, world.secretary, mid)


async def test_reconnect_resumes_by_seq_and_state_survives_restart(world: World, db_url: str) -> None:
    m = await world.meeting(start=True, items=3)
    mid = m["meeting_id"]
    topic = f"meeting:{mid}"
    async with world.db.uow() as uow:
        seen = (await events_since(uow.session, topic, 0)).last_seq  # the tablet saw this much, then dropped
    await call(world.db, agenda.step, world.chair, mid, 1)
    await call(world.db, attendance.check_in, world.member, m["seats"]["member"])
    await call(world.db, agenda.step, world.chair, mid, 1)
    await world.db.dispose()  # "restart": a new process, a new engine, nothing in memory
    fresh = Database(db_url)
    try:
        async with fresh.uow() as uow:
            replay = await events_since(uow.session, topic, seen)
            assert replay.complete
            assert [e["type"] for e in replay.events] == ["agenda.current", "attendance.changed", "agenda.current"]
            assert [e["seq"] for e in replay.events] == list(range(seen + 1, seen + 4))
            snap = await room.snapshot(uow, world.member, topic)
            assert snap["meeting"]["current_item_id"] == m["item_ids"][1]
            assert snap["quorum"]["present"] == 1 and snap["meeting"]["state"] == "in_progress"
            assert await room.snapshot(uow, world.member, f"meeting:{mid}:control") == {}
    finally:
        await fresh.dispose()


async def test_a_member_removed_from_the_meeting_stops_receiving_its_room(world: World) -> None:
    """The hub authorises the room topic again after ``participants.changed``: a member struck off
    the list (before checking in) is told and receives nothing more; the others keep following."""
    import asyncio
    from dataclasses import replace

    from storage.pubsub.memory import MemoryBroker
    from storage.settings import Settings
    from web.hub import Hub

    m = await world.meeting(invite=True)
    topic = f"meeting:{m['meeting_id']}"
    broker = MemoryBroker()
    hub = Hub(world.db, broker, replace(Settings(database_url="sqlite://"), ws_queue_size=64))
    world.db.publisher = broker.publish
    room.register(hub)
    await hub.start()
    try:
        removed, staying = hub.connect(world.member2), hub.connect(world.member)
        await hub.subscribe(removed, topic)
        await hub.subscribe(staying, topic)

        def frames(conn: object) -> list[dict[str, object]]:
            out = []
            while not conn.queue.empty():  # type: ignore[attr-defined]
                out.append(json.loads(conn.queue.get_nowait()))  # type: ignore[attr-defined]
            return out

        frames(removed), frames(staying)
        await call(world.db, meetings.remove_participant, world.organiser, m["seats"]["member2"])
        for _ in range(100):
            if topic not in removed.topics:
                break
            await asyncio.sleep(0.02)
        got = frames(removed)
        assert [f["type"] for f in got] == ["participants.changed", "error"]
        assert got[1]["revoked"] is True and got[1]["topic"] == topic
        await call(world.db, meetings.remove_participant, world.organiser, m["seats"]["guest"])
        seen: list[dict[str, object]] = []
        for _ in range(250):  # the event of the second removal reached the one who stays...
            seen += frames(staying)
            if len(seen) == 2:
                break
            await asyncio.sleep(0.02)
        assert [f["type"] for f in seen] == ["participants.changed", "participants.changed"]
        assert frames(removed) == []  # ...and, fanned out in the same pass, nothing of it to the removed one
        assert topic in staying.topics
    finally:
        await hub.stop()
        await broker.close()
        world.db.publisher = None
