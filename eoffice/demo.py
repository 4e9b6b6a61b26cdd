"""Demo organisation: a province people's committee, two departments, two districts, a commune,
and an account for every role. All demo passwords are DEMO_PASSWORD (printed in the README)."""

from __future__ import annotations

from sqlalchemy import func, select

from eoffice import identity
from eoffice.org import Role, Unit, UnitKind, User
from storage.db import UnitOfWork

DEMO_PASSWORD = "Demo@2026"

# code, name, kind, parent code, is_agency
UNITS = [
    ("UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", UnitKind.PROVINCE, None, True),
    ("VP", "Văn phòng Ủy ban nhân dân tỉnh", UnitKind.OFFICE, "UBND", False),
    ("STTTT", "Sở Thông tin và Truyền thông", UnitKind.DEPARTMENT, "UBND", True),
    ("SNV", "Sở Nội vụ", UnitKind.DEPARTMENT, "UBND", True),
    ("DT", "Ủy ban nhân dân thị xã Đông Triều", UnitKind.DISTRICT, "UBND", True),
    ("VD", "Ủy ban nhân dân huyện Vân Đồn", UnitKind.DISTRICT, "UBND", True),
    ("BK", "Ủy ban nhân dân xã Bình Khê", UnitKind.COMMUNE, "DT", True),
]

# username, full name, title, unit code, roles
USERS = [
    ("admin", "Quản trị hệ thống", "Quản trị viên", "VP", [Role.ADMIN]),
    ("vanthu", "Nguyễn Thị Lan", "Văn thư", "VP", [Role.CLERK]),
    ("lanhdao", "Trần Văn Hùng", "Chủ tịch UBND tỉnh", "UBND", [Role.LEADER]),
    ("phochutich", "Lê Minh Tuấn", "Phó Chủ tịch UBND tỉnh", "UBND", [Role.LEADER]),
    ("chanhvanphong", "Đỗ Quang Vinh", "Chánh Văn phòng", "VP", [Role.LEADER]),
    ("chuyenvien", "Phạm Thu Hà", "Chuyên viên", "VP", [Role.SPECIALIST]),
    ("stttt.vanthu", "Hoàng Thị Mai", "Văn thư Sở", "STTTT", [Role.CLERK]),
    ("dongtrieu.lanhdao", "Vũ Đức Thắng", "Chủ tịch UBND thị xã", "DT", [Role.LEADER]),
    ("binhkhe.congchuc", "Ngô Thị Hương", "Công chức Văn phòng - Thống kê", "BK", [Role.SPECIALIST]),
]


async def is_empty(uow: UnitOfWork) -> bool:
    return not await uow.session.scalar(select(func.count()).select_from(User))


async def load_demo(uow: UnitOfWork) -> list[tuple[str, str, str]]:
    """Create the demo organisation and accounts; the caller commits. Returns (username, name, title)."""
    ids: dict[str, int] = {}
    for code, name, kind, parent, agency in UNITS:
        unit = Unit(code=code, name=name, kind=kind, parent_id=ids.get(parent) if parent else None, is_agency=agency)
        uow.session.add(unit)
        await uow.session.flush()
        ids[code] = unit.id
    created = []
    for username, full_name, title, unit_code, roles in USERS:
        await identity.create_user(uow, None, username=username, full_name=full_name, password=DEMO_PASSWORD,
                                   roles=roles, unit_id=ids[unit_code], title=title)
        created.append((username, full_name, title))
    return created
