"""The e-office's live topics on the WebSocket hub: who may listen, and what a client too far
behind to replay the log gets instead (a snapshot built from the database, for that user).

``document:{id}`` carries a document's events (registration, text extraction, submission,
direction, tasks, drafts and their approval chain, issue, edXML status). Its listeners are whoever
may see the document; its snapshot is the document as ``GET /api/documents/{id}`` shows it: the
document, attachments, text-extraction jobs, submissions, directions and task tree, plus for an
outgoing document its versions, approval steps and chain.

``unit:{id}`` carries what is addressed to a unit rather than a person (a task assigned to the
unit, a document sent to it for information, a task withdrawn from it) and, for an agency, what
concerns its registers (a draft approved and waiting for a number, a document received from
another agency). Its listeners are the unit's leaders and, for an agency, its clerks (the
viewer's unit grants, ``eoffice.access``); its snapshot is the unit's open tasks, documents
sent to it for information, the agency's approved drafts to issue and registered documents not
yet submitted, with their counts, each filtered by the access rule of the reader.

Nothing here trusts the topic beyond its id: every part is read through the same access rule as
the pages and the API, so a snapshot never shows more than the reader may see.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from eoffice import access, corrections, documents, outgoing, registers, tasks
from eoffice.live_registry import TopicRegistry
from eoffice.org import User
from eoffice.schema.documents import Document, Grant, Reason, Status
from eoffice.schema.tasks import DUE_SOON_DAYS, Task, TaskStatus
from storage.db import UnitOfWork, utcnow
from storage.errors import NotFound

DOCUMENT_PREFIX = "document:"
UNIT_PREFIX = "unit:"
ACCESS_EVENTS = ("document.recalled", "document.updated", "document.superseded", "task.withdrawn",
                 "task.reassigned", "draft.returned")
LIST_LIMIT = 100  # items per list in a unit snapshot; the counts are exact
INFORMED_DAYS = 30  # as the inbox (eoffice.tasks.inbox)


def _topic_id(topic: str, prefix: str) -> int | None:
    if not topic.startswith(prefix):
        return None
    raw = topic[len(prefix):]
    return int(raw) if (raw.isascii() and raw.isdigit()) and len(raw) < 12 else None


# ---- document:{id} -----------------------------------------------------------------------------

async def document_view(uow: UnitOfWork, user: User, document_id: int) -> dict[str, Any]:
    """A document as its reader may see it (NotFound otherwise): the API's document detail and the
    ``document:`` snapshot are this one view."""
    doc = await documents.get_document(uow, user, document_id)
    atts = await documents.attachments_of(uow, doc)
    jobs = await documents.ingest_jobs_of(uow, doc)
    tree = await tasks.task_tree(uow, user, doc.id)
    fixes = await corrections.corrections_of(uow, user, doc.id)
    view: dict[str, Any] = {"document": doc.public(), "attachments": [a.public() for a in atts],
                            "ingest_jobs": [j.public() for j in jobs],
                            "corrections": [corrections.public(c) for c in fixes], **tree}
    if doc.direction == registers.Direction.OUT:
        view["draft"] = await outgoing.history(uow, user, doc.id)
    return view


async def authorize_document(uow: UnitOfWork, user: User, topic: str) -> bool:
    doc_id = _topic_id(topic, DOCUMENT_PREFIX)
    if doc_id is None:
        return False
    try:
        await documents.get_document(uow, user, doc_id)
    except NotFound:
        return False
    return True


async def document_snapshot(uow: UnitOfWork, user: User, topic: str) -> dict[str, Any]:
    doc_id = _topic_id(topic, DOCUMENT_PREFIX)
    if doc_id is None:
        return {}
    return await document_view(uow, user, doc_id)


# ---- unit:{id} ---------------------------------------------------------------------------------

async def _count(uow: UnitOfWork, query: Any) -> int:
    return int(await uow.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


async def unit_view(uow: UnitOfWork, user: User, unit_id: int) -> dict[str, Any]:
    """What awaits a unit, for one of its listeners (NotFound for anybody else)."""
    viewer = await access.viewer_for(uow, user)
    if unit_id not in viewer.unit_ids:
        raise NotFound("Không tìm thấy đơn vị.")
    s = uow.session
    today = registers.local_date(utcnow())
    open_q = select(Task).where(Task.assignee_unit_id == unit_id,
                                Task.status.in_([TaskStatus.OPEN, TaskStatus.IN_PROGRESS]),
                                tasks.visible_tasks(viewer))
    open_tasks = (await s.scalars(open_q.order_by(Task.deadline.is_(None), Task.deadline, Task.id)
                                  .limit(LIST_LIMIT))).all()
    overdue = await _count(uow, open_q.where(Task.deadline < today))
    due_soon = await _count(uow, open_q.where(
        Task.deadline >= today, Task.deadline <= today + dt.timedelta(days=DUE_SOON_DAYS)))

    since = utcnow() - dt.timedelta(days=INFORMED_DAYS)
    informed_q = select(Document).where(
        select(Grant.id).where(Grant.document_id == Document.id, Grant.unit_id == unit_id,
                                      Grant.reason == Reason.INFORMED,
                                      Grant.created_at >= since).exists(),
        access.visible(viewer))
    in_agency: ColumnElement[bool] = Document.agency_id == unit_id
    to_issue_q = select(Document).where(in_agency, Document.direction == registers.Direction.OUT,
                                        Document.status == Status.APPROVED, access.visible(viewer))
    registered_q = select(Document).where(in_agency, Document.direction == registers.Direction.IN,
                                          Document.status == Status.REGISTERED, access.visible(viewer))
    lists: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for name, q, order in (("informed", informed_q, Document.id.desc()),
                           ("to_issue", to_issue_q, Document.updated_at.desc()),
                           ("registered", registered_q, Document.id.desc())):
        rows = (await s.scalars(q.order_by(order).limit(LIST_LIMIT))).all()
        lists[name] = [d.public() for d in rows]
        counts[name] = len(rows) if len(rows) < LIST_LIMIT else await _count(uow, q)
    counts["open_tasks"] = len(open_tasks) if len(open_tasks) < LIST_LIMIT else await _count(uow, open_q)
    return {"unit_id": unit_id, "date": today.isoformat(),
            "counts": {**counts, "overdue": overdue, "due_soon": due_soon},
            "tasks": [t.public(today) for t in open_tasks], **lists}


async def authorize_unit(uow: UnitOfWork, user: User, topic: str) -> bool:
    unit_id = _topic_id(topic, UNIT_PREFIX)
    return unit_id is not None and unit_id in (await access.viewer_for(uow, user)).unit_ids


async def unit_snapshot(uow: UnitOfWork, user: User, topic: str) -> dict[str, Any]:
    unit_id = _topic_id(topic, UNIT_PREFIX)
    if unit_id is None:
        return {}
    return await unit_view(uow, user, unit_id)


def register(hub: TopicRegistry) -> None:
    """Wire the e-office's topics into the WebSocket hub (idempotent)."""
    hub.add_authorizer(DOCUMENT_PREFIX, authorize_document)
    hub.add_authorizer(UNIT_PREFIX, authorize_unit)
    hub.add_snapshot(DOCUMENT_PREFIX, document_snapshot)
    hub.add_snapshot(UNIT_PREFIX, unit_snapshot)
    # a document's (or a unit's) listeners are authorised again when its access may have shrunk
    hub.add_access_events(*ACCESS_EVENTS)


__all__ = ["authorize_document", "authorize_unit", "document_snapshot", "document_view", "register",
           "unit_snapshot", "unit_view"]
