"""Merging units (sáp nhập, as the communes were in 2025): A and B into C, an existing unit or a new one.

In one transaction, audited: the people of A and B move to C, and so do their sub-units; their documents
(``agency_id``, the drafting ``unit_id``; ``former_agency_id`` keeps where each came from, shown as «trước
đây: …»), the grants and tasks given to A or B, and their dossiers. Searching by unit C then finds them
(``eoffice.search`` filters on ``agency_id`` and task units), and C's leaders and clerks reach them by the
ordinary access rule (the moved documents' reader keys are rewritten: ``search.keys_changed``). A and B are
not deleted: they are marked merged into C (``UnitStatus.MERGED``, ``merged_into_id``), take nothing new and
leave the pickers.

Registers (sổ đến, sổ đi): A's and B's register rows stay as they are, with the numbers they gave: they are
closed (read-only), since ``registers.allocate_number`` refuses a unit that is not open, and the documents
numbered in them keep their number, year and register. From the merge on, every new number is taken in C's own
series, continuing C's count for the year (a new C starts at 1). Old and new numbers cannot collide: a number is
unique per register, not per agency, and C's register export lists C's own series only.

``preview_merge`` counts what would move without changing anything (dry run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, or_, select, update

from eoffice import audit, org_admin, search
from eoffice.identity import require_admin
from eoffice.org import Unit, UnitStatus, User
from eoffice.registers import Register
from eoffice.schema.documents import Document, Grant
from eoffice.schema.dossiers import Dossier
from eoffice.schema.tasks import Task
from storage.db import UnitOfWork, utcnow
from storage.errors import Invalid


@dataclass
class MergeCounts:
    people: int = 0
    sub_units: int = 0
    documents: int = 0
    registers: int = 0
    tasks: int = 0
    dossiers: int = 0
    grants: int = 0

    def lines(self) -> list[str]:
        return [
            f"{self.people} cán bộ",
            f"{self.sub_units} đơn vị trực thuộc",
            f"{self.documents} văn bản",
            f"{self.registers} sổ đăng ký (giữ nguyên số, chỉ đọc)",
            f"{self.tasks} nhiệm vụ giao cho đơn vị",
            f"{self.dossiers} hồ sơ công việc",
            f"{self.grants} quyền truy cập của đơn vị",
        ]


@dataclass
class NewUnit:
    """C when it does not exist yet (``org_admin.create_unit``'s fields)."""

    code: str
    name: str
    kind: str
    parent_id: int | None
    agency_code: str = ""


async def _sources(uow: UnitOfWork, source_ids: Sequence[int], target_id: int | None) -> list[Unit]:
    ids = list(dict.fromkeys(source_ids))
    if not ids:
        raise Invalid("Chọn ít nhất một đơn vị để sáp nhập.", field="source_ids")
    if target_id is not None and target_id in ids:
        raise Invalid("Đơn vị nhận sáp nhập không thể đồng thời là đơn vị bị sáp nhập.", field="target_id")
    units = [await org_admin.get_unit(uow, i, "source_ids") for i in ids]
    for u in units:
        org_admin.require_open(u, "sáp nhập lại được")
    return units


async def _counts(uow: UnitOfWork, ids: list[int]) -> MergeCounts:
    s = uow.session

    async def count(model: Any, *conds: Any) -> int:
        return int(await s.scalar(select(func.count()).select_from(model).where(*conds)) or 0)

    return MergeCounts(
        people=await count(User, User.unit_id.in_(ids)),
        sub_units=await count(Unit, Unit.parent_id.in_(ids)),
        documents=await count(Document, or_(Document.agency_id.in_(ids), Document.unit_id.in_(ids))),
        registers=await count(Register, Register.agency_id.in_(ids)),
        tasks=await count(Task, Task.assignee_unit_id.in_(ids)),
        dossiers=await count(Dossier, or_(Dossier.agency_id.in_(ids), Dossier.unit_id.in_(ids))),
        grants=await count(Grant, Grant.unit_id.in_(ids)),
    )


async def _check_target(uow: UnitOfWork, target: Unit, sources: list[Unit]) -> None:
    org_admin.require_open(target, "nhận sáp nhập được")
    parent_of = dict((await uow.session.execute(select(Unit.id, Unit.parent_id))).tuples().all())
    for src in sources:  # C inside A: A's units moving to C would include C itself
        if org_admin.would_cycle(parent_of, src.id, target.id):
            raise Invalid(
                f"Đơn vị nhận «{target.name}» thuộc «{src.name}»: chọn đơn vị khác hoặc chuyển nó ra trước.",
                field="target_id",
            )


async def preview_merge(
    uow: UnitOfWork, actor: User | None, source_ids: Sequence[int], target_id: int | None
) -> MergeCounts:
    """What a merge would move (dry run: nothing is written). ``target_id`` None: into a new unit."""
    require_admin(actor)
    sources = await _sources(uow, source_ids, target_id)
    if target_id is not None:
        await _check_target(uow, await org_admin.get_unit(uow, target_id, "target_id"), sources)
    return await _counts(uow, [u.id for u in sources])


async def merge_units(
    uow: UnitOfWork,
    actor: User | None,
    source_ids: Sequence[int],
    *,
    target_id: int | None = None,
    new: NewUnit | None = None,
) -> tuple[Unit, MergeCounts]:
    """Merge the sources into ``target_id`` or into ``new`` (created here); the caller commits."""
    require_admin(actor)
    if (target_id is None) == (new is None):
        raise Invalid("Chọn đơn vị nhận sáp nhập, hoặc nhập thông tin đơn vị mới.", field="target_id")
    sources = await _sources(uow, source_ids, target_id)
    source_codes = [u.code for u in sources]
    if new is not None:
        target = await org_admin.create_unit(
            uow,
            actor,
            code=new.code,
            name=new.name,
            kind=new.kind,
            parent_id=new.parent_id,
            agency_code=new.agency_code,
        )
    else:
        target = await org_admin.get_unit(uow, target_id, "target_id")
    await _check_target(uow, target, sources)
    ids = [u.id for u in sources]
    counts = await _counts(uow, ids)
    s = uow.session

    async def run(stmt: Any) -> None:
        await s.execute(stmt.execution_options(synchronize_session=False))

    doc_ids = list(
        (
            await s.scalars(
                select(Document.id).where(
                    or_(
                        Document.agency_id.in_(ids),
                        Document.unit_id.in_(ids),
                        Document.id.in_(select(Grant.document_id).where(Grant.unit_id.in_(ids))),
                    )
                )
            )
        ).all()
    )
    await run(
        update(Document)
        .where(Document.agency_id.in_(ids))
        .values(former_agency_id=func.coalesce(Document.former_agency_id, Document.agency_id), agency_id=target.id)
    )
    await run(update(Document).where(Document.unit_id.in_(ids)).values(unit_id=target.id))
    await run(update(Grant).where(Grant.unit_id.in_(ids)).values(unit_id=target.id))
    await run(update(Task).where(Task.assignee_unit_id.in_(ids)).values(assignee_unit_id=target.id))
    await run(update(Dossier).where(Dossier.agency_id.in_(ids)).values(agency_id=target.id))
    await run(update(Dossier).where(Dossier.unit_id.in_(ids)).values(unit_id=target.id))
    await run(update(User).where(User.unit_id.in_(ids)).values(unit_id=target.id))
    await run(update(Unit).where(Unit.parent_id.in_(ids)).values(parent_id=target.id))
    now = utcnow()
    for src in sources:
        src.status, src.merged_into_id, src.closed_at = UnitStatus.MERGED.value, target.id, now
    await s.flush()
    for obj in list(s.identity_map.values()):  # the bulk updates bypassed the session's objects
        if isinstance(obj, (Document, Grant, Task, Dossier, Unit)) or (isinstance(obj, User) and obj is not actor):
            s.expire(obj)
    await s.refresh(target)
    search.keys_changed(uow, doc_ids)
    await audit.record(
        uow,
        actor,
        "unit.merge",
        "unit",
        target.id,
        sources=source_codes,
        source_ids=ids,
        target=target.code,
        counts=asdict(counts),
    )
    return target, counts
