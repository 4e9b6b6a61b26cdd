"""Agenda: ordered items with presenter, planned duration, access list; moving between items.

A confidential item is shown only to the people listed on it (and to those who sit in for them
as substitutes once the chair approved the substitution, or when the substitute works in the
invitee's unit), plus the chair, secretary and organiser who prepare and minute it. Everyone else
sees that an item exists at that position, with no title, presenter or documents; a poll on it
(``meetings.voting``) and a task made from its conclusions (``meetings.minutes``) are redacted alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select

from eoffice import audit
from eoffice.org import User
from meetings import prerender, rules, topics
from meetings.meetings import Ctx, get_context, touch, user_names, view_context
from meetings.rules import Access, State
from meetings.schema import AgendaItem, Document, ItemAccess, Meeting, Participant
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Denied, Invalid, NotFound

RESTRICTED_TITLE = "Nội dung mật"


# ---------------------------------------------------------------- loading


async def allowed_users(uow: UnitOfWork, item_ids: Iterable[int]) -> dict[int, set[int]]:
    ids = list(item_ids)
    out: dict[int, set[int]] = {i: set() for i in ids}
    if ids:
        for item_id, user_id in (await uow.session.execute(
                select(ItemAccess.item_id, ItemAccess.user_id).where(ItemAccess.item_id.in_(ids)))).all():
            out[item_id].add(user_id)
    return out


async def items_of(uow: UnitOfWork, meeting_id: int) -> list[AgendaItem]:
    return list((await uow.session.scalars(
        select(AgendaItem).where(AgendaItem.meeting_id == meeting_id).order_by(AgendaItem.position, AgendaItem.id)
    )).all())


async def visible_item_ids(uow: UnitOfWork, access: Access, meeting_id: int) -> set[int]:
    items = await items_of(uow, meeting_id)
    allowed = await allowed_users(uow, [i.id for i in items if i.confidential])
    return {i.id for i in items if access.can_see_item(i.confidential, allowed.get(i.id, ()))}


async def can_see(uow: UnitOfWork, access: Access, item: AgendaItem) -> bool:
    if not item.confidential:
        return access.can_view
    return access.can_see_item(True, (await allowed_users(uow, [item.id]))[item.id])


async def item_context(uow: UnitOfWork, user: User, item_id: int, *, lock: bool = False) -> tuple[Ctx, AgendaItem]:
    """The item's meeting context; refuses (403) a confidential item to someone not listed."""
    item = await uow.session.get(AgendaItem, item_id)
    if item is None:
        raise NotFound("Không tìm thấy nội dung chương trình họp.")
    ctx = await view_context(uow, user, item.meeting_id, lock=lock)
    if not await can_see(uow, ctx.access, item):
        raise Denied("Nội dung này thuộc diện mật, bạn không có trong danh sách được xem.",
                     audit=("meeting.item.denied", "meeting", item.meeting_id, {"item_id": item.id}))
    return ctx, item


async def item_viewers(uow: UnitOfWork, meeting: Meeting, item_id: int | None) -> set[int] | None:
    """The user ids who may see a confidential item (the rule of ``Access.can_see_item``: the people
    listed, their approved substitutes, the chair, secretary and organiser); None when the item is not
    confidential (everyone who may view the meeting sees it) or there is no item."""
    if item_id is None:
        return None
    item = await uow.session.get(AgendaItem, item_id)
    if item is None or not item.confidential:
        return None
    allowed = (await allowed_users(uow, [item.id]))[item.id]
    subs: set[int | None] = set()
    if allowed:
        subs = set((await uow.session.scalars(select(Participant.substitute_id).where(
            Participant.meeting_id == meeting.id, Participant.user_id.in_(allowed),
            Participant.substitute_id.is_not(None), Participant.substitute_approved.is_(True)))).all())
    officers = {uid for uid in (meeting.created_by, meeting.chair_id, meeting.secretary_id) if uid is not None}
    return allowed | {s for s in subs if s is not None} | officers


def redacted(item: AgendaItem) -> dict[str, Any]:
    return {"id": item.id, "position": item.position, "title": RESTRICTED_TITLE, "restricted": True,
            "confidential": True, "status": item.status, "planned_minutes": item.planned_minutes,
            "presenter_id": None, "presenter_name": "", "description": "", "allowed_user_ids": []}


async def agenda_view(uow: UnitOfWork, access: Access, meeting: Meeting) -> list[dict[str, Any]]:
    items = await items_of(uow, meeting.id)
    allowed = await allowed_users(uow, [i.id for i in items if i.confidential])
    names = await user_names(uow, {i.presenter_id for i in items})
    out = []
    for i in items:
        if not access.can_see_item(i.confidential, allowed.get(i.id, ())):
            out.append(redacted(i))
            continue
        presenter = names.get(i.presenter_id) if i.presenter_id else None
        out.append({
            "id": i.id, "position": i.position, "title": i.title, "description": i.description,
            "restricted": False, "confidential": i.confidential, "status": i.status,
            "planned_minutes": i.planned_minutes, "presenter_id": i.presenter_id,
            "presenter_name": presenter.full_name if presenter else i.presenter_name,
            "started_at": i.started_at.isoformat() if i.started_at else None,
            "ended_at": i.ended_at.isoformat() if i.ended_at else None,
            "allowed_user_ids": sorted(allowed.get(i.id, ())) if access.manager else [],
        })
    return out


# ---------------------------------------------------------------- editing


def _clean(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise Invalid("Cần nhập tên nội dung.", field="title")
    return title[:500]


def _minutes(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        raise Invalid("Thời lượng dự kiến phải là số phút.", field="planned_minutes") from None
    if not 0 < minutes <= 24 * 60:
        raise Invalid("Thời lượng dự kiến từ 1 đến 1440 phút.", field="planned_minutes")
    return minutes


async def _check_users(uow: UnitOfWork, ids: Iterable[int]) -> set[int]:
    wanted = {int(i) for i in ids}
    found = set((await uow.session.scalars(select(User.id).where(User.id.in_(wanted)))).all()) if wanted else set()
    if wanted - found:
        raise NotFound("Không tìm thấy người dùng trong danh sách được xem.", field="allowed_user_ids")
    return wanted


async def add_item(
    uow: UnitOfWork,
    actor: User,
    meeting_id: int,
    *,
    title: str,
    description: str = "",
    presenter_id: int | None = None,
    presenter_name: str = "",
    planned_minutes: int | None = None,
    confidential: bool = False,
    allowed_user_ids: Iterable[int] = (),
) -> AgendaItem:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    rules.require_editable(ctx.meeting.state)
    if presenter_id is not None and await uow.session.get(User, presenter_id) is None:
        raise NotFound("Không tìm thấy người trình bày.", field="presenter_id")
    allowed = await _check_users(uow, allowed_user_ids)
    last = await uow.session.scalar(select(func.max(AgendaItem.position)).where(AgendaItem.meeting_id == meeting_id))
    item = AgendaItem(meeting_id=meeting_id, position=(last or 0) + 1, title=_clean(title),
                      description=description.strip(), presenter_id=presenter_id,
                      presenter_name=presenter_name.strip()[:200], planned_minutes=_minutes(planned_minutes),
                      confidential=bool(confidential))
    uow.session.add(item)
    await uow.session.flush()
    for uid in sorted(allowed):
        uow.session.add(ItemAccess(item_id=item.id, user_id=uid))
    touch(ctx.meeting)
    await audit.record(uow, actor, "meeting.item.add", "meeting", meeting_id, item_id=item.id,
                       confidential=item.confidential, allowed=sorted(allowed),
                       title=None if item.confidential else item.title)
    if ctx.meeting.state != State.DRAFT:
        uow.emit(topics.room(meeting_id), "agenda.changed", item_ids=[item.id])
    return item


ITEM_FIELDS = {"title", "description", "presenter_id", "presenter_name", "planned_minutes", "confidential",
               "allowed_user_ids"}


async def update_item(uow: UnitOfWork, actor: User, item_id: int, **changes: Any) -> AgendaItem:
    item = await uow.session.get(AgendaItem, item_id)
    if item is None:
        raise NotFound("Không tìm thấy nội dung chương trình họp.")
    ctx = await get_context(uow, actor, item.meeting_id, lock=True)
    ctx.access.require_manage()
    rules.require_editable(ctx.meeting.state)
    unknown = set(changes) - ITEM_FIELDS
    if unknown:
        raise Invalid(f"Không sửa được trường: {', '.join(sorted(unknown))}.")
    if "title" in changes:
        item.title = _clean(changes["title"])
    if "description" in changes:
        item.description = str(changes["description"] or "").strip()
    if "presenter_id" in changes:
        pid = changes["presenter_id"]
        if pid is not None and await uow.session.get(User, int(pid)) is None:
            raise NotFound("Không tìm thấy người trình bày.", field="presenter_id")
        item.presenter_id = int(pid) if pid is not None else None
    if "presenter_name" in changes:
        item.presenter_name = str(changes["presenter_name"] or "").strip()[:200]
    if "planned_minutes" in changes:
        item.planned_minutes = _minutes(changes["planned_minutes"])
    if "confidential" in changes:
        item.confidential = bool(changes["confidential"])
    if "allowed_user_ids" in changes:
        allowed = await _check_users(uow, changes["allowed_user_ids"] or [])
        await uow.session.execute(delete(ItemAccess).where(ItemAccess.item_id == item.id))
        for uid in sorted(allowed):
            uow.session.add(ItemAccess(item_id=item.id, user_id=uid))
    touch(ctx.meeting)
    await audit.record(uow, actor, "meeting.item.update", "meeting", item.meeting_id, item_id=item.id,
                       fields=sorted(changes), confidential=item.confidential,
                       allowed=sorted(int(i) for i in changes.get("allowed_user_ids") or []))
    if ctx.meeting.state != State.DRAFT:
        uow.emit(topics.room(item.meeting_id), "agenda.changed", item_ids=[item.id])
    return item


async def reorder_items(uow: UnitOfWork, actor: User, meeting_id: int, item_ids: list[int]) -> list[AgendaItem]:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_manage()
    rules.require_editable(ctx.meeting.state)
    items = await items_of(uow, meeting_id)
    by_id = {i.id: i for i in items}
    if set(item_ids) - set(by_id):
        raise Invalid("Danh sách nội dung không khớp với chương trình họp.", field="item_ids")
    order = rules.reorder([i.id for i in items], [int(i) for i in item_ids])
    for pos, iid in enumerate(order, start=1):
        by_id[iid].position = pos
    touch(ctx.meeting)
    await audit.record(uow, actor, "meeting.item.reorder", "meeting", meeting_id, order=order)
    if ctx.meeting.state != State.DRAFT:
        uow.emit(topics.room(meeting_id), "agenda.changed", item_ids=order)
    return [by_id[i] for i in order]


async def remove_item(uow: UnitOfWork, actor: User, item_id: int) -> None:
    """Only an item that was never discussed and has no documents (documents are never destroyed)."""
    item = await uow.session.get(AgendaItem, item_id)
    if item is None:
        raise NotFound("Không tìm thấy nội dung chương trình họp.")
    ctx = await get_context(uow, actor, item.meeting_id, lock=True)
    ctx.access.require_manage()
    rules.require_editable(ctx.meeting.state)
    if item.started_at is not None or ctx.meeting.current_item_id == item.id:
        raise Conflict("Nội dung đã được thảo luận, không xóa được.")
    if await uow.session.scalar(select(Document.id).where(Document.item_id == item.id).limit(1)):
        raise Conflict("Nội dung đã có tài liệu, không xóa được (tài liệu không bao giờ bị hủy).")
    await uow.session.delete(item)
    await audit.record(uow, actor, "meeting.item.remove", "meeting", item.meeting_id, item_id=item.id)
    if ctx.meeting.state != State.DRAFT:
        uow.emit(topics.room(item.meeting_id), "agenda.changed", item_ids=[item.id])


# ---------------------------------------------------------------- moving through the agenda


async def set_current_item(uow: UnitOfWork, actor: User, meeting_id: int, item_id: int | None) -> Meeting:
    """The chair (or secretary) moves the room to an item; everyone's screen follows."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_control()
    m = ctx.meeting
    rules.require_live(m.state)
    if item_id == m.current_item_id:
        return m
    now = utcnow()
    target = None
    if item_id is not None:
        target = await uow.session.get(AgendaItem, item_id)
        if target is None or target.meeting_id != m.id:
            raise NotFound("Không tìm thấy nội dung chương trình họp.")
    previous = m.current_item_id
    if previous is not None:
        prev = await uow.session.get(AgendaItem, previous)
        if prev is not None:
            prev.status = "done"
            prev.ended_at = now
    if target is not None:
        target.status = "current"
        target.started_at = target.started_at or now
        target.ended_at = None
    m.current_item_id = item_id
    m.presentation = None  # the new item's presenter starts afresh
    m.presenter_id = target.presenter_id if target is not None else None
    touch(m)
    await audit.record(uow, actor, "meeting.item.current", "meeting", m.id, item_id=item_id, previous_id=previous)
    uow.emit(topics.room(m.id), "agenda.current", item_id=item_id, previous_id=previous,
             position=target.position if target else None, presenter_id=m.presenter_id)
    if target is not None:  # every tablet is about to ask for its documents' first pages (#22)
        prerender.after_commit(uow, await prerender.item_versions(uow, target.id))
    return m


async def step(uow: UnitOfWork, actor: User, meeting_id: int, direction: int) -> Meeting:
    """Next (+1) or previous (-1) item."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_control()
    rules.require_live(ctx.meeting.state)
    outline = rules.Outline([i.id for i in await items_of(uow, meeting_id)])
    current = ctx.meeting.current_item_id
    target = outline.after(current) if direction > 0 else outline.before(current)
    if target is None:
        raise Conflict("Đã ở nội dung cuối cùng." if direction > 0 else "Đã ở nội dung đầu tiên.")
    return await set_current_item(uow, actor, meeting_id, target)
