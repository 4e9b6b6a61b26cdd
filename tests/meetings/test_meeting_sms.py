"""A meeting's time changed and its cancellation are urgent (issue #21): besides the stored notification, each
invitee with a phone number gets an SMS through the gateway (a local HTTP receiver); an invitation does not.
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from eoffice import notifications
from eoffice.channels import ChannelSender, PushConfig, SmsConfig
from eoffice.org import User
from meetings import lifecycle, meetings, notices
from tests.meetings.conftest import World, call
from tests.push_receiver import Receiver


async def test_a_changed_and_a_cancelled_meeting_go_by_sms(world: World) -> None:
    async with world.db.uow() as uow:
        member = await uow.session.get(User, world.member.id)
        assert member is not None
        member.phone = "0987654321"
        await uow.commit()
    notifications.install(world.db, notifications.Config(sms=True), handlers=notices.HANDLERS)
    gateway = Receiver(default=202)
    try:
        sms = ChannelSender(world.db, PushConfig(), SmsConfig(url=f"{gateway.origin}/sms", token="t", timeout=10))
        m = await world.meeting()
        mid = m["meeting_id"]
        assert await sms.send_due() == (0, 0)  # the invitation is not urgent
        later = dt.datetime(2026, 12, 1, 7, 30, tzinfo=dt.UTC)  # 14:30 in Hà Nội
        await call(
            world.db,
            meetings.update_meeting,
            world.organiser,
            mid,
            starts_at=later,
            ends_at=None,
            place="Hội trường tầng 3",
        )
        await call(world.db, lifecycle.cancel_meeting, world.organiser, mid, "Trùng lịch tiếp khách")
        assert await sms.send_due() == (2, 0)
        title = "Họp UBND tỉnh thường kỳ tháng 12"
        assert [r.json() for r in gateway.received] == [
            {
                "to": "0987654321",
                "message": f"[VPĐT] Cuộc họp «{title}» đã thay đổi địa điểm, thời gian bắt đầu: "
                "bắt đầu lúc 14:30 01/12/2026, tại Hội trường tầng 3.",
            },
            {"to": "0987654321", "message": f"[VPĐT] Cuộc họp đã bị hủy: {title} (Trùng lịch tiếp khách)."},
        ]
    finally:
        gateway.close()
