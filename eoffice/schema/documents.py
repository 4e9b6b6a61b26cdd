"""Documents (both directions), their attachments, the access grants on them and the ingest jobs
that extract their PDFs' text. Services: ``eoffice.documents``, ``eoffice.access``, ``eoffice.ingest``.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from eoffice import doctypes
from storage.db import Base, utcnow


class Status(enum.StrEnum):
    # incoming
    REGISTERED = "registered"  # vào sổ, chưa trình
    SUBMITTED = "submitted"  # đã trình lãnh đạo
    IN_PROGRESS = "in_progress"  # đã có ý kiến chỉ đạo, đang xử lý
    DONE = "done"  # hoàn thành
    VOIDED = "voided"  # hủy vào sổ (vào sổ nhầm): the number stays taken, the document out of working lists
    # outgoing
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    ISSUED = "issued"


STATUS_LABELS = {
    Status.REGISTERED: "Đã vào sổ", Status.SUBMITTED: "Đã trình", Status.IN_PROGRESS: "Đang xử lý",
    Status.DONE: "Hoàn thành", Status.VOIDED: "Đã hủy vào sổ", Status.DRAFT: "Dự thảo",
    Status.IN_REVIEW: "Đang trình duyệt",
    Status.APPROVED: "Đã duyệt", Status.ISSUED: "Đã ban hành",
}


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_duplicate", "agency_id", "notation_key", "date_issued"),
        Index("uq_documents_register_number", "register_id", "number", unique=True),  # a number once per register
        Index("ix_documents_agency_direction_received", "agency_id", "direction", "received_at"),
        Index("ix_documents_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_documents_date_issued", "date_issued", "id"),  # search: the ids of a range of dates
        Index("ix_documents_created_id", "created_at", "id"),  # lists: newest first, stopping at a page
        # PostgreSQL also has ix_documents_sender_trgm (pg_trgm GIN on sender_key, migration 0013) where the
        # extension could be created: the search's sender filter is a substring match
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    register_id: Mapped[int | None] = mapped_column(ForeignKey("registers.id"))
    number: Mapped[int | None] = mapped_column(Integer)
    year: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    doc_type: Mapped[str] = mapped_column(String(30))
    notation: Mapped[str] = mapped_column(String(100), default="")
    notation_key: Mapped[str] = mapped_column(String(100), default="")
    sender: Mapped[str] = mapped_column(String(300), default="")
    sender_key: Mapped[str] = mapped_column(String(300), default="")
    sender_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    date_issued: Mapped[dt.date | None] = mapped_column(Date)
    received_at: Mapped[dt.datetime | None] = mapped_column()
    summary: Mapped[str] = mapped_column(Text)
    signer: Mapped[str] = mapped_column(String(200), default="")
    urgency: Mapped[str] = mapped_column(String(20), default=doctypes.Urgency.NORMAL)
    confidentiality: Mapped[str] = mapped_column(String(20), default=doctypes.Confidentiality.NORMAL)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))  # outgoing: drafting unit
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # outgoing
    source_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    former_agency_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))  # before a merge (eoffice.org_merge)
    has_scanned_pages: Mapped[bool] = mapped_column(Boolean, default=False)
    paper_only: Mapped[bool] = mapped_column(Boolean, default=False)  # registered without a file: paper only
    void_reason: Mapped[str] = mapped_column(Text, default="")  # why the registration was voided (eoffice.corrections)
    voided_at: Mapped[dt.datetime | None] = mapped_column()
    voided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # PostgreSQL full-text vector of the folded text (eoffice.search); unused on SQLite (FTS5 table)
    search_vector: Mapped[Any | None] = mapped_column(TSVECTOR().with_variant(Text(), "sqlite"), deferred=True)

    @property
    def confidential(self) -> bool:
        return doctypes.is_confidential(self.confidentiality)

    def public(self) -> dict[str, Any]:
        t = doctypes.BY_CODE.get(self.doc_type)
        return {
            "id": self.id, "direction": self.direction, "agency_id": self.agency_id, "number": self.number,
            "year": self.year, "status": self.status, "status_label": STATUS_LABELS.get(Status(self.status), ""),
            "doc_type": self.doc_type, "doc_type_name": t.name if t else "", "notation": self.notation,
            "sender": self.sender, "date_issued": _iso(self.date_issued), "received_at": _iso(self.received_at),
            "summary": self.summary, "signer": self.signer, "urgency": self.urgency,
            "confidentiality": self.confidentiality, "page_count": self.page_count,
            "due_date": _iso(self.due_date), "unit_id": self.unit_id, "recipients": list(self.recipients or []),
            "source_document_id": self.source_document_id, "has_scanned_pages": self.has_scanned_pages,
            "paper_only": bool(self.paper_only), "voided": self.status == Status.VOIDED,
            "void_reason": self.void_reason or "", "voided_at": _iso(self.voided_at),
            "former_agency_id": self.former_agency_id,
        }

def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Correction(Base):
    """One field of a registered document corrected by its agency's clerk (đính chính): the old value
    is kept here and in the audit log."""

    __tablename__ = "document_corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str] = mapped_column(Text, default="")
    new_value: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "field": self.field, "old_value": self.old_value, "new_value": self.new_value,
                "reason": self.reason, "user_id": self.user_id, "created_at": _iso(self.created_at)}


class Attachment(Base):
    __tablename__ = "document_attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    blob_key: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    is_pdf: Mapped[bool] = mapped_column(Boolean, default=False)
    page_count: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="", deferred=True)
    scanned_pages: Mapped[list[int]] = mapped_column(JSON, default=list)
    # the PDF made of a non-PDF original (eoffice.renditions): page images and text come from it; the original
    # blob stays as it came
    rendition_blob_key: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def viewable(self) -> bool:
        """Whether the page reader can show it (a PDF, or a file with a PDF rendition)."""
        return self.is_pdf or self.rendition_blob_key is not None

    @property
    def pages_key(self) -> str:
        """The blob whose pages the reader shows."""
        return self.rendition_blob_key or self.blob_key

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "content_type": self.content_type, "size": self.size,
                "is_pdf": self.is_pdf, "page_count": self.page_count, "scanned_pages": list(self.scanned_pages),
                "has_rendition": self.rendition_blob_key is not None}


class Reason:
    REGISTERED = "registered"
    SUBMITTED = "submitted"  # trình
    DIRECTED = "directed"  # ý kiến chỉ đạo
    ASSIGNED = "assigned"  # chủ trì, phối hợp, giao lại
    INFORMED = "informed"  # để biết
    DRAFTED = "drafted"
    APPROVER = "approver"
    TO_ISSUE = "to_issue"  # approved, waiting for the clerk to number it
    RECEIVED = "received"  # delivered to an agency in the system


class Grant(Base):
    __tablename__ = "document_grants"
    __table_args__ = (
        Index("ix_document_grants_user_doc", "user_id", "document_id"),
        Index("ix_document_grants_unit_doc", "unit_id", "document_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IngestStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class IngestJob(Base):
    __tablename__ = "ingest_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    attachment_id: Mapped[int] = mapped_column(ForeignKey("document_attachments.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), default=IngestStatus.QUEUED, index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # failed runs so far; a run that failed because a service was briefly down (S3, the database) is queued again
    # for ``next_attempt_at`` (a back-off), other failures end it (status failed) until someone retries it
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "attachment_id": self.attachment_id, "status": self.status,
                "progress": self.progress, "error": self.error}
