"""A small province for meeting tests: units, accounts, and a meeting builder (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from eoffice import identity, uploads
from eoffice.org import Role, Unit, UnitKind, User
from meetings import agenda, lifecycle, meetings, render, voting
from storage.blobs import BlobStore, open_blob_store
from storage.db import Database, UnitOfWork
from storage.errors import AppError

PASSWORD = "Mật-khẩu-2026"

PEOPLE = [
    # key, username, full name, title, unit, roles
    ("chair", "chutich", "Trần Văn Hùng", "Chủ tịch UBND tỉnh", "UBND", [Role.LEADER]),
    ("secretary", "thuky", "Nguyễn Thị Lan", "Chuyên viên Văn phòng", "VP", [Role.SPECIALIST]),
    ("organiser", "vanthu", "Phạm Thu Hà", "Văn thư", "VP", [Role.CLERK]),
    ("member", "phochutich", "Lê Minh Tuấn", "Phó Chủ tịch UBND tỉnh", "UBND", [Role.LEADER]),
    ("member2", "giamdoc", "Hoàng Đức Thắng", "Giám đốc Sở Thông tin và Truyền thông", "STTTT", [Role.LEADER]),
    ("substitute", "phogiamdoc", "Đỗ Quang Vinh", "Phó Giám đốc Sở", "STTTT", [Role.SPECIALIST]),
    ("district", "dongtrieu", "Vũ Đức Thắng", "Chủ tịch UBND thị xã Đông Triều", "DT", [Role.LEADER]),
    ("district2", "dongtrieu.pho", "Ngô Thị Hương", "Phó Chủ tịch UBND thị xã", "DT", [Role.SPECIALIST]),
    ("operator", "kythuat", "Bùi Văn Ánh", "Kỹ thuật viên điểm cầu", "DT", [Role.SPECIALIST]),
    ("outsider", "nguoingoai", "Đinh Thị Yến", "Chuyên viên", "VP", [Role.SPECIALIST]),
]

UNITS = [
    ("UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", UnitKind.PROVINCE, None, True),
    ("VP", "Văn phòng Ủy ban nhân dân tỉnh", UnitKind.OFFICE, "UBND", False),
    ("STTTT", "Sở Thông tin và Truyền thông", UnitKind.DEPARTMENT, "UBND", True),
    ("DT", "Ủy ban nhân dân thị xã Đông Triều", UnitKind.DISTRICT, "UBND", True),
]

START = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)  # 08:00 in Hà Nội


@dataclass
class World:
    db: Database
    blobs: BlobStore
    users: dict[str, User] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)

    def __getattr__(self, key: str) -> User:
        users = self.__dict__.get("users", {})
        if key in users:
            return users[key]
        raise AttributeError(key)

    async def upload_pdf(self, user: User, pages: list[list[str]], title: str = "", filename: str = "") -> int:
        data = await render.write_text_pdf(pages, title)
        return await self.upload_bytes(user, data, filename or f"{title or 'tai-lieu'}.pdf", "application/pdf")

    async def upload_bytes(self, user: User, data: bytes, filename: str, content_type: str) -> int:
        info = await self.blobs.put_bytes(data, content_type=content_type)
        async with self.db.uow() as uow:
            up = await uploads.record_upload(uow, user, info, filename)
            await uow.commit()
            return up.id

    async def meeting(self, *, invite: bool = True, start: bool = False, items: int = 2,
                      confidential_for: list[str] | None = None, **kw: Any) -> dict[str, Any]:
        """A meeting by the organiser, chaired and minuted, with members, a unit, a guest and a site."""
        u = self.users
        out: dict[str, Any] = {}
        async with self.db.uow() as uow:
            m = await meetings.create_meeting(
                uow, u["organiser"], title=kw.get("title", "Họp UBND tỉnh thường kỳ tháng 12"), starts_at=START,
                place="Phòng họp số 1, trụ sở UBND tỉnh", chair_id=u["chair"].id, secretary_id=u["secretary"].id)
            out["meeting_id"] = m.id
            site = await meetings.add_site(uow, u["organiser"], m.id, name="Điểm cầu thị xã Đông Triều",
                                           unit_id=self.units["DT"].id, operator_id=u["operator"].id)
            out["site_id"] = site.id
            seats = {}
            for key in ("member", "member2"):
                p = await meetings.add_participant(uow, u["organiser"], m.id, user_id=u[key].id)
                seats[key] = p.id
            p = await meetings.add_participant(uow, u["organiser"], m.id, unit_id=self.units["DT"].id,
                                               site_id=site.id)
            seats["unit_dt"] = p.id
            p = await meetings.add_participant(uow, u["organiser"], m.id, guest_name="Ông Phan Văn Khải",
                                               guest_title="Chuyên gia tư vấn", role="invited")
            seats["guest"] = p.id
            out["seats"] = seats
            item_ids = []
            for n in range(items):
                confidential = confidential_for is not None and n == items - 1
                item = await agenda.add_item(
                    uow, u["organiser"], m.id,
                    title=("Phương án nhân sự (mật)" if confidential else
                           f"Nội dung {n + 1}: Báo cáo chuyển đổi số huyện Đông Triều"),
                    presenter_id=u["member2"].id, planned_minutes=20, confidential=confidential,
                    allowed_user_ids=[u[k].id for k in (confidential_for or [])] if confidential else [])
                item_ids.append(item.id)
            out["item_ids"] = item_ids
            if invite:
                await meetings.send_invitations(uow, u["organiser"], m.id)
            await uow.commit()
        if start:
            async with self.db.uow() as uow:
                await lifecycle.start_meeting(uow, u["chair"], out["meeting_id"])
                await uow.commit()
        return out


@functools.cache
def password_hash() -> str:
    """Hashed once: argon2 is slow on purpose, and ten accounts per test add up."""
    return identity.hash_password(PASSWORD)


async def make_world(db: Database, blob_dir: Path) -> World:
    world = World(db=db, blobs=open_blob_store(f"file://{blob_dir}"))
    async with db.uow() as uow:
        for code, name, kind, parent, agency in UNITS:
            unit = Unit(code=code, name=name, kind=kind, is_agency=agency,
                        parent_id=world.units[parent].id if parent else None)
            uow.session.add(unit)
            await uow.session.flush()
            world.units[code] = unit
        for key, username, full_name, title, unit, roles in PEOPLE:
            user = User(username=username, full_name=full_name, password_hash=password_hash(), title=title,
                        roles=[str(r) for r in roles], unit_id=world.units[unit].id)
            uow.session.add(user)
            world.users[key] = user
        await uow.session.flush()
        await uow.commit()
    return world


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(db, tmp_path / "blobs")
    yield w
    await w.blobs.close()


async def run(db: Database, fn: Any, *args: Any, **kw: Any) -> Any:
    """Call a service in its own unit of work and commit; returns (result, events)."""
    async with db.uow() as uow:
        result = await fn(uow, *args, **kw)
        events = await uow.commit()
    return result, events


async def call(db: Database, fn: Any, *args: Any, **kw: Any) -> Any:
    return (await run(db, fn, *args, **kw))[0]


def uow_of(db: Database) -> UnitOfWork:
    return db.uow()


async def cast_one(uow: UnitOfWork, actor: User, poll_id: int, choice: Any, *,
                   participant_id: int | None = None) -> voting.Receipt:
    """One tablet vote through the one cast path, ``voting.cast_votes`` (a batch of one, as the tablets' batcher
    sends when a single vote arrives); a refusal is raised, as an HTTP handler turns it into its answer."""
    (outcome,) = await voting.cast_votes(uow, poll_id, [voting.CastRequest(actor, choice, participant_id)])
    if isinstance(outcome, AppError):
        raise outcome
    return outcome
