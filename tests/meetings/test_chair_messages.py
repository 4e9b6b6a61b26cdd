"""The chair's message to the room (issue 22): only the chair or secretary, only while the meeting runs, text
cleaned and bounded, audited, delivered on the room's topic (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from eoffice.audit import AuditEntry
from meetings import chair_messages, lifecycle, topics
from storage.errors import Conflict, Forbidden, Invalid
from tests.meetings.conftest import World, call, run


async def test_chair_and_secretary_message_the_room(world: World) -> None:
    m = await world.meeting(start=True)
    mid = m["meeting_id"]
    msg, events = await run(world.db, chair_messages.send, world.chair, mid, "  Nghỉ giải lao\x07 15 phút.  ")
    assert msg["text"] == "Nghỉ giải lao 15 phút." and msg["sender"] == world.chair.full_name
    assert [(e["topic"], e["type"], e["data"]["text"]) for e in events] == [
        (topics.room(mid), "chair.message", "Nghỉ giải lao 15 phút.")]
    await call(world.db, chair_messages.send, world.secretary, mid, "Đề nghị các đại biểu tắt micrô.")
    async with world.db.uow(readonly=True) as uow:
        logged = (await uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "meeting.message")
                                            .order_by(AuditEntry.seq))).all()
    assert [(e.actor_id, e.data["text"]) for e in logged] == [
        (world.chair.id, "Nghỉ giải lao 15 phút."), (world.secretary.id, "Đề nghị các đại biểu tắt micrô.")]


async def test_who_when_and_what_is_refused(world: World) -> None:
    m = await world.meeting(start=True)
    mid = m["meeting_id"]
    with pytest.raises(Forbidden):
        await call(world.db, chair_messages.send, world.member, mid, "Tôi muốn nhắn cả phòng")
    for bad in ("", "   \x01 ", "x" * (chair_messages.MAX_CHARS + 1)):
        with pytest.raises(Invalid):
            await call(world.db, chair_messages.send, world.chair, mid, bad)
    await call(world.db, lifecycle.end_meeting, world.chair, mid)
    with pytest.raises(Conflict):
        await call(world.db, chair_messages.send, world.chair, mid, "Sau khi kết thúc")
