"""Data for the operations tests (backup/restore, drain): the demo organisation, registered documents with
their PDFs and tasks, the demo meeting live with an open poll and two votes; every step audited as the services
do. The third member (``MEMBERS[1]``) has not voted yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from eoffice import demo
from eoffice.org import User
from meetings import attendance, lifecycle, meetings, voting
from meetings.demo import CHAIR, MEMBERS, create_demo_meeting
from meetings.schema import PollBallot
from storage.blobs import BlobStore
from storage.db import Database


async def populate(db: Database, blobs: BlobStore) -> dict[str, Any]:
    """Demo organisation, registered documents with their PDFs and tasks, the demo meeting live with an open
    poll and two votes; every step audited as the services do."""
    async with db.uow() as uow:
        await demo.load_demo(uow)
        meeting = await create_demo_meeting(uow, blobs)
        assert meeting is not None
        await demo.load_demo_documents(uow, blobs)
        await uow.commit()
    async with db.uow() as uow:
        users = {u.username: u for u in (await uow.session.scalars(select(User))).all()}
        chair = users[CHAIR]
        await lifecycle.start_meeting(uow, chair, meeting.id)
        for name in (CHAIR, *MEMBERS):
            seat = await meetings._seat_for(uow, meeting.id, users[name].id)
            assert seat is not None
            await attendance.check_in(uow, chair, seat.id)
        poll = await voting.create_poll(uow, chair, meeting.id, title="Thông qua Đề án chuyển đổi số tỉnh "
                                        "Quảng Ninh giai đoạn 2026-2030", method="yes_no_abstain")
        await uow.commit()
    async with db.uow() as uow:
        await voting.open_poll(uow, chair, poll.id)
        await uow.commit()
    async with db.uow() as uow:
        outcomes = await voting.cast_votes(uow, poll.id, [voting.CastRequest(users[CHAIR], "yes"),
                                                          voting.CastRequest(users[MEMBERS[0]], "no")])
        assert not any(isinstance(o, Exception) for o in outcomes), outcomes
        await uow.commit()
    return {"meeting_id": meeting.id, "poll_id": poll.id}


async def ballots_cast(url: str, poll_id: int) -> int:
    """Ballots stored for the poll, read with a connection of its own (after the server under test is gone)."""
    db = Database(url)
    try:
        async with db.uow(readonly=True) as uow:
            count = await uow.session.scalar(select(func.count()).select_from(PollBallot)
                                             .where(PollBallot.poll_id == poll_id))
    finally:
        await db.dispose()
    return int(count or 0)
