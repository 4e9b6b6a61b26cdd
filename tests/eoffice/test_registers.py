"""Registers and arrival numbers: gap-free, per year, per series, safe under concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from eoffice import registers
from eoffice.documents import register_incoming
from eoffice.registers import Register, register_title, register_year, series_for
from eoffice.schema.documents import Document
from storage.db import Database, utcnow
from storage.errors import Conflict, Forbidden, Invalid
from tests.eoffice.conftest import Org, incoming_fields

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def test_register_year_follows_agency_time_zone() -> None:
    assert register_year(dt.datetime(2025, 12, 31, 23, 30, tzinfo=HCM)) == 2025
    assert register_year(dt.datetime(2026, 1, 1, 0, 10, tzinfo=HCM)) == 2026
    # 31/12 17:10 UTC is already 1 January in Hà Nội
    assert register_year(dt.datetime(2025, 12, 31, 17, 10, tzinfo=dt.UTC)) == 2026
    with pytest.raises(ValueError):
        register_year(dt.datetime(2026, 1, 1))


def test_series_and_titles() -> None:
    assert series_for("in", "quyet_dinh", False) == "" and series_for("in", "cong_van", True) == "mat"
    assert series_for("out", "quyet_dinh", False) == "quyet_dinh"
    assert series_for("out", "quyet_dinh", True) == "mat:quyet_dinh"
    assert register_title("in", "", 2026) == "Sổ đăng ký văn bản đến năm 2026"
    assert register_title("in", "mat", 2026) == "Sổ đăng ký văn bản mật đến năm 2026"
    assert register_title("out", "quyet_dinh", 2026) == "Sổ đăng ký văn bản đi (Quyết định) năm 2026"


async def test_number_rolls_back_with_the_transaction(db: Database, org: Org) -> None:
    agency = org.units["UBND"].id
    async with db.uow() as uow:
        assert (await registers.allocate_number(uow, agency, "in", "", 2026))[1] == 1
        await uow.commit()
    async with db.uow() as uow:  # rolled back: number 2 goes back
        assert (await registers.allocate_number(uow, agency, "in", "", 2026))[1] == 2
    async with db.uow() as uow:
        assert (await registers.allocate_number(uow, agency, "in", "", 2026))[1] == 2
        assert (await registers.allocate_number(uow, agency, "in", "mat", 2026))[1] == 1
        assert (await registers.allocate_number(uow, agency, "in", "", 2027))[1] == 1
        assert (await registers.allocate_number(uow, org.units["STTTT"].id, "in", "", 2026))[1] == 1
        await uow.commit()


async def test_fifty_concurrent_registrations_get_1_to_50(db: Database, org: Org) -> None:
    clerk = org["vanthu"]

    async def one(i: int) -> int:
        async with db.uow() as uow:
            doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(i))  # type: ignore[arg-type]
            await uow.commit()
            return doc.number or 0

    numbers = await asyncio.gather(*(one(i) for i in range(1, 51)))
    assert sorted(numbers) == list(range(1, 51))
    async with db.uow() as uow:
        stored = sorted((await uow.session.scalars(select(Document.number))).all())
        reg = (await uow.session.scalars(select(Register))).one()
    assert stored == list(range(1, 51)) and reg.last_number == 50 and reg.year == registers.register_year(
        dt.datetime.now(dt.UTC))


async def test_failures_mid_flight_leave_no_gaps(db: Database, org: Org) -> None:
    """Half of the concurrent registrations roll back after taking a number: the others stay 1..n."""
    clerk = org["vanthu"]

    async def one(i: int) -> int | None:
        async with db.uow() as uow:
            doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(i))  # type: ignore[arg-type]
            if i % 2:
                return None  # leaves without commit
            await uow.commit()
            return doc.number

    numbers = [n for n in await asyncio.gather(*(one(i) for i in range(1, 21))) if n is not None]
    assert sorted(numbers) == list(range(1, 11))


async def test_year_rollover_and_confidential_series(db: Database, org: Org) -> None:
    clerk = org["vanthu"]
    late = dt.datetime(2025, 12, 31, 23, 50, tzinfo=HCM)
    early = dt.datetime(2026, 1, 1, 0, 5, tzinfo=HCM)
    async with db.uow() as uow:
        got = []
        for i, (at, level) in enumerate([(late, "thuong"), (late, "thuong"), (late, "mat"), (early, "thuong"),
                                         (early, "toi_mat"), (early, "thuong")]):
            doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(
                i, date_issued=dt.date(2025, 12, 30), confidentiality=level, received_at=at))  # type: ignore[arg-type]
            got.append((doc.year, doc.number, level))
        await uow.commit()
    assert got == [(2025, 1, "thuong"), (2025, 2, "thuong"), (2025, 1, "mat"), (2026, 1, "thuong"),
                   (2026, 1, "toi_mat"), (2026, 2, "thuong")]


async def test_duplicate_is_flagged_unless_confirmed(db: Database, org: Org) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        first, _ = await register_incoming(uow, clerk, None, **incoming_fields(7))  # type: ignore[arg-type]
        await uow.commit()
    same = incoming_fields(7, notation=" 07 / ubnd–vx ", sender="ỦY BAN NHÂN DÂN THỊ XÃ ĐÔNG TRIỀU")
    async with db.uow() as uow:
        with pytest.raises(Conflict, match="có thể đã được vào sổ") as err:
            await register_incoming(uow, clerk, None, **same)  # type: ignore[arg-type]
        assert err.value.details["duplicate_of"] == first.id
    async with db.uow() as uow:  # another date: not a duplicate
        doc, _ = await register_incoming(uow, clerk, None, **{**same, "date_issued": dt.date(2026, 1, 6)})  # type: ignore[arg-type]
        assert doc.number == 2
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, clerk, None, **same, confirm_duplicate=True)  # type: ignore[arg-type]
        await uow.commit()
        assert doc.number == 2
    async with db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Document)) == 2


async def test_only_clerks_register(db: Database, org: Org) -> None:
    for name in ("lanhdao", "chuyenvien", "admin"):
        async with db.uow() as uow:
            with pytest.raises(Forbidden):
                await register_incoming(uow, org[name], None, **incoming_fields(1))  # type: ignore[arg-type]


async def test_an_arrival_time_ahead_of_now_is_refused_and_takes_no_number(db: Database, org: Org) -> None:
    clerk = org["vanthu"]
    ahead = utcnow() + dt.timedelta(days=1)
    async with db.uow() as uow:
        with pytest.raises(Invalid, match="Thời điểm đến") as refused:
            await register_incoming(uow, clerk, None, **incoming_fields(1, received_at=ahead))  # type: ignore[arg-type]
        assert refused.value.details.get("field") == "received_at"
        doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(2))  # type: ignore[arg-type]
        await uow.commit()
    assert doc.number == 1  # the refused one took no number


async def test_the_database_refuses_a_number_given_twice_in_one_register(db: Database, org: Org) -> None:
    """Allocation never repeats a number; the unique index makes the database refuse it too."""
    from sqlalchemy.exc import IntegrityError

    from eoffice.schema.documents import Document

    async with db.uow() as uow:
        first, _ = await register_incoming(uow, org["vanthu"], None, **incoming_fields(1))  # type: ignore[arg-type]
        second, _ = await register_incoming(uow, org["vanthu"], None, **incoming_fields(2))  # type: ignore[arg-type]
        await uow.commit()
    async with db.uow() as uow:
        row = await uow.session.get(Document, second.id)
        assert row is not None and row.register_id == first.register_id
        row.number = first.number
        with pytest.raises(IntegrityError):
            await uow.session.flush()
