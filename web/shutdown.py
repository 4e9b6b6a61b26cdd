"""Shutdown in steps, each with a deadline: a component that never finishes stopping (a worker stuck on a lost
connection, a child process that does not exit) is logged by name, with what every task was waiting on, and the
server goes on to close the rest (the database last) instead of hanging until the supervisor kills it."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

STEP_SECONDS = 20.0  # the longest a step may take; the drain's grace period comes before, not here


def _tasks_dump() -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.print_stack(limit=6, file=out)
    return out.getvalue()


async def step(name: str, stop: Callable[[], Awaitable[object]], seconds: float | None = None) -> bool:
    """Run one shutdown step; True when it finished. An error or an overrun is logged and the caller goes on."""
    seconds = STEP_SECONDS if seconds is None else seconds
    task = asyncio.ensure_future(stop())
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        log.error("shutdown: %s did not finish in %.0f s; going on without it. Tasks:\n%s", name, seconds,
                  _tasks_dump())
        task.cancel()
        return False
    if (error := task.exception()) is not None:
        log.error("shutdown: %s failed; going on", name, exc_info=error)
        return False
    return True


__all__ = ["STEP_SECONDS", "step"]
