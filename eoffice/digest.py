"""The daily digest (nhắc việc hằng ngày), sent by the server itself at a local hour.

``tasks.send_daily_digests`` does the sending (the ``eoffice digest`` CLI calls it too). Here:
when. ``DigestScheduler`` runs in the web server's lifespan: at ``hour`` o'clock in the agency's
time zone (Asia/Ho_Chi_Minh) it claims the day and sends. Several server processes may run it at
once: the claim is a row per date inserted in the sending transaction, so exactly one process
sends, and a process that fails half-way gives the day back (its transaction rolls back) for
another try. A server started after the hour sends the day's digest if nobody has yet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from eoffice import tasks
from eoffice.registers import AGENCY_TZ
from storage.background import BackgroundTask
from storage.db import Base, Database, UnitOfWork, utcnow

log = logging.getLogger(__name__)

RETRY_SECONDS = 300.0  # after a failed attempt
MAX_SLEEP = 3600.0  # wake at least hourly: clock changes, a suspended machine


class DigestRun(Base):
    """One row per day a digest was sent (the claim)."""

    __tablename__ = "digest_runs"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# ---- pure rules -------------------------------------------------------------------------------

def due_day(now: dt.datetime, hour: int, tz: ZoneInfo = AGENCY_TZ) -> dt.date | None:
    """The day whose digest is due at ``now`` (today, local, once ``hour`` has come), else None."""
    local = now.astimezone(tz)
    return local.date() if local.hour >= hour else None


def next_run(now: dt.datetime, hour: int, tz: ZoneInfo = AGENCY_TZ) -> dt.datetime:
    """The next ``hour``:00 local after ``now``, as an aware UTC datetime."""
    local = now.astimezone(tz)
    at = dt.datetime.combine(local.date(), dt.time(hour), tz)
    if at <= local:
        at = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(hour), tz)
    return at.astimezone(dt.UTC)


def check_hour(hour: int) -> int:
    if not 0 <= hour <= 23:
        raise ValueError("digest hour must be 0..23")
    return hour


# ---- service ----------------------------------------------------------------------------------

async def claim_and_send(uow: UnitOfWork, day: dt.date, host: str = "") -> int | None:
    """Claim ``day`` and send its digests in the caller's transaction (commit it). None when
    another process has claimed the day already; else how many users got a digest."""
    ins = (postgresql.insert if uow.dialect == "postgresql" else sqlite.insert)(DigestRun)
    claimed = (await uow.session.execute(
        ins.values(day=day, sent=0, host=host[:200], created_at=utcnow())
        .on_conflict_do_nothing().returning(DigestRun.day))).first()
    if claimed is None:
        return None
    sent = await tasks.send_daily_digests(uow, day)
    await uow.session.execute(
        cast(Table, DigestRun.__table__).update().where(DigestRun.day == day).values(sent=sent))
    return sent


class DigestScheduler:
    """Sends the daily digest at ``hour`` local time, from inside the server."""

    def __init__(self, db: Database, hour: int, tz: ZoneInfo = AGENCY_TZ) -> None:
        self.db, self.hour, self.tz = db, check_hour(hour), tz
        self.host = f"{socket.gethostname()}:{os.getpid()}"
        self._task = BackgroundTask("digest-scheduler")
        self._done: dt.date | None = None  # the last day this process knows is taken care of

    def start(self) -> None:
        self._task.ensure(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def tick(self, now: dt.datetime | None = None) -> int | None:
        """Send the due day's digest if nobody has. Returns what ``claim_and_send`` returned, or
        None when nothing is due."""
        day = due_day(now or utcnow(), self.hour, self.tz)
        if day is None or day == self._done:
            return None
        async with self.db.uow() as uow:
            sent = await claim_and_send(uow, day, self.host)
            await uow.commit()
        self._done = day
        if sent is not None:
            log.info("daily digest for %s sent to %d users", day.isoformat(), sent)
        return sent

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
                delay = (next_run(utcnow(), self.hour, self.tz) - utcnow()).total_seconds()
            except Exception:
                log.exception("daily digest failed; retrying in %d s", RETRY_SECONDS)
                delay = RETRY_SECONDS
            await asyncio.sleep(min(max(delay, 1.0), MAX_SLEEP))
