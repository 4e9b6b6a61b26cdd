"""edXML exchange between agencies (QCVN 102:2016): import, export, status messages, quarantine.

Reading and writing the XML is ``eoffice.edxml_parse`` (pure). This module turns a package into
state, through the existing services:

- BusinessDocType 0 (new): each attachment becomes an Upload of the importing clerk, then
  ``documents.register_incoming`` registers it (arrival number, duplicate check, PDF checks).
- 1 (recall): the document it names is marked ``recalled`` (status 13 received, 15 answered).
- 2 (update): the named document's metadata (subject, due date, urgency, signer) is updated.
- 3 (replace): registered as new; the replaced document is marked ``superseded`` and linked.
- A status package (``Status``) is recorded on the document it refers to (timeline).

A package that cannot be read, or that the services refuse, is **quarantined**: its raw bytes go
to the blob store and a row records the Vietnamese message and the problem code. Everything the
import had written before the refusal is rolled back (a savepoint), so nothing is
half-registered; the quarantine row is then the only change, and the caller commits it as usual.

Our own state changes produce status events to send back to the sender of an imported document:
01 on import, 03 and 04 on direction, 06 on completion (``record_status``, called by
``eoffice.tasks``). ``status_package`` writes one as edXML.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from eoffice import audit, doctypes, documents, exchange_outbox, ingest, registers, search, signatures, uploads
from eoffice.edxml_parse import (
    BUSINESS_NEW,
    BUSINESS_RECALL,
    BUSINESS_REPLACE,
    BUSINESS_UPDATE,
    STATUS_LABELS,
    URGENCY_TO_PRIORITY,
    Organ,
    Package,
    PackageError,
    Reference,
    StatusMessage,
    build,
    build_status,
    parse,
    split_notation,
)
from eoffice.edxml_parse import Attachment as PackageAttachment
from eoffice.org import Role, Unit, User
from eoffice.schema.documents import Document, Status
from eoffice.schema.edxml import (
    LINK_ACTIVE,
    LINK_RECALLED,
    LINK_SUPERSEDED,
    EdxmlLink,
    EdxmlMessage,
    EdxmlQuarantine,
    StatusEvent,
)
from eoffice.textfold import fold, notation_key
from storage.blobs import BlobStore, clean_content_type
from storage.db import UnitOfWork, utcnow
from storage.errors import AppError, Conflict, Forbidden, NotFound


@dataclass
class ImportResult:
    ok: bool
    action: str = ""  # registered, recalled, updated, replaced, status
    document: Document | None = None
    replaced: Document | None = None
    status_event: StatusEvent | None = None
    quarantine: EdxmlQuarantine | None = None
    message: str = ""
    problem: str = ""
    recovered: list[str] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)
    signature: dict[str, Any] | None = None  # xmldsig check of the package (eoffice.edxml_signature)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "action": self.action, "message": self.message,
                               "problem": self.problem, "recovered": self.recovered, "signature": self.signature}
        if self.document is not None:
            out["document"] = self.document.public()
        if self.replaced is not None:
            out["replaced_document_id"] = self.replaced.id
        if self.status_event is not None:
            out["status_event"] = self.status_event.public()
        if self.quarantine is not None:
            out["quarantine_id"] = self.quarantine.id
        return out


# ---- pure rules -------------------------------------------------------------------------------

def doc_type_of(pkg: Package) -> str:
    """Our document type from TypeName (Công văn, Quyết định...), else the notation's abbreviation."""
    name = fold(pkg.type_name)
    for t in doctypes.DOC_TYPES:
        if name and fold(t.name) == name:
            return t.code
    _, rest = split_notation(pkg.notation)
    abbr = rest.split("-", 1)[0].strip()
    if "-" in rest and abbr in doctypes.BY_ABBR:
        return doctypes.BY_ABBR[abbr].code
    return doctypes.CONG_VAN.code


def organ_of(unit: Unit) -> Organ:
    return Organ(organ_id=unit.code, name=unit.name)


# ---- import -----------------------------------------------------------------------------------

def require_clerk(actor: User) -> None:
    if not actor.has_role(Role.CLERK):
        raise Forbidden("Chỉ văn thư được tiếp nhận hoặc gửi gói tin edXML.")


async def import_package(uow: UnitOfWork, actor: User, blobs: BlobStore, data: bytes,
                         filename: str = "") -> ImportResult:
    """Read and apply one package in the actor's (clerk's) agency. Never half-applies: a refusal
    rolls back what this import wrote and records a quarantine row instead. Does not commit."""
    require_clerk(actor)
    agency = await registers.agency_of(uow, actor.unit_id)
    try:
        async with uow.savepoint():  # a refusal drops what this import wrote and the events it queued
            result = await _apply(uow, actor, blobs, agency, data, filename)
    except (PackageError, AppError) as exc:
        if isinstance(exc, Forbidden):
            raise
        problem = exc.problem if isinstance(exc, PackageError) else str(exc.details.get("problem") or exc.code)
        q = await quarantine(uow, actor, blobs, agency, data, filename, problem, exc.message)
        return ImportResult(ok=False, quarantine=q, message=exc.message, problem=problem)
    return result


async def quarantine(uow: UnitOfWork, actor: User | None, blobs: BlobStore, agency: Unit | None, data: bytes,
                     filename: str, problem: str, message: str) -> EdxmlQuarantine:
    info = await blobs.put_bytes(data, content_type="application/xml")
    row = EdxmlQuarantine(agency_id=agency.id if agency else None, filename=_filename(filename), blob_key=info.key,
                          size=len(data), problem=problem[:40], message=message,
                          created_by=actor.id if actor else None)
    uow.session.add(row)
    await uow.session.flush()
    await audit.record(uow, actor, "edxml.quarantine", "edxml_quarantine", row.id, problem=problem,
                       filename=row.filename, sha256=info.key)
    return row


def _filename(name: str) -> str:
    try:
        return uploads.clean_filename(name or "goi-tin.xml")
    except AppError:
        return "goi-tin.xml"


async def _apply(uow: UnitOfWork, actor: User, blobs: BlobStore, agency: Unit, data: bytes,
                 filename: str) -> ImportResult:
    pkg = parse(data)
    raw = await blobs.put_bytes(data, content_type="application/xml")
    message = EdxmlMessage(agency_id=agency.id, direction="in", organ_id=pkg.sender.organ_id[:100],
                           organ_name=pkg.sender.name[:300], blob_key=raw.key, filename=_filename(filename),
                           created_by=actor.id)
    if pkg.signature is not None:
        message.signature_result, message.signature = pkg.signature.result, pkg.signature.public()
    if pkg.status is not None:
        message.status_code = pkg.status.code
        uow.session.add(message)
        await uow.session.flush()
        status_result = await _apply_status(uow, actor, agency, pkg, message)
        status_result.signature = message.signature
        return status_result
    message.business_type = pkg.business_type
    uow.session.add(message)
    await uow.session.flush()
    if pkg.business_type == BUSINESS_RECALL:
        result = await _recall(uow, actor, agency, pkg, message)
    elif pkg.business_type == BUSINESS_UPDATE:
        result = await _update(uow, actor, agency, pkg)
    else:
        result = await _register(uow, actor, blobs, agency, pkg)
        if pkg.business_type == BUSINESS_REPLACE:
            await _supersede(uow, actor, agency, pkg, result)
    message.document_id = result.document.id if result.document else None
    result.recovered, result.signature = pkg.recovered, message.signature
    return result


async def _register(uow: UnitOfWork, actor: User, blobs: BlobStore, agency: Unit, pkg: Package) -> ImportResult:
    upload_ids = []
    for a in pkg.attachments:
        info = await blobs.put_bytes(a.data, content_type=clean_content_type(a.content_type))
        upload_ids.append((await uploads.record_upload(uow, actor, info, a.name)).id)
    sender_unit = await uow.session.scalar(select(Unit.id).where(Unit.code == pkg.sender.organ_id)) \
        if pkg.sender.organ_id else None
    doc, jobs = await documents.register_incoming(
        uow, actor, blobs, sender=pkg.sender.name, notation=pkg.notation, date_issued=pkg.date_issued,
        doc_type=doc_type_of(pkg), summary=pkg.subject, signer=pkg.signer, urgency=pkg.urgency,
        due_date=pkg.due_date, upload_ids=upload_ids, sender_unit_id=sender_unit)
    uow.session.add(EdxmlLink(document_id=doc.id, agency_id=agency.id, direction="in",
                              organ_id=pkg.sender.organ_id[:100], organ_name=pkg.sender.name[:300],
                              remote_document_id=pkg.document_id[:100]))
    await uow.session.flush()
    await audit.record(uow, actor, "edxml.import", "document", doc.id, business_type=pkg.business_type,
                       organ_id=pkg.sender.organ_id, remote_document_id=pkg.document_id,
                       attachments=[{"name": a.name, "sha256": a.sha256} for a in pkg.attachments],
                       recovered=pkg.recovered)
    await _add_status(uow, doc.id, "01", agency, actor)
    # the agency's readers (its clerks and leaders) learn of it; ``by``: the clerk who imported it knows
    uow.emit(f"unit:{agency.id}", "document.received", document_id=doc.id, number=doc.number, via="edxml",
             by=actor.id)
    return ImportResult(ok=True, action="registered", document=doc, job_ids=jobs)


async def _target(uow: UnitOfWork, agency: Unit, organ_id: str, document_id: str, sender: str, notation: str,
                  date: dt.date | None) -> tuple[Document, EdxmlLink | None] | None:
    if document_id:
        link = await uow.session.scalar(select(EdxmlLink).where(
            EdxmlLink.agency_id == agency.id, EdxmlLink.direction == "in",
            EdxmlLink.remote_document_id == document_id, EdxmlLink.organ_id == organ_id).limit(1))
        if link is not None:
            doc = await uow.session.get(Document, link.document_id)
            if doc is not None:
                return doc, link
    if notation:
        doc = await documents.find_duplicate(uow, agency.id, sender, notation, date)
        if doc is not None:
            link = await uow.session.scalar(select(EdxmlLink).where(EdxmlLink.document_id == doc.id))
            return doc, link
    return None


async def _link(uow: UnitOfWork, doc: Document, link: EdxmlLink | None, agency: Unit, pkg: Package) -> EdxmlLink:
    if link is None:
        link = EdxmlLink(document_id=doc.id, agency_id=agency.id, direction="in", organ_id=pkg.sender.organ_id[:100],
                         organ_name=pkg.sender.name[:300], remote_document_id=pkg.document_id[:100])
        uow.session.add(link)
    return link


async def _recall(uow: UnitOfWork, actor: User, agency: Unit, pkg: Package, message: EdxmlMessage) -> ImportResult:
    found = await _target(uow, agency, pkg.sender.organ_id, pkg.document_id, pkg.sender.name, pkg.notation,
                          pkg.date_issued)
    if found is None:
        raise PackageError(f"Không tìm thấy văn bản cần thu hồi ({pkg.notation} của {pkg.sender.name}).",
                           "unknown_target")
    doc, link = found
    link = await _link(uow, doc, link, agency, pkg)
    if link.state == LINK_RECALLED:
        raise PackageError(f"Văn bản {doc.notation} đã được thu hồi trước đó.", "already_recalled")
    link.state, link.updated_at = LINK_RECALLED, utcnow()
    uow.session.add(StatusEvent(document_id=doc.id, direction="in", code="13", organ_id=pkg.sender.organ_id[:100],
                                organ_name=pkg.sender.name[:300], description=pkg.business_reason,
                                message_id=message.id, created_by=actor.id))
    await _add_status(uow, doc.id, "15", agency, actor)
    await audit.record(uow, actor, "edxml.recall", "document", doc.id, reason=pkg.business_reason,
                       organ_id=pkg.sender.organ_id)
    uow.emit(f"document:{doc.id}", "document.recalled", id=doc.id)
    return ImportResult(ok=True, action="recalled", document=doc)


async def _update(uow: UnitOfWork, actor: User, agency: Unit, pkg: Package) -> ImportResult:
    found = await _target(uow, agency, pkg.sender.organ_id, pkg.document_id, pkg.sender.name, pkg.notation,
                          pkg.date_issued)
    if found is None:
        raise PackageError(f"Không tìm thấy văn bản cần cập nhật ({pkg.notation} của {pkg.sender.name}).",
                           "unknown_target")
    doc, link = found
    link = await _link(uow, doc, link, agency, pkg)
    if link.state != LINK_ACTIVE:
        raise PackageError(f"Văn bản {doc.notation} đã bị thu hồi hoặc thay thế: không cập nhật được.",
                           "not_active")
    documents.check_incoming_fields(sender=doc.sender, summary=pkg.subject, date_issued=doc.date_issued,
                                    due_date=pkg.due_date or doc.due_date, today=registers.local_date(utcnow()))
    before = {"summary": doc.summary, "due_date": doc.due_date, "urgency": doc.urgency, "signer": doc.signer}
    # optional fields missing from the update keep their value (a missing field is not a deletion)
    doc.summary, doc.due_date = pkg.subject.strip(), pkg.due_date or doc.due_date
    doc.urgency = pkg.urgency if pkg.priority else doc.urgency
    doc.signer = pkg.signer.strip() or doc.signer
    doc.updated_at = link.updated_at = utcnow()
    await uow.session.flush()
    await search.index_document(uow, doc)
    await audit.record(uow, actor, "edxml.update", "document", doc.id, before=before, reason=pkg.business_reason)
    uow.emit(f"document:{doc.id}", "document.updated", id=doc.id)
    return ImportResult(ok=True, action="updated", document=doc)


async def _supersede(uow: UnitOfWork, actor: User, agency: Unit, pkg: Package, result: ImportResult) -> None:
    ref = pkg.refers_to or Reference()
    assert result.document is not None
    found = await _target(uow, agency, ref.organ_id or pkg.sender.organ_id, ref.document_id, pkg.sender.name,
                          ref.notation, ref.date)
    if found is None:
        raise PackageError(f"Không tìm thấy văn bản bị thay thế ({ref.notation or ref.document_id}).",
                           "unknown_target")
    old, link = found
    link = await _link(uow, old, link, agency, pkg)
    if link.state != LINK_ACTIVE:
        raise PackageError(f"Văn bản {old.notation} đã bị thu hồi hoặc thay thế trước đó.", "not_active")
    link.state, link.related_document_id, link.updated_at = LINK_SUPERSEDED, result.document.id, utcnow()
    new_link = await uow.session.scalar(select(EdxmlLink).where(EdxmlLink.document_id == result.document.id))
    if new_link is not None:
        new_link.related_document_id = old.id
    await uow.session.flush()
    await audit.record(uow, actor, "edxml.replace", "document", old.id, replaced_by=result.document.id)
    uow.emit(f"document:{old.id}", "document.superseded", id=old.id, replaced_by=result.document.id)
    result.action, result.replaced = "replaced", old


async def _apply_status(uow: UnitOfWork, actor: User, agency: Unit, pkg: Package,
                        message: EdxmlMessage) -> ImportResult:
    st = pkg.status
    assert st is not None
    ref = st.refers_to
    doc = None
    if ref.document_id:
        link = await uow.session.scalar(select(EdxmlLink).where(
            EdxmlLink.agency_id == agency.id, EdxmlLink.remote_document_id == ref.document_id).limit(1))
        doc = await uow.session.get(Document, link.document_id) if link else None
    if doc is None and ref.notation:
        doc = await uow.session.scalar(select(Document).where(
            Document.agency_id == agency.id, Document.direction == registers.Direction.OUT,
            Document.notation_key == notation_key(ref.notation)).order_by(Document.id.desc()).limit(1))
    if doc is None:  # kept and listed (edxml.unmatched_statuses), not refused: the document may come later
        message.unmatched = True
        message.details = {"code": st.code, "description": st.description, "staff": st.staff,
                           "at": st.at.isoformat() if st.at else "", "ref_organ_id": ref.organ_id,
                           "ref_notation": ref.notation, "ref_date": ref.date_text,
                           "ref_document_id": ref.document_id}
        await uow.session.flush()
        await audit.record(uow, actor, "edxml.status_unmatched", "edxml_message", message.id, code=st.code,
                           organ_id=st.sender.organ_id, ref=ref.notation or ref.document_id)
        return ImportResult(ok=True, action="status_unmatched", recovered=pkg.recovered,
                            message=f"Đã lưu trạng thái {st.code} về văn bản chưa có ở cơ quan này "
                                    f"({ref.notation or ref.document_id}).")
    event = StatusEvent(document_id=doc.id, direction="in", code=st.code, organ_id=st.sender.organ_id[:100],
                        organ_name=st.sender.name[:300], description=st.description, at=st.at or utcnow(),
                        message_id=message.id, created_by=actor.id)
    uow.session.add(event)
    message.document_id = doc.id
    await uow.session.flush()
    await audit.record(uow, actor, "edxml.status", "document", doc.id, code=st.code, organ_id=st.sender.organ_id)
    uow.emit(f"document:{doc.id}", "edxml.status", code=st.code)
    return ImportResult(ok=True, action="status", document=doc, status_event=event, recovered=pkg.recovered)


# ---- status events ----------------------------------------------------------------------------

async def _add_status(uow: UnitOfWork, document_id: int, code: str, agency: Unit, actor: User | None,
                      description: str = "") -> StatusEvent:
    event = StatusEvent(document_id=document_id, direction="out", code=code, organ_id=agency.code,
                        organ_name=agency.name, description=description or STATUS_LABELS[code],
                        created_by=actor.id if actor else None)
    uow.session.add(event)
    await uow.session.flush()
    link = await uow.session.scalar(select(EdxmlLink).where(EdxmlLink.document_id == document_id,
                                                            EdxmlLink.direction == "in"))
    if link is not None:  # back to the sender, when it is one of our peers (#16)
        await exchange_outbox.queue_status(uow, link.agency_id, link.organ_id, link.remote_document_id, document_id,
                                           event.id, code)
    return event


async def record_status(uow: UnitOfWork, actor: User | None, document_id: int, *codes: str) -> list[StatusEvent]:
    """Hook for state changes (direction: 03, 04; completion: 06). Only documents that came in
    through edXML get a status to send back; each code is recorded once per document."""
    link = await uow.session.scalar(select(EdxmlLink).where(EdxmlLink.document_id == document_id,
                                                            EdxmlLink.direction == "in"))
    if link is None:
        return []
    have = set((await uow.session.scalars(select(StatusEvent.code).where(
        StatusEvent.document_id == document_id, StatusEvent.direction == "out"))).all())
    agency = await uow.session.get(Unit, link.agency_id)
    assert agency is not None
    return [await _add_status(uow, document_id, c, agency, actor) for c in codes if c not in have]


async def timeline(uow: UnitOfWork, actor: User, document_id: int) -> dict[str, Any]:
    doc = await documents.get_document(uow, actor, document_id)
    link = await uow.session.scalar(select(EdxmlLink).where(EdxmlLink.document_id == doc.id))
    events = (await uow.session.scalars(select(StatusEvent).where(StatusEvent.document_id == doc.id)
                                        .order_by(StatusEvent.at, StatusEvent.id))).all()
    received = await uow.session.scalar(select(EdxmlMessage).where(
        EdxmlMessage.document_id == doc.id, EdxmlMessage.direction == "in", EdxmlMessage.status_code.is_(None))
        .order_by(EdxmlMessage.id.desc()).limit(1))
    return {"exchange": link.public() if link else None, "status_events": [e.public() for e in events],
            "signature": received.signature if received is not None else None}


async def unmatched_statuses(uow: UnitOfWork, actor: User, limit: int = 100) -> list[EdxmlMessage]:
    """Status packages about documents this agency does not (yet) have."""
    require_clerk(actor)
    agency = await registers.agency_of(uow, actor.unit_id)
    return list((await uow.session.scalars(select(EdxmlMessage).where(
        EdxmlMessage.agency_id == agency.id, EdxmlMessage.unmatched.is_(True))
        .order_by(EdxmlMessage.id.desc()).limit(limit))).all())


async def status_package(uow: UnitOfWork, actor: User, event_id: int) -> bytes:
    """One of our status events as an edXML Status package for the agency that sent the document."""
    event = await uow.session.get(StatusEvent, event_id)
    if event is None or event.direction != "out":
        raise NotFound("Không tìm thấy trạng thái.")
    doc = await documents.get_document(uow, actor, event.document_id)
    return await status_xml(uow, event, doc)


async def status_xml(uow: UnitOfWork, event: StatusEvent, doc: Document) -> bytes:
    """The status package of ``event`` about ``doc`` (no permission check: the caller made it)."""
    link = await uow.session.scalar(select(EdxmlLink).where(EdxmlLink.document_id == doc.id))
    ref = Reference(organ_id=link.organ_id if link else "", notation=doc.notation, date=doc.date_issued,
                    document_id=link.remote_document_id if link else "")
    return build_status(StatusMessage(code=event.code, description=event.description, at=event.at,
                                      sender=Organ(event.organ_id, event.organ_name), refers_to=ref))


# ---- export -----------------------------------------------------------------------------------

async def export_document(uow: UnitOfWork, actor: User, blobs: BlobStore, document_id: int) -> bytes:
    """An issued outgoing document as an edXML package with its attachments (PDFs signed with the
    agency's certificate when one is configured, see ``eoffice.signatures``). Does not commit: the
    caller commits the exchange record (and the signed attachment) it writes."""
    require_clerk(actor)
    doc = await documents.get_document(uow, actor, document_id)
    if doc.direction != registers.Direction.OUT or doc.status != Status.ISSUED:
        raise Conflict("Chỉ gửi đi được văn bản đi đã phát hành.")
    if doc.confidential:
        raise Conflict("Văn bản mật không được gửi qua trục liên thông edXML.")
    agency = await registers.agency_of(uow, actor.unit_id)
    if agency.id != doc.agency_id:
        raise Forbidden("Văn bản không thuộc cơ quan của bạn.")
    await signatures.sign_issued(uow, actor, blobs, doc)
    link = await out_link(uow, doc, agency)
    recipients = []
    for r in doc.recipients or []:
        unit = await uow.session.get(Unit, r["unit_id"]) if "unit_id" in r else None
        recipients.append(organ_of(unit) if unit else Organ("", str(r.get("name", ""))))
    files = []
    for att in await documents.attachments_of(uow, doc):
        data = await blobs.read(att.blob_key, limit=ingest.MAX_PDF_BYTES)
        files.append(PackageAttachment(name=att.filename, content_type=att.content_type, data=data))
    number, notation = split_notation(doc.notation)
    t = doctypes.BY_CODE.get(doc.doc_type)
    pkg = Package(
        sender=organ_of(agency), recipients=recipients, code_number=number, code_notation=notation,
        date_issued=doc.date_issued, type_name=t.name if t else "", subject=doc.summary, signer=doc.signer,
        due_date=doc.due_date, to_places=[o.name for o in recipients], page_amount=doc.page_count or None,
        priority=URGENCY_TO_PRIORITY.get(doc.urgency, "0"), business_type=BUSINESS_NEW,
        document_id=link.remote_document_id, attachments=files)
    data = build(pkg)
    info = await blobs.put_bytes(data, content_type="application/xml")
    uow.session.add(EdxmlMessage(agency_id=agency.id, document_id=doc.id, direction="out",
                                 business_type=BUSINESS_NEW, organ_id=agency.code, organ_name=agency.name,
                                 blob_key=info.key, filename=f"{doc.id}.edxml", created_by=actor.id))
    await uow.session.flush()
    await audit.record(uow, actor, "edxml.export", "document", doc.id, sha256=info.key,
                       remote_document_id=link.remote_document_id)
    return data


async def out_link(uow: UnitOfWork, doc: Document, agency: Unit) -> EdxmlLink:
    """The exchange record of an outgoing document, made on first use with the DocumentId it is known by."""
    link = await uow.session.scalar(select(EdxmlLink).where(EdxmlLink.document_id == doc.id))
    if link is None:
        link = EdxmlLink(document_id=doc.id, agency_id=agency.id, direction="out", organ_id=agency.code,
                         organ_name=agency.name, remote_document_id=str(uuid.uuid4()))
        uow.session.add(link)
        await uow.session.flush()
    return link


async def quarantined(uow: UnitOfWork, actor: User, limit: int = 100) -> list[EdxmlQuarantine]:
    require_clerk(actor)
    agency = await registers.agency_of(uow, actor.unit_id)
    return list((await uow.session.scalars(select(EdxmlQuarantine).where(EdxmlQuarantine.agency_id == agency.id)
                                           .order_by(EdxmlQuarantine.id.desc()).limit(limit))).all())


__all__ = ["BUSINESS_NEW", "BUSINESS_RECALL", "BUSINESS_REPLACE", "BUSINESS_UPDATE", "EdxmlLink", "EdxmlMessage",
           "EdxmlQuarantine", "ImportResult", "StatusEvent", "export_document", "import_package", "record_status",
           "status_package", "timeline", "unmatched_statuses"]
