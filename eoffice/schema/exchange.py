"""Exchange between installations (#16): the peers an agency exchanges with, the outbox of packages to deliver to
them and the receipts of requests that arrived. Services: ``eoffice.exchange``, ``eoffice.exchange_outbox``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, utcnow

KIND_DOCUMENT, KIND_STATUS = "document", "status"
KIND_LABELS = {KIND_DOCUMENT: "Văn bản", KIND_STATUS: "Trạng thái"}


class ExchangePeer(Base):
    """Another installation an agency exchanges with: its organisation id (the national code list's), where it
    answers, and the Ed25519 public key its administrators gave ours. ``clerk_id``: the account that registers what
    it sends us."""

    __tablename__ = "exchange_peers"
    __table_args__ = (UniqueConstraint("agency_id", "organ_id", name="uq_exchange_peers_agency_organ"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    organ_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    base_url: Mapped[str] = mapped_column(String(500))
    public_key: Mapped[str] = mapped_column(String(100))  # raw Ed25519 key, base64
    clerk_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "agency_id": self.agency_id, "organ_id": self.organ_id, "name": self.name,
                "base_url": self.base_url, "public_key": self.public_key}


class ExchangeOutbox(Base):
    """One package to deliver to a peer, until it is accepted. ``idem_key`` (the package's DocumentId and its kind
    or status code) is sent with every attempt, so the peer registers it once however often it arrives; it is
    unique per peer, so queuing the same package twice queues it once."""

    __tablename__ = "exchange_outbox"
    __table_args__ = (UniqueConstraint("peer_id", "idem_key", name="uq_exchange_outbox_peer_key"),
                      Index("ix_exchange_outbox_sent_at_next_attempt_at", "sent_at", "next_attempt_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("exchange_peers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # document, status
    idem_key: Mapped[str] = mapped_column(String(140))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    status_event_id: Mapped[int | None] = mapped_column(ForeignKey("edxml_status_events.id", ondelete="CASCADE"))
    status_code: Mapped[str | None] = mapped_column(String(2))
    blob_key: Mapped[str | None] = mapped_column(String(64))  # the package, once built (documents)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    last_status: Mapped[int | None] = mapped_column(Integer)  # the peer's HTTP answer to the last attempt
    sent_at: Mapped[dt.datetime | None] = mapped_column()

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "peer_id": self.peer_id, "kind": self.kind, "kind_label": KIND_LABELS[self.kind],
                "idem_key": self.idem_key, "document_id": self.document_id, "status_code": self.status_code,
                "attempts": self.attempts, "last_error": self.last_error, "last_status": self.last_status,
                "created_at": self.created_at.isoformat(), "next_attempt_at": self.next_attempt_at.isoformat(),
                "sent_at": self.sent_at.isoformat() if self.sent_at else None}


class ExchangeReceipt(Base):
    """A signed request that arrived from a peer: its request id (a replay is refused), the idempotency key
    (a package imported once is not imported again) and what became of it."""

    __tablename__ = "exchange_receipts"
    __table_args__ = (UniqueConstraint("peer_id", "request_id", name="uq_exchange_receipts_request"),
                      Index("ix_exchange_receipts_key", "peer_id", "idem_key"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("exchange_peers.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(64))
    idem_key: Mapped[str] = mapped_column(String(140))
    result: Mapped[str] = mapped_column(String(20))  # imported, refused, duplicate
    action: Mapped[str] = mapped_column(String(20), default="")  # registered, status, ... (edxml.ImportResult)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    quarantine_id: Mapped[int | None] = mapped_column(ForeignKey("edxml_quarantine.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "peer_id": self.peer_id, "request_id": self.request_id, "idem_key": self.idem_key,
                "result": self.result, "action": self.action, "document_id": self.document_id,
                "quarantine_id": self.quarantine_id, "message": self.message,
                "created_at": self.created_at.isoformat()}
