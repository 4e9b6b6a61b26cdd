"""The leaders' weekly work calendar of an agency (lịch công tác tuần, issue #21).

The office (văn thư, role ``clerk``) of the agency drafts the week: entries with a time, the leader(s), the
content, the place, who attends or prepares. The meetings of the meeting room that a leader of the agency
chairs or is invited to appear by themselves. A leader of the agency approves; the office (or a leader)
publishes it to the agency, and if asked to everyone on a page without login. An entry changed after
publishing is marked ``Điều chỉnh`` with what changed, so readers who printed the week see the difference.

State: draft -> approved -> published. A change to an approved week before publishing sends it back to draft
(the leader approved another text); after publishing it stays published and the entry is marked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite

from eoffice import audit
from eoffice.agency_time import AGENCY_TZ
from eoffice.org import Role, Unit, User
from meetings.calendar import (
    WEEKDAYS,
    calendar_item,
    confidential_ids,
    date_label,
    local_bounds,
    overlaps,
    week_label,
)
from meetings.calendar_schema import WorkEntry, WorkWeek
from meetings.rules import State
from meetings.schema import Meeting, Participant
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

DRAFT, APPROVED, PUBLISHED = "draft", "approved", "published"
STATE_LABELS = {DRAFT: "Dự thảo", APPROVED: "Đã duyệt", PUBLISHED: "Đã ban hành"}
FIELD_LABELS = {"starts_at": "thời gian", "ends_at": "giờ kết thúc", "leader_ids": "lãnh đạo", "content": "nội dung",
                "place": "địa điểm", "participants": "thành phần", "preparing_unit": "đơn vị chuẩn bị"}
EDITABLE = set(FIELD_LABELS)

# ---------------------------------------------------------------- the agency and its people


async def agency_of_user(uow: UnitOfWork, user: User) -> Unit:
    unit_id, seen = user.unit_id, set()
    while unit_id is not None and unit_id not in seen:
        seen.add(unit_id)
        unit = await uow.session.get(Unit, unit_id)
        if unit is None:
            break
        if unit.is_agency:
            return unit
        unit_id = unit.parent_id
    raise Forbidden("Tài khoản của bạn không thuộc cơ quan nào nên không có lịch công tác.")


async def agency_units(uow: UnitOfWork, agency_id: int) -> set[int]:
    """The agency and the units under it that are not agencies themselves (its offices)."""
    units = (await uow.session.execute(select(Unit.id, Unit.parent_id, Unit.is_agency))).tuples().all()
    children: dict[int | None, list[tuple[int, bool]]] = {}
    for uid, parent, is_agency in units:
        children.setdefault(parent, []).append((uid, bool(is_agency)))
    out, todo = {agency_id}, [agency_id]
    while todo:
        for uid, is_agency in children.get(todo.pop(), []):
            if not is_agency and uid not in out:
                out.add(uid)
                todo.append(uid)
    return out


async def agency_leaders(uow: UnitOfWork, agency_id: int) -> list[User]:
    units = await agency_units(uow, agency_id)
    rows = (await uow.session.scalars(select(User).where(User.unit_id.in_(units), User.active.is_(True))
                                      .order_by(User.rank, User.full_name))).all()
    return [u for u in rows if u.has_role(Role.LEADER)]


def _office(user: User) -> bool:
    return user.has_role(Role.CLERK, Role.ADMIN)


async def _member(uow: UnitOfWork, user: User, agency_id: int) -> bool:
    return user.unit_id is not None and user.unit_id in await agency_units(uow, agency_id)


async def require_drafter(uow: UnitOfWork, user: User, agency_id: int) -> None:
    if not (user.is_admin or (user.has_role(Role.CLERK) and await _member(uow, user, agency_id))):
        raise Forbidden("Chỉ văn phòng (văn thư) của cơ quan được soạn lịch công tác tuần.")


async def require_approver(uow: UnitOfWork, user: User, agency_id: int) -> None:
    if not (user.has_role(Role.LEADER) and await _member(uow, user, agency_id)):
        raise Forbidden("Chỉ lãnh đạo cơ quan được duyệt lịch công tác tuần.")


# ---------------------------------------------------------------- weeks


async def week_for(uow: UnitOfWork, agency_id: int, monday: dt.date) -> WorkWeek | None:
    return await uow.session.scalar(select(WorkWeek).where(WorkWeek.agency_id == agency_id,
                                                           WorkWeek.week_start == monday))


async def _week_to_draft(uow: UnitOfWork, actor: User, agency_id: int, monday: dt.date) -> WorkWeek:
    """The agency's week, created as a draft when it has none: two clerks adding its first lines at once on
    PostgreSQL both get the one row (insert or nothing on the unique (agency, week), then read)."""
    await require_drafter(uow, actor, agency_id)
    week = await week_for(uow, agency_id, monday)
    if week is None:
        now = utcnow()
        ins = (postgresql.insert if uow.dialect == "postgresql" else sqlite.insert)(WorkWeek)
        created = (await uow.session.execute(ins.values(
            agency_id=agency_id, week_start=monday, state=DRAFT, public=False, revision=0, created_by=actor.id,
            created_at=now, updated_at=now).on_conflict_do_nothing().returning(WorkWeek.id))).first()
        week = await week_for(uow, agency_id, monday)
        assert week is not None  # inserted now, or by the other transaction
        if created is not None:
            await audit.record(uow, actor, "workcal.week.create", "workcal", week.id, agency_id=agency_id,
                               week=week_label(monday))
    return week


async def _load_entry(uow: UnitOfWork, entry_id: int) -> tuple[WorkEntry, WorkWeek]:
    entry = await uow.session.get(WorkEntry, entry_id)
    week = await uow.session.get(WorkWeek, entry.week_id, with_for_update=True) if entry else None
    if entry is None or week is None:
        raise NotFound("Không tìm thấy mục lịch công tác.")
    return entry, week


async def _load_week(uow: UnitOfWork, week_id: int) -> WorkWeek:
    week = await uow.session.get(WorkWeek, week_id, with_for_update=True)
    if week is None:
        raise NotFound("Không tìm thấy lịch công tác tuần.")
    return week


def _touch(week: WorkWeek) -> None:
    week.updated_at = utcnow()
    if week.state == APPROVED:  # the leader approved another text
        week.state, week.approved_by, week.approved_at = DRAFT, None, None


async def _clean(uow: UnitOfWork, agency_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "content" in out:
        out["content"] = str(out["content"] or "").strip()
        if not out["content"]:
            raise Invalid("Cần nhập nội dung công tác.", field="content")
    for key, size in (("place", 300), ("preparing_unit", 300), ("participants", 5000)):
        if key in out:
            out[key] = str(out[key] or "").strip()[:size]
    for key in ("starts_at", "ends_at"):
        value = out.get(key)
        if value is not None:
            if value.tzinfo is None:
                raise Invalid("Thời gian phải kèm múi giờ.", field=key)
            out[key] = value.astimezone(dt.UTC)
    if "leader_ids" in out:
        ids = sorted(set(out["leader_ids"] or []))
        if not ids:
            raise Invalid("Cần chọn ít nhất một lãnh đạo.", field="leader_ids")
        leaders = {u.id for u in await agency_leaders(uow, agency_id)}
        if not set(ids) <= leaders:
            raise Invalid("Người được chọn không phải lãnh đạo của cơ quan.", field="leader_ids")
        out["leader_ids"] = ids
    return out


def _check_week(monday: dt.date, starts_at: dt.datetime, ends_at: dt.datetime | None) -> None:
    start, end = local_bounds(monday, monday + dt.timedelta(days=7))
    if not start <= starts_at < end:
        raise Invalid("Thời gian phải nằm trong tuần của lịch.", field="starts_at")
    if ends_at is not None and ends_at <= starts_at:
        raise Invalid("Giờ kết thúc phải sau giờ bắt đầu.", field="ends_at")


async def add_entry(uow: UnitOfWork, actor: User, *, starts_at: dt.datetime, leader_ids: list[int], content: str,
                    ends_at: dt.datetime | None = None, place: str = "", participants: str = "",
                    preparing_unit: str = "") -> WorkEntry:
    """Add a line to the week of ``starts_at`` (the week is created as a draft when it has none)."""
    agency = await agency_of_user(uow, actor)
    await require_drafter(uow, actor, agency.id)
    f = await _clean(uow, agency.id, {"starts_at": starts_at, "ends_at": ends_at, "leader_ids": leader_ids,
                                      "content": content, "place": place, "participants": participants,
                                      "preparing_unit": preparing_unit})
    local_day = f["starts_at"].astimezone(AGENCY_TZ).date()
    monday = local_day - dt.timedelta(days=local_day.weekday())
    week = await _week_to_draft(uow, actor, agency.id, monday)
    week = await _load_week(uow, week.id)
    _check_week(monday, f["starts_at"], f["ends_at"])
    entry = WorkEntry(week_id=week.id, created_by=actor.id, cancelled=False, adjusted=False, adjustment="", **f)
    published = week.state == PUBLISHED
    if published:
        entry.adjusted = True
        entry.adjustment = "Điều chỉnh: bổ sung sau khi ban hành."
        week.revision += 1
    _touch(week)
    uow.session.add(entry)
    await uow.session.flush()
    await audit.record(uow, actor, "workcal.entry.add", "workcal", week.id, entry_id=entry.id,
                       starts_at=entry.starts_at.isoformat(), leader_ids=entry.leader_ids, after_publish=published)
    return entry


def _show(key: str, value: Any, names: dict[int, str]) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, dt.datetime):
        return value.astimezone(AGENCY_TZ).strftime("%H:%M %d/%m/%Y")
    if key == "leader_ids":
        return ", ".join(names.get(i, str(i)) for i in value)
    return str(value)


async def update_entry(uow: UnitOfWork, actor: User, entry_id: int, **changes: Any) -> WorkEntry:
    entry, week = await _load_entry(uow, entry_id)
    await require_drafter(uow, actor, week.agency_id)
    unknown = set(changes) - EDITABLE
    if unknown:
        raise Invalid(f"Không sửa được trường: {', '.join(sorted(unknown))}.")
    if entry.cancelled:
        raise Conflict("Mục lịch đã hủy, không sửa được.")
    f = await _clean(uow, week.agency_id, changes)
    if "starts_at" in f and f["starts_at"] is None:
        raise Invalid("Thời gian không hợp lệ.", field="starts_at")
    _check_week(week.week_start, f.get("starts_at", entry.starts_at), f.get("ends_at", entry.ends_at))
    changed = [k for k in sorted(f) if getattr(entry, k) != f[k]]
    if not changed:
        return entry
    names = {u.id: u.full_name for u in await agency_leaders(uow, week.agency_id)}
    what = "; ".join(f"{FIELD_LABELS[k]}: {_show(k, getattr(entry, k), names)} → {_show(k, f[k], names)}"
                     for k in changed)
    for k in changed:
        setattr(entry, k, f[k])
    entry.updated_at = utcnow()
    if week.state == PUBLISHED:
        entry.adjusted = True
        entry.adjustment = (entry.adjustment + " " if entry.adjustment else "Điều chỉnh: ") + what + "."
        week.revision += 1
    _touch(week)
    await audit.record(uow, actor, "workcal.entry.update", "workcal", week.id, entry_id=entry.id, changes=what,
                       after_publish=week.state == PUBLISHED)
    return entry


async def remove_entry(uow: UnitOfWork, actor: User, entry_id: int) -> WorkEntry | None:
    """Before publishing an entry is deleted; after, it stays, cancelled and marked (readers must see it went)."""
    entry, week = await _load_entry(uow, entry_id)
    await require_drafter(uow, actor, week.agency_id)
    published = week.state == PUBLISHED
    if published:
        if entry.cancelled:
            raise Conflict("Mục lịch đã hủy.")
        entry.cancelled = entry.adjusted = True
        entry.adjustment = (entry.adjustment + " " if entry.adjustment else "Điều chỉnh: ") + "hủy."
        entry.updated_at = utcnow()
        week.revision += 1
    else:
        await uow.session.delete(entry)
    _touch(week)
    await audit.record(uow, actor, "workcal.entry.remove", "workcal", week.id, entry_id=entry_id,
                       after_publish=published)
    return entry if published else None


async def approve_week(uow: UnitOfWork, actor: User, week_id: int) -> WorkWeek:
    week = await _load_week(uow, week_id)
    await require_approver(uow, actor, week.agency_id)
    if week.state != DRAFT:
        raise Conflict("Chỉ duyệt được lịch ở trạng thái dự thảo.")
    week.state, week.approved_by, week.approved_at = APPROVED, actor.id, utcnow()
    week.updated_at = utcnow()
    await audit.record(uow, actor, "workcal.week.approve", "workcal", week.id, week=week_label(week.week_start))
    return week


async def publish_week(uow: UnitOfWork, actor: User, week_id: int, *, public: bool | None = None) -> WorkWeek:
    """The office or a leader publishes an approved week to the agency (``public``: also without login)."""
    week = await _load_week(uow, week_id)
    if not user_may_publish(actor) or not (actor.is_admin or await _member(uow, actor, week.agency_id)):
        raise Forbidden("Chỉ văn phòng hoặc lãnh đạo cơ quan được ban hành lịch công tác tuần.")
    if week.state != APPROVED:
        raise Conflict("Lịch phải được lãnh đạo duyệt trước khi ban hành.")
    week.state, week.published_by, week.published_at = PUBLISHED, actor.id, utcnow()
    if public is not None:
        week.public = bool(public)
    week.updated_at = utcnow()
    await audit.record(uow, actor, "workcal.week.publish", "workcal", week.id, week=week_label(week.week_start),
                       public=week.public)
    return week


def user_may_publish(user: User) -> bool:
    return user.has_role(Role.CLERK, Role.LEADER, Role.ADMIN)


async def set_public(uow: UnitOfWork, actor: User, week_id: int, public: bool) -> WorkWeek:
    week = await _load_week(uow, week_id)
    if not user_may_publish(actor) or not (actor.is_admin or await _member(uow, actor, week.agency_id)):
        raise Forbidden("Chỉ văn phòng hoặc lãnh đạo cơ quan được đổi chế độ công khai.")
    week.public = bool(public)
    week.updated_at = utcnow()
    await audit.record(uow, actor, "workcal.week.public", "workcal", week.id, public=week.public)
    return week


# ---------------------------------------------------------------- reading


def _entry_view(e: WorkEntry, names: dict[int, str]) -> dict[str, Any]:
    local = e.starts_at.astimezone(AGENCY_TZ)
    return {**e.public(), "kind": "entry", "date": local.date().isoformat(), "time": local.strftime("%H:%M"),
            "end_time": e.ends_at.astimezone(AGENCY_TZ).strftime("%H:%M") if e.ends_at else "",
            "leaders": [names.get(i, "") for i in e.leader_ids]}


async def leader_meetings(uow: UnitOfWork, leader_ids: list[int], start: dt.datetime,
                          end: dt.datetime) -> list[tuple[Meeting, set[int]]]:
    """Meetings (not drafts) overlapping [start, end) that one of these leaders chairs or is invited to."""
    if not leader_ids:
        return []
    seated = select(Participant.meeting_id).where(or_(Participant.user_id.in_(leader_ids),
                                                      Participant.substitute_id.in_(leader_ids)))
    rows = (await uow.session.scalars(select(Meeting).where(
        Meeting.state != State.DRAFT, Meeting.starts_at < end, Meeting.starts_at > start - dt.timedelta(days=7),
        or_(Meeting.chair_id.in_(leader_ids), Meeting.id.in_(seated))).order_by(Meeting.starts_at))).all()
    rows = [m for m in rows if overlaps(m.starts_at, m.ends_at, start, end)]
    if not rows:
        return []
    who: dict[int, set[int]] = {m.id: {m.chair_id} if m.chair_id in leader_ids and m.chair_id else set()
                                for m in rows}
    for mid, uid, sub in (await uow.session.execute(select(
            Participant.meeting_id, Participant.user_id, Participant.substitute_id).where(
            Participant.meeting_id.in_(list(who)),
            or_(Participant.user_id.in_(leader_ids), Participant.substitute_id.in_(leader_ids))))).tuples():
        who[mid].update(x for x in (uid, sub) if x in leader_ids)
    return [(m, who[m.id]) for m in rows]


async def week_view(uow: UnitOfWork, agency_id: int, monday: dt.date, *, drafts: bool,
                    public_only: bool = False, leader_id: int | None = None) -> dict[str, Any]:
    """The week as one day-by-day list of entries and meetings. ``drafts``: show an unpublished week's entries
    (the office and the leaders); otherwise only a published week's. ``public_only``: the page without login."""
    week = await week_for(uow, agency_id, monday)
    leaders = await agency_leaders(uow, agency_id)
    names = {u.id: u.full_name for u in leaders}
    visible = week is not None and (drafts or week.state == PUBLISHED) and (not public_only or week.public)
    entries: list[dict[str, Any]] = []
    if week is not None and visible:
        rows = (await uow.session.scalars(select(WorkEntry).where(WorkEntry.week_id == week.id)
                                          .order_by(WorkEntry.starts_at, WorkEntry.id))).all()
        entries = [_entry_view(e, names) for e in rows if leader_id is None or leader_id in e.leader_ids]
    start, end = local_bounds(monday, monday + dt.timedelta(days=7))
    items: list[dict[str, Any]] = []
    if not public_only or visible:
        wanted = [leader_id] if leader_id is not None else list(names)
        found = await leader_meetings(uow, wanted, start, end)
        secret = await confidential_ids(uow, [m.id for m, _ in found])
        for m, who in found:
            item = calendar_item(m, confidential=m.id in secret, hide=True)
            items.append({**item, "kind": "meeting", "leader_ids": sorted(who),
                          "leaders": [names[i] for i in sorted(who)]})
    days = []
    for i in range(7):
        day = monday + dt.timedelta(days=i)
        iso = day.isoformat()
        lines = sorted([e for e in entries if e["date"] == iso] + [m for m in items if m["date"] == iso],
                       key=lambda x: (x["time"], x["kind"], x["id"]))
        days.append({"date": iso, "label": date_label(day), "weekday": WEEKDAYS[i], "items": lines})
    return {
        "week": week_label(monday), "from": monday.isoformat(), "to": (monday + dt.timedelta(days=6)).isoformat(),
        "id": week.id if week else None, "state": week.state if week else None,
        "state_label": STATE_LABELS.get(week.state, "") if week else "Chưa lập",
        "public": bool(week and week.public), "revision": week.revision if week else 0,
        "published_at": week.published_at.isoformat() if week and week.published_at else None,
        "visible": visible, "leaders": [{"id": u.id, "full_name": u.full_name, "title": u.title} for u in leaders],
        "days": days,
    }


async def published_entries_of(uow: UnitOfWork, leader_id: int, start: dt.datetime, end: dt.datetime, *,
                               public_only: bool) -> list[WorkEntry]:
    """Entries of published weeks naming this leader, between start and end (a feed)."""
    q = select(WorkEntry).join(WorkWeek, WorkWeek.id == WorkEntry.week_id).where(
        WorkWeek.state == PUBLISHED, WorkEntry.starts_at >= start, WorkEntry.starts_at < end)
    if public_only:
        q = q.where(WorkWeek.public.is_(True))
    rows = (await uow.session.scalars(q.order_by(WorkEntry.starts_at))).all()
    return [e for e in rows if leader_id in e.leader_ids]
