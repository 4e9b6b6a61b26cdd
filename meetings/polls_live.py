"""The per-process poll runner: coalesced progress events and the countdown that closes polls.

Progress: a cast does not emit an event of its own on the room topic (a hall of N tablets
would receive N² frames while everyone votes). After its commit the caller ``poke``s the
runner, which emits one ``poll.progress`` per poll at most every ``interval`` seconds (0.1 s up to
2,000 voters, longer above, up to 0.4 s at 8,000: every event is one frame per tablet, about 8 µs
each on this kind of machine now that the hub writes a prebuilt frame straight to every socket,
see ``web.ws_protocol``, and the fan-out must not eat the server): at once for the first vote after a quiet
spell, then on a trailing edge. The counters are read under the poll's row lock, so the counts in
successive events never go down. While votes stream in, the ``CastBatcher`` carries the event
itself: a batch whose poll is due for one emits it in the batch's own transaction (no second write
transaction, no wait for the runner's wake-up), and the runner only sends the trailing edge.

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
from typing import Any

from meetings import topics, voting
from storage.background import BackgroundTask
from storage.db import Database, utcnow
from storage.errors import AppError

log = logging.getLogger(__name__)

MAX_SLEEP = 5.0


class PollRunner:
    def __init__(self, db: Database, interval: float = 0.1) -> None:
        self.db = db
        self.interval = interval
        self._dirty: set[int] = set()
        self._next: dict[int, float] = {}  # poll id -> monotonic time its next progress event may go
        self._wake = asyncio.Event()
        self._task = BackgroundTask("poll-runner")
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
        if not self._task.running:
            self._deadline_known = False
            self._task.ensure(self._run)

    async def stop(self) -> None:
        await self._task.stop()

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
                    due = sorted(p for p in self._dirty if self._next.get(p, 0.0) <= now)
                    if due:
                        await self._flush(due)
                        continue
                    wait = min(self._next[p] for p in self._dirty) - now
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

    def claim(self, poll_id: int) -> bool:
        """A batch of casts may emit the poll's progress now (it is due): the slot is taken until ``emitted``."""
        now = time.monotonic()
        if self._next.get(poll_id, 0.0) > now:
            return False
        self._next[poll_id] = now + self.interval
        return True

    def emitted(self, poll_id: int, data: dict[str, Any]) -> None:
        """A batch committed a progress event (``data``) for the poll: nothing is pending for it now."""
        self.flushes += 1
        self._dirty.discard(poll_id)
        if data.get("state") != "open":
            self._next.pop(poll_id, None)
        else:
            self._next[poll_id] = time.monotonic() + self.gap(int(data.get("eligible") or 0))

    def gap(self, eligible: int) -> float:
        """Seconds between two progress events of a poll with ``eligible`` voters."""
        return max(self.interval, min(0.4, eligible / 20000))

    async def _flush(self, ids: list[int]) -> None:
        self.flushes += 1
        for poll_id in ids:
            self._dirty.discard(poll_id)
            self._next[poll_id] = time.monotonic() + self.interval
            async with self.db.uow() as uow:
                data = await voting.counts(uow, poll_id)
                if data is None:
                    continue
                meeting_id = data.pop("meeting_id")
                uow.emit(topics.room(meeting_id), "poll.progress", **data)
                await uow.commit()
            self._next[poll_id] = time.monotonic() + self.gap(int(data.get("eligible") or 0))
            if data.get("state") != "open":
                self._next.pop(poll_id, None)


class CastBatcher:
    """Group commit for votes: the casts that arrive while a transaction is running go together into
    the next one (``voting.cast_votes``, per poll), and every caller is answered after that commit.

    A cast refused by the rules (already voted, closed, not eligible, malformed) gets its own
    exception; the others in the batch are unaffected. If the commit itself fails, every cast of the
    batch gets the error: none of them was acknowledged. On SQLite this takes the write lock once per
    batch instead of once per vote (concurrent writers otherwise queue in SQLite's sleeping busy
    handler); on PostgreSQL it saves a commit (and an fsync) per vote. ``submit`` is shielded: a
    client that goes away does not undo its vote.

    With a ``runner``, the batcher tells it about the votes (the caller need not ``poke``), and a batch
    whose poll is due for a progress event emits it in its own transaction (see the module docstring).
    """

    def __init__(self, db: Database, max_batch: int = 200, runner: PollRunner | None = None) -> None:
        self.db = db
        self.max_batch = max_batch
        self.runner = runner
        self._queue: list[tuple[int, voting.CastRequest, asyncio.Future[voting.Receipt]]] = []
        self._task = BackgroundTask("cast-batcher")  # runs while casts are queued, then ends
        self.batches = 0
        self.casts = 0

    async def submit(self, poll_id: int, request: voting.CastRequest) -> voting.Receipt:
        fut: asyncio.Future[voting.Receipt] = asyncio.get_running_loop().create_future()
        self._queue.append((poll_id, request, fut))
        self._task.ensure(self._run)
        return await asyncio.shield(fut)

    async def drain(self) -> None:
        """Wait until every queued cast is committed (or refused) and answered: the server's shutdown calls it
        before closing the database, so no vote a tablet was told about, or is about to be, is lost."""
        while self._queue or self._task.running:
            await self._task.wait()
            if self._queue:  # queued after the task's last look: run them now
                self._task.ensure(self._run)

    async def _run(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            by_poll: dict[int, list[tuple[voting.CastRequest, asyncio.Future[voting.Receipt]]]] = {}
            for poll_id, request, fut in batch:
                by_poll.setdefault(poll_id, []).append((request, fut))
            outcomes: list[tuple[asyncio.Future[voting.Receipt], Any]] = []
            progress: dict[int, dict[str, Any]] = {}  # poll id -> the progress event this batch emits
            counted: list[int] = []  # polls with votes in this batch
            try:
                async with self.db.uow() as uow:
                    for poll_id in sorted(by_poll):  # a fixed order of row locks
                        items = by_poll[poll_id]
                        try:
                            results: list[Any] = await voting.cast_votes(uow, poll_id, [r for r, _f in items])
                        except AppError as exc:
                            results = [exc] * len(items)
                        outcomes.extend(zip((f for _r, f in items), results, strict=True))
                        if any(not isinstance(r, BaseException) for r in results):
                            counted.append(poll_id)
                            if self.runner is not None and self.runner.claim(poll_id):
                                data = await voting.counts(uow, poll_id)  # the poll's row is locked already
                                if data is not None:
                                    uow.emit(topics.room(data.pop("meeting_id")), "poll.progress", **data)
                                    progress[poll_id] = data
                    await uow.commit()
            except Exception as exc:
                log.exception("a batch of %d casts failed to commit", len(batch))
                for _p, _r, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.casts += len(batch)
            if self.runner is not None:
                for poll_id in counted:
                    if poll_id in progress:
                        self.runner.emitted(poll_id, progress[poll_id])
                    else:
                        self.runner.poke(poll_id)  # a trailing event will carry these votes
            for fut, result in outcomes:
                if fut.done():
                    continue
                if isinstance(result, BaseException):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
