"""Append-only, hash-chained audit log.

Each entry stores the hash of the previous one; its own hash covers its content and that
link. Changing or deleting any row breaks the chain at that row, which ``verify`` reports.
A single head row, updated first in every appending transaction, serialises writers on both
SQLite and PostgreSQL so the chain never forks. The database also refuses UPDATE and DELETE
on the table through triggers (see the first migration).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Integer, String, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, UnitOfWork, utcnow

GENESIS = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column()
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor_name: Mapped[str] = mapped_column(String(80), default="")
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str] = mapped_column(String(60), default="")
    object_id: Mapped[str] = mapped_column(String(80), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


def entry_hash(e: AuditEntry) -> str:
    body = {
        "seq": e.seq,
        "at": e.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor_id": e.actor_id,
        "actor_name": e.actor_name,
        "action": e.action,
        "object_type": e.object_type,
        "object_id": e.object_id,
        "data": e.data,
        "ip": e.ip,
        "prev_hash": e.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record(
    uow: UnitOfWork,
    actor: Any,
    action: str,
    object_type: str = "",
    object_id: object = "",
    ip: str = "",
    **data: Any,
) -> AuditEntry:
    """Append an entry in the caller's transaction (it commits with the change it describes)."""
    s = uow.session
    ins = (postgresql.insert if uow.dialect == "postgresql" else sqlite.insert)(AuditHead)
    await s.execute(ins.values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
    seq, prev = (
        await s.execute(
            update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
            .returning(AuditHead.seq, AuditHead.hash)
        )
    ).one()
    entry = AuditEntry(
        seq=seq,
        at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_name=getattr(actor, "username", "") or ("system" if actor is None else str(actor)),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=json.loads(json.dumps(data, ensure_ascii=False, default=str)),
        ip=ip,
        prev_hash=prev,
    )
    entry.hash = entry_hash(entry)
    s.add(entry)
    await s.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=entry.hash))
    return entry


@dataclass
class Verification:
    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str = ""


async def verify(session: AsyncSession, progress: Any = None) -> Verification:
    """Walk the chain; report the first broken link (altered, inserted or deleted row)."""
    head = await session.get(AuditHead, 1)
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    result = await session.stream_scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=500))
    async for e in result:
        if e.seq != expected_seq:
            return Verification(False, checked, expected_seq, f"mục {expected_seq} đã bị xóa (tiếp theo là {e.seq})")
        if e.prev_hash != prev_hash:
            return Verification(False, checked, e.seq, "liên kết với mục trước không khớp")
        if entry_hash(e) != e.hash:
            return Verification(False, checked, e.seq, "nội dung mục đã bị sửa")
        prev_hash, expected_seq, checked = e.hash, e.seq + 1, checked + 1
        if progress is not None:
            progress(checked)
    head_seq = head.seq if head else 0
    if head_seq != checked:
        return Verification(False, checked, checked + 1, f"thiếu các mục cuối: sổ ghi {head_seq}, còn {checked}")
    if head is not None and head.hash != prev_hash:
        return Verification(False, checked, checked, "mục cuối không khớp với đầu chuỗi")
    return Verification(True, checked)
