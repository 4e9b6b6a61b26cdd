"""Statistics of task handling per agency, unit and person for a period.

For the tasks assigned in the period (their creation date, agency time): received, done on time,
done late, in progress, overdue (open past its deadline as of the end of the period, or today if
earlier), and the on-time rate = done on time / done, in percent, two decimals (the figure
agencies publish, such as 98.63%).

Levels: ``agency`` counts each document's top-level main task (one per handled document);
``unit`` counts tasks assigned to a unit plus top-level tasks assigned directly to its people;
``person`` counts every task assigned to a person, passed-down ones included.

Received (tiếp nhận) counts documents, not tasks: a row counts each document once however many of
its tasks fall in it (a unit that is main handler and whose specialist also collaborates, a person
given the same document twice), and the total counts each document once across the rows; tasks
with no document (from meetings) count one each. A document's tasks in a row are merged into one
state: overdue if any is, else in progress if any is, else late if any was done late, else on time.

A task passed down is done, for these figures, when every live task passed down from it is done
(at the time the last of them was), before its handler confirms it in one step
(``tasks.complete``, which keeps that time): the specialists' work counts when it is finished.

A withdrawn task (thu hồi) is counted nowhere. A returned task (trả lại) went back to whoever
assigned it, who gives it to someone else (``tasks.reassign``: the same task, counted for the new
handler from then on) or takes it back: it is not the handler's work, neither pending nor
overdue, so the ``unit`` and ``person`` levels leave it out. The agency still has the document to
handle, so the ``agency`` level keeps counting it as pending (in progress, or overdue past its
deadline): handing a document back does not handle it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from eoffice import registers
from eoffice.org import Role, Unit, User
from eoffice.registers import AGENCY_TZ, local_date
from eoffice.schema.documents import Document
from eoffice.schema.tasks import Task, TaskRole, TaskStatus
from storage.db import UnitOfWork, utcnow
from storage.errors import Forbidden, Invalid


@dataclass
class Counts:
    received: int = 0
    on_time: int = 0
    late: int = 0
    in_progress: int = 0
    overdue: int = 0

    @property
    def on_time_rate(self) -> float | None:
        done = self.on_time + self.late
        return round(100 * self.on_time / done, 2) if done else None

    def add(self, bucket: str) -> None:
        self.received += 1
        setattr(self, bucket, getattr(self, bucket) + 1)

    def public(self) -> dict[str, Any]:
        return {**asdict(self), "on_time_rate": self.on_time_rate}


def counts_for_handler(status: str) -> bool:
    """Whether a task is its handler's work in the ``unit`` and ``person`` figures: not once it was
    withdrawn or returned (trả lại) to its assigner."""
    return status not in (TaskStatus.WITHDRAWN, TaskStatus.RETURNED)


def bucket(status: str, deadline: dt.date | None, completed_at: dt.datetime | None, as_of: dt.date) -> str:
    """on_time | late | in_progress | overdue (an open or returned task: pending, overdue past its deadline)."""
    if status == TaskStatus.DONE and completed_at is not None and local_date(completed_at) <= as_of:
        if deadline is None or local_date(completed_at) <= deadline:
            return "on_time"
        return "late"
    if deadline is not None and deadline < as_of:
        return "overdue"
    return "in_progress"


# merged state of a document's tasks in a row: the first of these that any of them is in
MERGE_ORDER = ("overdue", "in_progress", "late", "on_time")


def merge(a: str | None, b: str) -> str:
    return b if a is None or MERGE_ORDER.index(b) < MERGE_ORDER.index(a) else a


async def rolled_up_done(uow: UnitOfWork, open_ids: list[int]) -> dict[int, dt.datetime]:
    """For open tasks with tasks passed down from them: when the last of their live sub-tasks was
    done, if all are (recursively: a sub-task is itself done when its own sub-tasks all are)."""
    nodes: dict[int, tuple[int | None, str, dt.datetime | None]] = {}
    kids: dict[int, list[int]] = defaultdict(list)
    frontier = list(open_ids)
    while frontier:
        batch, frontier = frontier[:500], frontier[500:]
        rows = (await uow.session.execute(select(Task.id, Task.parent_id, Task.status, Task.completed_at).where(
            Task.parent_id.in_(batch), Task.status.not_in((TaskStatus.WITHDRAWN, TaskStatus.RETURNED))))).all()
        for r in rows:
            if r.id not in nodes:
                nodes[r.id] = (r.parent_id, r.status, r.completed_at)
                kids[r.parent_id].append(r.id)
                if r.status != TaskStatus.DONE:
                    frontier.append(r.id)
    memo: dict[int, dt.datetime | None] = {}

    def done_at(task_id: int) -> dt.datetime | None:
        if task_id not in memo:
            memo[task_id] = None  # a cycle, should one exist, is not done
            node = nodes.get(task_id)
            if node is not None and node[1] == TaskStatus.DONE:
                memo[task_id] = node[2]
            elif kids.get(task_id):
                times = [done_at(k) for k in kids[task_id]]
                memo[task_id] = None if any(t is None for t in times) else max(t for t in times if t)
        return memo[task_id]

    return {i: t for i in open_ids if kids.get(i) and (t := done_at(i)) is not None}


def _bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    if date_to < date_from:
        raise Invalid("Khoảng thời gian không hợp lệ.")
    start = dt.datetime.combine(date_from, dt.time(), AGENCY_TZ)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), AGENCY_TZ)
    return start, end


async def statistics(uow: UnitOfWork, actor: User, *, date_from: dt.date, date_to: dt.date,
                     level: str = "agency") -> dict[str, Any]:
    """Figures for the actor's agency. Leaders, clerks and administrators of the agency get every
    unit and person; anyone else gets their own figures only. Counts only: no titles."""
    agency = await registers.agency_of(uow, actor.unit_id)
    start, end = _bounds(date_from, date_to)
    as_of = min(date_to, local_date(utcnow()))
    wide = actor.has_role(Role.LEADER, Role.CLERK, Role.ADMIN)
    if level not in ("agency", "unit", "person"):
        raise Invalid("Cấp thống kê phải là agency, unit hoặc person.", field="level")
    if not wide and level != "person":
        raise Forbidden("Chỉ lãnh đạo, văn thư xem thống kê của cơ quan, đơn vị.")
    units = (await uow.session.scalars(select(Unit))).all()
    in_agency = _subtree(units, agency.id)
    cols = (Task.id, Task.status, Task.deadline, Task.completed_at, Task.assignee_user_id, Task.assignee_unit_id,
            Task.parent_id, Task.role, Task.document_id)
    # a withdrawn task (thu hồi) was taken back by its assigner: nobody's work, neither late nor pending
    q = select(*cols).where(Task.created_at >= start, Task.created_at < end, Task.status != TaskStatus.WITHDRAWN)
    groups: dict[Any, dict[Any, str]] = defaultdict(dict)  # row -> document (or task) -> merged state
    everything: dict[Any, str] = {}  # document (or task) -> merged state, for the total
    labels: dict[Any, str] = {}

    def put(group: Any, row: Any, b: str) -> None:
        item = ("document", row.document_id) if row.document_id is not None else ("task", row.id)
        groups[group][item] = merge(groups[group].get(item), b)
        everything[item] = merge(everything.get(item), b)

    if level == "agency":
        q = q.join(Document, Document.id == Task.document_id).where(
            Document.agency_id == agency.id, Task.parent_id.is_(None), Task.role == TaskRole.MAIN)
    rows = (await uow.session.execute(q)).all()
    rolled = await rolled_up_done(uow, [r.id for r in rows if r.status in (TaskStatus.OPEN, TaskStatus.IN_PROGRESS)])

    def state(row: Any) -> str:
        if row.id in rolled:
            return bucket(TaskStatus.DONE, row.deadline, rolled[row.id], as_of)
        return bucket(row.status, row.deadline, row.completed_at, as_of)

    if level == "agency":
        for row in rows:
            put(agency.id, row, state(row))
        labels[agency.id] = agency.name
    else:
        people = {u.id: u for u in (await uow.session.scalars(
            select(User).where(User.unit_id.in_(in_agency)))).all()}
        unit_names = {u.id: u.name for u in units}
        for row in rows:
            if not counts_for_handler(row.status):  # returned: back with its assigner, not the handler's
                continue
            b = state(row)
            if level == "person":
                if row.assignee_user_id in people and (wide or row.assignee_user_id == actor.id):
                    put(row.assignee_user_id, row, b)
                    labels[row.assignee_user_id] = people[row.assignee_user_id].full_name
            elif row.assignee_unit_id in in_agency:
                put(row.assignee_unit_id, row, b)
                labels[row.assignee_unit_id] = unit_names[row.assignee_unit_id]
            elif row.assignee_user_id in people and row.parent_id is None:
                uid = people[row.assignee_user_id].unit_id
                if uid is not None:
                    put(uid, row, b)
                    labels[uid] = unit_names[uid]
    counts = {k: _count(v.values()) for k, v in groups.items()}
    total = _count(everything.values())
    out = sorted(({"id": k, "name": labels[k], **c.public()} for k, c in counts.items()), key=lambda r: r["name"])
    return {"agency_id": agency.id, "level": level, "from": date_from.isoformat(), "to": date_to.isoformat(),
            "as_of": as_of.isoformat(), "rows": out, "total": total.public()}


def _count(states: Any) -> Counts:
    c = Counts()
    for b in states:
        c.add(b)
    return c


def _subtree(units: Any, root: int) -> set[int]:
    children: dict[int | None, list[int]] = defaultdict(list)
    for u in units:
        children[u.parent_id].append(u.id)
    out, stack = set(), [root]
    while stack:
        n = stack.pop()
        out.add(n)
        # a nested agency keeps its own statistics
        stack.extend(c for c in children[n] if not next(x for x in units if x.id == c).is_agency)
    return out
