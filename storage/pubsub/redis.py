"""Redis broker: one pub/sub channel shared by every server process, JSON payloads.

One PUBLISH per event (a self-contained JSON object, easy to watch with
``redis-cli subscribe``), sent in one pipeline per commit and serialised by a lock so that a
process's messages arrive in the order it published them.

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
from collections.abc import AsyncIterator
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
TIMEOUT = 2.0  # a commit must not hang on a dead Redis: publishing is best effort after the commit
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


class RedisBroker:
    def __init__(self, url: str) -> None:
        self.url, self.channel = channel_for(url)
        self._client = aioredis.Redis.from_url(self.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()

    async def publish(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        async with self._lock:  # keeps this process's publish order
            pipe = self._client.pipeline(transaction=False)
            for message in messages:
                pipe.publish(self.channel, json.dumps(message, ensure_ascii=False, separators=(",", ":")))
            await pipe.execute()

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
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise Unavailable(f"Không kết nối được Redis: {exc}") from exc

    async def close(self) -> None:
        self._closed.set()
        await self._client.aclose()
