"""Delegations of authority (ủy quyền): a leader lets a deputy direct and/or approve in their place for a
period. Service: ``eoffice.delegation``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, utcnow


class Delegation(Base):
    __tablename__ = "delegations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)  # the leader away
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)  # the deputy acting for them
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)  # eoffice.delegation.SCOPES
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def active_at(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and self.starts_at <= now < self.ends_at

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from_user_id": self.from_user_id,
            "to_user_id": self.to_user_id,
            "scopes": list(self.scopes),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "note": self.note,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }
