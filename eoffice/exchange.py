"""Exchange between installations (#16): peers, the inbox of signed requests, and what the clerk sees and does.

A peer is another installation's agency, registered by the administrators of both sides with its organisation id,
its address and the Ed25519 public key ``eoffice exchange key`` printed there. A request from a peer
(``receive``) is accepted when it names one of our agencies and one of its peers, is signed by that peer's key
(``eoffice.exchange_sign``), is no older than the replay window and carries a request id not seen before. Its body
goes through the edXML importer as the peer's clerk (``ExchangePeer.clerk_id``), quarantined on refusal as any
package; a package (DocumentId and kind, the idempotency key) already imported is answered as a duplicate, not
imported again. Status 01 back to the sender is queued by the importer itself (``eoffice.edxml``), as are 03, 04
and 06 as the document moves; packages go out through ``eoffice.exchange_transport``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from eoffice import audit, documents, edxml, exchange_outbox, registers
from eoffice.exchange_outbox import CONSUMER
from eoffice.exchange_sign import Envelope, fresh, load_public_key, verify
from eoffice.org import Role, Unit, User
from eoffice.schema.documents import Status
from eoffice.schema.edxml import EdxmlQuarantine, StatusEvent
from eoffice.schema.exchange import ExchangeOutbox, ExchangePeer, ExchangeReceipt
from storage.blobs import BlobStore
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated

INBOX_PATH = "/api/exchange/inbox"
IMPORTED, REFUSED, DUPLICATE = "imported", "refused", "duplicate"
RESULT_LABELS = {IMPORTED: "Đã tiếp nhận", REFUSED: "Bị từ chối", DUPLICATE: "Gửi trùng (đã có)"}


# ---- peers (administrators, through the CLI) --------------------------------------------------------------------

async def add_peer(uow: UnitOfWork, *, agency_code: str, organ_id: str, name: str, base_url: str, public_key: str,
                   clerk: str) -> ExchangePeer:
    """Register (or update) a peer of our agency ``agency_code``; ``clerk`` registers what it sends."""
    agency = await uow.session.scalar(select(Unit).where(Unit.code == agency_code.strip(), Unit.is_agency.is_(True)))
    if agency is None:
        raise NotFound(f"Không có cơ quan mã «{agency_code}».")
    try:
        load_public_key(public_key)
    except ValueError as exc:
        raise Invalid(f"Khóa công khai không hợp lệ: {exc}.", field="public_key") from None
    base_url = base_url.strip().rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise Invalid("Địa chỉ máy chủ phải bắt đầu bằng http:// hoặc https://.", field="base_url")
    user = await uow.session.scalar(select(User).where(User.username == clerk.strip().lower()))
    if user is None or not user.has_role(Role.CLERK) or user.unit_id is None \
            or (await registers.agency_of(uow, user.unit_id)).id != agency.id:
        raise Invalid(f"«{clerk}» không phải văn thư của {agency.name}.", field="clerk")
    peer = await uow.session.scalar(select(ExchangePeer).where(ExchangePeer.agency_id == agency.id,
                                                               ExchangePeer.organ_id == organ_id.strip()))
    if peer is None:
        peer = ExchangePeer(agency_id=agency.id, organ_id=organ_id.strip()[:100])
        uow.session.add(peer)
    peer.name, peer.base_url, peer.public_key, peer.clerk_id = name.strip()[:300], base_url[:500], \
        public_key.strip(), user.id
    await uow.session.flush()
    await audit.record(uow, None, "exchange.peer", "exchange_peer", peer.id, organ_id=peer.organ_id,
                       base_url=peer.base_url, public_key=peer.public_key)
    return peer


async def peers(uow: UnitOfWork) -> list[tuple[ExchangePeer, str]]:
    """Every peer with the code of our agency it belongs to."""
    rows = await uow.session.execute(select(ExchangePeer, Unit.code).join(Unit, Unit.id == ExchangePeer.agency_id)
                                     .order_by(ExchangePeer.id))
    return [(p, code) for p, code in rows.all()]


# ---- the inbox ----------------------------------------------------------------------------------------------------

@dataclass
class Received:
    status: int  # 201 imported, 200 duplicate, 422 refused (quarantined)
    receipt: ExchangeReceipt
    result: edxml.ImportResult | None = None

    def public(self) -> dict[str, Any]:
        return {**self.receipt.public(), "result_label": RESULT_LABELS[self.receipt.result]}


async def authenticate(uow: UnitOfWork, method: str, path: str, headers: dict[str, str], body: bytes,
                       now: float | None = None) -> tuple[ExchangePeer, Envelope]:
    """The peer that signed this request; 401 for a bad or old signature, 403 for an unknown peer, 409 for a
    request id seen before."""
    try:
        env = Envelope.from_headers(headers)
    except ValueError as exc:
        raise Unauthenticated(f"Yêu cầu liên thông không được ký đúng cách ({exc}).") from None
    if not fresh(env.timestamp, time.time() if now is None else now):
        raise Unauthenticated("Yêu cầu liên thông đã quá hạn (lệch giờ hoặc gửi lại yêu cầu cũ).")
    peer = await uow.session.scalar(select(ExchangePeer).join(Unit, Unit.id == ExchangePeer.agency_id).where(
        Unit.code == env.to_organ, ExchangePeer.organ_id == env.from_organ))
    if peer is None:
        raise Forbidden(f"Cơ quan «{env.from_organ}» chưa được đăng ký trao đổi với «{env.to_organ}».")
    if not verify(peer.public_key, headers.get("x-exchange-signature", ""), method, path, env, body):
        raise Unauthenticated("Chữ ký của yêu cầu liên thông không hợp lệ.")
    seen = await uow.session.scalar(select(ExchangeReceipt.id).where(ExchangeReceipt.peer_id == peer.id,
                                                                    ExchangeReceipt.request_id == env.request_id))
    if seen is not None:
        raise Conflict("Yêu cầu này đã được nhận (gửi lại cùng mã yêu cầu).", problem="replay")
    return peer, env


async def receive(uow: UnitOfWork, blobs: BlobStore, peer: ExchangePeer, env: Envelope, body: bytes) -> Received:
    """Import an authenticated package once (``authenticate`` first). Does not commit."""
    done = await uow.session.scalar(select(ExchangeReceipt).where(
        ExchangeReceipt.peer_id == peer.id, ExchangeReceipt.idem_key == env.idem_key,
        ExchangeReceipt.result == IMPORTED).limit(1))
    receipt = ExchangeReceipt(agency_id=peer.agency_id, peer_id=peer.id, request_id=env.request_id,
                              idem_key=env.idem_key, message="")
    if done is not None:
        receipt.result, receipt.action, receipt.document_id = DUPLICATE, done.action, done.document_id
        uow.session.add(receipt)
        await uow.session.flush()
        return Received(200, receipt)
    clerk = await uow.session.get(User, peer.clerk_id)
    if clerk is None or not clerk.active:
        raise Forbidden("Tài khoản văn thư tiếp nhận của cơ quan này đã bị khóa.")
    result = await edxml.import_package(uow, clerk, blobs, body, f"{peer.organ_id}-{env.request_id}.xml")
    receipt.result = IMPORTED if result.ok else REFUSED
    receipt.action, receipt.message = result.action, result.message
    receipt.document_id = result.document.id if result.document else None
    receipt.quarantine_id = result.quarantine.id if result.quarantine else None
    uow.session.add(receipt)
    await uow.session.flush()
    await audit.record(uow, None, "exchange.receive", "exchange_receipt", receipt.id, organ_id=peer.organ_id,
                       request_id=env.request_id, key=env.idem_key, result=receipt.result,
                       document_id=receipt.document_id)
    return Received(201 if result.ok else 422, receipt, result)


# ---- what the clerk sees and does ------------------------------------------------------------------------------

async def _agency(uow: UnitOfWork, actor: User) -> Unit:
    edxml.require_clerk(actor)
    return await registers.agency_of(uow, actor.unit_id)


async def received(uow: UnitOfWork, actor: User, limit: int = 100) -> list[dict[str, Any]]:
    """Requests that arrived from peers (imported, refused, duplicates), newest first."""
    agency = await _agency(uow, actor)
    rows = await uow.session.execute(
        select(ExchangeReceipt, ExchangePeer.name).join(ExchangePeer, ExchangePeer.id == ExchangeReceipt.peer_id)
        .where(ExchangeReceipt.agency_id == agency.id).order_by(ExchangeReceipt.id.desc()).limit(limit))
    return [{**r.public(), "peer_name": name, "result_label": RESULT_LABELS.get(r.result, r.result)}
            for r, name in rows.all()]


async def refused(uow: UnitOfWork, actor: User, limit: int = 100) -> list[dict[str, Any]]:
    """Quarantined packages of the agency (from peers or imported by hand), with the reason."""
    return [q.public() for q in await edxml.quarantined(uow, actor, limit)]


async def sent(uow: UnitOfWork, actor: User, limit: int = 100) -> list[dict[str, Any]]:
    """Packages queued for peers with their delivery attempts, and the statuses peers sent back about each
    document."""
    agency = await _agency(uow, actor)
    rows = (await uow.session.execute(
        select(ExchangeOutbox, ExchangePeer.name).join(ExchangePeer, ExchangePeer.id == ExchangeOutbox.peer_id)
        .where(ExchangeOutbox.agency_id == agency.id).order_by(ExchangeOutbox.id.desc()).limit(limit))).all()
    doc_ids = {r.document_id for r, _ in rows if r.document_id is not None}
    history: dict[int, list[dict[str, Any]]] = {}
    if doc_ids:
        for e in (await uow.session.scalars(select(StatusEvent).where(StatusEvent.document_id.in_(doc_ids))
                                            .order_by(StatusEvent.at, StatusEvent.id))).all():
            history.setdefault(e.document_id, []).append(e.public())
    return [{**r.public(), "peer_name": name, "statuses": history.get(r.document_id or 0, [])} for r, name in rows]


async def send_document(uow: UnitOfWork, actor: User, document_id: int, organ_id: str) -> ExchangeOutbox:
    """Queue an issued outgoing document for one peer by hand (issued before the peer was registered, or
    addressed under another name). Once per peer: a document already queued for it is a conflict (re-send it)."""
    agency = await _agency(uow, actor)
    doc = await documents.get_document(uow, actor, document_id)
    if doc.agency_id != agency.id or doc.direction != registers.Direction.OUT or doc.status != Status.ISSUED:
        raise Conflict("Chỉ gửi đi được văn bản đi đã phát hành của cơ quan mình.")
    if doc.confidential:
        raise Conflict("Văn bản mật không được gửi qua trục liên thông.")
    peer = await uow.session.scalar(select(ExchangePeer).where(ExchangePeer.agency_id == agency.id,
                                                               ExchangePeer.organ_id == organ_id.strip()))
    if peer is None:
        raise NotFound(f"Cơ quan «{organ_id}» chưa được đăng ký liên thông.")
    link = await edxml.out_link(uow, doc, agency)
    row = await exchange_outbox.queue_document(uow, peer, doc.id, link.remote_document_id, actor.id)
    if row is None:
        raise Conflict(f"Văn bản đã được xếp gửi cho {peer.name}; dùng «Gửi lại» nếu cần gửi lần nữa.")
    await audit.record(uow, actor, "exchange.send", "document", doc.id, organ_id=peer.organ_id, key=row.idem_key)
    return row


async def resend(uow: UnitOfWork, actor: User, outbox_id: int) -> ExchangeOutbox:
    """Deliver a package again now (after the peer fixed what made it refuse it, or to stop waiting)."""
    agency = await _agency(uow, actor)
    row = await uow.session.get(ExchangeOutbox, outbox_id)
    if row is None or row.agency_id != agency.id:
        raise NotFound("Không tìm thấy gói tin đã gửi.")
    row.sent_at, row.next_attempt_at, row.last_error = None, utcnow(), ""
    await uow.session.flush()
    await audit.record(uow, actor, "exchange.resend", "exchange_outbox", row.id, key=row.idem_key)
    wake = uow.db.consumers.get(CONSUMER)
    if wake is not None:
        uow.after_commit(lambda: wake([]))
    return row


async def quarantined_package(uow: UnitOfWork, actor: User, quarantine_id: int) -> EdxmlQuarantine:
    agency = await _agency(uow, actor)
    q = await uow.session.get(EdxmlQuarantine, quarantine_id)
    if q is None or q.agency_id != agency.id:
        raise NotFound("Không tìm thấy gói tin bị cách ly.")
    return q


async def reimport(uow: UnitOfWork, actor: User, blobs: BlobStore, quarantine_id: int) -> edxml.ImportResult:
    """Import a quarantined package again (after the cause was fixed: a missing document, a unit code). A new
    refusal is quarantined again, with its own reason. Does not commit."""
    q = await quarantined_package(uow, actor, quarantine_id)
    data = await blobs.read(q.blob_key)
    result = await edxml.import_package(uow, actor, blobs, data, q.filename)
    await audit.record(uow, actor, "exchange.reimport", "edxml_quarantine", q.id, ok=result.ok,
                       document_id=result.document.id if result.document else None)
    return result


__all__ = ["INBOX_PATH", "Received", "add_peer", "authenticate", "peers", "quarantined_package", "receive",
           "received", "refused", "reimport", "resend", "send_document", "sent"]
