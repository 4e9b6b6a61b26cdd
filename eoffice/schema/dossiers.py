"""Dossiers (hồ sơ công việc) and what they hold. Service: ``eoffice.dossiers``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, utcnow

PERMANENT = "vinh_vien"
# Retention periods used by the archives rules (Circular 10/2022/TT-BNV): years, or permanent
RETENTIONS = {"2": "2 năm", "5": "5 năm", "10": "10 năm", "20": "20 năm", "30": "30 năm", "50": "50 năm",
              "70": "70 năm", PERMANENT: "Vĩnh viễn"}


class Dossier(Base):
    __tablename__ = "dossiers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    year: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open, closed
    file_code: Mapped[str] = mapped_column(String(50), default="")
    retention: Mapped[str] = mapped_column(String(20), default="")
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column()

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "year": self.year, "status": self.status,
                "file_code": self.file_code, "retention": self.retention,
                "retention_label": RETENTIONS.get(self.retention, ""), "owner_id": self.owner_id,
                "unit_id": self.unit_id, "opened_at": self.opened_at.isoformat(),
                "closed_at": self.closed_at.isoformat() if self.closed_at else None}


class DossierItem(Base):
    __tablename__ = "dossier_items"
    __table_args__ = (UniqueConstraint("dossier_id", "document_id"), UniqueConstraint("dossier_id", "task_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    # or a file that is no registered document (the signed minutes of a meeting): a blob of the store
    blob_key: Mapped[str | None] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    size: Mapped[int | None] = mapped_column(Integer)
    added_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
