"""The durable outbox's delivery loop, shared by every channel that leaves the server (e-mail in
``eoffice.mail``; Web Push and SMS in ``eoffice.channels``).

A row is written in the transaction of its notification and stays until delivered. ``OutboxSender`` claims a
batch of due rows first (their ``next_attempt_at`` moved a lease ahead, under ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so two server processes never deliver the same row; each is then handed to ``deliver`` and marked
sent, or its attempt counted and retried after an exponential backoff (``retry_base`` doubled per attempt, at
most ``retry_max``), or -- when the other end says the address is gone for good (``Gone``) -- closed with the
reason. A row can be delivered twice only if the process dies between the other end's acceptance and the mark
(at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any, ClassVar

from sqlalchemy import select

from storage.background import BackgroundTask
from storage.db import Database, utcnow

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)  # a claimed row is left alone this long by other processes
BATCH = 20


class Gone(Exception):
    """The row can never be delivered (a push subscription answered 404/410, the channel was turned off): closed
    with the reason, not retried."""


class OutboxSender:
    """The background sender of one outbox table: woken after a commit that queued a row (``db.consumers``
    under ``name``), and every ``poll`` seconds. Subclasses set ``model`` and implement ``deliver``, which raises
    one of ``retry_on`` to try again later, ``Gone`` to give up on the row."""

    model: ClassVar[Any]  # a mapped class with id, next_attempt_at, attempts, last_error, sent_at
    name: ClassVar[str]
    retry_on: ClassVar[tuple[type[BaseException], ...]] = (OSError,)

    def __init__(
        self, db: Database, *, retry_base: float = 60.0, retry_max: float = 3600.0, poll: float = 60.0
    ) -> None:
        self.db, self.retry_base, self.retry_max, self.poll = db, retry_base, retry_max, poll
        self._task = BackgroundTask(f"{self.name}-sender")
        self._wake = asyncio.Event()

    def start(self) -> None:
        self.db.consumers[self.name] = lambda _ids: self._wake.set()
        self._task.ensure(self._run)

    async def stop(self) -> None:
        self.db.consumers.pop(self.name, None)
        await self._task.stop()

    def backoff(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=min(self.retry_base * 2 ** max(attempts - 1, 0), self.retry_max))

    async def deliver(self, row: Any) -> None:
        raise NotImplementedError

    async def _claim(self, now: dt.datetime) -> list[Any]:
        m = self.model
        async with self.db.uow() as uow:
            q = (
                select(m)
                .where(m.sent_at.is_(None), m.next_attempt_at <= now)
                .order_by(m.next_attempt_at, m.id)
                .limit(BATCH)
            )
            if uow.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = list((await uow.session.scalars(q)).all())
            for row in rows:
                row.next_attempt_at = now + LEASE
            await uow.commit()
        return rows

    async def send_due(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Deliver what is due at ``now``; returns (sent, failed). A row given up on (``Gone``) counts as failed."""
        now = now or utcnow()
        sent = failed = 0
        for row in await self._claim(now):
            error, gone = "", False
            try:
                await self.deliver(row)
            except Gone as exc:
                error, gone = f"Gone: {exc}"[:500], True
            except self.retry_on as exc:  # refused, down, unreachable, bad address
                error = f"{type(exc).__name__}: {exc}"[:500]
            async with self.db.uow() as uow:
                fresh = await uow.session.get(self.model, row.id)
                if fresh is not None:
                    fresh.attempts += 1
                    fresh.last_error = error
                    if error and not gone:
                        fresh.next_attempt_at = now + self.backoff(fresh.attempts)
                    else:
                        fresh.sent_at = utcnow()
                    await uow.commit()
            if error:
                failed += 1
                log.warning("%s %d not delivered (attempt %d): %s", self.name, row.id, row.attempts + 1, error)
            else:
                sent += 1
        return sent, failed

    async def next_due(self) -> dt.datetime | None:
        m = self.model
        async with self.db.uow(readonly=True) as uow:
            at: dt.datetime | None = await uow.session.scalar(
                select(m.next_attempt_at).where(m.sent_at.is_(None)).order_by(m.next_attempt_at).limit(1)
            )
        return at

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait = self.poll
            try:
                await self.send_due()
                due = await self.next_due()
                if due is not None:
                    wait = min(self.poll, max((due - utcnow()).total_seconds(), 0.5))
            except Exception:
                log.exception("%s sender failed; retrying", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)


__all__ = ["BATCH", "LEASE", "Gone", "OutboxSender"]
