"""Garbage collection for a server that holds thousands of long-lived connections.

CPython's full (generation 2) collection walks every tracked object. With 2,000 tablets in a room
the heap holds millions of them, and every full collection stopped the event loop for 300-450 ms:
in ``bench/voting.py`` the votes that arrived meanwhile waited that long for their acknowledgement.

Most objects that survive a full collection live long (connections, caches, the ORM's metadata),
so after each full collection the survivors move to the permanent generation (``gc.freeze``): the
next full collection walks only what was allocated since. That brought the longest pause of the
same run from 433 ms to 44 ms. Reference counting still frees frozen objects that simply go
away; only garbage *cycles* among frozen objects wait, for the maintenance pass
(``gc.unfreeze``, a full collection, ``gc.freeze``), which runs when the server has been quiet for
a while (``busy()`` says it is not), at most every ``maintenance`` seconds. That pass is the one
long pause left, and it lands where nobody is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class GcPolicy:
    def __init__(self, busy: Callable[[], bool], maintenance: float = 600.0, check: float = 30.0) -> None:
        self.busy = busy
        self.maintenance = maintenance
        self.check = check
        self.freezes = 0
        self.maintained = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._collecting = False
        self._last = 0.0

    def start(self) -> None:
        """Freeze what start-up built, freeze survivors after each full collection, maintain when quiet."""
        self._loop = asyncio.get_running_loop()
        self._last = time.monotonic()
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._on_gc)
        self._task = self._loop.create_task(self._maintain(), name="gc-maintenance")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        gc.unfreeze()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # any thread may trigger a collection (the database driver's, for one): freeze on the loop's
        if phase == "stop" and info["generation"] == 2 and not self._collecting and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._freeze)

    def _freeze(self) -> None:
        gc.freeze()
        self.freezes += 1

    def collect_all(self) -> float:
        """The maintenance pass: everything collectable again, one full collection, then frozen. Seconds taken."""
        started = time.perf_counter()
        self._collecting = True
        try:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
        finally:
            self._collecting = False
        self.maintained += 1
        self._last = time.monotonic()
        return time.perf_counter() - started

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.check)
            if time.monotonic() - self._last < self.maintenance or self.busy():
                continue
            took = self.collect_all()
            log.info("gc: maintenance collection took %.0f ms (%d objects frozen)", took * 1000,
                     gc.get_freeze_count())
