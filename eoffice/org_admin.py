"""Units and positions administered in the app (#18): the tree, create, rename, move, close; positions
(chức vụ) and their rank. Administrators only; every change audited in the caller's transaction.

A closed unit (giải thể) keeps its history (documents, registers, tasks stay where they are) but takes
nothing new: ``require_open`` refuses it as the target of a task or the owner of a new number
(``eoffice.registers.allocate_number``), and pickers list ``open_units()`` only. A unit is closed only
when no active person and no open unit is left in it (move them first), so nobody works in a closed one.
Merging (sáp nhập) is ``eoffice.org_merge``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update

from eoffice import audit
from eoffice.identity import require_admin
from eoffice.org import DEFAULT_RANK, UNIT_KIND_LABELS, Position, Unit, UnitKind, UnitStatus, User
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Invalid, NotFound

MAX_DEPTH = 32  # deeper than any real tree: a bound on walks up the parents


@dataclass
class TreeRow:
    unit: Unit
    depth: int
    people: int  # active accounts in the unit


def order_tree(units: Sequence[Unit]) -> list[tuple[Unit, int]]:
    """Units in tree order (parents before children, siblings by rank then id) with their depth.
    Units whose parent is missing are roots."""
    ids = {u.id for u in units}
    children: dict[int | None, list[Unit]] = {}
    for u in sorted(units, key=lambda u: (u.rank, u.id)):
        children.setdefault(u.parent_id if u.parent_id in ids else None, []).append(u)
    out: list[tuple[Unit, int]] = []
    stack = [(u, 0) for u in reversed(children.get(None, []))]
    while stack:
        unit, depth = stack.pop()
        out.append((unit, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(unit.id, [])))
    return out


def would_cycle(parent_of: dict[int, int | None], unit_id: int, new_parent: int | None) -> bool:
    """Whether making ``new_parent`` the parent of ``unit_id`` puts the unit below itself."""
    cursor, hops = new_parent, 0
    while cursor is not None and hops <= len(parent_of):
        if cursor == unit_id:
            return True
        cursor, hops = parent_of.get(cursor), hops + 1
    return False


async def unit_tree(uow: UnitOfWork, actor: User | None, *, with_closed: bool = True) -> list[TreeRow]:
    require_admin(actor)
    q = select(Unit)
    if not with_closed:
        q = q.where(Unit.status == UnitStatus.ACTIVE.value)
    units = (await uow.session.scalars(q)).all()
    counts = dict(
        (
            await uow.session.execute(
                select(User.unit_id, func.count()).where(User.active.is_(True)).group_by(User.unit_id)
            )
        )
        .tuples()
        .all()
    )
    return [TreeRow(u, d, counts.get(u.id, 0)) for u, d in order_tree(units)]


async def get_unit(uow: UnitOfWork, unit_id: int | None, field: str = "unit_id") -> Unit:
    unit = await uow.session.get(Unit, unit_id) if unit_id is not None else None
    if unit is None:
        raise NotFound("Không tìm thấy đơn vị.", field=field)
    return unit


def require_open(unit: Unit, what: str = "nhận văn bản, nhiệm vụ mới") -> None:
    """The one refusal of a closed or merged unit as the target of anything new."""
    if unit.status == UnitStatus.MERGED:
        raise Conflict(f"Đơn vị «{unit.name}» đã được sáp nhập, không {what}.", unit_id=unit.id)
    if unit.status != UnitStatus.ACTIVE:
        raise Conflict(f"Đơn vị «{unit.name}» đã giải thể, không {what}.", unit_id=unit.id)


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise Invalid("Cần nhập tên đơn vị.", field="name")
    if len(name) > 300:
        raise Invalid("Tên đơn vị dài quá 300 ký tự.", field="name")
    return name


def _agency_code(code: str) -> str:
    code = code.strip()
    if len(code) > 40 or any(c.isspace() for c in code):
        raise Invalid(
            "Mã định danh không hợp lệ (tối đa 40 ký tự, không có khoảng trắng; ví dụ 000.00.00.H41).",
            field="agency_code",
        )
    return code


async def create_unit(
    uow: UnitOfWork,
    actor: User | None,
    *,
    code: str,
    name: str,
    kind: str,
    parent_id: int | None,
    is_agency: bool | None = None,
    agency_code: str = "",
    rank: int = DEFAULT_RANK,
) -> Unit:
    require_admin(actor)
    code = code.strip()
    if not code or len(code) > 40 or any(c.isspace() for c in code):
        raise Invalid("Cần mã đơn vị (tối đa 40 ký tự, không có khoảng trắng).", field="code")
    if kind not in {k.value for k in UnitKind}:
        raise Invalid("Loại đơn vị không hợp lệ: " + ", ".join(UNIT_KIND_LABELS.values()) + ".", field="kind")
    if await uow.session.scalar(select(Unit.id).where(Unit.code == code)):
        raise Conflict(f"Mã đơn vị «{code}» đã có.", field="code")
    if parent_id is not None:
        require_open(await get_unit(uow, parent_id, "parent_id"), "nhận đơn vị trực thuộc mới")
    unit = Unit(
        code=code,
        name=_name(name),
        kind=kind,
        parent_id=parent_id,
        agency_code=_agency_code(agency_code),
        is_agency=kind != UnitKind.OFFICE if is_agency is None else is_agency,
        rank=rank,
    )
    uow.session.add(unit)
    await uow.session.flush()
    await audit.record(
        uow,
        actor,
        "unit.create",
        "unit",
        unit.id,
        code=code,
        name=unit.name,
        kind=kind,
        parent_id=parent_id,
        agency_code=unit.agency_code,
        source="admin",
    )
    return unit


async def update_unit(
    uow: UnitOfWork,
    actor: User | None,
    unit_id: int,
    *,
    name: str | None = None,
    agency_code: str | None = None,
    rank: int | None = None,
) -> Unit:
    """Rename (đổi tên), set the national agency code or the rank of a unit; audited with old and new values."""
    require_admin(actor)
    unit = await get_unit(uow, unit_id)
    want: dict[str, object] = {}
    if name is not None:
        want["name"] = _name(name)
    if agency_code is not None:
        want["agency_code"] = _agency_code(agency_code)
    if rank is not None:
        if not 0 <= rank <= 1_000_000:
            raise Invalid("Thứ tự phải là số nguyên không âm.", field="rank")
        want["rank"] = rank
    changes = {k: [getattr(unit, k), v] for k, v in want.items() if getattr(unit, k) != v}
    if not changes:
        return unit
    for k, (_, v) in changes.items():
        setattr(unit, k, v)
    await audit.record(uow, actor, "unit.update", "unit", unit.id, code=unit.code, changes=changes, source="admin")
    return unit


async def move_unit(uow: UnitOfWork, actor: User | None, unit_id: int, parent_id: int | None) -> Unit:
    """Change a unit's parent; refuses a cycle (the unit under itself or one of its own units)."""
    require_admin(actor)
    unit = await get_unit(uow, unit_id)
    if parent_id == unit.parent_id:
        return unit
    if parent_id is not None:
        parent = await get_unit(uow, parent_id, "parent_id")
        require_open(parent, "nhận đơn vị trực thuộc mới")
        parent_of = dict((await uow.session.execute(select(Unit.id, Unit.parent_id))).tuples().all())
        if would_cycle(parent_of, unit.id, parent_id):
            raise Conflict(
                f"Không thể chuyển «{unit.name}» vào «{parent.name}»: «{parent.name}» là chính nó "
                "hoặc thuộc nó (vòng lặp).",
                field="parent_id",
            )
    old = unit.parent_id
    unit.parent_id = parent_id
    await audit.record(
        uow, actor, "unit.move", "unit", unit.id, code=unit.code, changes={"parent_id": [old, parent_id]}
    )
    return unit


async def close_unit(uow: UnitOfWork, actor: User | None, unit_id: int, reason: str = "") -> Unit:
    """Giải thể: the unit takes nothing new and leaves the pickers; its history stays."""
    require_admin(actor)
    unit = await get_unit(uow, unit_id)
    require_open(unit, "giải thể lại được")
    people = int(
        await uow.session.scalar(
            select(func.count()).select_from(User).where(User.unit_id == unit.id, User.active.is_(True))
        )
        or 0
    )
    if people:
        raise Conflict(
            f"Đơn vị «{unit.name}» còn {people} cán bộ đang làm việc: chuyển họ sang đơn vị khác "
            "(hoặc sáp nhập đơn vị) trước khi giải thể.",
            people=people,
        )
    children = int(
        await uow.session.scalar(
            select(func.count())
            .select_from(Unit)
            .where(Unit.parent_id == unit.id, Unit.status == UnitStatus.ACTIVE.value)
        )
        or 0
    )
    if children:
        raise Conflict(
            f"Đơn vị «{unit.name}» còn {children} đơn vị trực thuộc đang hoạt động: chuyển hoặc giải thể chúng trước.",
            children=children,
        )
    unit.status, unit.closed_at = UnitStatus.CLOSED.value, utcnow()
    await audit.record(uow, actor, "unit.close", "unit", unit.id, code=unit.code, reason=reason.strip())
    return unit


# ---- positions ----------------------------------------------------------------------------------


@dataclass
class PositionRow:
    name: str
    rank: int
    people: int
    saved: bool  # a row of the positions table (else a title in use with no rank set yet)


async def positions(uow: UnitOfWork, actor: User | None) -> list[PositionRow]:
    """The positions table and every title in use, by rank then name."""
    require_admin(actor)
    saved = {p.name: p for p in (await uow.session.scalars(select(Position))).all()}
    used = dict(
        (
            await uow.session.execute(
                select(User.title, func.count()).where(User.title != "", User.active.is_(True)).group_by(User.title)
            )
        )
        .tuples()
        .all()
    )
    rows = [
        PositionRow(n, saved[n].rank if n in saved else DEFAULT_RANK, used.get(n, 0), n in saved)
        for n in set(saved) | set(used)
    ]
    return sorted(rows, key=lambda r: (r.rank, r.name))


async def set_position(uow: UnitOfWork, actor: User | None, name: str, rank: int) -> Position:
    """Create or re-rank a position; the people holding it take its rank (pickers list them by it)."""
    require_admin(actor)
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise Invalid("Cần tên chức vụ (tối đa 200 ký tự).", field="name")
    if not 0 <= rank <= 1_000_000:
        raise Invalid("Thứ tự phải là số nguyên không âm.", field="rank")
    pos = await uow.session.scalar(select(Position).where(Position.name == name))
    old = pos.rank if pos is not None else None
    if pos is None:
        pos = Position(name=name, rank=rank)
        uow.session.add(pos)
    pos.rank = rank
    result = await uow.session.execute(
        update(User).where(User.title == name).values(rank=rank).execution_options(synchronize_session="fetch")
    )
    moved = int(getattr(result, "rowcount", 0) or 0)
    await uow.session.flush()
    await audit.record(uow, actor, "position.set", "position", pos.id, name=name, rank=[old, rank], people=moved)
    return pos
