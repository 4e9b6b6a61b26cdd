"""Minutes: the secretary writes discussion and conclusions per agenda item while the meeting runs;
the chair approves them; they export to PDF (attendance, agenda, discussion, conclusions, and the
sections other modules register, such as vote results).

Edits carry the revision they were made on: a stale save gets 409 with the current text, so two
devices of the secretary (or secretary and chair) never overwrite each other silently.
Drafts are read by the chair, secretary and organiser; approved minutes by every participant,
each seeing only the agenda items they may see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from eoffice import audit, tasks
from eoffice.org import Unit, User, open_units
from eoffice.tasks import Task
from meetings import minutes_record, render, rules, speaking_budgets, topics
from meetings.agenda import agenda_view, item_context, visible_item_ids
from meetings.attendance import quorum_of
from meetings.meetings import get_context, participants_view, sites_view, user_names, view_context
from meetings.rules import Access, State
from meetings.schema import AgendaItem, Conclusion, ItemMinutes, Meeting
from meetings.speakers import speaker_stats
from meetings.voting import poll_results_for_meeting, unpublished_results
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

TZ = "Asia/Ho_Chi_Minh"


# ---------------------------------------------------------------- permissions


def _require_writer(access: Access, meeting: Meeting) -> None:
    if not (access.secretary or access.chair):
        raise Forbidden("Chỉ thư ký hoặc chủ trì được ghi biên bản.")
    if State(meeting.state) not in rules.MINUTES_STATES:
        raise Conflict("Chỉ ghi biên bản khi cuộc họp đang diễn ra hoặc đã kết thúc, chưa lưu trữ.")
    if meeting.minutes_state == "approved":
        raise Conflict("Biên bản đã được phê duyệt; chủ trì mở lại thì mới sửa được.")


def can_read(access: Access, meeting: Meeting) -> bool:
    return access.manager or (access.can_view and meeting.minutes_state == "approved")


# ---------------------------------------------------------------- writing


async def save_discussion(uow: UnitOfWork, actor: User, item_id: int, *, text: str, revision: int) -> ItemMinutes:
    ctx, item = await item_context(uow, actor, item_id, lock=True)
    _require_writer(ctx.access, ctx.meeting)
    row = await uow.session.scalar(select(ItemMinutes).where(ItemMinutes.item_id == item.id))
    current = row.revision if row else 0
    if int(revision) != current:
        raise Conflict("Biên bản phần này vừa được người khác sửa; nội dung mới nhất đã được tải lại.",
                       revision=current, discussion=row.discussion if row else "")
    if row is None:
        row = ItemMinutes(meeting_id=item.meeting_id, item_id=item.id)
        uow.session.add(row)
    row.discussion = text
    row.revision = current + 1
    row.updated_by = actor.id
    row.updated_at = utcnow()
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.minutes.edit", "meeting", item.meeting_id, item_id=item.id,
                       revision=row.revision, length=len(text))
    uow.emit(topics.room(item.meeting_id), "minutes.changed", item_id=item.id, revision=row.revision)
    return row


def _deadline(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise Invalid("Hạn xử lý không hợp lệ (ngày/tháng/năm).", field="deadline") from None


async def _check_unit(uow: UnitOfWork, unit_id: int | None) -> None:
    """A conclusion's unit assignee: an agency or unit that still exists (not merged or dissolved)."""
    if unit_id is None:
        return
    if await uow.session.scalar(select(Unit.id).where(Unit.id == unit_id, open_units())) is None:
        raise NotFound("Không tìm thấy cơ quan, đơn vị được giao.", field="assignee_unit_id")


async def add_conclusion(uow: UnitOfWork, actor: User, item_id: int, *, text: str, assignee_id: int | None = None,
                         assignee_unit_id: int | None = None, deadline: Any = None) -> Conclusion:
    ctx, item = await item_context(uow, actor, item_id, lock=True)
    _require_writer(ctx.access, ctx.meeting)
    if not text.strip():
        raise Invalid("Cần nhập nội dung kết luận.", field="text")
    if assignee_id is not None and assignee_unit_id is not None:
        raise Invalid("Giao cho một người hoặc một cơ quan, đơn vị, không cả hai.", field="assignee_unit_id")
    if assignee_id is not None and await uow.session.get(User, assignee_id) is None:
        raise NotFound("Không tìm thấy người được giao.", field="assignee_id")
    await _check_unit(uow, assignee_unit_id)
    last = await uow.session.scalar(select(func.max(Conclusion.position)).where(Conclusion.item_id == item.id)) or 0
    c = Conclusion(meeting_id=item.meeting_id, item_id=item.id, position=last + 1, text=text.strip(),
                   assignee_id=assignee_id, assignee_unit_id=assignee_unit_id, deadline=_deadline(deadline),
                   created_by=actor.id)
    uow.session.add(c)
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.conclusion.add", "meeting", item.meeting_id, item_id=item.id,
                       conclusion_id=c.id)
    uow.emit(topics.room(item.meeting_id), "conclusions.changed", item_id=item.id, conclusion_id=c.id)
    return c


async def _conclusion(uow: UnitOfWork, actor: User, conclusion_id: int) -> tuple[Conclusion, Any]:
    c = await uow.session.get(Conclusion, conclusion_id)
    if c is None:
        raise NotFound("Không tìm thấy kết luận.")
    ctx, _item = await item_context(uow, actor, c.item_id, lock=True)
    return c, ctx


async def update_conclusion(uow: UnitOfWork, actor: User, conclusion_id: int, **changes: Any) -> Conclusion:
    c, ctx = await _conclusion(uow, actor, conclusion_id)
    _require_writer(ctx.access, ctx.meeting)
    if set(changes) - {"text", "assignee_id", "assignee_unit_id", "deadline"}:
        raise Invalid("Chỉ sửa được nội dung, người hoặc đơn vị được giao và hạn xử lý.")
    if c.task_id is not None and ({"assignee_id", "assignee_unit_id", "deadline"} & set(changes)):
        raise Conflict("Kết luận đã thành nhiệm vụ; đổi người thực hiện, hạn xử lý trong nhiệm vụ.")
    if "text" in changes:
        if not str(changes["text"] or "").strip():
            raise Invalid("Cần nhập nội dung kết luận.", field="text")
        c.text = str(changes["text"]).strip()
    if "assignee_id" in changes:
        aid = changes["assignee_id"]
        if aid is not None and await uow.session.get(User, int(aid)) is None:
            raise NotFound("Không tìm thấy người được giao.", field="assignee_id")
        c.assignee_id = int(aid) if aid is not None else None
    if "assignee_unit_id" in changes:
        uid = changes["assignee_unit_id"]
        if uid is not None and changes.get("assignee_id") is not None:
            raise Invalid("Giao cho một người hoặc một cơ quan, đơn vị, không cả hai.", field="assignee_unit_id")
        await _check_unit(uow, int(uid) if uid is not None else None)
        c.assignee_unit_id = int(uid) if uid is not None else None
        if uid is not None:
            c.assignee_id = None  # a unit instead of a person
    elif changes.get("assignee_id") is not None:
        c.assignee_unit_id = None  # a person instead of a unit
    if "deadline" in changes:
        c.deadline = _deadline(changes["deadline"])
    c.updated_at = utcnow()
    await audit.record(uow, actor, "meeting.conclusion.update", "meeting", c.meeting_id, conclusion_id=c.id,
                       fields=sorted(changes))
    uow.emit(topics.room(c.meeting_id), "conclusions.changed", item_id=c.item_id, conclusion_id=c.id)
    return c


async def remove_conclusion(uow: UnitOfWork, actor: User, conclusion_id: int) -> None:
    c, ctx = await _conclusion(uow, actor, conclusion_id)
    _require_writer(ctx.access, ctx.meeting)
    if c.task_id is not None:
        raise Conflict("Kết luận đã thành nhiệm vụ, không xóa được.")
    await uow.session.delete(c)
    await audit.record(uow, actor, "meeting.conclusion.remove", "meeting", c.meeting_id, conclusion_id=c.id)
    uow.emit(topics.room(c.meeting_id), "conclusions.changed", item_id=c.item_id, conclusion_id=c.id)


# ---------------------------------------------------------------- conclusions become e-office tasks

TASK_STATES = {State.IN_PROGRESS, State.ENDED, State.ARCHIVED}
CONFIDENTIAL_TASK_TITLE = "Nhiệm vụ từ kết luận cuộc họp (nội dung mật)"


async def conclusion_to_task(uow: UnitOfWork, actor: User, conclusion_id: int, *, assignee_id: int | None = None,
                             assignee_unit_id: int | None = None, deadline: Any = None) -> Conclusion:
    """One action: the conclusion becomes an e-office task for a person or a unit, with a deadline;
    the task's progress then shows next to the conclusion (``minutes_view``).

    Chair or secretary, from the meeting's start on (also after the minutes are approved: assigning
    the work does not change what was concluded). A conclusion becomes at most one task.
    """
    c, ctx = await _conclusion(uow, actor, conclusion_id)
    if not (ctx.access.chair or ctx.access.secretary):
        raise Forbidden("Chỉ chủ trì hoặc thư ký được giao nhiệm vụ từ kết luận.")
    if State(ctx.meeting.state) not in TASK_STATES:
        raise Conflict("Chỉ giao nhiệm vụ từ kết luận khi cuộc họp đã bắt đầu.")
    if c.task_id is not None:
        raise Conflict("Kết luận này đã thành nhiệm vụ.", task_id=c.task_id)
    if assignee_id is None and assignee_unit_id is None:
        # the unit or the person the minutes name
        assignee_id, assignee_unit_id = c.assignee_id, c.assignee_unit_id
    target = tasks.Assignee(user_id=assignee_id, unit_id=assignee_unit_id)
    due = _deadline(deadline) if deadline not in (None, "") else c.deadline
    item = await uow.session.get(AgendaItem, c.item_id)
    assert item is not None
    if item.confidential:
        # the task lives on the e-office board (the assignee's unit, whoever it is passed down to): it names
        # neither the item nor the conclusion; those allowed read them in the meeting's minutes, which
        # link the conclusion to this task (``minutes_view``)
        title = CONFIDENTIAL_TASK_TITLE
        instruction = (f"Thực hiện kết luận thuộc nội dung mật của cuộc họp «{ctx.meeting.title}». Người được "
                       "xem nội dung đọc kết luận trong biên bản cuộc họp.")
    else:
        title = c.text if len(c.text) <= 500 else c.text[:499] + "…"
        instruction = f"Kết luận cuộc họp «{ctx.meeting.title}», nội dung «{item.title}»: {c.text}"
    task = await tasks.create_meeting_task(uow, actor, title=title, instruction=instruction, assignee=target,
                                           deadline=due, source={"meeting_id": c.meeting_id, "conclusion_id": c.id})
    c.task_id = task.id
    c.assignee_id, c.assignee_unit_id = target.user_id, target.unit_id
    c.deadline = due
    c.updated_at = utcnow()
    await audit.record(uow, actor, "meeting.conclusion.task", "meeting", c.meeting_id, conclusion_id=c.id,
                       task_id=task.id, assignee_user_id=target.user_id, assignee_unit_id=target.unit_id,
                       deadline=due)
    uow.emit(topics.room(c.meeting_id), "conclusions.changed", item_id=c.item_id, conclusion_id=c.id,
             task_id=task.id)
    return c


async def _task_progress(uow: UnitOfWork, task_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = (await uow.session.scalars(select(Task).where(Task.id.in_(task_ids)))).all()
    out = {}
    for t in rows:
        view = t.public()
        out[t.id] = {k: view[k] for k in ("id", "status", "status_label", "progress", "deadline", "deadline_state",
                                          "completed_at")}
    return out


# ---------------------------------------------------------------- approval


async def approve(uow: UnitOfWork, actor: User, meeting_id: int, blobs: Any = None) -> Meeting:
    """The chair approves the minutes of an ended meeting; the approved PDF is kept in the blob store."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_chair()
    m = ctx.meeting
    if State(m.state) not in (State.ENDED,):
        raise Conflict("Chỉ phê duyệt biên bản sau khi cuộc họp kết thúc.")
    if m.minutes_state == "approved":
        raise Conflict("Biên bản đã được phê duyệt.")
    waiting = await _unpublished_results(uow, m.id)
    if waiting:  # the approved minutes would go without them (a result is in the minutes once published)
        raise Conflict("Còn biểu quyết chưa công bố kết quả: " + "; ".join(f"«{t}»" for t in waiting)
                       + ". Công bố kết quả trước khi phê duyệt biên bản.", polls=waiting)
    await minutes_record.number_minutes(uow, m)  # before the audit entry: the register's lock first
    m.minutes_state = "approved"
    m.minutes_approved_by = actor.id
    m.minutes_approved_at = utcnow()
    await uow.session.flush()
    if blobs is not None:
        data = await build_pdf(uow, ctx.access, m)
        info = await blobs.put_bytes(data, content_type="application/pdf")
        m.minutes_blob_key = info.key
    await audit.record(uow, actor, "meeting.minutes.approve", "meeting", m.id, sha256=m.minutes_blob_key,
                       notation=m.minutes_notation)
    uow.emit(topics.room(m.id), "minutes.state", state=m.minutes_state)
    return m


async def reopen(uow: UnitOfWork, actor: User, meeting_id: int, reason: str = "") -> Meeting:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_chair()
    m = ctx.meeting
    if m.minutes_state != "approved":
        raise Conflict("Biên bản chưa được phê duyệt.")
    if State(m.state) is State.ARCHIVED:
        raise Conflict("Cuộc họp đã lưu trữ, không mở lại biên bản được.")
    m.minutes_state = "draft"
    await audit.record(uow, actor, "meeting.minutes.reopen", "meeting", m.id, reason=reason.strip()[:500],
                       previous_sha256=m.minutes_blob_key)
    m.minutes_blob_key = None
    uow.emit(topics.room(m.id), "minutes.state", state=m.minutes_state)
    return m


# ---------------------------------------------------------------- reading

TaskStatus = Callable[[UnitOfWork, list[int]], Awaitable[dict[int, dict[str, Any]]]]
_task_status: list[TaskStatus] = []  # set below, once _task_progress is defined


def register_task_status(fn: TaskStatus) -> None:
    """How far each task is (shown next to the conclusion); eoffice.tasks by default."""
    _task_status[:] = [fn]


async def minutes_view(uow: UnitOfWork, access: Access, meeting: Meeting) -> dict[str, Any]:
    """Per visible item: discussion text, revision and conclusions (with task progress)."""
    if not can_read(access, meeting):
        return {"state": meeting.minutes_state, "readable": False, "items": {}}
    visible = await visible_item_ids(uow, access, meeting.id)
    rows = (await uow.session.scalars(select(ItemMinutes).where(ItemMinutes.meeting_id == meeting.id))).all()
    conclusions = (await uow.session.scalars(select(Conclusion).where(Conclusion.meeting_id == meeting.id)
                                             .order_by(Conclusion.item_id, Conclusion.position))).all()
    names = await user_names(uow, {c.assignee_id for c in conclusions})
    unit_ids = {c.assignee_unit_id for c in conclusions if c.assignee_unit_id}
    units = {u.id: u.name for u in (await uow.session.scalars(
        select(Unit).where(Unit.id.in_(unit_ids)))).all()} if unit_ids else {}
    tasks: dict[int, dict[str, Any]] = {}
    task_ids = [c.task_id for c in conclusions if c.task_id]
    if task_ids and _task_status:
        tasks = await _task_status[0](uow, task_ids)
    items: dict[str, dict[str, Any]] = {}
    for iid in sorted(visible):
        items[str(iid)] = {"discussion": "", "revision": 0, "conclusions": []}
    for r in rows:
        if r.item_id in visible:
            items[str(r.item_id)].update(discussion=r.discussion, revision=r.revision)
    for c in conclusions:
        if c.item_id in visible:
            assignee = names.get(c.assignee_id) if c.assignee_id else None
            items[str(c.item_id)]["conclusions"].append({
                **c.public(), "assignee": assignee.full_name if assignee else units.get(c.assignee_unit_id or 0, ""),
                "assignee_kind": "unit" if c.assignee_unit_id else "user" if c.assignee_id else "",
                "task": tasks.get(c.task_id) if c.task_id else None})
    return {"state": meeting.minutes_state, "readable": True, "items": items,
            "approved_at": meeting.minutes_approved_at.isoformat() if meeting.minutes_approved_at else None}


async def item_minutes(uow: UnitOfWork, actor: User, item_id: int) -> dict[str, Any]:
    ctx, item = await item_context(uow, actor, item_id)
    if not can_read(ctx.access, ctx.meeting):
        raise Forbidden("Biên bản chưa được phê duyệt.")
    view = await minutes_view(uow, ctx.access, ctx.meeting)
    return {"item_id": item.id, **view["items"][str(item.id)]}


# ---------------------------------------------------------------- PDF

# Other modules add sections (vote results): fn(uow, meeting, visible item ids) ->
# {item_id: [lines under that item], None: [lines in a section of their own]}
Section = Callable[[UnitOfWork, Meeting, set[int]], Awaitable[dict[int | None, list[str]]]]
_sections: dict[str, tuple[str, Section]] = {}


def register_section(name: str, heading: str, fn: Section) -> None:
    _sections[name] = (heading, fn)


async def _unpublished_results(uow: UnitOfWork, meeting_id: int) -> list[str]:
    return await unpublished_results(uow, meeting_id)


async def _vote_results(uow: UnitOfWork, m: Meeting, visible: set[int]) -> dict[int | None, list[str]]:
    """Closed and published polls (meetings.voting) whose result is public, under their agenda item or in a
    section of their own; a poll on a confidential item the reader may not see is left out with the item."""
    out: dict[int | None, list[str]] = {}
    for poll in await poll_results_for_meeting(uow, m.id):
        item_id = poll.get("item_id")
        if item_id is not None and item_id not in visible:
            continue
        lines = [poll["text"]]
        lines += [f"    {line['label']}: {line['votes']} phiếu" for line in poll.get("lines", [])]
        if poll.get("winners"):
            lines.append("    Trúng cử: " + ", ".join(poll["winners"]))
        if poll.get("rule_label"):
            lines.append(f"    Điều kiện thông qua: {poll['rule_label']}.")
        verdict = poll.get("headline") or ("Được thông qua" if poll.get("passed") else "Không được thông qua")
        lines.append(f"    Kết quả: {verdict}.")
        out.setdefault(item_id, []).extend(lines)
    return out


def spoken(seconds: int) -> str:
    """«3 phút 05 giây», «45 giây»."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} phút {rest:02d} giây" if minutes else f"{rest} giây"


async def _speakers(uow: UnitOfWork, m: Meeting, visible: set[int]) -> dict[int | None, list[str]]:
    """Who spoke, how many times and for how long (pauses left out; turns on items the reader may not see left
    out), in a section of its own."""
    lines = []
    for n, row in enumerate(await speaker_stats(uow, m.id, visible), start=1):
        over = f"; quá giờ {row['over']} lượt" if row["over"] else ""
        lines.append(f"{n}. {row['name']}: {row['count']} lượt, tổng thời gian {spoken(row['seconds'])}{over}.")
    return {None: lines} if lines else {}


async def _delegations(uow: UnitOfWork, m: Meeting, visible: set[int]) -> dict[int | None, list[str]]:
    """Per delegation (tổ đại biểu) of a council: turns and time spoken against its budget."""
    lines = []
    for n, row in enumerate(await speaking_budgets.usage(uow, m.id, visible), start=1):
        budget = ""
        if row["budget"] is not None:
            left = row["remaining"]
            budget = (f" / {spoken(row['budget'])} được phân bổ"
                      + (f", còn {spoken(left)}" if left >= 0 else f", vượt {spoken(-left)}"))
        lines.append(f"{n}. {row['name']} ({row['members']} đại biểu): {row['count']} lượt, "
                     f"{spoken(row['used'])}{budget}.")
    return {None: lines} if lines else {}


register_section("votes", "Kết quả biểu quyết", _vote_results)
register_section("speakers", "Thống kê phát biểu", _speakers)
register_section("delegations", "Thời gian phát biểu theo tổ đại biểu", _delegations)
register_task_status(_task_progress)


def _fmt_dt(value: dt.datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%H:%M ngày %d/%m/%Y") if value else ""


async def minutes_data(uow: UnitOfWork, access: Access, m: Meeting, tz: str = TZ) -> dict[str, Any]:
    zone = ZoneInfo(tz)
    users = await user_names(uow, {m.chair_id, m.secretary_id, m.created_by})
    chair, secretary = users.get(m.chair_id or 0), users.get(m.secretary_id or 0)
    issuer = await minutes_record.issuer_of(uow, m)
    agency = issuer.agency.name if issuer.agency else ""
    code = issuer.agency.code if issuer.agency else ""
    day = (m.started_at or m.starts_at).astimezone(zone).date()
    people = await participants_view(uow, m)
    sites = await sites_view(uow, m)
    agenda = await agenda_view(uow, access, m)
    visible = {i["id"] for i in agenda if not i["restricted"]}
    minutes = await minutes_view(uow, access, m) if can_read(access, m) else {"items": {}}
    q = await quorum_of(uow, m)
    extra: dict[str, tuple[str, dict[int | None, list[str]]]] = {}
    for name, (heading, fn) in _sections.items():
        extra[name] = (heading, await fn(uow, m, visible))
    return {
        "agency": agency, "parent_agency": issuer.parent.name if issuer.parent else "",
        "number_line": minutes_record.number_line(m.minutes_notation, code),
        "date_line": minutes_record.date_line(issuer.place, day), "closing": _closing(m.ended_at, zone),
        "title": m.title, "place": m.place, "start": _fmt_dt(m.started_at or m.starts_at, zone),
        "end": _fmt_dt(m.ended_at, zone), "chair": chair.full_name if chair else "",
        "chair_title": chair.title if chair else "", "secretary": secretary.full_name if secretary else "",
        "people": people, "sites": sites, "agenda": agenda, "minutes": minutes["items"], "quorum": q.public(),
        "approved": m.minutes_state == "approved", "approved_at": _fmt_dt(m.minutes_approved_at, zone),
        "extra": extra,
    }


def _closing(ended: dt.datetime | None, tz: ZoneInfo) -> str:
    if ended is None:
        return "Cuộc họp kết thúc vào ... giờ ... phút, ngày ... tháng ... năm .../."
    t = ended.astimezone(tz)
    return (f"Cuộc họp kết thúc vào {t.hour:02d} giờ {t.minute:02d} phút, ngày {t.day:02d} tháng "
            f"{t.month:02d} năm {t.year}./.")


SIZE = 13  # Decree 30, Appendix I: body text 13-14 pt, Times New Roman (here its metric twin)


def _header(w: render.Writer, d: dict[str, Any]) -> None:
    """Decree 30's two columns: issuing agency and number on the left, national motto and the
    place-and-date line on the right, each name over a short rule."""
    full = w.width - 2 * w.margin
    lw = full * 0.42
    lx, rx, rw = w.margin, w.margin + lw, full - lw
    top = w.y
    if d["parent_agency"]:
        w.text(d["parent_agency"].upper(), size=12, align="center", x=lx, width=lw, after=0)
    w.text((d["agency"] or "CƠ QUAN TỔ CHỨC").upper(), style="bold", size=12, align="center", x=lx, width=lw,
           after=0)
    mid = lx + lw / 2
    w.line(mid - 28, mid + 28, after=8)
    w.text(d["number_line"], size=SIZE, align="center", x=lx, width=lw, after=0)
    left_end = w.y
    w.y = top
    w.text("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", style="bold", size=12, align="center", x=rx, width=rw, after=0)
    motto = "Độc lập - Tự do - Hạnh phúc"
    w.text(motto, style="bold", size=SIZE, align="center", x=rx, width=rw, after=0)
    half = w.length(motto, w.fonts["bold"], SIZE) / 2
    w.line(rx + rw / 2 - half, rx + rw / 2 + half, after=8)
    w.text(d["date_line"], style="italic", size=SIZE, align="center", x=rx, width=rw, after=0)
    w.y = max(w.y, left_end) + 18


def _write_minutes(d: dict[str, Any]) -> bytes:
    w = render.Writer(margin=60, size=SIZE, family=render.administrative_family())
    _header(w, d)
    w.text("BIÊN BẢN", style="bold", size=14, align="center", after=0)
    w.text(d["title"], style="bold", size=14, align="center", after=14)
    w.text(f"Thời gian: từ {d['start']}" + (f" đến {d['end']}" if d["end"] else ""))
    if d["place"]:
        w.text(f"Địa điểm: {d['place']}")
    w.text(f"Chủ trì: {d['chair']}" + (f", {d['chair_title']}" if d["chair_title"] else ""))
    w.text(f"Thư ký: {d['secretary']}", after=10)

    w.text("I. THÀNH PHẦN THAM DỰ", style="bold", after=4)
    q = d["quorum"]
    w.text(f"Có mặt {q['present']}/{q['entitled']} thành viên ({q['label'].lower()}: cần {q['needed']}) — "
           + ("đủ túc số." if q["met"] else "chưa đủ túc số."), after=6)
    for n, p in enumerate(d["people"], start=1):
        who = p["name"] + (f", {p['title']}" if p["title"] else "")
        if p["substitute"]:
            who = f"{p['substitute']['name']} (dự thay {p['name']})"
        status = "có mặt" if p["checked_in_at"] else "vắng mặt" + (f" ({p['note']})" if p["note"] else "")
        w.text(f"{n}. {who} — {p['role_label'].lower()} — {status}", indent=12, after=1)
    if d["sites"]:
        w.space(4)
        w.text("Điểm cầu: " + "; ".join(s["name"] for s in d["sites"]), after=4)
    w.space(8)

    w.text("II. NỘI DUNG CUỘC HỌP", style="bold", after=4)
    for n, item in enumerate(d["agenda"], start=1):
        w.text(f"{n}. {item['title']}", style="bold", after=2)
        if item["restricted"]:
            w.text("(Nội dung mật: không hiển thị trong bản này.)", style="italic", indent=12, after=6)
            continue
        if item["presenter_name"]:
            w.text(f"Trình bày: {item['presenter_name']}", style="italic", indent=12, after=2)
        mins = d["minutes"].get(str(item["id"]))
        if mins and mins["discussion"].strip():
            w.text("Ý kiến thảo luận:", style="bold", indent=12, after=1)
            w.text(mins["discussion"].strip(), indent=24, after=4)
        if mins and mins["conclusions"]:
            w.text("Kết luận:", style="bold", indent=12, after=1)
            for c in mins["conclusions"]:
                extra = []
                if c["assignee"]:
                    extra.append(f"giao {c['assignee']}")
                if c["deadline"]:
                    extra.append("hạn " + dt.date.fromisoformat(c["deadline"]).strftime("%d/%m/%Y"))
                w.text("– " + c["text"] + (f" ({', '.join(extra)})" if extra else ""), indent=24, after=2)
        for _name, (heading, lines) in d["extra"].items():
            if lines.get(item["id"]):
                w.text(f"{heading}:", style="bold", indent=12, after=1)
                for line in lines[item["id"]]:
                    w.text(line, indent=24, after=1)
        w.space(6)
    roman = ["III", "IV", "V", "VI"]
    for n, (_name, (heading, lines)) in enumerate(d["extra"].items()):
        if lines.get(None):
            w.text(f"{roman[n % 4]}. {heading.upper()}", style="bold", after=4)
            for line in lines[None]:
                w.text(line, indent=12, after=1)
            w.space(6)
    w.space(4)
    w.text(d["closing"], after=4)
    if not d["approved"]:
        w.text("DỰ THẢO — biên bản chưa được chủ trì phê duyệt.", style="italic", after=4)
    w.space(14)
    w.keep(130)  # the signature block stays on one page, headings with names
    w.columns("THƯ KÝ", "CHỦ TRÌ", size=SIZE)
    w.space(64)  # room for the signatures
    w.columns(d["secretary"], d["chair"], size=SIZE)
    w.space(18)
    w.text("Nơi nhận:", style="bold", size=12, after=0)
    w.text("- Các thành viên dự họp;\n- Lưu: VT, hồ sơ cuộc họp.", size=11, after=0)
    w.doc.set_metadata({"title": f"Biên bản: {d['title']}", "producer": "eOffice phòng họp không giấy"})
    return w.to_bytes()


async def build_pdf(uow: UnitOfWork, access: Access, m: Meeting) -> bytes:
    data = await minutes_data(uow, access, m)
    return await render.run(_write_minutes, data)


async def export_pdf(uow: UnitOfWork, actor: User, meeting_id: int) -> tuple[Meeting, bytes]:
    """The minutes as this user may read them (confidential items they cannot see are left out)."""
    ctx = await view_context(uow, actor, meeting_id)
    if not can_read(ctx.access, ctx.meeting):
        raise Forbidden("Biên bản chưa được phê duyệt.")
    return ctx.meeting, await build_pdf(uow, ctx.access, ctx.meeting)

