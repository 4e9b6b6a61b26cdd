"""Append-only, hash-chained audit log.

Each entry stores the hash of the previous one; its own hash covers its content and that
link. Changing or deleting any row breaks the chain at that row, which ``verify`` reports.
A single head row, updated first in every appending transaction, serialises writers on both
SQLite and PostgreSQL so the chain never forks. The database also refuses UPDATE and DELETE
on the table through triggers (see the first migration).

``record`` appends one entry; ``record_many`` appends several in one go (the group commit of
votes writes one per vote): the head moves once by their number, the entries are chained in
memory and inserted with one statement, then the head takes the last hash. Three statements
whatever the number of entries (two for one entry on PostgreSQL, where the insert goes in a WITH
clause of the head's update), and the chain is exactly what as many
``record`` calls would have written.

Keyed chain
    A plain hash chain only shows accidental damage: whoever can write the database can change a row
    and recompute every later hash. So each entry's hash is an HMAC-SHA256 under a key derived from
    the server's secret (``storage.keys``: ``EOFFICE_SECRET_KEY`` or the key directory, never in the
    database). Without the key an altered row cannot be given a hash that ``verify`` accepts.

    Entries written before the switch (migration 0017) keep their plain SHA-256: ``audit_head.legacy_seq``
    is the last of them, checked the old way; every later entry must carry the HMAC. The switch-over
    point is itself authenticated (``legacy_tag``, an HMAC of it, written by ``seal_legacy`` at the
    first start or ``eoffice migrate`` with the key), so it cannot be moved to pass forged plain entries
    off as old ones. A fresh database has no legacy part (``legacy_seq`` 0).

    Deleting the newest entries and moving the head back still leaves a valid chain. ``anchor`` gives
    the head (seq, hash, time) to keep elsewhere (``eoffice audit anchor``: printed, mailed, on paper);
    ``verify`` with an anchor also checks that this entry is still there, unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Integer, String, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage import keys
from storage.db import Base, Database, UnitOfWork, utcnow

GENESIS = "0" * 64
KEY_LABEL = "eoffice.audit.chain.v2"


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
    legacy_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # last unkeyed entry
    legacy_tag: Mapped[str] = mapped_column(String(64), default="", server_default="")  # HMAC of legacy_seq


HASHED = ("seq", "at", "actor_id", "actor_name", "action", "object_type", "object_id", "data", "ip", "prev_hash")


def _canonical(row: dict[str, Any]) -> bytes:
    body = {k: row[k] for k in HASHED}
    body["at"] = row["at"].astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def row_hash(row: dict[str, Any], key: bytes | None) -> str:
    """The hash of an entry given as a mapping of its columns (``at`` an aware datetime): HMAC-SHA256
    under ``key``, or with ``key`` None the plain SHA-256 of entries older than the keyed chain."""
    if key is None:
        return hashlib.sha256(_canonical(row)).hexdigest()
    return hmac.new(key, _canonical(row), hashlib.sha256).hexdigest()


def entry_hash(e: AuditEntry, key: bytes | None) -> str:
    return row_hash({k: getattr(e, k) for k in HASHED}, key)


def chain_key(url: object) -> bytes:
    """The MAC key of the audit chain of the database at ``url`` (module docstring)."""
    return keys.key_for(url, KEY_LABEL)  # type: ignore[arg-type]


def legacy_tag(key: bytes, legacy_seq: int) -> str:
    return hmac.new(key, f"legacy:{legacy_seq}".encode(), hashlib.sha256).hexdigest()


async def seal_legacy(db: Database) -> None:
    """Authenticate the switch-over point left by migration 0017, once, with the key (start-up, migrate)."""
    async with db.uow() as uow:
        head = await uow.session.get(AuditHead, 1, with_for_update=True)
        if head is None or head.legacy_seq == 0 or head.legacy_tag:
            return
        head.legacy_tag = legacy_tag(chain_key(db.url), head.legacy_seq)
        await uow.commit()


@dataclass
class Entry:
    """One entry for ``record_many``; the fields mean what ``record``'s arguments mean."""

    actor: Any
    action: str
    object_type: str = ""
    object_id: object = ""
    ip: str = ""
    data: dict[str, Any] = field(default_factory=dict)


async def _advance_head(uow: UnitOfWork, n: int) -> tuple[int, str]:
    """Move the head by ``n`` entries under its row lock; returns (the last seq now taken, the previous hash)."""
    s = uow.session
    step = update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + n) \
        .returning(AuditHead.seq, AuditHead.hash)
    row = (await s.execute(step)).first()
    if row is None:  # the very first entry of this database (concurrent first writers: one insert wins)
        ins = (postgresql.insert if uow.dialect == "postgresql" else sqlite.insert)(AuditHead)
        await s.execute(ins.values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
        row = (await s.execute(step)).one()
    return int(row[0]), str(row[1])


async def record_many(uow: UnitOfWork, entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """Append ``entries`` in order, in the caller's transaction (they commit with the changes they describe).

    Returns the rows written (column mappings, in order)."""
    if not entries:
        return []
    last, prev = await _advance_head(uow, len(entries))
    key = chain_key(uow.db.url)
    at = utcnow()
    rows: list[dict[str, Any]] = []
    for seq, e in enumerate(entries, start=last - len(entries) + 1):
        actor = e.actor
        row = {
            "seq": seq,
            "at": at,
            "actor_id": getattr(actor, "id", None),
            "actor_name": getattr(actor, "username", "") or ("system" if actor is None else str(actor)),
            "action": e.action,
            "object_type": e.object_type,
            "object_id": str(e.object_id),
            "data": json.loads(json.dumps(e.data, ensure_ascii=False, default=str)),
            "ip": e.ip,
            "prev_hash": prev,
        }
        row["hash"] = prev = row_hash(row, key)
        rows.append(row)
    if uow.dialect == "postgresql" and len(rows) == 1:
        # the entry and the head's new hash in one round trip: an INSERT in a WITH clause runs to
        # completion whether or not the UPDATE reads it (a statement with bound parameters, so
        # SQLAlchemy compiles it once)
        await uow.session.execute(_ONE_ENTRY, {"head_hash": prev, **{f"e_{k}": v for k, v in rows[0].items()}})
    else:
        await uow.session.execute(insert(AuditEntry), rows)
        await uow.session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))
    return rows


_ONE_ENTRY = update(AuditHead).where(AuditHead.id == 1).values(hash=bindparam("head_hash")).add_cte(
    insert(AuditEntry).values({c.key: bindparam(f"e_{c.key}", type_=c.type) for c in AuditEntry.__table__.columns})
    .cte("entry"))


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
    (row,) = await record_many(uow, [Entry(actor, action, object_type, object_id, ip, data)])
    return AuditEntry(**row)


@dataclass
class Verification:
    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str = ""


async def verify(session: AsyncSession, progress: Any = None, *, key: bytes | None = None,
                 anchor: Anchor | None = None) -> Verification:
    """Walk the chain; report the first broken link (altered, inserted or deleted row). ``key``: the chain's
    MAC key (default: the one registered for the session's database); ``anchor``: a head exported earlier
    that must still be in the chain, unchanged."""
    if key is None:
        key = chain_key(session.bind.url)  # type: ignore[union-attr]
    head = await session.get(AuditHead, 1)
    legacy_seq = head.legacy_seq if head else 0
    if legacy_seq and not hmac.compare_digest(head.legacy_tag if head else "", legacy_tag(key, legacy_seq)):
        return Verification(False, 0, legacy_seq + 1,
                            f"ranh giới giữa các mục cũ (không khóa) và mục có khóa (mục {legacy_seq}) "
                            "không được xác nhận bằng khóa của máy chủ")
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    anchored: AuditEntry | None = None
    result = await session.stream_scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=500))
    async for e in result:
        if e.seq != expected_seq:
            return Verification(False, checked, expected_seq, f"mục {expected_seq} đã bị xóa (tiếp theo là {e.seq})")
        if e.prev_hash != prev_hash:
            return Verification(False, checked, e.seq, "liên kết với mục trước không khớp")
        if not hmac.compare_digest(entry_hash(e, None if e.seq <= legacy_seq else key), e.hash):
            return Verification(False, checked, e.seq, "nội dung mục đã bị sửa")
        if anchor is not None and e.seq == anchor.seq:
            anchored = e
        prev_hash, expected_seq, checked = e.hash, e.seq + 1, checked + 1
        if progress is not None:
            progress(checked)
    head_seq = head.seq if head else 0
    if head_seq != checked:
        return Verification(False, checked, checked + 1, f"thiếu các mục cuối: sổ ghi {head_seq}, còn {checked}")
    if head is not None and head.hash != prev_hash:
        return Verification(False, checked, checked, "mục cuối không khớp với đầu chuỗi")
    if anchor is not None and anchor.seq > 0:
        if anchored is None:
            return Verification(False, checked, anchor.seq,
                                f"mục {anchor.seq} đã được neo nhưng không còn trong nhật ký (nhật ký bị cắt bớt)")
        if anchored.hash != anchor.hash:
            return Verification(False, checked, anchor.seq, f"mục {anchor.seq} khác với bản neo đã xuất")
    return Verification(True, checked)


# ---------------------------------------------------------------- anchors: the head, kept elsewhere


@dataclass(frozen=True)
class Anchor:
    """The chain's head at some moment: keep it outside the server (``eoffice audit anchor``)."""

    seq: int
    hash: str
    at: str  # the anchored entry's time, ISO 8601 UTC

    def to_json(self) -> str:
        return json.dumps({"kind": "eoffice.audit.anchor", "seq": self.seq, "hash": self.hash, "at": self.at,
                           "exported_at": utcnow().isoformat(timespec="seconds")}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        try:
            data = json.loads(text)
            seq, digest, at = int(data["seq"]), str(data["hash"]), str(data.get("at", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError("tệp neo không đúng định dạng (cần JSON có seq và hash)") from exc
        if seq < 0 or len(digest) != 64:
            raise ValueError("tệp neo không đúng định dạng (seq hoặc hash sai)")
        return cls(seq, digest, at)


async def anchor(session: AsyncSession) -> Anchor:
    """The current head of the chain (the newest entry)."""
    head = await session.get(AuditHead, 1)
    if head is None or head.seq == 0:
        return Anchor(0, GENESIS, "")
    entry = await session.get(AuditEntry, head.seq)
    at = entry.at.astimezone(dt.UTC).isoformat(timespec="microseconds") if entry else ""
    return Anchor(head.seq, head.hash, at)
