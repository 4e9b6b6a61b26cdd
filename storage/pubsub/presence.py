"""Who is online in a meeting room, shared by every server process through Redis (the control desk, issue #17).

Each process keeps its own view (``web.presence.Presence``: per topic, user id -> sockets now, and user id ->
time of the last departure) and writes it here, whole, on every change and on a heartbeat. Keys, under the
broker channel's name so two deployments or test runs sharing one Redis stay apart:

``{ns}:alive:{process}``  a string with a time-to-live of ``alive_seconds``, refreshed on every heartbeat:
                          while it exists the process is alive and its tablets are online
``{ns}:beat``             hash: process -> wall-clock time of its last heartbeat (when its tablets dropped if it
                          dies without saying goodbye: SIGKILL, a power cut, a lost network)
``{ns}:topic:{topic}``    hash: process -> ``{"online": {user: sockets}, "left": {user: time}}``

The hashes expire ``KEEP_SECONDS`` after the last write, so a finished meeting's keys go away by themselves.
Every call is bounded by ``TIMEOUT`` and raises ``Unavailable`` past it: the caller (a background task, or the
desk's read) decides what to do; nothing on a commit path waits for this store.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from storage.errors import Unavailable
from storage.pubsub.redis import channel_for

TIMEOUT = 1.0  # one round trip gives up after this long
KEEP_SECONDS = 24 * 3600  # a topic's presence hash outlives its last write by this long


class RedisPresence:
    def __init__(self, url: str) -> None:
        self.url, channel = channel_for(url)
        self.ns = f"{channel}:presence"
        self._client = self._new_client()

    def _new_client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                                       retry=Retry(NoBackoff(), 0), decode_responses=True)

    def _alive_key(self, process: str) -> str:
        return f"{self.ns}:alive:{process}"

    def _topic_key(self, topic: str) -> str:
        return f"{self.ns}:topic:{topic}"

    async def _bounded(self, work: Any) -> Any:
        try:
            async with asyncio.timeout(TIMEOUT):
                return await work
        except (RedisError, OSError, TimeoutError) as exc:
            await self._reset()
            raise Unavailable(f"Không kết nối được Redis: {exc or 'quá thời gian chờ'}") from exc

    async def _reset(self) -> None:
        """Leave a connection that failed: a hung peer may never answer on it again."""
        old, self._client = self._client, self._new_client()
        try:
            async with asyncio.timeout(0.5):
                await old.aclose()
        except (RedisError, OSError, TimeoutError):
            pass

    async def beat(self, process: str, at: float, alive_seconds: float,
                   topics: dict[str, dict[str, dict[int, Any]]]) -> None:
        """``process`` is alive for ``alive_seconds`` more; ``topics`` is its whole view (topic -> online/left)."""
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._alive_key(process), f"{at}", px=max(1, int(alive_seconds * 1000)))
        pipe.hset(f"{self.ns}:beat", process, f"{at}")
        pipe.expire(f"{self.ns}:beat", KEEP_SECONDS)
        for topic, state in topics.items():
            pipe.hset(self._topic_key(topic), process, json.dumps(state, separators=(",", ":")))
            pipe.expire(self._topic_key(topic), KEEP_SECONDS)
        await self._bounded(pipe.execute())

    async def forget(self, process: str, topics: dict[str, dict[str, dict[int, Any]]], at: float) -> None:
        """A process stopping cleanly: its last view (every socket gone) written, then no longer alive."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(f"{self.ns}:beat", process, f"{at}")
        for topic, state in topics.items():
            pipe.hset(self._topic_key(topic), process, json.dumps(state, separators=(",", ":")))
        pipe.delete(self._alive_key(process))
        await self._bounded(pipe.execute())

    async def read(self, topic: str) -> tuple[dict[str, dict[str, dict[int, Any]]], set[str], dict[str, float]]:
        """Every process's view of ``topic``, which of those processes are alive, and their last heartbeat."""

        async def work() -> tuple[dict[str, dict[str, dict[int, Any]]], set[str], dict[str, float]]:
            raw: dict[Any, Any] = await self._client.hgetall(self._topic_key(topic))
            views: dict[str, dict[str, dict[int, Any]]] = {}
            for process, text in raw.items():
                try:
                    data = json.loads(text)
                    views[process] = {part: {int(uid): value for uid, value in data.get(part, {}).items()}
                                      for part in ("online", "left")}
                except (ValueError, TypeError, AttributeError):
                    continue
            if not views:
                return {}, set(), {}
            processes = sorted(views)
            pipe = self._client.pipeline(transaction=False)
            for process in processes:
                pipe.exists(self._alive_key(process))
            pipe.hmget(f"{self.ns}:beat", processes)
            *exists, beats = await pipe.execute()
            alive = {p for p, e in zip(processes, exists, strict=True) if e}
            at = {p: float(b) for p, b in zip(processes, beats, strict=True) if b is not None}
            return views, alive, at

        result: tuple[dict[str, dict[str, dict[int, Any]]], set[str], dict[str, float]] = \
            await self._bounded(work())
        return result

    async def close(self) -> None:
        try:
            async with asyncio.timeout(0.5):
                await self._client.aclose()
        except (RedisError, OSError, TimeoutError):
            pass
