"""storage.background.BackgroundTask: one task at a time, restarted once it has ended, stopped with its cleanup."""

from __future__ import annotations

import asyncio

from storage.background import BackgroundTask


async def test_one_task_at_a_time_restarted_after_it_ends_and_stopped_with_its_cleanup() -> None:
    started: list[int] = []
    cleaned = asyncio.Event()
    release = asyncio.Event()

    async def run() -> None:
        started.append(len(started))
        try:
            await release.wait()
        finally:
            cleaned.set()

    task = BackgroundTask("test-runner")
    assert task.ensure(run) and not task.ensure(run)  # the second call finds it running
    await asyncio.sleep(0)
    assert started == [0] and task.running

    release.set()  # it ends by itself...
    await cleaned.wait()
    await asyncio.sleep(0)
    assert not task.running
    release.clear()
    cleaned.clear()
    assert task.ensure(run)  # ...and the next ensure starts it again
    await asyncio.sleep(0)
    assert started == [0, 1]

    await task.stop()  # cancelled, and its finally has run by the time stop returns
    assert cleaned.is_set() and not task.running
    await task.stop()  # stopping a stopped task is harmless
