"""The tables of the calendars (issue #21): the leaders' weekly work calendar (lịch công tác tuần) of an
agency with its entries, and the secret iCalendar feed tokens (only their sha256 is stored).

Table and column names are those of migration 0023; nothing here changes the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, utcnow

__all__ = ["CalendarFeed", "WorkEntry", "WorkWeek"]


class WorkWeek(Base):
    """One agency's week: drafted by the office, approved by a leader, published to the agency."""

    __tablename__ = "work_calendar_weeks"
    __table_args__ = (UniqueConstraint("agency_id", "week_start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    week_start: Mapped[dt.date] = mapped_column(Date)  # the Monday
    state: Mapped[str] = mapped_column(String(20), default="draft")  # draft | approved | published
    public: Mapped[bool] = mapped_column(Boolean, default=False)  # also on the page without login
    revision: Mapped[int] = mapped_column(Integer, default=0)  # changes after publishing
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[dt.datetime | None] = mapped_column()


class WorkEntry(Base):
    """One line of the week: when, which leader(s), what, where, who attends or prepares."""

    __tablename__ = "work_calendar_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week_id: Mapped[int] = mapped_column(ForeignKey("work_calendar_weeks.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime | None] = mapped_column()
    leader_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    content: Mapped[str] = mapped_column(Text)
    place: Mapped[str] = mapped_column(String(300), default="")
    participants: Mapped[str] = mapped_column(Text, default="")  # thành phần
    preparing_unit: Mapped[str] = mapped_column(String(300), default="")  # đơn vị chuẩn bị
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    adjusted: Mapped[bool] = mapped_column(Boolean, default=False)  # changed after publishing ("Điều chỉnh")
    adjustment: Mapped[str] = mapped_column(Text, default="")  # what changed, in Vietnamese
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "week_id": self.week_id, "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat() if self.ends_at else None, "leader_ids": list(self.leader_ids),
                "content": self.content, "place": self.place, "participants": self.participants,
                "preparing_unit": self.preparing_unit, "cancelled": self.cancelled, "adjusted": self.adjusted,
                "adjustment": self.adjustment}


class CalendarFeed(Base):
    """A secret iCalendar URL: ``personal`` (one's meetings and work entries) or ``leader`` (a leader's
    public calendar). Resetting replaces the hash, so the old URL stops working at once."""

    __tablename__ = "calendar_feeds"
    __table_args__ = (UniqueConstraint("user_id", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
