"""edXML links, messages, quarantined packages and status events. Service: ``eoffice.edxml``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from eoffice.edxml_parse import STATUS_LABELS
from storage.db import Base, utcnow

LINK_ACTIVE, LINK_RECALLED, LINK_SUPERSEDED = "active", "recalled", "superseded"
LINK_STATE_LABELS = {LINK_ACTIVE: "Hiệu lực", LINK_RECALLED: "Đã thu hồi", LINK_SUPERSEDED: "Đã bị thay thế"}


class EdxmlLink(Base):
    """A document that came in or went out through edXML, with the id the other side knows it by."""

    __tablename__ = "edxml_links"
    __table_args__ = (Index("ix_edxml_links_remote", "agency_id", "direction", "remote_document_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), unique=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in: imported, out: exported
    organ_id: Mapped[str] = mapped_column(String(100), default="")  # the other side (in) or ours (out)
    organ_name: Mapped[str] = mapped_column(String(300), default="")
    remote_document_id: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(20), default=LINK_ACTIVE)
    related_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))  # replaced by / replaces
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"direction": self.direction, "organ_id": self.organ_id, "organ_name": self.organ_name,
                "remote_document_id": self.remote_document_id, "state": self.state,
                "state_label": LINK_STATE_LABELS.get(self.state, ""), "related_document_id": self.related_document_id}


class EdxmlMessage(Base):
    """Every package read or written, with its raw bytes in the blob store."""

    __tablename__ = "edxml_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    business_type: Mapped[int | None] = mapped_column(Integer)
    status_code: Mapped[str | None] = mapped_column(String(2))
    organ_id: Mapped[str] = mapped_column(String(100), default="")
    organ_name: Mapped[str] = mapped_column(String(300), default="")
    blob_key: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # xmldsig check of an incoming package: valid / invalid / unsigned, and who signed (migration 0018)
    signature_result: Mapped[str] = mapped_column(String(10), default="")
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # a status about a document we do not know: kept with what it refers to, listed for the clerk
    unmatched: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "direction": self.direction, "status_code": self.status_code,
                "status_label": STATUS_LABELS.get(self.status_code or "", ""), "organ_id": self.organ_id,
                "organ_name": self.organ_name, "filename": self.filename, "unmatched": self.unmatched,
                "signature": self.signature, "details": self.details or {}, "created_at": self.created_at.isoformat()}


class EdxmlQuarantine(Base):
    """A refused package: the raw bytes (blob) and why, for the clerk to look at."""

    __tablename__ = "edxml_quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    blob_key: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    problem: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "sha256": self.blob_key, "size": self.size,
                "problem": self.problem, "message": self.message, "created_at": self.created_at.isoformat()}


class StatusEvent(Base):
    """An edXML status of a document: ``in`` received from the other agency, ``out`` ours to send."""

    __tablename__ = "edxml_status_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    code: Mapped[str] = mapped_column(String(2))
    organ_id: Mapped[str] = mapped_column(String(100), default="")
    organ_name: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("edxml_messages.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "direction": self.direction, "code": self.code,
                "label": STATUS_LABELS.get(self.code, ""), "organ_id": self.organ_id, "organ_name": self.organ_name,
                "description": self.description, "at": self.at.isoformat()}
