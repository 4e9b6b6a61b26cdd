"""The live room as one document: what a tablet needs after (re)connecting, and who may listen.

``room_snapshot`` is built from the database only (the room survives a restart). Every part is
filtered for the user: confidential items they may not see are redacted, and their documents and
minutes left out. Register ``authorize`` and ``snapshot`` with the WebSocket hub for the
``meeting:`` prefix (see meetings.topics for the topics and event types).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from eoffice.live_registry import TopicRegistry
from eoffice.org import User
from meetings import topics
from meetings.agenda import agenda_view, can_see, visible_item_ids
from meetings.annotations import version_topic
from meetings.attendance import quorum_of
from meetings.documents import documents_view
from meetings.meetings import get_context, participants_view, sites_view, view_context
from meetings.minutes import minutes_view
from meetings.presenter import presenter_event
from meetings.schema import AgendaItem, Document, DocumentVersion, Poll
from meetings.speakers import queue_view
from meetings.voting import RESTRICTED_TITLE
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


# events after which who may follow a meeting's topics may have shrunk: someone removed or a substitute's
# approval withdrawn, an item made confidential or its list shortened, the chair or secretary replaced,
# a document moved to a confidential item
ACCESS_EVENTS = ("participants.changed", "agenda.changed", "meeting.updated", "documents.changed")


async def dependent_topics(uow: UnitOfWork, topic: str) -> set[str]:
    """Topics outside ``meeting:{id}...`` whose access follows the meeting's: its documents' annotations."""
    parsed = topics.parse(topic)
    if parsed is None:
        return set()
    rows = await uow.session.scalars(select(DocumentVersion.id)
                                     .join(Document, Document.id == DocumentVersion.document_id)
                                     .where(Document.meeting_id == parsed[0]))
    return {version_topic(v) for v in rows.all()}


async def replay_filter(uow: UnitOfWork, user: User, topic: str,
                        messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the room's log replays to ``user``: a poll whose item the reader may not see *now* (it became
    confidential after the event) keeps only its id and state, and its progress no tally."""
    parsed = topics.parse(topic)
    if parsed is None or parsed[1] != "room" or not any(m["type"].startswith("poll.") for m in messages):
        return messages
    meeting_id = parsed[0]
    try:
        ctx = await view_context(uow, user, meeting_id)
    except AppError:
        return []
    visible = await visible_item_ids(uow, ctx.access, meeting_id)
    items = dict((await uow.session.execute(select(Poll.id, Poll.item_id).where(Poll.meeting_id == meeting_id)))
                 .tuples().all())
    out = []
    for m in messages:
        data = m.get("data") or {}
        poll_id = data.get("poll_id")
        item_id = items.get(poll_id) if m["type"].startswith("poll.") and isinstance(poll_id, int) else None
        if item_id is not None and item_id not in visible:
            if m["type"] == "poll.changed":
                data = {"poll_id": data.get("poll_id"), "state": data.get("state"),
                        "poll": {"id": data.get("poll_id"), "meeting_id": meeting_id, "item_id": item_id,
                                 "state": data.get("state"), "title": RESTRICTED_TITLE, "restricted": True}}
            else:
                data = {k: v for k, v in data.items() if k != "tally"}
            m = {**m, "data": data}
        out.append(m)
    return out


def register(hub: TopicRegistry) -> None:
    """Wire the room into the WebSocket hub (idempotent)."""
    hub.add_authorizer(topics.PREFIX, authorize)
    hub.add_snapshot(topics.PREFIX, snapshot)
    hub.add_access_events(*ACCESS_EVENTS)  # e.g. someone removed from the meeting stops following it
    hub.add_access_dependents(topics.PREFIX, dependent_topics)
    hub.add_replay_filter(topics.PREFIX, replay_filter)
