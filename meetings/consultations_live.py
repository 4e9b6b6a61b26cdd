"""The per-process consultation runner: sleeps until the earliest open consultation's deadline and closes
what has run out (``consultations.close_expired``; idempotent, so several processes may race). Answers are
refused past the deadline whatever this task does (the answer checks the clock itself); ``poke()`` after a
consultation is created or closed, ``ensure()`` at startup closes anything overdue after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from meetings import consultations
from storage.background import BackgroundTask
from storage.db import Database

log = logging.getLogger(__name__)

MAX_SLEEP = 30.0


class ConsultationRunner:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._wake = asyncio.Event()
        self._task = BackgroundTask("consultation-runner")
        self.closed = 0

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
                async with self.db.uow() as uow:
                    at = await consultations.next_deadline(uow)
                if at is None:
                    return  # nothing open: poke() starts us again
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
