"""The control desk of a running meeting (issue #17): who may open it, and what it reads from the database.

The desk is for whoever runs or prepared the meeting (chair, secretary, organiser) and for an administrator.
The database part is the seats (to show each participant's tablet), the sites, and the progress of the open
polls: how many cast out of how many entitled, never who voted how (the counters the room's ``poll.progress``
carries, ``voting.views.progress_data``). The live part (sockets, media links, services) is the web layer's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from eoffice.org import User
from meetings.meetings import Ctx, get_context, participants_view, sites_view
from meetings.schema import Poll
from meetings.voting.views import progress_data, viewers_of
from meetings.voting_rules import State as PollState
from storage.db import UnitOfWork
from storage.errors import Forbidden

SECRET_TITLE = "Nội dung mật"


async def require_desk(uow: UnitOfWork, user: User, meeting_id: int) -> Ctx:
    """Chair, secretary, organiser or an administrator; anyone else gets ``Forbidden``."""
    ctx = await get_context(uow, user, meeting_id)
    if not (ctx.access.manager or ctx.access.admin):
        raise Forbidden("Chỉ chủ trì, thư ký, người tổ chức cuộc họp hoặc quản trị hệ thống được xem bàn điều khiển.")
    return ctx


async def open_polls(uow: UnitOfWork, ctx: Ctx) -> list[dict[str, Any]]:
    """The meeting's open polls: cast / entitled (and by weight), without choices or voters."""
    polls = (await uow.session.scalars(
        select(Poll).where(Poll.meeting_id == ctx.meeting.id, Poll.state == PollState.OPEN).order_by(Poll.id)
    )).all()
    out = []
    for poll in polls:
        hidden = not ctx.access.sees_everything and await viewers_of(uow, poll) is not None
        out.append({**progress_data(poll), "title": SECRET_TITLE if hidden else poll.title})
    return out


async def desk_data(uow: UnitOfWork, user: User, meeting_id: int) -> dict[str, Any]:
    """What the desk needs from the database (access checked)."""
    ctx = await require_desk(uow, user, meeting_id)
    m = ctx.meeting
    return {
        "meeting": {"id": m.id, "title": m.title, "state": str(m.state)},
        "participants": await participants_view(uow, m),
        "sites": await sites_view(uow, m),
        "polls": await open_polls(uow, ctx),
    }
