"""Pub/sub brokers: how committed events reach every server process.

A service's unit of work numbers its events in the database and, after the commit, hands
them to ``Broker.publish``. Every process runs one subscriber (the WebSocket hub) that fans
them out to its own connections. The broker is only a fast path: the database event log is
the source of truth, so a message the broker loses (Redis restarting, say) costs a client a
catch-up from the log, never a wrong state.

Besides event messages, ``subscribe()`` yields one control message,
``{"topic": "", "type": SUBSCRIBED}``, each time its subscription becomes active: first
when it is ready (so a caller can wait before depending on it) and again after every
reconnect (so a caller knows that messages published meanwhile may be lost and can resync
from the log).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from storage.pubsub.presence import RedisPresence

SUBSCRIBED = "broker.subscribed"
"""``type`` of the control message a subscription yields when it (re)becomes active."""


def is_control(message: dict[str, Any]) -> bool:
    return not message.get("topic") and message.get("type") == SUBSCRIBED


class Broker(Protocol):
    async def publish(self, messages: list[dict[str, Any]]) -> None:
        """Send event messages (``topic, seq, type, data, at``) to every subscriber, in this order."""

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Every message published by any process, in publish order per publisher, plus control messages."""

    async def check(self) -> None:
        """Raise ``storage.errors.Unavailable`` when the broker cannot be reached."""

    async def close(self) -> None: ...


def open_broker(url: str) -> Broker:
    """``memory://`` (one process) or ``redis://host:port/db[?channel=name]`` (several processes)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from storage.pubsub.memory import MemoryBroker  # it imports this module (SUBSCRIBED)

        return MemoryBroker()
    if scheme in ("redis", "rediss", "unix"):
        from storage.pubsub.redis import RedisBroker  # the redis client, only for a redis:// broker

        return RedisBroker(url)
    raise ValueError(f"unsupported broker URL {url!r}: use memory:// or redis://host:port/db")


def open_presence(url: str) -> RedisPresence | None:
    """Where processes share who is online (the control desk): Redis for a ``redis://`` broker, else ``None``
    (one process: its own view is the whole view)."""
    if urlsplit(url).scheme in ("redis", "rediss", "unix"):
        from storage.pubsub.presence import RedisPresence  # imports the Redis client: only for a Redis broker

        return RedisPresence(url)
    return None


__all__ = ["SUBSCRIBED", "Broker", "is_control", "open_broker", "open_presence"]
