"""Uploads that were never attached: a per-user quota on them, and their removal after a while.

An upload (``eoffice.uploads.Upload``) is *attached* once some row of the domain names its blob
(an attachment, a task update, a meeting document version, ...): every column of the schema
whose name ends in ``blob_key`` (or ``source_key``) counts, found from the metadata of every
table (``storage.models``) rather than listed here, so a table added later is covered. Blobs are
content-addressed and may be shared: a blob is deleted only when no row at all (uploads included) names it any more.

Quota (``EOFFICE_UPLOAD_QUOTA``): the bytes a user has uploaded and not attached, within the
keeping time. Agencies attach what they upload within minutes; this caps what a compromised or
careless account can pile up in the blob store (a day's worth at most, since the rest is removed)
without getting in the way of a clerk registering a batch of large scans.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Column, and_, delete, exists, func, not_, or_, select

from eoffice.uploads import Upload
from storage.background import BackgroundTask
from storage.db import Base, Database, UnitOfWork, utcnow
from storage.errors import TooLarge

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
CLEAN_EVERY = 3600.0  # seconds between passes of the server's cleaner


class BlobDeleter(Protocol):
    async def delete(self, key: str) -> None: ...


def reference_columns(include_uploads: bool = False) -> list[Column[Any]]:
    """Every column of the schema that names a blob."""
    import storage.models  # noqa: F401  (every table of every package: none that names a blob is missed)

    cols: list[Column[Any]] = []
    for table in Base.metadata.tables.values():
        if table.name == Upload.__tablename__ and not include_uploads:
            continue
        cols.extend(c for c in table.columns if c.name.endswith("blob_key") or c.name == "source_key")
    return cols


def _attached() -> Any:
    """SQL: this upload's blob is named by a row of the domain."""
    return or_(*(exists().where(col == Upload.blob_key) for col in reference_columns()))


async def unattached_bytes(uow: UnitOfWork, user_id: int, since: dt.datetime | None) -> int:
    """Bytes ``user_id`` uploaded (after ``since``) that nothing names yet."""
    cond = [Upload.user_id == user_id, not_(_attached())]
    if since is not None:
        cond.append(Upload.created_at >= since)
    return int(await uow.session.scalar(select(func.coalesce(func.sum(Upload.size), 0)).where(and_(*cond))) or 0)


def quota_message(quota: int, used: int) -> str:
    mb = 1024 * 1024
    return (f"Bạn đã có {used / mb:.0f} MB tệp tải lên chưa đính kèm; hạn mức là {quota / mb:.0f} MB. "
            "Hãy đính kèm các tệp đã tải lên, hoặc chờ tệp cũ chưa dùng được dọn, rồi thử lại.")


async def room_for(db: Database, user_id: int, quota: int, keep_hours: float, now: dt.datetime | None = None) -> int:
    """How many more bytes ``user_id`` may upload now (raises ``TooLarge`` when none)."""
    since = (now or utcnow()) - dt.timedelta(hours=keep_hours) if keep_hours > 0 else None
    async with db.uow(readonly=True) as uow:
        used = await unattached_bytes(uow, user_id, since)
    if used >= quota:
        raise TooLarge(quota_message(quota, used), reason="quota", quota=quota, used=used)
    return quota - used


@dataclass(frozen=True)
class Cleaned:
    uploads: int
    blobs: int
    bytes: int


async def clean(db: Database, blobs: BlobDeleter, keep_hours: float, now: dt.datetime | None = None) -> Cleaned:
    """Remove uploads older than ``keep_hours`` that were never attached, and the blobs of those
    that no row names any more."""
    cutoff = (now or utcnow()) - dt.timedelta(hours=keep_hours)
    async with db.uow() as uow:
        rows = (await uow.session.execute(select(Upload.id, Upload.blob_key, Upload.size).where(
            Upload.created_at < cutoff, not_(_attached())))).all()
        if rows:
            await uow.session.execute(delete(Upload).where(Upload.id.in_([r[0] for r in rows])))
        await uow.commit()
    removed, freed = 0, 0
    sizes = {r[1]: r[2] for r in rows}
    for key, size in sizes.items():
        async with db.uow(readonly=True) as uow:  # checked again, per blob, just before it goes
            named = await _named(uow, key)
        if named:
            continue
        try:
            await blobs.delete(key)
        except FileNotFoundError:
            continue
        removed, freed = removed + 1, freed + size
    if rows:
        log.info("removed %d unattached uploads and %d blobs (%d bytes)", len(rows), removed, freed)
    return Cleaned(len(rows), removed, freed)


async def _named(uow: UnitOfWork, key: str) -> bool:
    for col in reference_columns(include_uploads=True):
        if await uow.session.scalar(select(exists().where(col == key))):
            return True
    return False


class UploadCleaner:
    """Runs ``clean`` every ``every`` seconds inside the server (and once at start)."""

    def __init__(self, db: Database, blobs: BlobDeleter, keep_hours: float, every: float = CLEAN_EVERY,
                 clock: Clock = utcnow) -> None:
        self.db, self.blobs, self.keep_hours, self.every, self.clock = db, blobs, keep_hours, every, clock
        self._task = BackgroundTask("upload-cleaner")

    def start(self) -> None:
        self._task.ensure(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def tick(self) -> Cleaned:
        return await clean(self.db, self.blobs, self.keep_hours, self.clock())

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("cleaning unattached uploads failed; trying again later")
            await asyncio.sleep(self.every)
