"""One background task a long-lived service keeps running (a scheduler, a cleaner, a runner): started when it is
not running, cancelled and awaited when the service stops. The one way the server's services hold their tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class BackgroundTask:
    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def ensure(self, run: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Start ``run()`` on the running loop unless it is already running; True when it was started now."""
        if self.running:
            return False
        self._task = asyncio.get_running_loop().create_task(run(), name=self.name)
        return True

    async def wait(self) -> None:
        """Wait until the task has finished on its own (not cancelled); at once when it is not running."""
        while (task := self._task) is not None and not task.done():
            await asyncio.wait({task})  # its outcome is its own business; our own cancellation still propagates

    async def stop(self) -> None:
        """Cancel the task and wait until it has finished (its own cleanup included)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["BackgroundTask"]
