"""E-office fixtures: a small organisation, a real local blob store, Vietnamese PDFs."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from eoffice import identity, uploads
from eoffice.org import Role, Unit, UnitKind, User
from storage.blobs import BlobStore, open_blob_store
from storage.db import Database, UnitOfWork

PASSWORD = "Mật-khẩu-2026"
VN_TEXT = ("Ủy ban nhân dân huyện Đông Triều triển khai chính quyền điện tử, "
           "chuyển đổi số và cải cách hành chính năm 2026.")


@dataclass
class Org:
    units: dict[str, Unit]
    users: dict[str, User]

    def __getitem__(self, name: str) -> User:
        return self.users[name]


# code, name, kind, parent, is_agency
UNITS = [
    ("UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", UnitKind.PROVINCE, None, True),
    ("VP", "Văn phòng Ủy ban nhân dân tỉnh", UnitKind.OFFICE, "UBND", False),
    ("KT", "Phòng Kinh tế", UnitKind.OFFICE, "UBND", False),
    ("STTTT", "Sở Thông tin và Truyền thông", UnitKind.DEPARTMENT, "UBND", True),
    ("DT", "Ủy ban nhân dân thị xã Đông Triều", UnitKind.DISTRICT, "UBND", True),
]
# username, full name, unit, roles
USERS = [
    ("admin", "Quản trị hệ thống", "VP", [Role.ADMIN]),
    ("vanthu", "Nguyễn Thị Lan", "VP", [Role.CLERK]),
    ("vanthu2", "Trịnh Thị Ngọc", "VP", [Role.CLERK]),
    ("lanhdao", "Trần Văn Hùng", "UBND", [Role.LEADER]),
    ("truongphong", "Đỗ Quang Vinh", "KT", [Role.LEADER]),
    ("chuyenvien", "Phạm Thu Hà", "KT", [Role.SPECIALIST]),
    ("chuyenvien2", "Lý Văn Đức", "KT", [Role.SPECIALIST]),
    ("chanhvp", "Hoàng Văn Ánh", "VP", [Role.LEADER]),
    ("stttt.vanthu", "Hoàng Thị Mai", "STTTT", [Role.CLERK]),
    ("stttt.giamdoc", "Vũ Đức Thắng", "STTTT", [Role.LEADER]),
    ("dt.vanthu", "Ngô Thị Hương", "DT", [Role.CLERK]),
]


_HASH: list[str] = []


def _cached_hash(password: str) -> str:
    """argon2 costs ~0.5 s a hash on purpose; fixtures hash the one test password once."""
    if not _HASH:
        _HASH.append(identity._hasher.hash(PASSWORD))
    assert password == PASSWORD
    return _HASH[0]


async def make_org(db: Database) -> Org:
    from unittest import mock

    with mock.patch.object(identity, "hash_password", _cached_hash):
        return await _make_org(db)


async def _make_org(db: Database) -> Org:
    async with db.uow() as uow:
        units: dict[str, Unit] = {}
        for code, name, kind, parent, agency in UNITS:
            unit = Unit(code=code, name=name, kind=kind, is_agency=agency,
                        parent_id=units[parent].id if parent else None)
            uow.session.add(unit)
            await uow.session.flush()
            units[code] = unit
        users = {}
        for username, full_name, unit, roles in USERS:
            users[username] = await identity.create_user(
                uow, None, username=username, full_name=full_name, password=PASSWORD, roles=roles,
                unit_id=units[unit].id)
        await uow.commit()
    return Org(units, users)


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[BlobStore]:
    store = open_blob_store(f"file://{tmp_path}/blobs")
    yield store
    await store.close()


def make_pdf(pages: list[str] | None = None, *, scanned: int = 0, password: str = "") -> bytes:
    """A PDF with Vietnamese text pages (Noto Sans: the Base-14 fonts lose Vietnamese letters)
    followed by ``scanned`` image-only pages."""
    font = pymupdf.Font("notos")
    doc = pymupdf.open()
    for text in pages if pages is not None else [VN_TEXT]:
        page = doc.new_page(width=595, height=842)
        writer = pymupdf.TextWriter(page.rect)
        writer.fill_textbox(pymupdf.Rect(50, 50, 545, 792), text, font=font, fontsize=12)
        writer.write_text(page)
    if scanned:
        pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 200, 280), False)
        pix.clear_with(200)
        png = pix.tobytes("png")
        for _ in range(scanned):
            page = doc.new_page(width=595, height=842)
            page.insert_image(page.rect, stream=png)
    kwargs: dict[str, Any] = {}
    if password:
        kwargs = {"encryption": pymupdf.PDF_ENCRYPT_AES_256, "owner_pw": password, "user_pw": password}
    data = doc.tobytes(**kwargs)
    doc.close()
    return bytes(data)


async def upload(uow: UnitOfWork, user: User, blobs: BlobStore, data: bytes, filename: str = "van-ban.pdf",
                 content_type: str = "application/pdf") -> int:
    info = await blobs.put_bytes(data, content_type=content_type)
    row = await uploads.record_upload(uow, user, info, filename)
    return row.id


def incoming_fields(i: int = 1, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(
        sender="Ủy ban nhân dân thị xã Đông Triều", notation=f"{i}/UBND-VX", date_issued=dt.date(2026, 1, 5),
        doc_type="cong_van", summary=f"Công văn về việc triển khai chính quyền điện tử (lần {i})",
        signer="Vũ Đức Thắng",
    )
    fields.update(over)
    return fields
