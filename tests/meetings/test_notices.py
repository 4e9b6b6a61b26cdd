"""The meeting room's notifications (issue #21): invitations, a changed time or place, a cancellation and a poll
opened become stored notifications with links for the people concerned; a confidential item's poll reaches only
the people who may see it. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from eoffice import notifications
from eoffice.schema.notifications import Notification
from meetings import attendance, lifecycle, meetings, notices, voting
from storage.db import Database
from tests.meetings.conftest import World, call
from tests.meetings.test_voting import live_meeting, new_poll, seat


def install(db: Database) -> None:
    notifications.install(db, notifications.Config(), handlers=notices.HANDLERS)


async def got(db: Database, user_id: int, kind: str | None = None) -> list[tuple[str, str]]:
    async with db.uow() as uow:
        rows = (await uow.session.scalars(select(Notification).where(Notification.user_id == user_id)
                                          .order_by(Notification.id))).all()
    return [(r.text, r.link) for r in rows if kind is None or r.kind == kind]


async def test_invitation_change_and_cancellation(world: World) -> None:
    install(world.db)
    m = await world.meeting()
    mid = m["meeting_id"]
    title = "Họp UBND tỉnh thường kỳ tháng 12"
    invite = (f"Giấy mời họp: {title}.", f"/meetings/{mid}")
    for key in ("member", "member2", "chair", "operator", "district"):  # the unit's leader answers for it
        assert invite in await got(world.db, world.users[key].id, "meeting"), key
    assert await got(world.db, world.outsider.id) == []
    assert invite not in await got(world.db, world.organiser.id)  # who sent them knows

    later = dt.datetime(2026, 12, 1, 7, 30, tzinfo=dt.UTC)  # 14:30 in Hà Nội
    await call(world.db, meetings.update_meeting, world.organiser, mid, starts_at=later, ends_at=None,
               place="Hội trường tầng 3")
    changed = (f"Cuộc họp «{title}» đã thay đổi địa điểm, thời gian bắt đầu: bắt đầu lúc 14:30 01/12/2026, "
               f"tại Hội trường tầng 3.", f"/meetings/{mid}")
    assert (await got(world.db, world.member.id, "meeting"))[-1] == changed

    await call(world.db, lifecycle.cancel_meeting, world.organiser, mid, "Trùng lịch tiếp khách")
    assert (await got(world.db, world.member2.id, "meeting"))[-1] == (
        f"Cuộc họp đã bị hủy: {title} (Trùng lịch tiếp khách).", f"/meetings/{mid}")


async def test_a_poll_opened_reaches_its_voters_only(world: World) -> None:
    m = await live_meeting(world)
    install(world.db)
    poll_id = await new_poll(world, m)
    await call(world.db, voting.open_poll, world.chair, poll_id)
    text = ("Biểu quyết «Thông qua Đề án chuyển đổi số tỉnh Quảng Ninh giai đoạn 2026-2030» đã mở trong cuộc họp "
            "«Họp UBND tỉnh thường kỳ tháng 12»: mời bạn biểu quyết.")
    for key in ("chair", "member", "member2"):  # present: they vote
        assert await got(world.db, world.users[key].id, "poll") == [(text, f"/meetings/{m['meeting_id']}/room")]
    for key in ("outsider", "district", "organiser"):  # not a voter of this poll
        assert await got(world.db, world.users[key].id, "poll") == [], key
    # a countdown set later is another change, not another opening
    await call(world.db, voting.set_countdown, world.chair, poll_id, 120)
    assert len(await got(world.db, world.member.id, "poll")) == 1


async def test_a_confidential_items_poll_reaches_its_readers_only(world: World) -> None:
    m = await world.meeting(start=True, confidential_for=["member"])
    for key in ("chair", "member", "member2"):
        participant = m["seats"].get(key) or await seat(world, m, key)
        await call(world.db, attendance.check_in, world.chair, participant)
    install(world.db)
    poll_id = await new_poll(world, m, title="Phương án nhân sự (mật)", item_id=m["item_ids"][-1])
    await call(world.db, voting.open_poll, world.chair, poll_id)
    assert len(await got(world.db, world.member.id, "poll")) == 1
    assert await got(world.db, world.member2.id, "poll") == []  # not on the item's list: not even its title
