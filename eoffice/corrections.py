"""Corrections (đính chính) and voiding (hủy vào sổ) of registered incoming documents.

The clerk of the registering agency may correct what was typed wrong at registration: each changed
field keeps its old and new value in ``document_corrections`` and in the audit log
(``document.correct``). Confidentiality is not corrected here: it decides who may see the document
and in which register series its number was taken.

A registration made by mistake is voided, never deleted: the number stays taken in its register
(``registers.allocate_number`` only counts on), the document is marked ``voided`` ("Đã hủy vào
sổ"), leaves the working lists, stays findable by search, and its open tasks are withdrawn.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from eoffice import audit, doctypes, documents, registers, search, tasks
from eoffice.org import Role, User
from eoffice.schema.documents import Correction, Document, Status
from eoffice.textfold import notation_key, sender_key
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

# the fields a clerk may correct, with their Vietnamese names (history, messages)
FIELD_LABELS = {
    "sender": "Cơ quan ban hành",
    "notation": "Số, ký hiệu",
    "date_issued": "Ngày ban hành",
    "doc_type": "Loại văn bản",
    "summary": "Trích yếu",
    "signer": "Người ký",
    "urgency": "Độ khẩn",
}


def _shown(field: str, value: Any) -> str:
    """A field's value as the history keeps it (dates ISO, codes as codes)."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def field_label(field: str) -> str:
    return FIELD_LABELS.get(field, field)


def value_text(field: str, value: str) -> str:
    """A stored value as people read it: names for codes, dd/mm/yyyy for dates."""
    if field == "doc_type" and value in doctypes.BY_CODE:
        return doctypes.BY_CODE[value].name
    if field == "urgency" and value in {u.value for u in doctypes.Urgency}:
        return doctypes.URGENCY_LABELS[doctypes.Urgency(value)]
    if field == "date_issued" and value:
        return dt.date.fromisoformat(value).strftime("%d/%m/%Y")
    return value


def public(c: Correction) -> dict[str, Any]:
    """A history entry as the API and the page show it."""
    return {**c.public(), "field_label": field_label(c.field), "old_text": value_text(c.field, c.old_value),
            "new_text": value_text(c.field, c.new_value)}


async def _clerk_document(uow: UnitOfWork, actor: User, document_id: int) -> Document:
    """The incoming document, if the actor is a clerk of the agency that registered it."""
    documents.require_clerk(actor)
    doc = await documents.get_document(uow, actor, document_id)
    agency = await registers.agency_of(uow, actor.unit_id)
    if doc.agency_id != agency.id or doc.direction != registers.Direction.IN:
        raise Forbidden("Chỉ văn thư của cơ quan đã vào sổ văn bản đến này được đính chính hoặc hủy vào sổ.")
    if doc.status == Status.VOIDED:
        raise Conflict("Văn bản đã bị hủy vào sổ: không đính chính hoặc hủy lại được.")
    return doc


async def may_correct(uow: UnitOfWork, actor: User, doc: Document) -> bool:
    """Whether the page offers correction and voiding to the actor (the services check again)."""
    if not actor.has_role(Role.CLERK) or doc.direction != registers.Direction.IN or doc.status == Status.VOIDED:
        return False
    try:
        agency = await registers.agency_of(uow, actor.unit_id)
    except NotFound:
        return False
    return agency.id == doc.agency_id


async def correct_document(uow: UnitOfWork, actor: User, document_id: int, changes: dict[str, Any],
                           reason: str = "") -> list[Correction]:
    """Correct fields of a registered incoming document (only the keys of ``changes``; a value
    equal to the current one is no change). Returns the corrections recorded (empty: nothing changed)."""
    if "confidentiality" in changes:
        raise Invalid("Không đính chính được độ mật: độ mật quyết định người được xem và sổ đăng ký của văn bản. "
                      "Hãy hủy vào sổ và đăng ký lại văn bản với độ mật đúng.", field="confidentiality")
    unknown = sorted(set(changes) - set(FIELD_LABELS))
    if unknown:
        raise Invalid(f"Không đính chính được trường «{unknown[0]}».", field=unknown[0])
    doc = await _clerk_document(uow, actor, document_id)
    new: dict[str, Any] = {k: (v.strip() if isinstance(v, str) else v) for k, v in changes.items()}
    if "doc_type" in new:
        doctypes.doc_type(new["doc_type"])
    if "urgency" in new:
        doctypes.urgency(new["urgency"])
    if "date_issued" in new and new["date_issued"] is None:
        raise Invalid("Cần nhập ngày ban hành.", field="date_issued")
    issued: dt.date | None = new.get("date_issued", doc.date_issued)
    documents.check_incoming_fields(
        sender=new.get("sender", doc.sender), summary=new.get("summary", doc.summary),
        date_issued=issued, due_date=doc.due_date,
        today=registers.local_date(utcnow()))
    made: list[Correction] = []
    reason = reason.strip()
    for field in FIELD_LABELS:
        if field not in new or new[field] == getattr(doc, field):
            continue
        old = getattr(doc, field)
        made.append(Correction(document_id=doc.id, field=field, old_value=_shown(field, old),
                               new_value=_shown(field, new[field]), reason=reason, user_id=actor.id))
        setattr(doc, field, new[field])
    if not made:
        return []
    doc.notation_key = notation_key(doc.notation)
    doc.sender_key = sender_key(doc.sender)
    doc.updated_at = utcnow()
    uow.session.add_all(made)
    await uow.session.flush()
    if "date_issued" in {c.field for c in made}:
        search.keys_changed(uow, [doc.id])  # the vector keeps the issue date's year and month
    await search.index_document(uow, doc)
    await audit.record(uow, actor, "document.correct", "document", doc.id, reason=reason,
                       changes={c.field: {"old": c.old_value, "new": c.new_value} for c in made})
    uow.emit(f"document:{doc.id}", "document.corrected", id=doc.id, fields=[c.field for c in made])
    return made


async def corrections_of(uow: UnitOfWork, actor: User, document_id: int) -> list[Correction]:
    """The correction history of a document the actor may see, oldest first."""
    await documents.get_document(uow, actor, document_id)
    return list((await uow.session.scalars(
        select(Correction).where(Correction.document_id == document_id).order_by(Correction.id))).all())


async def void_document(uow: UnitOfWork, actor: User, document_id: int, reason: str) -> tuple[Document, list[int]]:
    """Hủy vào sổ: a registration made by mistake. The number is kept (never given again), the
    document marked voided, its open tasks withdrawn. Returns the document and the withdrawn task ids."""
    if not reason.strip():
        raise Invalid("Cần nêu lý do hủy vào sổ.", field="reason")
    doc = await _clerk_document(uow, actor, document_id)
    reason = reason.strip()
    now = utcnow()
    previous = doc.status
    doc.status, doc.void_reason, doc.voided_at, doc.voided_by, doc.updated_at = (
        Status.VOIDED, reason, now, actor.id, now)
    withdrawn = [t.id for t in await tasks.withdraw_document_tasks(uow, actor, doc.id, reason)]
    await uow.session.flush()
    search.keys_changed(uow, [doc.id])  # status is read by the clerk's access rule
    await audit.record(uow, actor, "document.void", "document", doc.id, reason=reason, number=doc.number,
                       year=doc.year, previous_status=previous, tasks_withdrawn=withdrawn)
    uow.emit(f"document:{doc.id}", "document.voided", id=doc.id)
    return doc, withdrawn
