"""Organisation tree (agencies and their units) and users with roles."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from storage.db import Base, utcnow


class UnitKind(enum.StrEnum):
    PROVINCE = "province"  # UBND tỉnh
    DEPARTMENT = "department"  # sở, ban, ngành
    DISTRICT = "district"  # UBND huyện, thị xã, thành phố thuộc tỉnh
    COMMUNE = "commune"  # UBND xã, phường, thị trấn
    OFFICE = "office"  # phòng, văn phòng bên trong một cơ quan


UNIT_KIND_LABELS = {
    UnitKind.PROVINCE: "Tỉnh",
    UnitKind.DEPARTMENT: "Sở, ban, ngành",
    UnitKind.DISTRICT: "Huyện",
    UnitKind.COMMUNE: "Xã",
    UnitKind.OFFICE: "Phòng",
}


class Role(enum.StrEnum):
    ADMIN = "admin"
    CLERK = "clerk"  # văn thư
    LEADER = "leader"  # lãnh đạo
    SPECIALIST = "specialist"  # chuyên viên


ROLE_LABELS = {
    Role.ADMIN: "Quản trị hệ thống",
    Role.CLERK: "Văn thư",
    Role.LEADER: "Lãnh đạo",
    Role.SPECIALIST: "Chuyên viên",
}


class UnitStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"  # giải thể: takes no new documents or tasks, hidden from pickers; its history stays
    MERGED = "merged"  # sáp nhập into ``merged_into_id`` (eoffice.org_merge): the same, and its records moved there


UNIT_STATUS_LABELS = {UnitStatus.ACTIVE: "Đang hoạt động", UnitStatus.CLOSED: "Đã giải thể",
                      UnitStatus.MERGED: "Đã sáp nhập"}


DEFAULT_RANK = 1000  # rank order (lower first: Chủ tịch before Phó Chủ tịch); unranked rows come last


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    is_agency: Mapped[bool] = mapped_column(Boolean, default=False)  # keeps its own registers
    rank: Mapped[int] = mapped_column(Integer, default=DEFAULT_RANK, server_default=str(DEFAULT_RANK))  # lower first
    # mã định danh of the national directory (Quyết định 20/2020/QĐ-TTg), e.g. 000.00.00.H41; "" when not known
    agency_code: Mapped[str] = mapped_column(String(40), default="", server_default="")
    status: Mapped[str] = mapped_column(String(10), default=UnitStatus.ACTIVE, server_default=UnitStatus.ACTIVE.value)
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    # the unit's stable id in the LDAP directory (entryUUID, objectGUID): renamed or moved there, renamed here
    directory_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side="Unit.id", lazy="raise", foreign_keys=[parent_id])

    @property
    def is_open(self) -> bool:
        return self.status == UnitStatus.ACTIVE


def open_units() -> ColumnElement[bool]:
    """The SQL condition of every picker: units that still take documents and tasks."""
    return Unit.status == UnitStatus.ACTIVE.value


class Position(Base):
    """A position (chức vụ) and its rank: people whose title is ``name`` are listed in this order
    (Chủ tịch before Phó Chủ tịch). Setting it sets ``User.rank`` of those people (eoffice.org_admin)."""

    __tablename__ = "positions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    rank: Mapped[int] = mapped_column(Integer, default=DEFAULT_RANK)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="")  # chức vụ
    email: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(30), default="", server_default="")  # SMS of urgent notifications
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    rank: Mapped[int] = mapped_column(Integer, default=DEFAULT_RANK, server_default=str(DEFAULT_RANK))  # lower first
    # set: the account comes from the LDAP directory (eoffice.directory): its stable id there, and it logs in by a
    # bind to the directory, not with a password kept here
    directory_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def has_role(self, *roles: Role | str) -> bool:
        return any(str(r) in self.roles for r in roles)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "full_name": self.full_name, "title": self.title,
                "unit_id": self.unit_id, "roles": list(self.roles)}
