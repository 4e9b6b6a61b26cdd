"""The live room as one document: what a tablet needs after (re)connecting, and who may listen.

``room_snapshot`` is built from the database only (the room survives a restart). Every part is
filtered for the user: confidential items they may not see are redacted, and their documents and
minutes left out. Register ``authorize`` and ``snapshot`` with the WebSocket hub for the
``meeting:`` prefix (see meetings.topics for the topics and event types).
"""

from __future__ import annotations

from typing import Any

from eoffice.org import User
from meetings import topics
from meetings.agenda import AgendaItem, agenda_view, can_see
from meetings.attendance import quorum_of
from meetings.documents import documents_view
from meetings.meetings import get_context, participants_view, sites_view, view_context
from meetings.minutes import minutes_view
from meetings.presenter import presenter_event
from meetings.speakers import queue_view
from storage.db import UnitOfWork, utcnow
from storage.errors import AppError


async def room_snapshot(uow: UnitOfWork, user: User, meeting_id: int) -> dict[str, Any]:
    ctx = await view_context(uow, user, meeting_id)
    m, access = ctx.meeting, ctx.access
    return {
        "meeting": m.public(),
        "me": {**access.public(), "full_name": user.full_name},
        "participants": await participants_view(uow, m),
        "sites": await sites_view(uow, m),
        "quorum": (await quorum_of(uow, m)).public(),
        "agenda": await agenda_view(uow, access, m),
        "documents": await documents_view(uow, access, m),
        "presenter": presenter_event(m),
        "speakers": await queue_view(uow, m.id),
        "minutes": await minutes_view(uow, access, m),
        "server_time": utcnow().isoformat(),
    }


async def authorize(uow: UnitOfWork, user: User, topic: str) -> bool:
    parsed = topics.parse(topic)
    if parsed is None:
        return False
    meeting_id, kind, item_id = parsed
    try:
        ctx = await get_context(uow, user, meeting_id)
    except AppError:
        return False
    if not ctx.access.can_view:
        return False
    if kind == "control":
        return ctx.access.controller
    if kind == "item":
        item = await uow.session.get(AgendaItem, item_id)
        return item is not None and item.meeting_id == meeting_id and await can_see(uow, ctx.access, item)
    return True


async def snapshot(uow: UnitOfWork, user: User, topic: str) -> dict[str, Any]:
    parsed = topics.parse(topic)
    if parsed is None or parsed[1] != "room":
        return {}
    return await room_snapshot(uow, user, parsed[0])


def register(hub: Any) -> None:
    """Wire the room into the WebSocket hub (idempotent)."""
    hub.add_authorizer(topics.PREFIX, authorize)
    hub.add_snapshot(topics.PREFIX, snapshot)
    hub.add_access_events("participants.changed")  # someone removed from the meeting stops following it
