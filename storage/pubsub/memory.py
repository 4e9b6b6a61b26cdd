"""In-process broker: fan-out to every subscriber of this process, nothing else.

The default for the embedded setup (one server process). Publishing never blocks and never
awaits a subscriber: each subscription has its own unbounded queue, drained by one consumer
(the hub), which itself never waits for slow clients.

Publishing is also safe from another thread or event loop (a CLI command or a test running
next to the server): a message for a subscriber on another loop is handed over with
``call_soon_threadsafe``, which keeps the publish order.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from storage.pubsub import SUBSCRIBED


class _Subscription:
    """An async iterator whose queue is registered at creation, not at first ``__anext__``.

    Registering eagerly means that nothing published between ``subscribe()`` and the first
    read is lost.
    """

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.queue.put_nowait({"topic": "", "type": SUBSCRIBED})
        self._done = False

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._done:
            raise StopAsyncIteration
        message = await self.queue.get()
        if message is None:  # broker closed
            self._done = True
            self._broker._remove(self)
            raise StopAsyncIteration
        return message

    async def aclose(self) -> None:
        self._done = True
        self._broker._remove(self)


class MemoryBroker:
    def __init__(self) -> None:
        self._subs: list[_Subscription] = []
        self._lock = threading.Lock()  # publish may come from another thread
        self._closed = False

    def _remove(self, sub: _Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _deliver(self, sub: _Subscription, items: list[dict[str, Any] | None]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is sub.loop:
            for item in items:
                sub.queue.put_nowait(item)
        elif not sub.loop.is_closed():
            sub.loop.call_soon_threadsafe(_put_all, sub.queue, items)

    async def publish(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            self._deliver(sub, list(messages))

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        sub = _Subscription(self)
        with self._lock:
            if self._closed:
                sub.queue.put_nowait(None)
            self._subs.append(sub)
        return sub

    async def check(self) -> None:
        return None  # nothing that can be down

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            subs, self._subs = list(self._subs), []
        for sub in subs:
            self._deliver(sub, [None])


def _put_all(queue: asyncio.Queue[Any], items: list[Any]) -> None:
    for item in items:
        queue.put_nowait(item)
