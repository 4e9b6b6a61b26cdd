"""Follow the presenter: the presenter's document, page and zoom, kept on the meeting row and broadcast.

Page turns and zoom changes are not written to the audit log: they are a view position that
changes many times a minute, not a decision; the log keeps who took and left the presenter role.
The event carries ids and numbers only, so a confidential document's content never travels on
the room topic; a follower without access gets a refusal when fetching the page.
"""

from __future__ import annotations

from typing import Any

from eoffice import audit
from eoffice.org import User
from meetings import rules, topics
from meetings.documents import version_context
from meetings.meetings import get_context
from meetings.schema import AgendaItem, Meeting
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

ZOOM_RANGE = (0.25, 8.0)


def presenter_event(m: Meeting) -> dict[str, Any]:
    p = m.presentation or {}
    return {"presenter_id": m.presenter_id, "version_id": p.get("version_id"), "document_id": p.get("document_id"),
            "page": p.get("page"), "zoom": p.get("zoom"), "x": p.get("x"), "y": p.get("y"), "at": p.get("at")}


async def take(uow: UnitOfWork, actor: User, meeting_id: int) -> Meeting:
    """Become the presenter: the chair, the secretary, or the current item's presenter."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    m = ctx.meeting
    rules.require_live(m.state)
    item = await uow.session.get(AgendaItem, m.current_item_id) if m.current_item_id else None
    if not (ctx.access.controller or (item is not None and item.presenter_id == actor.id)):
        raise Forbidden("Chỉ chủ trì, thư ký hoặc người trình bày nội dung hiện tại được trình chiếu.")
    m.presenter_id = actor.id
    m.presentation = None
    await audit.record(uow, actor, "meeting.presenter.take", "meeting", m.id)
    uow.emit(topics.room(m.id), "presenter", **presenter_event(m))
    return m


async def move(uow: UnitOfWork, actor: User, meeting_id: int, *, version_id: int, page: int, zoom: float = 1.0,
               x: float = 0.0, y: float = 0.0) -> Meeting:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    m = ctx.meeting
    rules.require_live(m.state)
    if m.presenter_id != actor.id:
        raise Conflict("Bạn không phải người đang trình chiếu.")
    _, doc, version = await version_context(uow, actor, int(version_id))
    if doc.meeting_id != m.id:
        raise NotFound("Tài liệu không thuộc cuộc họp này.")
    try:
        page, zoom, x, y = int(page), float(zoom), float(x), float(y)
    except (TypeError, ValueError):
        raise Invalid("Vị trí trình chiếu không hợp lệ.") from None
    if not 1 <= page <= version.page_count:
        raise Invalid(f"Tài liệu có {version.page_count} trang.", field="page")
    if not ZOOM_RANGE[0] <= zoom <= ZOOM_RANGE[1]:
        raise Invalid("Mức phóng to không hợp lệ.", field="zoom")
    m.presentation = {"version_id": version.id, "document_id": doc.id, "page": page, "zoom": round(zoom, 3),
                      "x": round(min(max(x, 0.0), 1.0), 4), "y": round(min(max(y, 0.0), 1.0), 4),
                      "at": utcnow().isoformat()}
    uow.emit(topics.room(m.id), "presenter", **presenter_event(m))
    return m


async def stop(uow: UnitOfWork, actor: User, meeting_id: int) -> Meeting:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    m = ctx.meeting
    if m.presenter_id is None:
        return m
    if not (ctx.access.controller or m.presenter_id == actor.id):
        raise Forbidden("Chỉ người đang trình chiếu, chủ trì hoặc thư ký được dừng trình chiếu.")
    m.presenter_id = None
    m.presentation = None
    await audit.record(uow, actor, "meeting.presenter.stop", "meeting", m.id)
    uow.emit(topics.room(m.id), "presenter", **presenter_event(m))
    return m

