"""Registers (sổ đăng ký văn bản) and gap-free numbering.

One register per agency, direction (``in`` for văn bản đến, ``out`` for văn bản đi), series and
year. Confidential documents have their own series (Decree 30: văn bản mật được cấp hệ thống số
riêng). Numbers restart at 1 on 1 January in the agency's time zone.

A number is taken with ``INSERT ... ON CONFLICT DO NOTHING`` then ``UPDATE ... SET last_number =
last_number + 1 RETURNING``: on PostgreSQL the UPDATE holds the register row's lock until the
registering transaction ends, so concurrent registrations queue on that row and each sees the
previous one's number; a rollback releases the lock with the number unused (no gaps). On
SQLite, BEGIN IMMEDIATE already serialises writers.
"""

from __future__ import annotations

import datetime as dt
import enum
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from eoffice.agency_time import AGENCY_TZ, local_date
from eoffice.doctypes import BY_CODE
from eoffice.org import Unit
from eoffice.org_admin import require_open
from storage.db import Base, UnitOfWork, utcnow
from storage.errors import Invalid, NotFound

CONFIDENTIAL_SERIES = "mat"


class Direction(enum.StrEnum):
    IN = "in"  # văn bản đến
    OUT = "out"  # văn bản đi


class Register(Base):
    __tablename__ = "registers"
    __table_args__ = (UniqueConstraint("agency_id", "direction", "series", "year"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    series: Mapped[str] = mapped_column(String(40), default="")
    year: Mapped[int] = mapped_column(Integer)
    last_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def title(self) -> str:
        return register_title(self.direction, self.series, self.year)


# ---- pure rules -------------------------------------------------------------------------------

def register_year(at: dt.datetime, tz: ZoneInfo = AGENCY_TZ) -> int:
    """The register year of a moment: 31/12 23:30 in Hà Nội is still the old year, 01/01 00:10 the new."""
    return local_date(at, tz).year


def series_for(direction: str, doc_type: str, confidential: bool) -> str:
    """Incoming: one ordinary and one confidential series. Outgoing: a series per document type
    (Quyết định, Công văn... each count from 01), confidential ones apart."""
    base = "" if direction == Direction.IN else doc_type
    if confidential:
        return f"{CONFIDENTIAL_SERIES}:{base}" if base else CONFIDENTIAL_SERIES
    return base


def register_title(direction: str, series: str, year: int) -> str:
    confidential = series == CONFIDENTIAL_SERIES or series.startswith(CONFIDENTIAL_SERIES + ":")
    kind = series.split(":", 1)[1] if ":" in series else ("" if confidential else series)
    name = "Sổ đăng ký văn bản " + ("mật " if confidential else "") + ("đến" if direction == Direction.IN else "đi")
    if kind in BY_CODE:
        name += f" ({BY_CODE[kind].name})"
    return f"{name} năm {year}"


# ---- services ---------------------------------------------------------------------------------

async def agency_of(uow: UnitOfWork, unit_id: int | None) -> Unit:
    """The nearest unit up the tree (itself included) that keeps its own registers."""
    seen: set[int] = set()
    while unit_id is not None and unit_id not in seen:
        seen.add(unit_id)
        unit = await uow.session.get(Unit, unit_id)
        if unit is None:
            break
        if unit.is_agency:
            return unit
        unit_id = unit.parent_id
    raise NotFound("Người dùng không thuộc cơ quan nào có sổ đăng ký văn bản.")


async def allocate_number(uow: UnitOfWork, agency_id: int, direction: str, series: str, year: int) -> tuple[int, int]:
    """Next number in the register; returns (register id, number). Call inside the registering
    transaction, before the audit entry (lock order: register row, then audit head)."""
    if direction not in {d.value for d in Direction}:
        raise Invalid("Chiều sổ đăng ký không hợp lệ.")
    agency = await uow.session.get(Unit, agency_id)
    if agency is not None:  # a closed or merged agency's registers are read-only (eoffice.org_merge)
        require_open(agency, "cấp số mới trong sổ của mình")
    # One statement: create the register at its first number, or take the row lock and count on.
    # On PostgreSQL concurrent allocations queue on the row; on SQLite on the write lock.
    ins = (postgresql.insert if uow.dialect == "postgresql" else sqlite.insert)(Register).values(
        agency_id=agency_id, direction=direction, series=series, year=year, last_number=1, created_at=utcnow())
    reg_id, number = (
        await uow.session.execute(
            ins.on_conflict_do_update(
                index_elements=[Register.agency_id, Register.direction, Register.series, Register.year],
                set_={"last_number": Register.last_number + 1},
            ).returning(Register.id, Register.last_number)
            .execution_options(synchronize_session=False)
        )
    ).one()
    return int(reg_id), int(number)
