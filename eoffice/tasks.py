"""From document to tasks: submission to a leader (trình), direction (ý kiến chỉ đạo), tasks for
the main handler (chủ trì) and collaborators (phối hợp), passing down, progress, return,
deadline extension, completion; inbox, task board and the daily digest of deadlines.

A task is assigned to a user or to a unit. A unit task is handled by the unit's leaders (head
and deputies, ``Role.LEADER`` with that ``unit_id``), who may pass it down to people of the
unit as child tasks. For-information recipients (để biết) get access and a notification, not a
task. Every query below is limited by ``eoffice.access.visible``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select

from eoffice import access, audit, delegation, edxml, org_admin, registers, search, uploads
from eoffice import ink as ink_module
from eoffice.documents import get_document
from eoffice.org import Role, Unit, User, open_units
from eoffice.registers import local_date
from eoffice.schema.documents import Attachment, Document, Grant, Reason, Status
from eoffice.schema.tasks import (
    CLOSED,
    DUE_SOON_DAYS,
    DirectionNote,
    ExtensionRequest,
    Submission,
    Task,
    TaskRole,
    TaskStatus,
    TaskUpdate,
    deadline_state,
)
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

# ---- pure rules -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Assignee:
    user_id: int | None = None
    unit_id: int | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.unit_id is None):
            raise Invalid("Mỗi người/đơn vị nhận phải là một người dùng hoặc một đơn vị.")

    @classmethod
    def parse(cls, value: Any) -> Assignee:
        if isinstance(value, Assignee):
            return value
        if isinstance(value, dict):
            return cls(user_id=_int_or_none(value.get("user_id")), unit_id=_int_or_none(value.get("unit_id")))
        raise Invalid("Người/đơn vị nhận không hợp lệ.")


def _int_or_none(v: Any) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise Invalid("Mã người dùng/đơn vị không hợp lệ.") from None


def handles(user: User, task: Task) -> bool:
    """The user is the task's handler: its assignee, or a leader of its assignee unit."""
    if task.assignee_user_id is not None:
        return task.assignee_user_id == user.id
    return user.has_role(Role.LEADER) and user.unit_id is not None and user.unit_id == task.assignee_unit_id


def check_deadline(deadline: dt.date | None, today: dt.date, parent: dt.date | None = None) -> None:
    if deadline is None:
        return
    if deadline < today:
        raise Invalid("Hạn xử lý không thể ở trong quá khứ.", field="deadline")
    if parent is not None and deadline > parent:
        raise Invalid(f"Hạn xử lý không thể sau hạn của nhiệm vụ được giao ({parent:%d/%m/%Y}).", field="deadline")


HANDLER_ROLES = (Role.LEADER, Role.SPECIALIST)
INK_ONLY_TEXT = "Ý kiến chỉ đạo bằng bút phê trên văn bản."  # the tasks' instruction when only ink was written


def may_handle(user: User) -> bool:
    """A person may take a task (chủ trì, phối hợp, or one passed down) when they handle documents: a
    leader or a specialist. Administrators and clerks (văn thư) run the system and the registers;
    they are not handlers, unless they also hold one of these roles."""
    return user.active and user.has_role(*HANDLER_ROLES)


def rolled_up_progress(children: Sequence[Task]) -> int | None:
    """The progress of a task from the tasks passed down from it: the mean of its live children's
    progress (a done child counts 100%; withdrawn and handed-back ones are left out), rounded down;
    None when it has no live child (it keeps its own figure).

    Why the mean and not "done when all are done": the leader who gave the task sees the work move
    (two specialists, one finished: 50%) instead of 0% until the last one finishes, and rounding
    down keeps 100% for when every one of them is at 100%. Completion itself is the unit head's
    one-step confirmation (``complete``), which the statistics anticipate (``eoffice.stats``)."""
    live = [c for c in children if c.status not in (TaskStatus.WITHDRAWN, TaskStatus.RETURNED)]
    if not live:
        return None
    return sum(100 if c.status == TaskStatus.DONE else c.progress for c in live) // len(live)


@dataclass
class PickerGroup:
    """One unit in a picker: the unit itself when it may take the task (``unit_option``), and the
    people of the unit who may, by rank."""

    unit: Unit
    unit_option: bool
    people: list[User]


async def direction_candidates(uow: UnitOfWork, actor: User) -> list[PickerGroup]:
    """Who a leader may give a task to by a direction (chủ trì or phối hợp), grouped by unit in the
    tree's order, units and people by rank (lower first).

    The unit tree bounds it: a leader of the agency itself (Chủ tịch, Phó Chủ tịch) gives tasks
    across the agency, a leader of one of its offices (trưởng phòng) within that office's subtree
    only (never up to the province's leaders). Units: the offices below and the agencies directly
    under the agency (a Sở under the province), each only if it has an active leader to handle a
    unit task; never the agency itself nor the leader's own unit. People: the handlers
    (``may_handle``) of the agency's own units, never the leader himself."""
    try:
        agency = await registers.agency_of(uow, actor.unit_id)
    except NotFound:
        return []
    units = list((await uow.session.scalars(select(Unit).where(open_units()).order_by(Unit.rank, Unit.id))).all())
    children: dict[int | None, list[Unit]] = {}
    for u in units:
        children.setdefault(u.parent_id, []).append(u)
    root = next((u for u in units if u.id == actor.unit_id), agency)
    order: list[tuple[Unit, bool]] = []  # (unit, its people are the agency's own)

    def walk(unit: Unit) -> None:
        order.append((unit, True))
        for c in children.get(unit.id, []):
            if c.is_agency:
                order.append((c, False))
            else:
                walk(c)

    walk(root)
    ids = [u.id for u, _ in order]
    people = (await uow.session.scalars(select(User).where(User.unit_id.in_(ids), User.active.is_(True))
                                        .order_by(User.rank, User.full_name, User.id))).all()
    by_unit: dict[int, list[User]] = {}
    for p in people:
        by_unit.setdefault(p.unit_id or 0, []).append(p)
    groups = []
    for unit, own in order:
        members = by_unit.get(unit.id, [])
        led = any(p.has_role(Role.LEADER) for p in members)
        unit_option = led and unit.id != agency.id and unit.id != actor.unit_id
        handlers = [p for p in members if own and may_handle(p) and p.id != actor.id]
        if unit_option or handlers:
            groups.append(PickerGroup(unit, unit_option, handlers))
    return groups


async def pass_down_candidates(uow: UnitOfWork, actor: User, task: Task) -> list[User]:
    """Who a unit head may pass ``task`` down to: the handlers (``may_handle``) of the unit, by rank,
    never the head himself."""
    unit_id = task.assignee_unit_id if task.assignee_unit_id is not None else actor.unit_id
    if unit_id is None:
        return []
    rows = (await uow.session.scalars(select(User).where(User.unit_id == unit_id, User.active.is_(True))
                                      .order_by(User.rank, User.full_name, User.id))).all()
    return [u for u in rows if may_handle(u) and u.id != actor.id]


async def reassign_candidates(uow: UnitOfWork, actor: User, task: Task) -> list[PickerGroup] | None:
    """Who the assigner may hand ``task`` to instead: for a task passed down, the handlers of the unit
    it was passed down in (``pass_down_candidates``); for a task given by a direction, whoever the
    direction could have given it to (``direction_candidates``); None (no restriction beyond an
    existing, active person or unit) for a task from a meeting conclusion, whose chair is not
    necessarily a leader of the unit tree."""
    if task.parent_id is not None:
        parent = await uow.session.get(Task, task.parent_id)
        if parent is None:
            return None
        people = await pass_down_candidates(uow, actor, parent)
        unit = await uow.session.get(Unit, parent.assignee_unit_id or actor.unit_id or 0)
        return [PickerGroup(unit, False, people)] if unit is not None else []
    if task.direction_id is not None:
        return await direction_candidates(uow, actor)
    return None


async def _refuse_unless_candidate(uow: UnitOfWork, actor: User, groups: list[PickerGroup], a: Assignee,
                                   field: str, role_label: str) -> None:
    if a.unit_id is not None:
        if any(g.unit.id == a.unit_id and g.unit_option for g in groups):
            return
        unit = await uow.session.get(Unit, a.unit_id)
        name = unit.name if unit else str(a.unit_id)
        raise Invalid(f"Đơn vị «{name}» không thể nhận nhiệm vụ {role_label}: chỉ giao cho đơn vị trong cơ quan "
                      "có lãnh đạo xử lý, không giao cho chính cơ quan hay đơn vị của mình.",
                      field=field, unit_id=a.unit_id)
    if any(p.id == a.user_id for g in groups for p in g.people):
        return
    if a.user_id == actor.id:
        raise Invalid(f"Không tự giao nhiệm vụ {role_label} cho chính mình.", field=field, user_id=a.user_id)
    user = await uow.session.get(User, a.user_id)
    name = user.full_name if user else str(a.user_id)
    raise Invalid(f"«{name}» không thể nhận nhiệm vụ {role_label}: chỉ giao cho lãnh đạo, chuyên viên của cơ "
                  "quan (không giao cho quản trị hệ thống, văn thư).", field=field, user_id=a.user_id)


# ---- helpers ----------------------------------------------------------------------------------

def _today() -> dt.date:
    return local_date(utcnow())


def _notify(uow: UnitOfWork, target: Assignee, type_: str, **data: Any) -> None:
    topic = f"user:{target.user_id}" if target.user_id is not None else f"unit:{target.unit_id}"
    uow.emit(topic, type_, **data)


async def _check_target(uow: UnitOfWork, a: Assignee) -> None:
    if a.user_id is not None:
        user = await uow.session.get(User, a.user_id)
        if user is None or not user.active:
            raise NotFound("Không tìm thấy người nhận.", user_id=a.user_id)
    else:
        unit = await uow.session.get(Unit, a.unit_id)
        if unit is None:
            raise NotFound("Không tìm thấy đơn vị nhận.", unit_id=a.unit_id)
        org_admin.require_open(unit)


async def _grant(uow: UnitOfWork, doc_id: int | None, reason: str, a: Assignee) -> None:
    if doc_id is not None:
        await access.grant(uow, doc_id, reason, user_id=a.user_id, unit_id=a.unit_id)
        search.keys_changed(uow, [doc_id])


def visible_tasks(viewer: access.Viewer) -> Any:
    """Tasks whose document the viewer may see; document-less tasks (from meetings) only to their
    assigner and handlers."""
    doc_visible = exists(select(Document.id).where(Document.id == Task.document_id, access.visible(viewer)))
    own = [Task.assigned_by == viewer.user_id, Task.assignee_user_id == viewer.user_id]
    if viewer.unit_ids:
        own.append(Task.assignee_unit_id.in_(sorted(viewer.unit_ids)))
    return or_(and_(Task.document_id.is_not(None), doc_visible), and_(Task.document_id.is_(None), or_(*own)))


async def get_task(uow: UnitOfWork, actor: User, task_id: int, *, lock: bool = False) -> Task:
    """A task the actor may see. ``lock``: take its row lock (PostgreSQL; SQLite's write lock already
    orders writers) and read it afresh, for a change that depends on its current state: two people
    completing, withdrawing or deciding at once are then ordered, and the second sees the first's result."""
    viewer = await access.viewer_for(uow, actor)
    query = select(Task).where(Task.id == task_id, visible_tasks(viewer))
    if lock:
        query = query.with_for_update(of=Task).execution_options(populate_existing=True)
    task = await uow.session.scalar(query)
    if task is None:
        raise NotFound("Không tìm thấy nhiệm vụ.")
    return task


async def _files(uow: UnitOfWork, actor: User, upload_ids: Sequence[int]) -> list[uploads.Upload]:
    return [await uploads.claim(uow, actor, i) for i in dict.fromkeys(upload_ids)]


# ---- services: submission and direction -------------------------------------------------------

def refuse_voided(doc: Document) -> None:
    if doc.status == Status.VOIDED:
        raise Conflict("Văn bản đã bị hủy vào sổ: không trình hoặc giao việc được.")


async def submit(uow: UnitOfWork, actor: User, document_id: int, to_user_id: int, note: str = "") -> Submission:
    """Trình: the clerk (or anyone handling the document) submits it to a leader."""
    doc = await get_document(uow, actor, document_id)
    if doc.direction != "in":
        raise Invalid("Chỉ văn bản đến được trình theo cách này.")
    refuse_voided(doc)
    leader = await uow.session.get(User, to_user_id)
    if leader is None or not leader.active or not leader.has_role(Role.LEADER):
        raise Invalid("Chỉ trình văn bản cho lãnh đạo.", field="to_user_id")
    pending = await uow.session.scalar(select(Submission.id).where(
        Submission.document_id == doc.id, Submission.to_user_id == leader.id, Submission.status == "pending"))
    if pending is not None:
        raise Conflict(f"Văn bản đã được trình {leader.full_name} và đang chờ ý kiến.")
    sub = Submission(document_id=doc.id, submitted_by=actor.id, to_user_id=leader.id, note=note.strip())
    uow.session.add(sub)
    if doc.status == Status.REGISTERED:
        doc.status = Status.SUBMITTED
    doc.updated_at = utcnow()
    await uow.session.flush()
    await access.grant(uow, doc.id, Reason.SUBMITTED, user_id=leader.id)
    search.keys_changed(uow, [doc.id])  # a grant and the status
    await audit.record(uow, actor, "document.submit", "document", doc.id, to=leader.username)
    uow.emit(f"user:{leader.id}", "document.submitted", document_id=doc.id, submission_id=sub.id)
    uow.emit(f"document:{doc.id}", "document.submitted", to_user_id=leader.id)
    return sub


async def direct(
    uow: UnitOfWork,
    actor: User,
    document_id: int,
    *,
    text: str,
    main: Assignee | dict[str, Any],
    collaborators: Sequence[Assignee | dict[str, Any]] = (),
    informed: Sequence[Assignee | dict[str, Any]] = (),
    deadline: dt.date | None = None,
    ink: Any = None,
) -> tuple[DirectionNote, list[Task]]:
    """Ý kiến chỉ đạo: a leader who may see the document assigns the main handler, collaborators,
    for-information recipients and a deadline (defaulting to the document's due date). The direction is
    written as text, by hand on the document's pages (bút phê, ``ink``: eoffice.ink), or both."""
    if not actor.has_role(Role.LEADER):
        raise Forbidden("Chỉ lãnh đạo được cho ý kiến chỉ đạo.")
    viewer = await access.viewer_for(uow, actor)
    doc = await get_document(uow, actor, document_id, viewer)
    refuse_voided(doc)
    pages = {a.id: a.page_count or 1 for a in (await uow.session.scalars(
        select(Attachment).where(Attachment.document_id == doc.id))).all() if a.viewable}
    handwriting = ink_module.clean(ink, pages)
    on_behalf = await _directing_for(uow, actor, viewer, doc)
    if not text.strip():
        if not handwriting:
            raise Invalid("Cần nhập ý kiến chỉ đạo hoặc bút phê trên văn bản.", field="text")
        text = INK_ONLY_TEXT
    main_a = Assignee.parse(main)
    collab = [Assignee.parse(c) for c in collaborators]
    info = [Assignee.parse(c) for c in informed]
    if main_a in collab:
        raise Invalid("Đơn vị chủ trì không đồng thời là đơn vị phối hợp.", field="collaborators")
    deadline = deadline or doc.due_date
    check_deadline(deadline, _today())
    for a in [main_a, *collab, *info]:
        await _check_target(uow, a)
    groups = await direction_candidates(uow, actor)
    await _refuse_unless_candidate(uow, actor, groups, main_a, "main", "chủ trì")
    for a in collab:
        await _refuse_unless_candidate(uow, actor, groups, a, "collaborators", "phối hợp")
    note = DirectionNote(document_id=doc.id, leader_id=actor.id, text=text.strip(), deadline=deadline,
                         ink=handwriting, on_behalf_of=on_behalf)
    uow.session.add(note)
    await uow.session.flush()
    tasks = []
    for a, role in [(main_a, TaskRole.MAIN), *((c, TaskRole.COLLAB) for c in dict.fromkeys(collab))]:
        task = Task(document_id=doc.id, direction_id=note.id, role=role, assignee_user_id=a.user_id,
                    assignee_unit_id=a.unit_id, assigned_by=actor.id, title=doc.summary[:500],
                    instruction=note.text, deadline=deadline)
        uow.session.add(task)
        tasks.append(task)
    await uow.session.flush()
    await access.grant(uow, doc.id, Reason.DIRECTED, user_id=actor.id)
    for a in [main_a, *collab]:
        await _grant(uow, doc.id, Reason.ASSIGNED, a)
    for a in info:
        await _grant(uow, doc.id, Reason.INFORMED, a)
    for sub in (await uow.session.scalars(select(Submission).where(
            Submission.document_id == doc.id, Submission.to_user_id.in_([actor.id, on_behalf or actor.id]),
            Submission.status == "pending"))).all():
        sub.status, sub.decided_at = "directed", utcnow()
    doc.status, doc.updated_at = Status.IN_PROGRESS, utcnow()
    search.keys_changed(uow, [doc.id])  # the director's grant and the status
    await audit.record(uow, actor, "document.direct", "document", doc.id, direction_id=note.id,
                       tasks=[t.id for t in tasks], deadline=deadline,
                       ink_pages=[(p["attachment_id"], p["page"]) for p in handwriting or []],
                       informed=[(a.user_id, a.unit_id) for a in info],
                       **await delegation.audit_fields(uow, actor, on_behalf))
    for task, a in zip(tasks, [main_a, *dict.fromkeys(collab)], strict=True):
        _notify(uow, a, "task.assigned", task_id=task.id, document_id=doc.id, role=task.role)
    for a in info:
        _notify(uow, a, "document.informed", document_id=doc.id)
    uow.emit(f"document:{doc.id}", "document.directed", direction_id=note.id)
    await edxml.record_status(uow, actor, doc.id, "03", "04")  # issue 9: edXML status back to the sender
    return note, tasks


async def _directing_for(uow: UnitOfWork, actor: User, viewer: access.Viewer, doc: Document) -> int | None:
    """Whom a leader directs for: None (themselves) when the document was submitted to them or they reach it
    on their own; else the leader it waits for or who holds it, through a delegation of ``direct``
    (``delegation.acting_for``, the one check)."""
    if not viewer.principals:
        return None
    pending = set((await uow.session.scalars(select(Submission.to_user_id).where(
        Submission.document_id == doc.id, Submission.status == "pending"))).all())
    own = access.can_see(dataclasses.replace(viewer, principals=frozenset()), await access.facts(uow, doc))
    if actor.id in pending or (own and not pending & viewer.principals):
        return None
    held = {u for u in (await uow.session.scalars(select(Grant.user_id).where(
        Grant.document_id == doc.id, Grant.user_id.in_(sorted(viewer.principals))))).all() if u is not None}
    return await delegation.acting_for(uow, actor, sorted(pending & viewer.principals) + sorted(held),
                                       delegation.DIRECT, "Ủy quyền bạn nhận không gồm việc chỉ đạo văn bản này.")


# ---- services: tasks ---------------------------------------------------------------------------

async def create_meeting_task(uow: UnitOfWork, actor: User, *, title: str, instruction: str,
                              assignee: Assignee | dict[str, Any], deadline: dt.date | None,
                              source: dict[str, Any]) -> Task:
    """A task with no document behind it, from a meeting conclusion.

    The meeting service has already checked that ``actor`` chairs or records that meeting
    (e-office knows nothing of meeting roles); here the task's own rules apply: the assignee
    exists, the deadline is not in the past. It then lives on the task board like any other.
    """
    target = Assignee.parse(assignee)
    if not title.strip():
        raise Invalid("Cần nội dung nhiệm vụ.", field="title")
    check_deadline(deadline, _today())
    await _check_target(uow, target)
    task = Task(document_id=None, role=TaskRole.MAIN, assignee_user_id=target.user_id,
                assignee_unit_id=target.unit_id, assigned_by=actor.id, title=title.strip()[:500],
                instruction=instruction, deadline=deadline)
    uow.session.add(task)
    await uow.session.flush()
    await audit.record(uow, actor, "task.create", "task", task.id, source=source, deadline=deadline,
                       assignee_user_id=target.user_id, assignee_unit_id=target.unit_id)
    _notify(uow, target, "task.assigned", task_id=task.id, document_id=None, role=task.role, source=source,
            message=f"Nhiệm vụ mới từ kết luận cuộc họp: {task.title}")
    return task


async def _handled_task(uow: UnitOfWork, actor: User, task_id: int) -> Task:
    task = await get_task(uow, actor, task_id, lock=True)
    if not handles(actor, task):
        raise Forbidden("Bạn không phải người xử lý nhiệm vụ này.")
    return task


def _open(task: Task) -> None:
    if task.status == TaskStatus.DONE:
        raise Conflict("Nhiệm vụ đã hoàn thành.")
    if task.status == TaskStatus.WITHDRAWN:
        raise Conflict("Nhiệm vụ đã bị thu hồi.")
    if task.status == TaskStatus.RETURNED:
        raise Conflict("Nhiệm vụ đã bị trả lại.")


async def pass_down(
    uow: UnitOfWork,
    actor: User,
    task_id: int,
    *,
    main_user_id: int,
    collaborator_ids: Sequence[int] = (),
    instruction: str = "",
    deadline: dt.date | None = None,
) -> list[Task]:
    """A unit head passes a task down to people of the unit (one main handler, collaborators)."""
    task = await _handled_task(uow, actor, task_id)
    _open(task)
    unit_id = task.assignee_unit_id if task.assignee_unit_id is not None else actor.unit_id
    if unit_id is None or not actor.has_role(Role.LEADER):
        raise Forbidden("Chỉ lãnh đạo đơn vị được giao lại nhiệm vụ.")
    deadline = deadline or task.deadline
    check_deadline(deadline, _today(), task.deadline)
    ids = list(dict.fromkeys([main_user_id, *collaborator_ids]))
    allowed = {u.id for u in await pass_down_candidates(uow, actor, task)}
    children = []
    for i, uid in enumerate(ids):
        field = "main_user_id" if i == 0 else "collaborator_ids"
        user = await uow.session.get(User, uid)
        if user is None or not user.active or user.unit_id != unit_id:
            raise Invalid("Chỉ giao lại cho người trong đơn vị.", field=field, user_id=uid)
        if uid not in allowed:
            raise Invalid("Không tự giao lại nhiệm vụ cho chính mình." if uid == actor.id else
                          f"«{user.full_name}» không thể nhận nhiệm vụ: chỉ giao lại cho lãnh đạo, chuyên viên của "
                          "đơn vị (không giao cho quản trị hệ thống, văn thư).", field=field, user_id=uid)
        child = Task(document_id=task.document_id, direction_id=task.direction_id, parent_id=task.id,
                     role=TaskRole.MAIN if i == 0 else TaskRole.COLLAB, assignee_user_id=uid, assigned_by=actor.id,
                     title=task.title, instruction=instruction.strip() or task.instruction, deadline=deadline)
        uow.session.add(child)
        children.append(child)
    await uow.session.flush()
    if task.status == TaskStatus.OPEN:
        task.status = TaskStatus.IN_PROGRESS
    task.updated_at = utcnow()
    uow.session.add(TaskUpdate(task_id=task.id, user_id=actor.id, kind="pass_down",
                               text=instruction.strip(), progress=None))
    for uid in ids:
        await _grant(uow, task.document_id, Reason.ASSIGNED, Assignee(user_id=uid))
    await audit.record(uow, actor, "task.pass_down", "task", task.id, children=[c.id for c in children])
    for c in children:
        uow.emit(f"user:{c.assignee_user_id}", "task.assigned", task_id=c.id, document_id=c.document_id,
                 role=c.role)
    if task.document_id is not None:
        uow.emit(f"document:{task.document_id}", "task.passed_down", task_id=task.id)
    return children


async def _roll_up(uow: UnitOfWork, task: Task) -> None:
    """Carry a change of ``task``'s progress or state up to the tasks it was passed down from
    (``rolled_up_progress``), each parent under its row lock so two sub-tasks changing at once
    are counted one after the other."""
    await uow.session.flush()
    parent_id = task.parent_id
    while parent_id is not None:
        parent = await uow.session.scalar(select(Task).where(Task.id == parent_id).with_for_update(of=Task)
                                          .execution_options(populate_existing=True))
        if parent is None or parent.status in (*CLOSED, TaskStatus.RETURNED):
            return
        children = (await uow.session.scalars(select(Task).where(Task.parent_id == parent.id))).all()
        progress = rolled_up_progress(children)
        if progress is None or progress == parent.progress:
            return
        parent.progress, parent.updated_at = progress, utcnow()
        if parent.status == TaskStatus.OPEN:
            parent.status = TaskStatus.IN_PROGRESS
        await uow.session.flush()
        if parent.document_id is not None:
            uow.emit(f"document:{parent.document_id}", "task.progress", task_id=parent.id, progress=progress)
        parent_id = parent.parent_id


async def post_update(uow: UnitOfWork, actor: User, task_id: int, *, text: str = "", progress: int | None = None,
                      upload_ids: Sequence[int] = ()) -> list[TaskUpdate]:
    """Progress (handlers only) or a comment (anyone who sees the task), with files."""
    task = await get_task(uow, actor, task_id)
    if progress is not None:
        if not handles(actor, task):
            raise Forbidden("Chỉ người xử lý được cập nhật tiến độ.")
        _open(task)
        if not 0 <= progress <= 100:
            raise Invalid("Tiến độ phải từ 0 đến 100%.", field="progress")
    files = await _files(uow, actor, upload_ids)
    if not text.strip() and progress is None and not files:
        raise Invalid("Cần nhập nội dung, tiến độ hoặc tệp.")
    kind = "progress" if progress is not None else "comment"
    rows = [TaskUpdate(task_id=task.id, user_id=actor.id, kind=kind, text=text.strip(), progress=progress)]
    rows += [TaskUpdate(task_id=task.id, user_id=actor.id, kind="file", blob_key=f.blob_key, filename=f.filename,
                        content_type=f.content_type, size=f.size) for f in files]
    uow.session.add_all(rows)
    if progress is not None:
        task.progress = progress
        if task.status == TaskStatus.OPEN:
            task.status = TaskStatus.IN_PROGRESS
    task.updated_at = utcnow()
    await uow.session.flush()
    if progress is not None:
        await _roll_up(uow, task)
    await audit.record(uow, actor, f"task.{kind}", "task", task.id, progress=progress,
                       files=[f.filename for f in files])
    uow.emit(f"user:{task.assigned_by}", f"task.{kind}", task_id=task.id)
    if task.document_id is not None:
        uow.emit(f"document:{task.document_id}", f"task.{kind}", task_id=task.id, progress=task.progress)
    return rows


async def return_task(uow: UnitOfWork, actor: User, task_id: int, reason: str) -> Task:
    """Trả lại: the handler hands the task back to whoever assigned it, with a reason."""
    task = await _handled_task(uow, actor, task_id)
    _open(task)
    if not reason.strip():
        raise Invalid("Cần nêu lý do trả lại.", field="reason")
    task.status, task.updated_at = TaskStatus.RETURNED, utcnow()
    uow.session.add(TaskUpdate(task_id=task.id, user_id=actor.id, kind="return", text=reason.strip()))
    await _roll_up(uow, task)
    await audit.record(uow, actor, "task.return", "task", task.id, reason=reason.strip())
    uow.emit(f"user:{task.assigned_by}", "task.returned", task_id=task.id)
    if task.document_id is not None:
        uow.emit(f"document:{task.document_id}", "task.returned", task_id=task.id)
    return task


async def request_extension(uow: UnitOfWork, actor: User, task_id: int, new_deadline: dt.date,
                            reason: str) -> ExtensionRequest:
    task = await _handled_task(uow, actor, task_id)
    _open(task)
    if not reason.strip():
        raise Invalid("Cần nêu lý do xin gia hạn.", field="reason")
    if task.deadline is None:
        raise Invalid("Nhiệm vụ không có hạn xử lý.")
    if new_deadline <= task.deadline:
        raise Invalid("Hạn mới phải sau hạn hiện tại.", field="new_deadline")
    if await uow.session.scalar(select(ExtensionRequest.id).where(
            ExtensionRequest.task_id == task.id, ExtensionRequest.status == "pending")):
        raise Conflict("Đã có một đề nghị gia hạn đang chờ.")
    req = ExtensionRequest(task_id=task.id, requested_by=actor.id, old_deadline=task.deadline,
                           new_deadline=new_deadline, reason=reason.strip())
    uow.session.add(req)
    uow.session.add(TaskUpdate(task_id=task.id, user_id=actor.id, kind="extension", text=reason.strip()))
    await uow.session.flush()
    await audit.record(uow, actor, "task.extension_request", "task", task.id, request_id=req.id,
                       new_deadline=new_deadline)
    uow.emit(f"user:{task.assigned_by}", "task.extension_requested", task_id=task.id, request_id=req.id)
    return req


async def decide_extension(uow: UnitOfWork, actor: User, request_id: int, *, approve: bool,
                           note: str = "") -> ExtensionRequest:
    """The assigner approves (the deadline moves) or refuses (with a note) an extension request."""
    req = await uow.session.get(ExtensionRequest, request_id)
    if req is None:
        raise NotFound("Không tìm thấy đề nghị gia hạn.")
    task = await get_task(uow, actor, req.task_id, lock=True)  # the task's lock orders decisions on its requests
    await uow.session.refresh(req)  # as it is now, after whoever decided before us
    if task.assigned_by != actor.id:
        raise Forbidden("Chỉ người giao nhiệm vụ được duyệt gia hạn.")
    if req.status != "pending":
        raise Conflict("Đề nghị gia hạn đã được xử lý.")
    if not approve and not note.strip():
        raise Invalid("Cần nêu lý do từ chối.", field="note")
    req.status = "approved" if approve else "refused"
    req.decided_by, req.decided_at, req.note = actor.id, utcnow(), note.strip()
    if approve:
        task.deadline = req.new_deadline
        task.updated_at = utcnow()
    await audit.record(uow, actor, f"task.extension_{req.status}", "task", task.id, request_id=req.id,
                       deadline=task.deadline)
    uow.emit(f"user:{req.requested_by}", f"task.extension_{req.status}", task_id=task.id, request_id=req.id)
    return req


@dataclass
class SubResults:
    """What the tasks passed down from a task produced, for its handler's one-step confirmation."""

    done: list[tuple[Task, str]]  # (live child done, its handler's name), main first
    open: list[Task]  # live children not done yet
    files: list[TaskUpdate]  # the files posted on the done children

    @property
    def ready(self) -> bool:
        """Every live sub-task is done: the handler may confirm with their results alone."""
        return bool(self.done) and not self.open

    def text(self) -> str:
        lines = [f"- {name} ({'chủ trì' if c.role == TaskRole.MAIN else 'phối hợp'}): {c.result or 'Hoàn thành'}"
                 for c, name in self.done]
        return "Kết quả của cấp dưới:\n" + "\n".join(lines) if lines else ""


async def sub_results(uow: UnitOfWork, task: Task) -> SubResults:
    children = (await uow.session.scalars(select(Task).where(
        Task.parent_id == task.id, Task.status.not_in((TaskStatus.WITHDRAWN, TaskStatus.RETURNED)))
        .order_by(Task.role != TaskRole.MAIN, Task.id))).all()
    done = [c for c in children if c.status == TaskStatus.DONE]
    names = {u.id: u.full_name for u in (await uow.session.scalars(
        select(User).where(User.id.in_([c.assignee_user_id for c in done if c.assignee_user_id])))).all()}
    files = list((await uow.session.scalars(select(TaskUpdate).where(
        TaskUpdate.task_id.in_([c.id for c in done]), TaskUpdate.blob_key.is_not(None))
        .order_by(TaskUpdate.id))).all()) if done else []
    return SubResults([(c, names.get(c.assignee_user_id or 0, "")) for c in done],
                      [c for c in children if c.status != TaskStatus.DONE], files)


async def complete(uow: UnitOfWork, actor: User, task_id: int, *, result: str, upload_ids: Sequence[int] = (),
                   result_document_id: int | None = None) -> Task:
    """Completion with its result: text, files, or the outgoing document that answers it. When
    every top-level main task of a document is done, the document is done.

    A task passed down (the unit head's) is confirmed in one step: the results of its done
    sub-tasks are attached, their texts listed under the head's own (which may then be empty once
    every sub-task is done) and their files linked to it; its result document is the main
    sub-task's unless the head gives one. When every live sub-task was done, the task counts as
    done when the last of them was (what the statistics already showed): the head's confirmation
    attaches their work, it does not make the unit late."""
    task = await _handled_task(uow, actor, task_id)
    _open(task)
    subs = await sub_results(uow, task)
    if not result.strip() and not upload_ids and result_document_id is None and not subs.ready:
        raise Invalid("Cần nêu kết quả xử lý." if not subs.open else
                      f"Cần nêu kết quả xử lý: còn {len(subs.open)} nhiệm vụ giao lại chưa hoàn thành.",
                      field="result")
    if result_document_id is not None:
        await get_document(uow, actor, result_document_id)
    files = await _files(uow, actor, upload_ids)
    if result_document_id is None:
        result_document_id = next((c.result_document_id for c, _ in subs.done if c.result_document_id), None)
    text = "\n\n".join(x for x in (result.strip(), subs.text()) if x)
    now = utcnow()
    done_at = max((c.completed_at or now for c, _ in subs.done), default=now) if subs.ready else now
    task.status, task.progress, task.result = TaskStatus.DONE, 100, text
    task.result_document_id, task.completed_at, task.updated_at = result_document_id, done_at, now
    uow.session.add(TaskUpdate(task_id=task.id, user_id=actor.id, kind="complete", text=text, progress=100))
    uow.session.add_all([TaskUpdate(task_id=task.id, user_id=actor.id, kind="file", blob_key=f.blob_key,
                                    filename=f.filename, content_type=f.content_type, size=f.size) for f in files])
    uow.session.add_all([TaskUpdate(task_id=task.id, user_id=f.user_id, kind="file", blob_key=f.blob_key,
                                    text="Kết quả của cấp dưới", filename=f.filename, content_type=f.content_type,
                                    size=f.size) for f in subs.files])
    await uow.session.flush()
    await _roll_up(uow, task)
    if task.document_id is not None:
        remaining = await uow.session.scalar(select(Task.id).where(
            Task.document_id == task.document_id, Task.parent_id.is_(None), Task.role == TaskRole.MAIN,
            Task.status.not_in(CLOSED)).limit(1))
        if remaining is None:
            doc = await uow.session.get(Document, task.document_id)
            if doc is not None:
                doc.status, doc.updated_at = Status.DONE, utcnow()
                search.keys_changed(uow, [doc.id])
                await edxml.record_status(uow, actor, doc.id, "06")  # issue 9: edXML status back to the sender
    await audit.record(uow, actor, "task.complete", "task", task.id, result_document_id=result_document_id,
                       files=[f.filename for f in files], on_time=deadline_state(task, _today()) == "on_time",
                       sub_tasks=[c.id for c, _ in subs.done], sub_files=[f.filename for f in subs.files])
    uow.emit(f"user:{task.assigned_by}", "task.completed", task_id=task.id)
    if task.document_id is not None:
        uow.emit(f"document:{task.document_id}", "task.completed", task_id=task.id)
    return task


# ---- services: the assigner takes a task back ---------------------------------------------------

async def _assigned_task(uow: UnitOfWork, actor: User, task_id: int) -> Task:
    task = await get_task(uow, actor, task_id, lock=True)
    if task.assigned_by != actor.id:
        raise Forbidden("Chỉ người giao nhiệm vụ được thu hồi hoặc giao cho người khác.")
    if task.status in CLOSED:
        raise Conflict("Nhiệm vụ đã hoàn thành." if task.status == TaskStatus.DONE else "Nhiệm vụ đã bị thu hồi.")
    return task


async def _withdraw_below(uow: UnitOfWork, task: Task) -> list[Task]:
    """Withdraw the open tasks passed down from ``task`` (the old handler's delegation)."""
    out: list[Task] = []
    parents = [task.id]
    while parents:
        rows = (await uow.session.scalars(select(Task).where(
            Task.parent_id.in_(parents), Task.status.not_in(CLOSED)))).all()
        for c in rows:
            c.status, c.updated_at = TaskStatus.WITHDRAWN, utcnow()
        out.extend(rows)
        parents = [c.id for c in rows]
    return out


def _target_of(task: Task) -> Assignee:
    return Assignee(user_id=task.assignee_user_id) if task.assignee_user_id is not None \
        else Assignee(unit_id=task.assignee_unit_id)


async def withdraw(uow: UnitOfWork, actor: User, task_id: int, reason: str) -> Task:
    """Thu hồi: the assigner takes back an unfinished task, with the tasks passed down from it."""
    task = await _assigned_task(uow, actor, task_id)
    if not reason.strip():
        raise Invalid("Cần nêu lý do thu hồi.", field="reason")
    below = await _withdraw_below(uow, task)
    task.status, task.updated_at = TaskStatus.WITHDRAWN, utcnow()
    uow.session.add(TaskUpdate(task_id=task.id, user_id=actor.id, kind="withdraw", text=reason.strip()))
    await _roll_up(uow, task)
    await audit.record(uow, actor, "task.withdraw", "task", task.id, reason=reason.strip(),
                       also=[c.id for c in below])
    message = f"Nhiệm vụ «{task.title[:120]}» đã được thu hồi: {reason.strip()}"
    for t in [task, *below]:
        _notify(uow, _target_of(t), "task.withdrawn", task_id=t.id, document_id=t.document_id, message=message)
    if task.document_id is not None:
        uow.emit(f"document:{task.document_id}", "task.withdrawn", task_id=task.id)
    return task


async def withdraw_document_tasks(uow: UnitOfWork, actor: User, document_id: int, reason: str) -> list[Task]:
    """Withdraw every unfinished task of a document whose registration was voided
    (``eoffice.corrections.void_document`` checks the actor). Each handler is told, as by ``withdraw``."""
    rows = list((await uow.session.scalars(select(Task).where(
        Task.document_id == document_id, Task.status.not_in(CLOSED)).order_by(Task.id))).all())
    now = utcnow()
    message = f"Văn bản đã bị hủy vào sổ, nhiệm vụ được thu hồi: {reason.strip()}"
    for t in rows:
        t.status, t.updated_at = TaskStatus.WITHDRAWN, now
        uow.session.add(TaskUpdate(task_id=t.id, user_id=actor.id, kind="withdraw", text=message))
    await uow.session.flush()
    for t in rows:
        _notify(uow, _target_of(t), "task.withdrawn", task_id=t.id, document_id=t.document_id, message=message)
        uow.emit(f"document:{document_id}", "task.withdrawn", task_id=t.id)
    return rows


async def reassign(uow: UnitOfWork, actor: User, task_id: int, assignee: Assignee | dict[str, Any] | None,
                   reason: str = "") -> Task:
    """The assigner hands an unfinished task to someone else: the new handler starts afresh (the
    tasks the old one passed down are withdrawn), the old one is told and keeps read access."""
    task = await _assigned_task(uow, actor, task_id)
    target, old = Assignee.parse(assignee), _target_of(task)
    if target == old:
        raise Invalid("Nhiệm vụ đang được giao cho người/đơn vị này.", field="assignee")
    await _check_target(uow, target)
    allowed = await reassign_candidates(uow, actor, task)
    if allowed is not None:
        await _refuse_unless_candidate(uow, actor, allowed, target, "assignee",
                                       "chủ trì" if task.role == TaskRole.MAIN else "phối hợp")
    below = await _withdraw_below(uow, task)
    task.assignee_user_id, task.assignee_unit_id = target.user_id, target.unit_id
    task.status, task.progress, task.updated_at = TaskStatus.OPEN, 0, utcnow()
    uow.session.add(TaskUpdate(task_id=task.id, user_id=actor.id, kind="reassign", text=reason.strip()))
    await _roll_up(uow, task)
    await _grant(uow, task.document_id, Reason.ASSIGNED, target)
    await audit.record(uow, actor, "task.reassign", "task", task.id, reason=reason.strip(),
                       from_user_id=old.user_id, from_unit_id=old.unit_id, to_user_id=target.user_id,
                       to_unit_id=target.unit_id, withdrawn=[c.id for c in below])
    message = f"Nhiệm vụ «{task.title[:120]}» đã được giao cho người khác."
    for t, a in [(task, old), *((c, _target_of(c)) for c in below)]:
        _notify(uow, a, "task.withdrawn", task_id=t.id, document_id=t.document_id, message=message)
    _notify(uow, target, "task.assigned", task_id=task.id, document_id=task.document_id, role=task.role)
    if task.document_id is not None:
        uow.emit(f"document:{task.document_id}", "task.reassigned", task_id=task.id)
    return task


# ---- reading ----------------------------------------------------------------------------------

async def task_tree(uow: UnitOfWork, actor: User, document_id: int) -> dict[str, Any]:
    """Submissions, directions and the task tree of a document, for its page."""
    doc = await get_document(uow, actor, document_id)
    s = uow.session
    subs = (await s.scalars(select(Submission).where(Submission.document_id == doc.id).order_by(Submission.id))).all()
    notes = (await s.scalars(select(DirectionNote).where(DirectionNote.document_id == doc.id)
                             .order_by(DirectionNote.id))).all()
    tasks = (await s.scalars(select(Task).where(Task.document_id == doc.id).order_by(Task.id))).all()
    today = _today()
    nodes = {t.id: {**t.public(today), "children": []} for t in tasks}
    roots: list[dict[str, Any]] = []
    for t in tasks:
        (nodes[t.parent_id]["children"] if t.parent_id in nodes else roots).append(nodes[t.id])
    return {
        "submissions": [{"id": x.id, "submitted_by": x.submitted_by, "to_user_id": x.to_user_id, "note": x.note,
                         "status": x.status, "created_at": x.created_at.isoformat()} for x in subs],
        "directions": [{"id": n.id, "leader_id": n.leader_id, "on_behalf_of": n.on_behalf_of, "text": n.text,
                        "deadline": n.deadline.isoformat() if n.deadline else None, "ink": n.ink,
                        "created_at": n.created_at.isoformat()} for n in notes],
        "tasks": roots,
    }


async def update_file(uow: UnitOfWork, actor: User, update_id: int) -> TaskUpdate:
    """A file posted on a task, for whoever may see that task (NotFound otherwise, as for tasks)."""
    row = await uow.session.get(TaskUpdate, update_id)
    if row is None or row.blob_key is None:
        raise NotFound("Không tìm thấy tệp.")
    await get_task(uow, actor, row.task_id)
    return row


async def task_updates(uow: UnitOfWork, actor: User, task_id: int) -> list[TaskUpdate]:
    task = await get_task(uow, actor, task_id)
    return list((await uow.session.scalars(
        select(TaskUpdate).where(TaskUpdate.task_id == task.id).order_by(TaskUpdate.id))).all())


def _mine(actor: User) -> Any:
    conds = [Task.assignee_user_id == actor.id]
    if actor.has_role(Role.LEADER) and actor.unit_id is not None:
        conds.append(Task.assignee_unit_id == actor.unit_id)
    return or_(*conds)


async def my_tasks(uow: UnitOfWork, actor: User, *, scope: str = "assigned_to_me", status: str | None = None,
                   state: str | None = None, limit: int = 100, offset: int = 0, open_only: bool = False
                   ) -> list[Task]:
    """Task board: tasks I handle (``assigned_to_me``) or gave (``assigned_by_me``); ``state``
    filters overdue / due_soon, ``open_only`` leaves out done and withdrawn ones. Overdue first,
    then by deadline; ``limit`` and ``offset`` page through them."""
    viewer = await access.viewer_for(uow, actor)
    q = select(Task).where(visible_tasks(viewer))
    q = q.where(_mine(actor) if scope == "assigned_to_me" else Task.assigned_by == actor.id)
    if status:
        q = q.where(Task.status == status)
    elif open_only:
        q = q.where(Task.status.not_in(CLOSED))
    today = _today()
    if state == "overdue":
        q = q.where(Task.status.not_in(CLOSED), Task.deadline < today)
    elif state == "due_soon":
        q = q.where(Task.status.not_in(CLOSED), Task.deadline >= today,
                    Task.deadline <= today + dt.timedelta(days=DUE_SOON_DAYS))
    rows = (await uow.session.scalars(q.order_by(Task.deadline.is_(None), Task.deadline, Task.id)
                                      .limit(max(1, min(limit, 500))).offset(max(0, offset)))).all()
    return list(rows)


async def inbox(uow: UnitOfWork, actor: User) -> dict[str, Any]:
    """What awaits the user: documents submitted to them, open tasks they handle, documents for
    information directed to them in the last 30 days."""
    viewer = await access.viewer_for(uow, actor)
    s = uow.session
    # a deputy acting for a leader (ủy quyền) sees the leader's queue too
    queue = [actor.id, *await delegation.principals(uow, actor, delegation.DIRECT)]
    submitted = (await s.scalars(select(Document).join(Submission, Submission.document_id == Document.id).where(
        Submission.to_user_id.in_(queue), Submission.status == "pending", Document.status != Status.VOIDED,
        access.visible(viewer))
        .order_by(Submission.created_at.desc()))).all()
    open_tasks = (await s.scalars(select(Task).where(
        _mine(actor), Task.status.in_([TaskStatus.OPEN, TaskStatus.IN_PROGRESS]), visible_tasks(viewer))
        .order_by(Task.deadline.is_(None), Task.deadline, Task.id))).all()
    since = utcnow() - dt.timedelta(days=30)
    targets = [Grant.user_id == actor.id]
    if viewer.unit_ids:
        targets.append(Grant.unit_id.in_(sorted(viewer.unit_ids)))
    informed = (await s.scalars(select(Document).where(
        exists(select(Grant.id).where(Grant.document_id == Document.id,
                                             Grant.reason == Reason.INFORMED,
                                             Grant.created_at >= since, or_(*targets))),
        Document.status != Status.VOIDED, access.visible(viewer)).order_by(Document.id.desc()).limit(50))).all()
    today = _today()
    return {"submitted": [d.public() for d in submitted], "tasks": [t.public(today) for t in open_tasks],
            "informed": [d.public() for d in informed]}


async def digest(uow: UnitOfWork, actor: User, today: dt.date | None = None) -> dict[str, list[dict[str, Any]]]:
    today = today or _today()
    viewer = await access.viewer_for(uow, actor)
    rows = (await uow.session.scalars(select(Task).where(
        _mine(actor), Task.status.not_in(CLOSED), Task.deadline.is_not(None),
        Task.deadline <= today + dt.timedelta(days=DUE_SOON_DAYS), visible_tasks(viewer))
        .order_by(Task.deadline))).all()
    out: dict[str, list[dict[str, Any]]] = {"overdue": [], "due_soon": []}
    for t in rows:
        out[deadline_state(t, today)].append(t.public(today))
    return out


async def send_daily_digests(uow: UnitOfWork, today: dt.date | None = None) -> int:
    """Publish each user's digest of overdue and due-soon tasks on ``user:{id}``; returns how many
    users got one. Run once a day (cron / the server's scheduler) and commit."""
    today = today or _today()
    users = (await uow.session.scalars(select(User).where(User.active.is_(True)).order_by(User.id))).all()
    sent = 0
    for user in users:
        d = await digest(uow, user, today)
        if d["overdue"] or d["due_soon"]:
            uow.emit(f"user:{user.id}", "tasks.digest", date=today.isoformat(),
                     overdue=[t["id"] for t in d["overdue"]], due_soon=[t["id"] for t in d["due_soon"]],
                     message=f"Nhắc việc: {len(d['overdue'])} nhiệm vụ quá hạn, "
                             f"{len(d['due_soon'])} nhiệm vụ sắp đến hạn.")
            sent += 1
    if sent:
        await audit.record(uow, None, "tasks.digest", "digest", today.isoformat(), users=sent)
    return sent
