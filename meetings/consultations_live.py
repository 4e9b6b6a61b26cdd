"""The per-process consultation runner: sleeps until the earliest open consultation's deadline and closes
what has run out (``consultations.close_expired``; idempotent, so several processes may race). Answers are
refused past the deadline whatever this task does (the answer checks the clock itself); ``poke()`` after a
consultation is created or closed, ``ensure()`` at startup closes anything overdue after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from eoffice.notifications import Config
from meetings import consultations
from storage.background import BackgroundTask
from storage.db import Database

log = logging.getLogger(__name__)

MAX_SLEEP = 30.0


class ConsultationRunner:
    def __init__(self, db: Database, notify: Config | None = None, *, remind_hours: float = 0.0) -> None:
        """``notify``: the notifications' config; with ``remind_hours`` > 0 members who have not answered are
        reminded that long before the deadline (``consultations.remind_unanswered``)."""
        self.db, self.notify, self.remind_hours = db, notify, remind_hours if notify is not None else 0.0
        self._wake = asyncio.Event()
        self._task = BackgroundTask("consultation-runner")
        self.closed = 0
        self.reminded = 0

    def poke(self) -> None:
        self._wake.set()
        self.ensure()

    def ensure(self) -> None:
        self._task.ensure(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            try:
                self._wake.clear()
                if self.notify is not None and self.remind_hours > 0:
                    async with self.db.uow() as uow:
                        sent = await consultations.remind_unanswered(uow, self.notify, hours=self.remind_hours)
                        await uow.commit()
                    self.reminded += sent  # counted once committed: a stop right after sees them in the database
                async with self.db.uow() as uow:
                    at = await consultations.next_deadline(uow)
                    remind = await consultations.next_reminder(uow, self.remind_hours)
                if at is None:
                    return  # nothing open: poke() starts us again
                if remind is not None and remind > consultations.clock():
                    at = min(at, remind)
                wait = (at - consultations.clock()).total_seconds()
                if wait <= 0:
                    async with self.db.uow() as uow:
                        done = await consultations.close_expired(uow)
                        await uow.commit()
                    self.closed += len(done)
                    for c in done:
                        log.info("consultation %s closed at its deadline", c.id)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(wait, MAX_SLEEP))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consultation runner failed; retrying in a second")
                await asyncio.sleep(1.0)
