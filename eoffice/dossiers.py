"""Work dossiers (hồ sơ công việc): a person opens one, files documents and tasks into it, and
closes it with a file code (ký hiệu hồ sơ) and a retention period (thời hạn bảo quản).

A dossier belongs to its owner. Its contents are listed through the document access rule, so a
dossier never shows a document its reader may not see.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from eoffice import access, audit, registers
from eoffice.documents import get_document
from eoffice.org import User
from eoffice.schema.documents import Document
from eoffice.schema.dossiers import RETENTIONS, Dossier, DossierItem
from eoffice.schema.tasks import Task
from eoffice.tasks import get_task, visible_tasks
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound


def check_closing(file_code: str, retention: str) -> None:
    if not file_code.strip():
        raise Invalid("Cần nhập ký hiệu hồ sơ.", field="file_code")
    if retention not in RETENTIONS:
        raise Invalid("Thời hạn bảo quản không hợp lệ.", field="retention", allowed=sorted(RETENTIONS))


async def open_dossier(uow: UnitOfWork, actor: User, title: str, year: int | None = None, *,
                       owner: User | None = None) -> Dossier:
    """Open a dossier; ``owner`` when a service opens it for someone else (a meeting's dossier for its
    secretary when the minutes are signed), the actor otherwise."""
    if not title.strip():
        raise Invalid("Cần nhập tiêu đề hồ sơ.", field="title")
    owner = owner or actor
    agency = await registers.agency_of(uow, owner.unit_id)
    d = Dossier(agency_id=agency.id, unit_id=owner.unit_id, owner_id=owner.id, title=title.strip()[:500],
                year=year or registers.local_date(utcnow()).year)
    uow.session.add(d)
    await uow.session.flush()
    await audit.record(uow, actor, "dossier.open", "dossier", d.id, title=d.title, owner_id=owner.id)
    uow.emit(f"user:{owner.id}", "dossier.opened", dossier_id=d.id)
    return d


async def get_dossier(uow: UnitOfWork, actor: User, dossier_id: int) -> Dossier:
    d = await uow.session.get(Dossier, dossier_id)
    if d is None or d.owner_id != actor.id:
        raise NotFound("Không tìm thấy hồ sơ.")
    return d


async def _open_dossier(uow: UnitOfWork, actor: User, dossier_id: int) -> Dossier:
    d = await get_dossier(uow, actor, dossier_id)
    if d.status != "open":
        raise Conflict("Hồ sơ đã đóng.")
    return d


async def file_document(uow: UnitOfWork, actor: User, dossier_id: int, document_id: int) -> DossierItem:
    d = await _open_dossier(uow, actor, dossier_id)
    doc = await get_document(uow, actor, document_id)
    if await uow.session.scalar(select(DossierItem.id).where(DossierItem.dossier_id == d.id,
                                                             DossierItem.document_id == doc.id)):
        raise Conflict("Văn bản đã có trong hồ sơ.")
    item = DossierItem(dossier_id=d.id, document_id=doc.id, added_by=actor.id)
    uow.session.add(item)
    await uow.session.flush()
    await audit.record(uow, actor, "dossier.file", "dossier", d.id, document_id=doc.id)
    return item


async def file_task(uow: UnitOfWork, actor: User, dossier_id: int, task_id: int) -> DossierItem:
    d = await _open_dossier(uow, actor, dossier_id)
    task = await get_task(uow, actor, task_id)
    if await uow.session.scalar(select(DossierItem.id).where(DossierItem.dossier_id == d.id,
                                                             DossierItem.task_id == task.id)):
        raise Conflict("Nhiệm vụ đã có trong hồ sơ.")
    item = DossierItem(dossier_id=d.id, task_id=task.id, added_by=actor.id)
    uow.session.add(item)
    await uow.session.flush()
    await audit.record(uow, actor, "dossier.file", "dossier", d.id, task_id=task.id)
    return item


async def file_blob(uow: UnitOfWork, actor: User, d: Dossier, *, blob_key: str, file_name: str,
                    size: int, source: dict[str, Any]) -> DossierItem:
    """File a stored file that is no registered document (the signed minutes) into an open dossier. The
    calling service has checked the actor's right to the file (``source`` says where it comes from)."""
    if d.status != "open":
        raise Conflict("Hồ sơ đã đóng.")
    item = DossierItem(dossier_id=d.id, blob_key=blob_key, file_name=file_name[:255], size=size, added_by=actor.id)
    uow.session.add(item)
    await uow.session.flush()
    await audit.record(uow, actor, "dossier.file", "dossier", d.id, file=file_name[:255], blob_key=blob_key,
                       **source)
    uow.emit(f"user:{d.owner_id}", "dossier.filed", dossier_id=d.id, item_id=item.id)
    return item


async def get_file(uow: UnitOfWork, actor: User, dossier_id: int, item_id: int) -> DossierItem:
    d = await get_dossier(uow, actor, dossier_id)
    item = await uow.session.get(DossierItem, item_id)
    if item is None or item.dossier_id != d.id or not item.blob_key:
        raise NotFound("Không tìm thấy tệp trong hồ sơ.")
    return item


async def close_dossier(uow: UnitOfWork, actor: User, dossier_id: int, *, file_code: str,
                        retention: str) -> Dossier:
    d = await _open_dossier(uow, actor, dossier_id)
    check_closing(file_code, retention)
    if not await uow.session.scalar(select(DossierItem.id).where(DossierItem.dossier_id == d.id).limit(1)):
        raise Invalid("Hồ sơ chưa có văn bản nào.")
    clash = await uow.session.scalar(select(Dossier.id).where(
        Dossier.agency_id == d.agency_id, Dossier.year == d.year, Dossier.file_code == file_code.strip(),
        Dossier.id != d.id))
    if clash:
        raise Conflict(f"Ký hiệu hồ sơ «{file_code.strip()}» đã dùng trong năm {d.year}.", field="file_code")
    d.status, d.file_code, d.retention, d.closed_at = "closed", file_code.strip(), retention, utcnow()
    await audit.record(uow, actor, "dossier.close", "dossier", d.id, file_code=d.file_code, retention=retention)
    uow.emit(f"user:{actor.id}", "dossier.closed", dossier_id=d.id)
    return d


async def list_dossiers(uow: UnitOfWork, actor: User, status: str | None = None) -> list[Dossier]:
    q = select(Dossier).where(Dossier.owner_id == actor.id)
    if status:
        q = q.where(Dossier.status == status)
    return list((await uow.session.scalars(q.order_by(Dossier.opened_at.desc()))).all())


async def contents(uow: UnitOfWork, actor: User, dossier_id: int) -> dict[str, Any]:
    d = await get_dossier(uow, actor, dossier_id)
    viewer = await access.viewer_for(uow, actor)
    docs = (await uow.session.scalars(select(Document).join(DossierItem, DossierItem.document_id == Document.id)
                                      .where(DossierItem.dossier_id == d.id, access.visible(viewer))
                                      .order_by(DossierItem.id))).all()
    tasks = (await uow.session.scalars(select(Task).join(DossierItem, DossierItem.task_id == Task.id)
                                       .where(DossierItem.dossier_id == d.id, visible_tasks(viewer))
                                       .order_by(DossierItem.id))).all()
    files = (await uow.session.scalars(select(DossierItem).where(DossierItem.dossier_id == d.id,
                                                                 DossierItem.blob_key.is_not(None))
                                       .order_by(DossierItem.id))).all()
    return {"dossier": d.public(), "documents": [x.public() for x in docs], "tasks": [t.public() for t in tasks],
            "files": [{"id": f.id, "name": f.file_name, "size": f.size, "added_at": f.added_at.isoformat(),
                       "url": f"/api/dossiers/{d.id}/files/{f.id}"} for f in files]}


def require_owner(d: Dossier, actor: User) -> None:
    if d.owner_id != actor.id:
        raise Forbidden("Hồ sơ của người khác.")
