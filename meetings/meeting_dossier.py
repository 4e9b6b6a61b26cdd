"""The meeting's work dossier (hồ sơ công việc, ``eoffice.dossiers``): where the minutes, signed by the chair
and the secretary, are filed as the meeting's record.

A manager of the meeting (organiser, chair, secretary) may link the meeting to one of their own open dossiers
beforehand. Otherwise, when the last required signature is added, a dossier is opened for the secretary (who
keeps the record; the chair when there is none) and linked. A closed dossier takes nothing more: the next signed
minutes open a new one. The meeting page links the dossier for its owner (a dossier is its owner's).
"""

from __future__ import annotations

from typing import Any

from eoffice import audit, dossiers
from eoffice.org import User
from eoffice.schema.dossiers import Dossier
from meetings import topics
from meetings.meetings import get_context
from meetings.schema import Meeting
from storage.db import UnitOfWork
from storage.errors import Conflict, Forbidden, NotFound


def required_roles(m: Meeting) -> set[str]:
    """Who must sign before the minutes are a record: the chair, and the secretary when it is someone else."""
    roles = {"chair"} if m.chair_id else set()
    if m.secretary_id and m.secretary_id != m.chair_id:
        roles.add("secretary")
    return roles


async def link(uow: UnitOfWork, actor: User, meeting_id: int, dossier_id: int | None) -> Meeting:
    """A manager links the meeting to one of their own open dossiers (or unlinks it with None)."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    if not ctx.access.manager:
        raise Forbidden("Chỉ người tổ chức, chủ trì hoặc thư ký gắn hồ sơ công việc cho cuộc họp.")
    if dossier_id is not None:
        d = await dossiers.get_dossier(uow, actor, dossier_id)
        if d.status != "open":
            raise Conflict("Hồ sơ đã đóng: chọn một hồ sơ đang mở.", field="dossier_id")
    ctx.meeting.dossier_id = dossier_id
    await audit.record(uow, actor, "meeting.dossier.link", "meeting", meeting_id, dossier_id=dossier_id)
    uow.emit(topics.room(meeting_id), "meeting.dossier", dossier_id=dossier_id)
    return ctx.meeting


async def _keeper(uow: UnitOfWork, m: Meeting) -> User:
    for uid in (m.secretary_id, m.chair_id, m.created_by):
        if uid and (u := await uow.session.get(User, uid)) is not None:
            return u
    raise NotFound("Cuộc họp không có thư ký, chủ trì hay người tổ chức để giữ hồ sơ.")


async def dossier_of(uow: UnitOfWork, actor: User, m: Meeting) -> Dossier:
    """The meeting's open dossier, opened for the keeper of the record if it has none (or it was closed)."""
    d = await uow.session.get(Dossier, m.dossier_id) if m.dossier_id else None
    if d is None or d.status != "open":
        d = await dossiers.open_dossier(uow, actor, f"Hồ sơ cuộc họp: {m.title}", owner=await _keeper(uow, m))
        m.dossier_id = d.id
    return d


async def file_signed_minutes(uow: UnitOfWork, actor: User, m: Meeting, *, blob_key: str, size: int) -> int:
    """File the fully signed minutes into the meeting's dossier; returns the dossier's id."""
    d = await dossier_of(uow, actor, m)
    name = f"Biên bản {m.minutes_notation or m.id} (đã ký số).pdf".replace("/", "-")
    await dossiers.file_blob(uow, actor, d, blob_key=blob_key, file_name=name, size=size,
                             source={"meeting_id": m.id})
    return d.id


async def view(uow: UnitOfWork, actor: User, m: Meeting) -> dict[str, Any] | None:
    """The dossier link for the meeting page: only its owner can open a dossier, so only they get it."""
    d = await uow.session.get(Dossier, m.dossier_id) if m.dossier_id else None
    if d is None or d.owner_id != actor.id:
        return None
    return {"id": d.id, "title": d.title, "status": d.status, "url": f"/dossiers/{d.id}"}
