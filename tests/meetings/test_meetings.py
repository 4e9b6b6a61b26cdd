"""Meeting life cycle, invitations, responses and substitutes (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from eoffice.audit import AuditEntry, verify
from meetings import agenda, lifecycle, meetings
from storage.errors import Conflict, Forbidden, Invalid, NotFound
from tests.meetings.conftest import START, World, call, run


async def test_draft_is_private_then_invitations_notify_everyone(world: World) -> None:
    m = await world.meeting(invite=False)
    mid = m["meeting_id"]
    async with world.db.uow() as uow:
        with pytest.raises(NotFound):
            await meetings.view_context(uow, world.member, mid)  # a draft does not exist for members
        assert [x.id for x in await meetings.list_for_user(uow, world.member)] == []
        assert [x.id for x in await meetings.list_for_user(uow, world.organiser)] == [mid]
    _, events = await run(world.db, meetings.send_invitations, world.organiser, mid)
    notified = {e["topic"] for e in events if e["type"] == "notification"}
    # members, the district's leader (answers for the unit), the site operator, chair, secretary
    expected = {f"user:{world.users[k].id}" for k in ("member", "member2", "district", "operator", "chair",
                                                       "secretary")}
    assert notified == expected
    assert f"user:{world.district2.id}" not in notified  # a specialist does not answer for the unit
    assert any(e["topic"] == f"meeting:{mid}" and e["type"] == "meeting.state" for e in events)
    msg = next(e for e in events if e["topic"] == f"user:{world.member.id}")["data"]
    assert msg["message"] == "Giấy mời họp: Họp UBND tỉnh thường kỳ tháng 12" and msg["url"] == f"/meetings/{mid}"
    async with world.db.uow() as uow:
        ctx = await meetings.view_context(uow, world.member, mid)
        assert ctx.access.can_view and not ctx.access.manager
        assert [x.id for x in await meetings.list_for_user(uow, world.district)] == [mid]
        with pytest.raises(Forbidden):
            await meetings.view_context(uow, world.outsider, mid)


async def test_state_machine_refusals_are_clear(world: World) -> None:
    m = await world.meeting(invite=False)
    mid = m["meeting_id"]
    with pytest.raises(Conflict, match="Không thể bắt đầu cuộc họp đang ở trạng thái «Dự thảo»"):
        await call(world.db, lifecycle.start_meeting, world.chair, mid)
    await call(world.db, meetings.send_invitations, world.organiser, mid)
    with pytest.raises(Conflict, match="gửi giấy mời"):
        await call(world.db, meetings.send_invitations, world.organiser, mid)
    with pytest.raises(Forbidden, match="chủ trì"):
        await call(world.db, lifecycle.start_meeting, world.secretary, mid)
    with pytest.raises(Conflict, match="kết thúc"):
        await call(world.db, lifecycle.end_meeting, world.chair, mid)
    started = await call(world.db, lifecycle.start_meeting, world.chair, mid)
    assert started.state == "in_progress" and started.started_at is not None
    with pytest.raises(Conflict):
        await call(world.db, lifecycle.cancel_meeting, world.organiser, mid)
    ended = await call(world.db, lifecycle.end_meeting, world.chair, mid)
    assert ended.state == "ended"
    with pytest.raises(Conflict, match="không còn sửa được"):
        await call(world.db, agenda.add_item, world.organiser, mid, title="Thêm nội dung")
    with pytest.raises(Conflict, match="không còn sửa được"):
        await call(world.db, meetings.add_participant, world.organiser, mid, user_id=world.outsider.id)
    archived = await call(world.db, lifecycle.archive_meeting, world.organiser, mid)
    assert archived.state == "archived"
    async with world.db.uow() as uow:
        actions = (await uow.session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(mid))
                                             .order_by(AuditEntry.seq))).all()
        assert [a for a in actions if a.startswith("meeting.") and a.split(".")[1] in
                ("invite", "start", "end", "archive")] == ["meeting.invite", "meeting.start", "meeting.end",
                                                           "meeting.archive"]
        assert (await verify(uow.session)).ok


async def test_create_validation(world: World) -> None:
    with pytest.raises(Invalid, match="tên cuộc họp"):
        await call(world.db, meetings.create_meeting, world.organiser, title="  ", starts_at=START)
    with pytest.raises(Invalid, match="sau giờ bắt đầu"):
        await call(world.db, meetings.create_meeting, world.organiser, title="Họp", starts_at=START,
                   ends_at=START - dt.timedelta(hours=1))
    with pytest.raises(Invalid, match="hai người khác nhau"):
        await call(world.db, meetings.create_meeting, world.organiser, title="Họp", starts_at=START,
                   chair_id=world.chair.id, secretary_id=world.chair.id)
    m = await world.meeting(invite=False)
    with pytest.raises(Conflict, match="đã có trong danh sách"):
        await call(world.db, meetings.add_participant, world.organiser, m["meeting_id"], user_id=world.member.id)
    with pytest.raises(Invalid, match="đúng một"):
        await call(world.db, meetings.add_participant, world.organiser, m["meeting_id"], user_id=world.outsider.id,
                   guest_name="Khách")
    with pytest.raises(NotFound):  # a draft does not exist for a member, not even to be refused
        await call(world.db, meetings.add_participant, world.member, m["meeting_id"], user_id=world.outsider.id)
    await call(world.db, meetings.send_invitations, world.organiser, m["meeting_id"])
    with pytest.raises(Forbidden):
        await call(world.db, meetings.add_participant, world.member, m["meeting_id"], user_id=world.outsider.id)


async def test_substitute_gets_the_same_access(world: World) -> None:
    m = await world.meeting(confidential_for=["member2"])
    mid, secret_item = m["meeting_id"], m["item_ids"][-1]
    seat = m["seats"]["member2"]
    with pytest.raises(Forbidden):  # not their invitation
        await call(world.db, meetings.respond, world.member, seat, "declined")
    with pytest.raises(Invalid, match="người dự thay"):
        await call(world.db, meetings.respond, world.member2, seat, "substitute")
    with pytest.raises(Conflict, match="đã có trong danh sách"):
        await call(world.db, meetings.respond, world.member2, seat, "substitute", substitute_id=world.member.id)
    async with world.db.uow() as uow:
        with pytest.raises(Forbidden):
            await agenda.item_context(uow, world.substitute, secret_item)
    p, events = await run(world.db, meetings.respond, world.member2, seat, "substitute",
                          substitute_id=world.substitute.id, note="Bận công tác tại Hà Nội")
    assert p.substitute_id == world.substitute.id and p.response == "substitute"
    assert any(e["topic"] == f"user:{world.substitute.id}" and "dự thay" in e["data"]["message"] for e in events)
    async with world.db.uow() as uow:
        ctx, item = await agenda.item_context(uow, world.substitute, secret_item)
        assert item.title == "Phương án nhân sự (mật)" and ctx.access.seats == {seat}
        assert [x.id for x in await meetings.list_for_user(uow, world.substitute)] == [mid]
        with pytest.raises(Forbidden):
            await agenda.item_context(uow, world.member, secret_item)
        view = await meetings.participants_view(uow, (await meetings.view_context(uow, world.chair, mid)).meeting)
        row = next(v for v in view if v["id"] == seat)
        assert row["substitute"]["name"] == "Đỗ Quang Vinh" and row["response_label"] == "Cử người dự thay"


async def test_unit_invitation_answered_by_its_leader(world: World) -> None:
    m = await world.meeting()
    seat = m["seats"]["unit_dt"]
    with pytest.raises(Forbidden):
        await call(world.db, meetings.respond, world.district2, seat, "accepted")
    p = await call(world.db, meetings.respond, world.district, seat, "substitute", substitute_id=world.district2.id)
    assert p.attendee_id == world.district2.id
    async with world.db.uow() as uow:
        ctx = await meetings.view_context(uow, world.district2, m["meeting_id"])
        assert ctx.access.seats == {seat}
    p = await call(world.db, meetings.respond, world.district, seat, "accepted")
    assert p.attendee_id == world.district.id and p.substitute_id == world.district.id


async def test_officer_change_moves_the_seats(world: World) -> None:
    m = await world.meeting(invite=False)
    mid = m["meeting_id"]
    with pytest.raises(Forbidden):
        await call(world.db, meetings.update_meeting, world.secretary, mid, chair_id=world.member.id)
    await call(world.db, meetings.update_meeting, world.organiser, mid, chair_id=world.member.id,
               title="Họp UBND tỉnh (đổi chủ trì)")
    async with world.db.uow() as uow:
        ctx = await meetings.get_context(uow, world.member, mid)
        assert ctx.access.chair and ctx.meeting.title == "Họp UBND tỉnh (đổi chủ trì)"
        view = {v["user_id"]: v for v in await meetings.participants_view(uow, ctx.meeting)}
        assert view[world.member.id]["role"] == "chair" and view[world.chair.id]["role"] == "member"
        assert view[world.secretary.id]["entitled"] is False
