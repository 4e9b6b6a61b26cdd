"""Redis broker: one pub/sub channel shared by every server process, JSON payloads.

One PUBLISH per event (a self-contained JSON object, easy to watch with
``redis-cli subscribe``). ``publish`` never waits for Redis: it appends the commit's events to a
bounded in-process queue and returns; one background sender per broker (so per process) drains
the queue in order, a pipeline per round, each round under a timeout. A commit therefore costs
the same whether Redis answers, is down, or hangs (a stopped or overloaded server accepts the
TCP connection and never answers: that used to cost every write the socket timeout).

While Redis does not answer, the sender keeps the queued events and retries with backoff on a
fresh connection. The queue holds at most ``queue_limit`` events: past it the *oldest* are dropped
(the newest are the ones clients want), counted in ``stats.dropped`` and logged as a warning.
Nothing is lost for good: the events are in the database log, and once the sender gets through
after dropping some it publishes the ``SUBSCRIBED`` control message, which makes every hub check
its topics against the log (``web.hub``), as it does after its own reconnect.

Redis pub/sub ignores the database number, so the number is folded into the channel name
(``eoffice:events`` for db 0, ``eoffice:3:events`` for db 3): two deployments, or two test
runs, sharing one Redis on different databases do not see each other's events. ``?channel=``
names the channel explicitly.

The subscriber survives Redis restarts: on any connection error it logs, waits with
exponential backoff and jitter, resubscribes, and yields the ``SUBSCRIBED`` control message
again so the hub resyncs from the database event log (what was published during the outage
is lost by Redis; the log has it). redis-py's own silent reconnect is turned off for the
subscriber connection precisely so that an outage is never invisible.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from storage.errors import Unavailable
from storage.pubsub import SUBSCRIBED

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "eoffice:events"
TIMEOUT = 2.0  # one round of the background sender (or a check) gives up after this long
QUEUE_LIMIT = 10_000  # events waiting for Redis per process; past it the oldest are dropped
BATCH = 500  # events per pipeline round
FLUSH_SECONDS = 2.0  # close() waits this long for queued events to go out
DROP_LOG_SECONDS = 10.0  # at most one "dropping" warning per this many seconds
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0
HEALTH_CHECK_SECONDS = 10  # PING an idle subscription so a dead peer is noticed


def channel_for(url: str) -> tuple[str, str]:
    """Split ``?channel=`` off the URL; returns (redis URL, channel name)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    channel = query.pop("channel", "")
    clean = urlunsplit(parts._replace(query=urlencode(query)))
    if not channel:
        db = parts.path.strip("/") or "0"
        channel = DEFAULT_CHANNEL if db == "0" else f"eoffice:{db}:events"
    return clean, channel


@dataclass
class PublishStats:
    """What the background sender did (for /metrics and /readyz)."""

    sent: int = 0  # events Redis accepted
    dropped: int = 0  # events dropped because the queue was full (clients take them from the log)
    failures: int = 0  # rounds that failed or timed out
    queued: int = 0  # events waiting now
    failing_since: float | None = None  # loop time of the first failure of the current outage


class RedisBroker:
    def __init__(self, url: str, queue_limit: int = QUEUE_LIMIT) -> None:
        self.url, self.channel = channel_for(url)
        self.queue_limit = queue_limit
        self.stats = PublishStats()
        self._client = self._new_client()
        self._queue: deque[str] = deque()  # encoded messages, oldest first
        self._head = 0  # how many messages ever left the queue (sent or dropped): the number of _queue[0]
        self._wakeup: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None  # set while the queue is empty
        self._sender: asyncio.Task[None] | None = None
        self._sender_loop: asyncio.AbstractEventLoop | None = None
        self._dropped_unannounced = 0  # dropped since the last resync announcement
        self._last_drop_log = -DROP_LOG_SECONDS
        self._closed = asyncio.Event()

    def _new_client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                                       retry=Retry(NoBackoff(), 0))

    async def publish(self, messages: list[dict[str, Any]]) -> None:
        """Queue ``messages`` for the background sender and return at once (never waits for Redis)."""
        if not messages:
            return
        self._ensure_sender()
        for message in messages:
            self._queue.append(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
        overflow = len(self._queue) - self.queue_limit
        if overflow > 0:
            for _ in range(overflow):
                self._queue.popleft()
            self._head += overflow
            self.stats.dropped += overflow
            self._dropped_unannounced += overflow
            now = asyncio.get_running_loop().time()
            if now - self._last_drop_log >= DROP_LOG_SECONDS:
                self._last_drop_log = now
                log.warning("Redis broker: Redis is not taking events; dropped the oldest %d (%d in all, %d "
                            "queued); clients will catch up from the database log", overflow, self.stats.dropped,
                            len(self._queue))
        self.stats.queued = len(self._queue)
        assert self._wakeup is not None and self._drained is not None
        self._drained.clear()
        self._wakeup.set()

    def _ensure_sender(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sender is not None and self._sender_loop is loop and not self._sender.done():
            return
        if self._sender_loop is not None and self._sender_loop is not loop:
            self._client = self._new_client()  # the old client's connections belong to the other loop
        self._sender_loop = loop
        self._wakeup, self._drained = asyncio.Event(), asyncio.Event()
        self._sender = loop.create_task(self._send_forever(), name=f"redis-publisher:{self.channel}")

    async def _send_forever(self) -> None:
        assert self._wakeup is not None and self._drained is not None
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN
        while True:
            if not self._queue:
                self._drained.set()
                if self._closed.is_set():
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            start, batch = self._head, [self._queue[i] for i in range(min(BATCH, len(self._queue)))]
            announce = self._dropped_unannounced > 0
            try:
                async with asyncio.timeout(TIMEOUT):
                    pipe = self._client.pipeline(transaction=False)
                    for text in batch:
                        pipe.publish(self.channel, text)
                    if announce:  # some events never went out: every hub checks its topics against the log
                        pipe.publish(self.channel, json.dumps({"topic": "", "type": SUBSCRIBED,
                                                               "reason": "publisher dropped events"}))
                    await pipe.execute()
            except (RedisError, OSError, TimeoutError) as exc:
                self.stats.failures += 1
                if self.stats.failing_since is None:
                    self.stats.failing_since = loop.time()
                    log.warning("Redis broker: cannot publish to %s (%s); %d events queued, retrying in the "
                                "background", self.channel, exc or type(exc).__name__, len(self._queue))
                await self._reset_client()
                if self._closed.is_set():
                    return  # close() gave up waiting; what is queued is in the database log
                try:  # back off, but wake up at once on close()
                    await asyncio.wait_for(self._closed.wait(), delay * random.uniform(0.5, 1.0))
                except TimeoutError:
                    pass
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            # the round went out: forget it (publish() may have dropped some of it meanwhile, from the left)
            for _ in range(max(0, start + len(batch) - self._head)):
                self._queue.popleft()
            self._head = max(self._head, start + len(batch))
            if announce:
                self._dropped_unannounced = 0
            self.stats.sent += len(batch)
            self.stats.queued = len(self._queue)
            if self.stats.failing_since is not None:
                log.warning("Redis broker: publishing to %s again after %.1f s (%d events dropped so far)",
                            self.channel, loop.time() - self.stats.failing_since, self.stats.dropped)
                self.stats.failing_since = None
            delay = BACKOFF_MIN

    async def _reset_client(self) -> None:
        """Leave a connection that timed out: a hung peer may never answer on it again."""
        old, self._client = self._client, self._new_client()
        try:
            async with asyncio.timeout(0.5):
                await old.aclose()
        except (RedisError, OSError, TimeoutError):
            pass

    @property
    def healthy(self) -> bool:
        """False while the sender is failing to publish."""
        return self.stats.failing_since is None

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        return self._listen()

    async def _listen(self) -> AsyncIterator[dict[str, Any]]:
        delay = BACKOFF_MIN
        failed_since: float | None = None
        loop = asyncio.get_running_loop()
        while not self._closed.is_set():
            client = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0),
                health_check_interval=HEALTH_CHECK_SECONDS, socket_keepalive=True,
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if failed_since is not None:
                    log.warning("Redis broker: resubscribed to %s after %.1f s", self.channel,
                                loop.time() - failed_since)
                failed_since, delay = None, BACKOFF_MIN
                yield {"topic": "", "type": SUBSCRIBED}
                while not self._closed.is_set():
                    raw = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if raw is None or raw.get("type") != "message":
                        continue
                    try:
                        message = json.loads(raw["data"])
                    except (ValueError, TypeError):
                        log.warning("Redis broker: ignoring a malformed message on %s", self.channel)
                        continue
                    if isinstance(message, dict):
                        yield message
            except (RedisError, OSError) as exc:
                if failed_since is None:
                    failed_since = loop.time()
                    log.warning("Redis broker: subscription to %s lost (%s); reconnecting", self.channel, exc)
                else:
                    log.info("Redis broker: still cannot reach Redis (%s); retrying in %.1f s", exc, delay)
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except (RedisError, OSError):
                    pass
            if self._closed.is_set():
                break
            try:  # sleep with jitter, but wake up at once on close()
                await asyncio.wait_for(self._closed.wait(), delay * random.uniform(0.5, 1.0))
            except TimeoutError:
                pass
            delay = min(delay * 2, BACKOFF_MAX)

    async def check(self) -> None:
        client = self._new_client()
        try:
            async with asyncio.timeout(TIMEOUT):
                await client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            raise Unavailable(f"Không kết nối được Redis: {exc or 'quá thời gian chờ'}") from exc
        finally:
            try:
                async with asyncio.timeout(0.5):
                    await client.aclose()
            except (RedisError, OSError, TimeoutError):
                pass

    async def close(self) -> None:
        """Give queued events ``FLUSH_SECONDS`` to go out, then stop the sender and the subscribers."""
        sender = self._sender
        if sender is not None and not sender.done() and self._sender_loop is asyncio.get_running_loop():
            assert self._wakeup is not None
            if self._queue and self.stats.failing_since is None:
                self._wakeup.set()
                assert self._drained is not None
                try:
                    async with asyncio.timeout(FLUSH_SECONDS):
                        await self._drained.wait()
                except TimeoutError:
                    pass
            if self._queue:
                log.warning("Redis broker: closing with %d events not published; they are in the database log",
                            len(self._queue))
            self._closed.set()
            self._wakeup.set()
            sender.cancel()
            try:
                await sender
            except asyncio.CancelledError:
                pass
        self._closed.set()
        try:
            async with asyncio.timeout(0.5):
                await self._client.aclose()
        except (RedisError, OSError, TimeoutError):
            pass
