"""The per-process poll runner: coalesced progress events and the countdown that closes polls.

Progress: a cast does not emit an event of its own on the room topic (a hall of N tablets
would receive N² frames while everyone votes). After its commit the caller ``poke``s the
runner, which emits one ``poll.progress`` per poll at most every ``interval`` seconds: at once
for the first vote after a quiet spell, then on a trailing edge. The counters are read under
the poll's row lock, so the counts in successive events never go down.

Countdown: while some open poll has ``closes_at``, the runner sleeps until the earliest one and
closes what has run out (``voting.close_expired``; idempotent, so several processes may race).
Nothing depends on this task surviving: every cast checks ``closes_at`` in the same statement
that counts it, and ``ensure()`` (called by every voting request) restarts the runner after a
restart of the process, which then closes anything overdue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from meetings import topics, voting
from storage.db import Database, utcnow

log = logging.getLogger(__name__)

MAX_SLEEP = 5.0


class PollRunner:
    def __init__(self, db: Database, interval: float = 0.1) -> None:
        self.db = db
        self.interval = interval
        self._dirty: set[int] = set()
        self._last_flush = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deadline_known = False  # False: look at the database for countdowns
        self.flushes = 0

    def poke(self, poll_id: int | None = None) -> None:
        """A vote was committed (``poll_id``), or a poll opened/closed/changed its countdown (None)."""
        if poll_id is not None:
            self._dirty.add(poll_id)
        else:
            self._deadline_known = False
        self._wake.set()
        self.ensure()

    def ensure(self) -> None:
        if self._task is None or self._task.done():
            self._deadline_known = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="poll-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        deadline: float | None = None  # monotonic time of the next countdown to run out
        while True:
            try:
                if not self._deadline_known:
                    deadline = await self._next_deadline()
                    self._deadline_known = True
                now = time.monotonic()
                if deadline is not None and deadline <= now:
                    await self._close_expired()
                    self._deadline_known = False
                    continue
                if self._dirty:
                    wait = self._last_flush + self.interval - now
                    if wait <= 0:
                        await self._flush()
                        continue
                elif deadline is None:
                    return  # nothing to do: poke() or ensure() starts us again
                else:
                    wait = MAX_SLEEP
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(wait, MAX_SLEEP))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poll runner failed; retrying in a second")
                await asyncio.sleep(1.0)
                self._deadline_known = False

    async def _next_deadline(self) -> float | None:
        async with self.db.uow() as uow:
            at = await voting.next_deadline(uow)
        if at is None:
            return None
        return time.monotonic() + max(0.0, (at - utcnow()).total_seconds())

    async def _close_expired(self) -> None:
        async with self.db.uow() as uow:
            closed = await voting.close_expired(uow)
            await uow.commit()
        for poll in closed:
            log.info("poll %s closed by its countdown", poll.id)
            self._dirty.discard(poll.id)
            if poll.secret:
                await voting.scrub(self.db)

    async def _flush(self) -> None:
        ids, self._dirty = sorted(self._dirty), set()
        self._last_flush = time.monotonic()
        self.flushes += 1
        for poll_id in ids:
            async with self.db.uow() as uow:
                data = await voting.counts(uow, poll_id)
                if data is None:
                    continue
                meeting_id = data.pop("meeting_id")
                uow.emit(topics.room(meeting_id), "poll.progress", **data)
                await uow.commit()
