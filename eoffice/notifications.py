"""Notifications that reach people (issue #21): a Vietnamese sentence with a link, kept per user, shown in
the bell of every page (and as a system notification where the user allowed it), and sent by e-mail and by Web
Push when the user wants it, and by SMS when urgent (``eoffice.mail``, ``eoffice.channels``).

Where they come from: the events the services already emit. ``install(db, config)`` adds an event hook
to the database (``storage.db.Database.event_hooks``): at every commit, in the same transaction, each
event that concerns people (``task.assigned`` on ``user:7`` or ``unit:3``, ``document.submitted``, an
extension asked or decided, ...) becomes one notification per person it concerns. Nothing is notified
for a rolled-back change, and nothing is lost between the change and its notification. Other domains
add their own handlers (``meetings.notices``) through ``install(..., handlers=...)``.

Confidentiality: a person is notified about a document or a task only if the access rule
(``eoffice.access``) lets them see it, checked in the transaction that gave the access; a unit's
notification goes to each of its readers who pass the rule. The e-mail of a notification about a
confidential document (độ mật) never carries its title: it says that something waits on the server.

Each notification also emits ``notification.new`` on ``user:{id}`` with the unread count, so the bell
of every open page changes at once (``web/static/js/page.js``); marking read emits ``notification.read``.

Deadlines are not events: ``check_deadlines`` (run periodically by ``NotificationWorker``) reminds the
handlers of a task due within ``due_days``, of an overdue one, and after ``escalate_days`` of being
overdue tells the head of the handler's unit; each reminder once per task and deadline
(``TaskReminder``). The same worker removes notifications (and sent e-mails) older than ``keep_days``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from eoffice import access, audit, channels
from eoffice.doctypes import Urgency
from eoffice.org import Role, Unit, User
from eoffice.registers import AGENCY_TZ, local_date
from eoffice.schema.documents import Document
from eoffice.schema.notifications import (
    ChannelOutbox,
    MailOutbox,
    Notification,
    NotificationPref,
    NotificationQuiet,
    TaskReminder,
)
from eoffice.schema.tasks import ExtensionRequest, Submission, Task, TaskRole, TaskStatus, TaskUpdate
from storage.background import BackgroundTask
from storage.db import Database, Pending, UnitOfWork, utcnow
from storage.errors import Invalid, NotFound

log = logging.getLogger(__name__)

# kind -> (label for the preferences, e-mail on by default)
KINDS: dict[str, tuple[str, bool]] = {
    "document.submitted": ("Văn bản trình tôi", True),
    "task.assigned": ("Nhiệm vụ giao cho tôi (chủ trì, phối hợp)", True),
    "document.informed": ("Văn bản gửi để biết", False),
    "task.due": ("Nhiệm vụ sắp đến hạn", True),
    "task.overdue": ("Nhiệm vụ quá hạn", True),
    "task.extension": ("Xin gia hạn và kết quả gia hạn", True),
    "task.returned": ("Nhiệm vụ bị trả lại", True),
    "task.completed": ("Nhiệm vụ đã hoàn thành", False),
    "draft": ("Dự thảo văn bản đi (chờ duyệt, trả lại, ban hành)", False),
    "document.received": ("Văn bản điện tử đến cơ quan", False),
    "meeting": ("Cuộc họp (giấy mời, thay đổi, hủy)", True),
    "poll": ("Biểu quyết mở trong cuộc họp của tôi", False),
    "consultation.due": ("Phiếu lấy ý kiến sắp hết hạn mà tôi chưa trả lời", True),
}
PAGE_LIMIT = 100
FIRST_CHECK_SECONDS = 60.0  # after the server starts
OPEN_STATES = (TaskStatus.OPEN, TaskStatus.IN_PROGRESS)


@dataclass(frozen=True)
class Config:
    """What the notifications need from the settings."""

    email: bool = False  # an SMTP server is configured: e-mails are queued in the outbox
    base_url: str = ""  # the server's public address, for the links in e-mails ("" : paths only)
    push: bool = False  # Web Push is on: subscribed browsers get a message (eoffice.channels)
    sms: bool = False  # an SMS gateway is configured: urgent items go to users' phones


# ---- pure rules -------------------------------------------------------------------------------

def vn_date(day: dt.date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else ""


def quoted(title: str, limit: int = 200) -> str:
    title = " ".join(title.split())
    return f"«{title[:limit - 1]}…»" if len(title) > limit else f"«{title}»"


def in_quiet(minute: int, start: int, end: int) -> bool:
    """Whether the local minute of the day falls in the quiet hours [start, end) (over midnight when end < start)."""
    if start == end:
        return False
    return start <= minute < end if start < end else minute >= start or minute < end


def quiet_until(now: dt.datetime, start: int, end: int, tz: Any = AGENCY_TZ) -> dt.datetime:
    """When an e-mail made at ``now`` may go: now, or the end of the quiet hours it falls in (UTC)."""
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if not in_quiet(minute, start, end):
        return now
    day = local.date() if minute < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(end // 60, end % 60), tz).astimezone(dt.UTC)


def parse_minute(value: str, field: str) -> int:
    """"22:00" -> 1320; a clear Vietnamese error otherwise."""
    value = value.strip()
    try:
        hour, minute = (int(p) for p in value.split(":"))
    except ValueError:
        raise Invalid("Giờ phải có dạng HH:MM, ví dụ 22:00.", field=field) from None
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise Invalid("Giờ phải có dạng HH:MM, ví dụ 22:00.", field=field)
    return hour * 60 + minute


# ---- storing one notification ----------------------------------------------------------------

class Pref(NamedTuple):
    in_app: bool
    email: bool
    push: bool = True  # Web Push to the browsers the user subscribed


async def pref_of(uow: UnitOfWork, user_id: int, kind: str) -> Pref:
    row = await uow.session.scalar(select(NotificationPref).where(
        NotificationPref.user_id == user_id, NotificationPref.kind == kind))
    if row is not None:
        return Pref(row.in_app, row.email, row.push)
    return Pref(True, KINDS.get(kind, ("", False))[1], True)


def title_of(kind: str) -> str:
    """The heading of a notification shown by the system (the kind's label)."""
    return KINDS.get(kind, ("Thông báo mới", False))[0]


async def unread_count(uow: UnitOfWork, user_id: int) -> int:
    return int(await uow.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0)


async def notify(uow: UnitOfWork, config: Config, user_id: int, kind: str, text: str, link: str = "", *,
                 secret: bool = False, urgent: bool = False) -> Notification | None:
    """Notify one user (as they chose for this kind): stored and shown live, queued as an e-mail and as a
    Web Push message to each browser they subscribed, and -- ``urgent`` (a hỏa tốc document, a meeting changed
    or cancelled) -- as an SMS to their phone. ``secret``: about a confidential document, so what leaves the
    server does not repeat the sentence."""
    user = await uow.session.get(User, user_id)
    if user is None or not user.active:
        return None
    pref = await pref_of(uow, user_id, kind)
    row: Notification | None = None
    if pref.in_app:
        row = Notification(user_id=user_id, kind=kind, text=text[:1000], link=link[:300], created_at=utcnow())
        uow.session.add(row)
        await uow.session.flush()
        uow.emit(f"user:{user_id}", "notification.new", id=row.id, kind=kind, title=title_of(kind), text=row.text,
                 link=row.link, message=row.text, url=row.link, unread=await unread_count(uow, user_id))
    if pref.email and config.email and user.email.strip():
        await _queue_mail(uow, config, user, kind, text, link, secret, row)
    if pref.push and config.push:
        await channels.queue_push(uow, user_id, row.id if row else None, title_of(kind), text[:1000], link[:300],
                                  base_url=config.base_url, secret=secret)
    if urgent and config.sms and user.phone.strip() and (pref.in_app or pref.email or pref.push):
        await channels.queue_sms(uow, user_id, user.phone.strip(), row.id if row else None, text, link,
                                 base_url=config.base_url, secret=secret)
    return row


async def _queue_mail(uow: UnitOfWork, config: Config, user: User, kind: str, text: str, link: str, secret: bool,
                      row: Notification | None) -> None:
    from eoffice import mail  # the message's wording and HTML live with the sender

    now = utcnow()
    quiet = await uow.session.get(NotificationQuiet, user.id)
    at = quiet_until(now, quiet.start_minute, quiet.end_minute) if quiet is not None else now
    subject, body_text, body_html = mail.compose(user.full_name, KINDS.get(kind, ("Thông báo", False))[0], text,
                                                 config.base_url + link if link else "", secret=secret)
    uow.session.add(MailOutbox(user_id=user.id, notification_id=row.id if row else None,
                               to_addr=user.email.strip()[:200], subject=subject, body_text=body_text,
                               body_html=body_html, created_at=now, next_attempt_at=at, attempts=0, last_error=""))
    wake = uow.db.consumers.get("mail")
    if wake is not None:
        uow.after_commit(lambda: wake([]))


# ---- whom an event concerns, and whether they may see it --------------------------------------

async def unit_readers(uow: UnitOfWork, unit_id: int) -> list[User]:
    """Who reads what is addressed to a unit: its leaders and, for an agency, its clerks (the units whose
    registers it keeps: itself and the units under it that are not agencies themselves; ``access.viewer_for``)."""
    units = (await uow.session.execute(select(Unit.id, Unit.parent_id, Unit.is_agency))).all()
    children: dict[int | None, list[tuple[int, bool]]] = {}
    for uid, parent, agency in units:
        children.setdefault(parent, []).append((uid, agency))
    kept = {unit_id}
    todo = [unit_id] if any(uid == unit_id and agency for uid, _, agency in units) else []
    while todo:
        for uid, agency in children.get(todo.pop(), []):
            if not agency and uid not in kept:
                kept.add(uid)
                todo.append(uid)
    users = (await uow.session.scalars(select(User).where(User.active.is_(True), User.unit_id.in_(sorted(kept)))
                                       .order_by(User.id))).all()
    return [u for u in users if (u.has_role(Role.LEADER) and u.unit_id == unit_id)
            or (u.has_role(Role.CLERK) and unit_id in (await access.viewer_for(uow, u)).unit_ids)]


async def topic_users(uow: UnitOfWork, topic: str) -> list[User]:
    kind, _, raw = topic.partition(":")
    if not (raw.isascii() and raw.isdigit()):
        return []
    if kind == "user":
        user = await uow.session.get(User, int(raw))
        return [user] if user is not None and user.active else []
    if kind == "unit":
        return await unit_readers(uow, int(raw))
    return []


async def sees_document(uow: UnitOfWork, user: User, document_id: int) -> Document | None:
    viewer = await access.viewer_for(uow, user)
    doc: Document | None = await uow.session.scalar(
        select(Document).where(Document.id == document_id, access.visible(viewer)))
    return doc


async def sees_task(uow: UnitOfWork, user: User, task_id: int) -> Task | None:
    from eoffice.tasks import visible_tasks  # eoffice.tasks is the bigger module; this one stays importable alone

    viewer = await access.viewer_for(uow, user)
    task: Task | None = await uow.session.scalar(select(Task).where(Task.id == task_id, visible_tasks(viewer)))
    return task


async def _secret_task(uow: UnitOfWork, task: Task) -> bool:
    if task.document_id is None:
        return False
    doc = await uow.session.get(Document, task.document_id)
    return doc is not None and doc.confidential


def flash(doc: Document) -> bool:
    """A hỏa tốc document: its notifications also go by SMS."""
    return bool(doc.urgency == Urgency.FLASH)


async def _flash_task(uow: UnitOfWork, task: Task) -> bool:
    doc = await uow.session.get(Document, task.document_id) if task.document_id is not None else None
    return doc is not None and flash(doc)


async def _name(uow: UnitOfWork, user_id: int | None) -> str:
    user = await uow.session.get(User, user_id) if user_id is not None else None
    return user.full_name if user is not None else "Một cán bộ"


# ---- handlers: event -> notifications ----------------------------------------------------------

Handler = Callable[[UnitOfWork, Config, str, dict[str, Any]], Awaitable[None]]


async def _on_submitted(uow: UnitOfWork, config: Config, topic: str, data: dict[str, Any]) -> None:
    sub = await uow.session.get(Submission, data.get("submission_id"))
    for user in await topic_users(uow, topic):
        doc = await sees_document(uow, user, int(data["document_id"]))
        if doc is None:
            continue
        by = await _name(uow, sub.submitted_by) if sub is not None else "Văn thư"
        await notify(uow, config, user.id, "document.submitted",
                     f"{by} trình văn bản {quoted(doc.summary)} để đồng chí cho ý kiến chỉ đạo.",
                     f"/documents/{doc.id}", secret=doc.confidential, urgent=flash(doc))


async def _on_assigned(uow: UnitOfWork, config: Config, topic: str, data: dict[str, Any]) -> None:
    for user in await topic_users(uow, topic):
        task = await sees_task(uow, user, int(data["task_id"]))
        if task is None:
            continue
        role = "phối hợp" if task.role == TaskRole.COLLAB else "chủ trì"
        who = "Bạn"
        if task.assignee_unit_id is not None:
            unit = await uow.session.get(Unit, task.assignee_unit_id)
            who = f"Đơn vị {unit.name}" if unit is not None else "Đơn vị của bạn"
        by = await _name(uow, task.assigned_by)
        due = f", hạn {vn_date(task.deadline)}" if task.deadline else ""
        await notify(uow, config, user.id, "task.assigned",
                     f"{who} được {by} giao {role} xử lý {quoted(task.title)}{due}.", f"/tasks/{task.id}",
                     secret=await _secret_task(uow, task), urgent=await _flash_task(uow, task))


async def _on_informed(uow: UnitOfWork, config: Config, topic: str, data: dict[str, Any]) -> None:
    for user in await topic_users(uow, topic):
        doc = await sees_document(uow, user, int(data["document_id"]))
        if doc is not None:
            await notify(uow, config, user.id, "document.informed",
                         f"Văn bản {quoted(doc.summary)} được gửi đến bạn để biết.", f"/documents/{doc.id}",
                         secret=doc.confidential, urgent=flash(doc))


def _task_handler(kind: str, sentence: Callable[[UnitOfWork, Task, dict[str, Any]], Awaitable[str]]) -> Handler:
    async def handle(uow: UnitOfWork, config: Config, topic: str, data: dict[str, Any]) -> None:
        for user in await topic_users(uow, topic):
            task = await sees_task(uow, user, int(data["task_id"]))
            if task is not None:
                await notify(uow, config, user.id, kind, await sentence(uow, task, data), f"/tasks/{task.id}",
                             secret=await _secret_task(uow, task))
    return handle


async def _extension_asked(uow: UnitOfWork, task: Task, data: dict[str, Any]) -> str:
    req = await uow.session.get(ExtensionRequest, data.get("request_id"))
    if req is None:
        return f"Có đề nghị gia hạn nhiệm vụ {quoted(task.title)}."
    return (f"{await _name(uow, req.requested_by)} xin gia hạn nhiệm vụ {quoted(task.title)} "
            f"từ {vn_date(req.old_deadline)} đến {vn_date(req.new_deadline)}.")


async def _extension_approved(uow: UnitOfWork, task: Task, data: dict[str, Any]) -> str:
    return f"Đề nghị gia hạn nhiệm vụ {quoted(task.title)} đã được chấp thuận: hạn mới {vn_date(task.deadline)}."


async def _extension_refused(uow: UnitOfWork, task: Task, data: dict[str, Any]) -> str:
    req = await uow.session.get(ExtensionRequest, data.get("request_id"))
    why = f" Lý do: {req.note[:200]}" if req is not None and req.note else ""
    return f"Đề nghị gia hạn nhiệm vụ {quoted(task.title)} không được chấp thuận.{why}"


async def _returned(uow: UnitOfWork, task: Task, data: dict[str, Any]) -> str:
    last = await uow.session.scalar(select(TaskUpdate).where(TaskUpdate.task_id == task.id, TaskUpdate.kind == "return")
                                    .order_by(TaskUpdate.id.desc()).limit(1))
    if last is None:
        return f"Nhiệm vụ {quoted(task.title)} đã bị trả lại."
    return f"{await _name(uow, last.user_id)} đã trả lại nhiệm vụ {quoted(task.title)}. Lý do: {last.text[:200]}"


async def _completed(uow: UnitOfWork, task: Task, data: dict[str, Any]) -> str:
    who = await _name(uow, task.assignee_user_id) if task.assignee_user_id else "Đơn vị được giao"
    return f"{who} đã hoàn thành nhiệm vụ {quoted(task.title)}."


def _draft_handler(template: str) -> Handler:
    async def handle(uow: UnitOfWork, config: Config, topic: str, data: dict[str, Any]) -> None:
        for user in await topic_users(uow, topic):
            doc = await sees_document(uow, user, int(data["document_id"]))
            if doc is not None:
                await notify(uow, config, user.id, "draft", template.format(title=quoted(doc.summary)),
                             f"/outgoing/{doc.id}", secret=doc.confidential)
    return handle


async def _on_received(uow: UnitOfWork, config: Config, topic: str, data: dict[str, Any]) -> None:
    by = data.get("by")
    for user in await topic_users(uow, topic):
        if user.id == by:
            continue
        doc = await sees_document(uow, user, int(data["document_id"]))
        if doc is None:
            continue
        how = "điện tử (edXML)" if data.get("via") == "edxml" else "điện tử"
        sender = f" từ {doc.sender}" if doc.sender else ""
        number = f", số đến {doc.number}" if doc.number else ""
        await notify(uow, config, user.id, "document.received",
                     f"Văn bản {how}{sender} đã đến cơ quan: {quoted(doc.summary)}{number}.",
                     f"/documents/{doc.id}", secret=doc.confidential, urgent=flash(doc))


HANDLERS: dict[str, Handler] = {
    "document.submitted": _on_submitted,
    "task.assigned": _on_assigned,
    "document.informed": _on_informed,
    "task.extension_requested": _task_handler("task.extension", _extension_asked),
    "task.extension_approved": _task_handler("task.extension", _extension_approved),
    "task.extension_refused": _task_handler("task.extension", _extension_refused),
    "task.returned": _task_handler("task.returned", _returned),
    "task.completed": _task_handler("task.completed", _completed),
    "draft.to_approve": _draft_handler("Dự thảo {title} đang chờ bạn duyệt."),
    "draft.approved": _draft_handler("Dự thảo {title} đã được duyệt, chờ văn thư cho số và ban hành."),
    "draft.returned": _draft_handler("Dự thảo {title} đã bị trả lại để sửa."),
    "draft.issued": _draft_handler("Văn bản {title} đã được ban hành."),
    "document.received": _on_received,
}


def install(db: Database, config: Config, handlers: dict[str, Handler] | None = None) -> None:
    """Notify people of the events of every unit of work of ``db`` (idempotent per database)."""
    table = {**HANDLERS, **(handlers or {})}

    async def derive(uow: UnitOfWork, emitted: list[Pending]) -> None:
        for topic, type_, data in emitted:
            handler = table.get(type_)
            if handler is not None and (topic.startswith(("user:", "unit:")) or type_ not in HANDLERS):
                await handler(uow, config, topic, data)

    derive.eoffice_notifications = True  # type: ignore[attr-defined]
    db.event_hooks[:] = [h for h in db.event_hooks if not getattr(h, "eoffice_notifications", False)]
    db.event_hooks.append(derive)


# ---- reading and marking -----------------------------------------------------------------------

async def list_for(uow: UnitOfWork, user: User, *, unread_only: bool = False, before: int | None = None,
                   limit: int = 50) -> tuple[list[Notification], int, int]:
    """The user's notifications, newest first (``before``: ids below it, for the next page); and the counts
    (unread, total)."""
    if not 1 <= limit <= PAGE_LIMIT:
        raise Invalid(f"Số thông báo mỗi trang phải từ 1 đến {PAGE_LIMIT}.", field="limit")
    q = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    if before is not None:
        q = q.where(Notification.id < before)
    rows = list((await uow.session.scalars(q.order_by(Notification.id.desc()).limit(limit))).all())
    total = int(await uow.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user.id)) or 0)
    return rows, await unread_count(uow, user.id), total


async def mark_read(uow: UnitOfWork, user: User, notification_id: int) -> Notification:
    row = await uow.session.get(Notification, notification_id)
    if row is None or row.user_id != user.id:  # somebody else's: as if it did not exist
        raise NotFound("Không tìm thấy thông báo.")
    if row.read_at is None:
        row.read_at = utcnow()
        await uow.session.flush()
        uow.emit(f"user:{user.id}", "notification.read", ids=[row.id], unread=await unread_count(uow, user.id))
    return row


async def mark_all_read(uow: UnitOfWork, user: User) -> int:
    result = await uow.session.execute(update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)).values(read_at=utcnow()))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        uow.emit(f"user:{user.id}", "notification.read", all=True, unread=0)
    return count


# ---- preferences -------------------------------------------------------------------------------

async def preferences(uow: UnitOfWork, user: User) -> dict[str, Any]:
    rows = {r.kind: r for r in (await uow.session.scalars(
        select(NotificationPref).where(NotificationPref.user_id == user.id))).all()}
    quiet = await uow.session.get(NotificationQuiet, user.id)
    kinds = [{"kind": k, "label": label, "in_app": rows[k].in_app if k in rows else True,
              "email": rows[k].email if k in rows else default, "push": rows[k].push if k in rows else True}
             for k, (label, default) in KINDS.items()]
    start, end = (quiet.start_minute, quiet.end_minute) if quiet is not None else (0, 0)
    return {"kinds": kinds, "quiet_start": f"{start // 60:02d}:{start % 60:02d}",
            "quiet_end": f"{end // 60:02d}:{end % 60:02d}", "email": user.email,
            "push_subscriptions": await channels.subscription_count(uow, user.id)}


async def set_preferences(uow: UnitOfWork, user: User, choices: dict[str, Pref] | dict[str, tuple[bool, bool]],
                          quiet: tuple[int, int] | None, ip: str = "") -> dict[str, Any]:
    """``choices``: kind -> channels, for the kinds given; ``quiet``: (start, end) minutes, or None to
    leave the quiet hours as they are."""
    unknown = sorted(set(choices) - set(KINDS))
    if unknown:
        raise Invalid(f"Loại thông báo không hợp lệ: {unknown[0][:40]}.", field="kinds")
    for kind, value in choices.items():
        pref = Pref(*value)
        row = await uow.session.scalar(select(NotificationPref).where(
            NotificationPref.user_id == user.id, NotificationPref.kind == kind))
        if row is None:
            uow.session.add(NotificationPref(user_id=user.id, kind=kind, in_app=pref.in_app, email=pref.email,
                                             push=pref.push))
        else:
            row.in_app, row.email, row.push = pref.in_app, pref.email, pref.push
    if quiet is not None:
        row_q = await uow.session.get(NotificationQuiet, user.id)
        if row_q is None:
            uow.session.add(NotificationQuiet(user_id=user.id, start_minute=quiet[0], end_minute=quiet[1]))
        else:
            row_q.start_minute, row_q.end_minute = quiet
    await uow.session.flush()
    await audit.record(uow, user, "notification.preferences", "user", user.id, ip,
                       kinds={k: Pref(*p)._asdict() for k, p in choices.items()},
                       quiet=list(quiet) if quiet is not None else None)
    return await preferences(uow, user)


# ---- deadlines and retention ------------------------------------------------------------------

async def _claim_reminder(uow: UnitOfWork, task: Task, kind: str) -> bool:
    assert task.deadline is not None
    ins = (postgresql.insert if uow.dialect == "postgresql" else sqlite.insert)(TaskReminder)
    row = (await uow.session.execute(ins.values(task_id=task.id, kind=kind, deadline=task.deadline.isoformat(),
                                                created_at=utcnow())
                                     .on_conflict_do_nothing().returning(TaskReminder.id))).first()
    return row is not None


async def _handlers_of(uow: UnitOfWork, task: Task) -> list[User]:
    if task.assignee_user_id is not None:
        return await topic_users(uow, f"user:{task.assignee_user_id}")
    assert task.assignee_unit_id is not None
    return [u for u in await unit_readers(uow, task.assignee_unit_id) if u.has_role(Role.LEADER)]


async def _heads_over(uow: UnitOfWork, task: Task, handlers: Sequence[User]) -> list[User]:
    """Whom an overdue task is escalated to: the leaders of the handler's unit (other than the handlers) who may
    see it; for a unit's task (its leaders are the handlers), or when none of them may see it (a document the
    unit was not given), the person who assigned it."""
    ids = {u.id for u in handlers}
    heads: list[User] = []
    if task.assignee_user_id is not None:
        handler = await uow.session.get(User, task.assignee_user_id)
        if handler is not None and handler.unit_id is not None:
            heads = [u for u in (await uow.session.scalars(select(User).where(
                User.unit_id == handler.unit_id, User.active.is_(True)).order_by(User.id))).all()
                if u.has_role(Role.LEADER) and u.id not in ids and await sees_task(uow, u, task.id) is not None]
    if not heads:
        assigner = await uow.session.get(User, task.assigned_by)
        heads = [assigner] if assigner is not None and assigner.active and assigner.id not in ids else []
    return heads


async def check_deadlines(uow: UnitOfWork, config: Config, today: dt.date, *, due_days: int = 1,
                          escalate_days: int = 2) -> int:
    """Remind of tasks due within ``due_days`` and overdue ones, and escalate those overdue for
    ``escalate_days`` (0: never); each once per task and deadline. Returns how many notifications."""
    sent = 0
    rows = (await uow.session.scalars(select(Task).where(
        Task.status.in_(OPEN_STATES), Task.deadline.is_not(None),
        Task.deadline <= today + dt.timedelta(days=max(due_days, 0))).order_by(Task.id))).all()
    for task in rows:
        assert task.deadline is not None
        secret = await _secret_task(uow, task)
        left = (task.deadline - today).days
        handlers = await _handlers_of(uow, task)
        if left >= 0:
            if not await _claim_reminder(uow, task, "due"):
                continue
            when = "hôm nay" if left == 0 else f"còn {left} ngày"
            text = f"Nhiệm vụ {quoted(task.title)} đến hạn ngày {vn_date(task.deadline)} ({when})."
            kind, targets = "task.due", handlers
        else:
            if await _claim_reminder(uow, task, "overdue"):
                text = f"Nhiệm vụ {quoted(task.title)} đã quá hạn (hạn {vn_date(task.deadline)})."
                for user in handlers:
                    if await sees_task(uow, user, task.id) is not None:
                        await notify(uow, config, user.id, "task.overdue", text, f"/tasks/{task.id}", secret=secret)
                        sent += 1
            if escalate_days <= 0 or -left < escalate_days or not await _claim_reminder(uow, task, "escalated"):
                continue
            who = await _name(uow, task.assignee_user_id) if task.assignee_user_id else "Đơn vị được giao"
            text = (f"Nhiệm vụ {quoted(task.title)} giao cho {who} đã quá hạn {-left} ngày "
                    f"(hạn {vn_date(task.deadline)}).")
            kind, targets = "task.overdue", await _heads_over(uow, task, handlers)
        for user in targets:
            if await sees_task(uow, user, task.id) is not None:
                await notify(uow, config, user.id, kind, text, f"/tasks/{task.id}", secret=secret)
                sent += 1
    return sent


async def cleanup(uow: UnitOfWork, keep_days: float, now: dt.datetime | None = None) -> int:
    """Remove notifications older than ``keep_days`` and e-mails, push messages and SMS sent that long ago
    (unsent ones stay)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=keep_days)
    for box in (MailOutbox, ChannelOutbox):
        await uow.session.execute(delete(box).where(box.sent_at.is_not(None), box.sent_at < cutoff))
        await uow.session.execute(update(box).where(box.notification_id.in_(
            select(Notification.id).where(Notification.created_at < cutoff))).values(notification_id=None))
    result = await uow.session.execute(delete(Notification).where(Notification.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


class NotificationWorker:
    """Every ``interval`` seconds: deadline reminders and escalations, then the retention cleanup."""

    def __init__(self, db: Database, config: Config, *, keep_days: float, interval: float = 900.0,
                 due_days: int = 1, escalate_days: int = 2) -> None:
        self.db, self.config, self.keep_days, self.interval = db, config, keep_days, interval
        self.due_days, self.escalate_days = due_days, escalate_days
        self._task = BackgroundTask("notifications")

    def start(self) -> None:
        self._task.ensure(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def tick(self, now: dt.datetime | None = None) -> tuple[int, int]:
        now = now or utcnow()
        async with self.db.uow() as uow:
            sent = await check_deadlines(uow, self.config, local_date(now), due_days=self.due_days,
                                         escalate_days=self.escalate_days)
            removed = await cleanup(uow, self.keep_days, now) if self.keep_days > 0 else 0
            await uow.commit()
        return sent, removed

    async def _run(self) -> None:
        # not at once: the server's start (and a test app's life of a few requests) is left alone, and a stop
        # most likely finds the worker asleep rather than in the middle of a transaction
        await asyncio.sleep(min(FIRST_CHECK_SECONDS, self.interval))
        while True:
            try:
                sent, removed = await self.tick()
                if sent or removed:
                    log.info("notifications: %d deadline reminders, %d old notifications removed", sent, removed)
            except Exception:
                log.exception("notifications: periodic check failed")
            await asyncio.sleep(self.interval)


__all__ = ["KINDS", "Config", "NotificationWorker", "check_deadlines", "cleanup", "install", "list_for",
           "mark_all_read", "mark_read", "notify", "preferences", "set_preferences", "unread_count"]
