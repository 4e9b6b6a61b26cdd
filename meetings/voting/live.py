"""What the background runner and the progress ticker read (``meetings.polls_live``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from meetings.schema import Poll
from meetings.voting.views import live_tally, progress_data, results_visible, viewers_of
from meetings.voting_rules import State
from storage.db import UnitOfWork


async def counts(uow: UnitOfWork, poll_id: int) -> dict[str, Any] | None:
    """Progress of one poll (for the coalescing ticker): reads the counters under the poll's row lock."""
    poll = await uow.session.scalar(select(Poll).where(Poll.id == poll_id).with_for_update()
                                    .execution_options(populate_existing=True))  # the counters as of now
    if poll is None:
        return None
    data = progress_data(poll)
    if poll.state == State.OPEN and results_visible(poll, False) and await viewers_of(uow, poll) is None:
        data["tally"] = await live_tally(uow, poll)  # never on the room topic for a confidential item
    return {"meeting_id": poll.meeting_id, **data}


async def open_poll_ids(uow: UnitOfWork) -> list[int]:
    return list((await uow.session.scalars(select(Poll.id).where(Poll.state == State.OPEN))).all())


async def next_deadline(uow: UnitOfWork) -> dt.datetime | None:
    return await uow.session.scalar(select(func.min(Poll.closes_at)).where(Poll.state == State.OPEN))

