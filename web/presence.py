"""Who follows a meeting's room topic from this process, and who dropped and when (the control desk, issue #17).

The hub knows the live connections and their topics; what it forgets is who *was* there. ``Presence`` counts,
per watched topic (``meeting:{id}`` only), each user's sockets following it (kept by the hub as it subscribes
and unsubscribes: O(1) each, so closing thousands of tablets at shutdown stays linear), and the wall-clock time
the last socket of a user left it. A user who reconnects is online again. Per process: a deployment with several
workers shows each worker's view (sticky WebSocket routing keeps one tablet on one worker).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from web.hub import Connection

WATCHED = re.compile(r"meeting:\d+")
KEEP_SECONDS = 24 * 3600  # a departure older than this is forgotten
PRUNE_EVERY = 60.0  # seconds between passes forgetting old departures


def _watched(conn: Connection, topic: str) -> bool:
    return conn.authorizer is None and WATCHED.fullmatch(topic) is not None  # not the room screen's socket


class Presence:
    def __init__(self) -> None:
        self._online: dict[str, dict[int, int]] = {}  # topic -> user id -> sockets following it now
        self._left: dict[str, dict[int, float]] = {}  # topic -> user id -> time.time() of the last departure
        self._pruned_at = 0.0

    def joined(self, conn: Connection, topic: str) -> None:
        if _watched(conn, topic):
            counts = self._online.setdefault(topic, {})
            counts[conn.user.id] = counts.get(conn.user.id, 0) + 1

    def left(self, conn: Connection, topic: str) -> None:
        """``conn`` stopped following ``topic`` (closed or unsubscribed); its user dropped once none is left."""
        if not _watched(conn, topic):
            return
        counts = self._online.get(topic, {})
        remaining = counts.get(conn.user.id, 1) - 1
        if remaining > 0:
            counts[conn.user.id] = remaining
            return
        counts.pop(conn.user.id, None)
        if not counts:
            self._online.pop(topic, None)
        now = time.time()
        departures = self._left.setdefault(topic, {})
        departures[conn.user.id] = now
        if now - self._pruned_at > PRUNE_EVERY:  # at most once a minute, so a mass close stays linear
            self._pruned_at = now
            for left in self._left.values():
                for uid in [u for u, at in left.items() if now - at > KEEP_SECONDS]:
                    del left[uid]
            self._left = {t: left for t, left in self._left.items() if left}

    def online(self, topic: str) -> dict[int, int]:
        """User id -> how many of their sockets follow ``topic`` now."""
        return dict(self._online.get(topic, {}))

    def dropped(self, topic: str) -> dict[int, float]:
        """User id -> when (``time.time()``) they last left ``topic``, for those not back since."""
        online = self._online.get(topic, {})
        return {uid: at for uid, at in self._left.get(topic, {}).items() if uid not in online}
