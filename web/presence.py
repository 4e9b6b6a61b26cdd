"""Who follows a meeting's room topic from this process, and who dropped and when (the control desk, issue #17).

The hub knows the live connections and their topics; what it forgets is who *was* there. ``Presence`` keeps,
per watched topic (``meeting:{id}`` only), the wall-clock time the last socket of each user left it. A user who
reconnects is online again (the desk reads the hub's live subscribers first). Per process: a deployment with
several workers shows each worker's view (sticky WebSocket routing keeps one tablet on one worker).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from web.hub import Connection, Hub

WATCHED = re.compile(r"meeting:\d+")
KEEP_SECONDS = 24 * 3600  # a departure older than this is forgotten


class Presence:
    def __init__(self) -> None:
        self._left: dict[str, dict[int, float]] = {}  # topic -> user id -> time.time() of the last departure

    def left(self, hub: Hub, conn: Connection, topic: str) -> None:
        """``conn`` stopped following ``topic`` (closed or unsubscribed): note it once no socket of its user
        follows the topic any more."""
        if conn.authorizer is not None or not WATCHED.fullmatch(topic):
            return  # a socket that is not a user's (the room screen)
        if any(other.user.id == conn.user.id and other.authorizer is None for other in hub.subscribers(topic)):
            return
        now = time.time()
        departures = self._left.setdefault(topic, {})
        departures[conn.user.id] = now
        for uid in [u for u, at in departures.items() if now - at > KEEP_SECONDS]:
            del departures[uid]

    def online(self, hub: Hub, topic: str) -> dict[int, int]:
        """User id -> how many of their sockets follow ``topic`` now."""
        out: dict[int, int] = {}
        for conn in hub.subscribers(topic):
            if conn.authorizer is None:
                out[conn.user.id] = out.get(conn.user.id, 0) + 1
        return out

    def dropped(self, hub: Hub, topic: str) -> dict[int, float]:
        """User id -> when (``time.time()``) they last left ``topic``, for those not back since."""
        online = self.online(hub, topic)
        return {uid: at for uid, at in self._left.get(topic, {}).items() if uid not in online}
