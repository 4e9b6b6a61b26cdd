"""Who follows a meeting's room topic from this process, and who dropped and when (the control desk, issue #17).

The hub knows the live connections and their topics; what it forgets is who *was* there. ``Presence`` counts,
per watched topic (``meeting:{id}`` only), each user's sockets following it (kept by the hub as it subscribes
and unsubscribes: O(1) each, so closing thousands of tablets at shutdown stays linear), and the wall-clock time
the last socket of a user left it. A user who reconnects is online again.

Several processes (``eoffice serve --workers N``, or servers behind nginx): with a Redis broker each process
writes its whole view to Redis (``storage.pubsub.presence``) on every change, coalesced, and on a heartbeat
every ``HEARTBEAT_SECONDS``; the desk (``view``) merges every process's view. A process whose heartbeat stops
(killed, frozen, cut off) is dead after ``ALIVE_SECONDS``: its tablets show as dropped at its last heartbeat,
unless they are already back on another process. All of it runs in one background task and the desk's read,
each bounded: a hung Redis never holds a socket, a commit or the hub; the desk then shows this process's own view
(logged). With the in-process broker the process's own view is the whole view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any

from storage.errors import Unavailable

if TYPE_CHECKING:
    from storage.pubsub.presence import RedisPresence
    from web.hub import Connection

log = logging.getLogger(__name__)

WATCHED = re.compile(r"meeting:\d+")
KEEP_SECONDS = 24 * 3600  # a departure older than this is forgotten
PRUNE_EVERY = 60.0  # seconds between passes forgetting old departures
HEARTBEAT_SECONDS = 2.0  # a process rewrites its view to Redis at least this often
ALIVE_SECONDS = 3 * HEARTBEAT_SECONDS  # without a heartbeat for this long a process is dead, its tablets dropped
COALESCE_SECONDS = 0.2  # changes within this long (a room of tablets reconnecting) go out in one write

View = dict[str, dict[int, Any]]  # {"online": {user id: sockets}, "left": {user id: time.time()}}


def _watched(conn: Connection, topic: str) -> bool:
    return conn.authorizer is None and WATCHED.fullmatch(topic) is not None  # not the room screen's socket


def merge(views: dict[str, View], alive: set[str], beats: dict[str, float],
          now: float | None = None) -> tuple[dict[int, int], dict[int, float]]:
    """(online, dropped) of a topic from every process's view: a live process's sockets count as online; a dead
    one's as dropped at its last heartbeat; a user online anywhere is not dropped."""
    online: dict[int, int] = {}
    left: dict[int, float] = {}
    for process, view in views.items():
        for uid, at in view.get("left", {}).items():
            left[uid] = max(left.get(uid, 0.0), float(at))
        if process in alive:
            for uid, count in view.get("online", {}).items():
                online[uid] = online.get(uid, 0) + int(count)
        else:
            at = beats.get(process, now if now is not None else time.time())
            for uid in view.get("online", {}):
                left[uid] = max(left.get(uid, 0.0), at)
    return online, {uid: at for uid, at in left.items() if uid not in online}


class Presence:
    def __init__(self, store: RedisPresence | None = None) -> None:
        self._online: dict[str, dict[int, int]] = {}  # topic -> user id -> sockets following it now
        self._left: dict[str, dict[int, float]] = {}  # topic -> user id -> time.time() of the last departure
        self._pruned_at = 0.0
        self.store = store
        self.process = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def joined(self, conn: Connection, topic: str) -> None:
        if _watched(conn, topic):
            counts = self._online.setdefault(topic, {})
            counts[conn.user.id] = counts.get(conn.user.id, 0) + 1
            self._touch()

    def left(self, conn: Connection, topic: str) -> None:
        """``conn`` stopped following ``topic`` (closed or unsubscribed); its user dropped once none is left."""
        if not _watched(conn, topic):
            return
        counts = self._online.get(topic, {})
        remaining = counts.get(conn.user.id, 1) - 1
        self._touch()
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

    async def view(self, topic: str) -> tuple[dict[int, int], dict[int, float]]:
        """(online, dropped) across every process sharing the store; this process's alone without one, or
        while the store does not answer (bounded: the desk never waits long on Redis)."""
        if self.store is None:
            return self.online(topic), self.dropped(topic)
        try:
            views, alive, beats = await self.store.read(topic)
        except Unavailable as exc:
            log.warning("presence: cannot read the shared view of %s (%s); showing this process's own", topic, exc)
            return self.online(topic), self.dropped(topic)
        views[self.process] = self._view(topic)  # our own, fresher than what the last write left there
        alive.add(self.process)
        return merge(views, alive, beats)

    # -- sharing through the store ----------------------------------------------------------

    def _touch(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _view(self, topic: str) -> View:
        return {"online": dict(self._online.get(topic, {})), "left": dict(self._left.get(topic, {}))}

    def _views(self) -> dict[str, View]:
        return {topic: self._view(topic) for topic in set(self._online) | set(self._left)}

    async def start(self) -> None:
        """Start sharing this process's view (nothing to do without a store)."""
        if self.store is None or self._task is not None:
            return
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._share_forever(), name="presence-sharing")

    async def _share_forever(self) -> None:
        assert self.store is not None and self._changed is not None
        failing = False
        while True:
            self._changed.clear()
            try:
                await self.store.beat(self.process, time.time(), ALIVE_SECONDS, self._views())
                if failing:
                    log.warning("presence: sharing through Redis again")
                failing = False
            except Unavailable as exc:
                if not failing:
                    log.warning("presence: cannot share through Redis (%s); other processes' desks will show this "
                                "process's tablets as dropped until it answers", exc)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), HEARTBEAT_SECONDS)
            await asyncio.sleep(COALESCE_SECONDS)

    async def stop(self) -> None:
        """Stop sharing: this process's tablets are written as gone (they reconnect elsewhere), then it is no
        longer alive. Bounded by the store's time limit."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.store is None:
            return
        if task is not None:
            now = time.time()
            views = {topic: {"online": {}, "left": {**view["left"], **dict.fromkeys(view["online"], now)}}
                     for topic, view in self._views().items()}
            try:
                await self.store.forget(self.process, views, now)
            except Unavailable as exc:
                log.warning("presence: could not say goodbye through Redis (%s); this process's tablets show as "
                            "dropped once its heartbeat expires", exc)
        await self.store.close()
