"""The WebSocket hub: fans broker events out to this process's connections, per topic.

Design points, and why:

- **One consumer, no waiting on clients.** A single task reads ``broker.subscribe()`` and
  hands each event to every local subscriber with ``put_nowait`` on the connection's bounded
  queue (``settings.ws_queue_size``). A client whose queue is full is dropped (close code
  4008, "too slow") instead of slowing everyone else down; it reconnects and resumes with
  ``since``, so it loses nothing but time. Each event is JSON-encoded once, not once per client.
- **Resume without gap or duplicate.** ``subscribe`` registers the connection for live
  events *before* reading the database, buffering them; then replays ``events_since`` from
  the log; then delivers the buffered events newer than the last one replayed. Whatever was
  committed before the registration is in the log; whatever is published after it is in the
  buffer; the per-topic ``last`` seq removes the overlap.
- **The database log is the truth, the broker a fast path.** The hub remembers the last seq
  it dispatched per topic. An event that skips ahead (a message lost while Redis restarted,
  or two commits published out of order) makes it fetch the missing ones from the log first;
  later duplicates are ignored. When the broker reports that it has resubscribed, every topic
  with subscribers is checked against the log. Since a topic's seq is allocated under a row
  lock (PostgreSQL) or a write lock (SQLite), seeing seq N means every seq below N is committed.
- **Authorisation per topic prefix.** ``add_authorizer("meeting:", fn)``; a topic that no
  authorizer claims is refused. ``user:{id}`` is built in: only that user.
- **Access that shrinks.** A subscription is authorised when it is made. Event types registered
  with ``add_access_events`` (a participant removed, an item made confidential, a task withdrawn, a
  document recalled) make the hub authorise again, once per user, shortly after the event (a burst
  of changes costs one pass), the subscribers of that topic, of its sub-topics (``meeting:7`` also
  re-checks ``meeting:7:item:3`` and ``meeting:7:control``) and of the topics that
  ``add_access_dependents(prefix, fn)`` names for it (the annotation topics of a meeting's documents);
  those who may no longer see a topic are unsubscribed and told so with an ``error`` frame carrying
  ``revoked: true``. Every process's hub reads the event from the broker, so this holds across processes.
- **Replay per reader.** The log keeps what was sent when it was sent. A filter registered with
  ``add_replay_filter(prefix, fn)`` rewrites what a subscriber is replayed according to what that
  reader may see *now* (a poll whose item became confidential, an annotation made private again).
- **Snapshots.** A client too far behind (or ahead: a restored database) gets
  ``{"type": "snapshot", ...}`` from ``add_snapshot(prefix, fn)``; the default ``{}`` means
  "reload your state". The seq is read *before* the snapshot is built, so the snapshot is at
  least as new as its seq; events after it may already be reflected in it, and clients apply
  them idempotently (the usual at-least-once overlap, never a gap).

Wiring: the database must publish to the same broker the hub reads, i.e.
``Database(url, publisher=broker.publish)`` (as ``web.app.create_app`` does). ``Hub`` sets
``db.publisher`` itself when it is still unset, so that a hub built by hand (tests, tools)
cannot silently miss its own process's events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from eoffice.live_registry import Authorizer, Dependents, ReplayFilter, Snapshot
from eoffice.org import User
from storage import events
from storage.db import Database, UnitOfWork
from storage.errors import Forbidden, Invalid
from storage.pubsub import Broker, is_control, open_presence
from storage.settings import Settings
from web.presence import Presence
from web.ws_protocol import Frames, FrameWriter

log = logging.getLogger(__name__)

Command = Callable[["Connection", dict[str, Any]], Awaitable[dict[str, Any]]]

CLOSE_GOING_AWAY = 1001
CLOSE_REVOKED = 4401  # the credential behind the socket was ended (logout, password, deactivation, revocation)
CLOSE_REQUEST = "hub.close"  # ``type`` of a broker message asking every hub to close some user's sockets
CLOSE_TOO_SLOW = 4008
REAUTHORIZE_DELAY = 0.2  # seconds: access-changing events of a burst share one re-check
CLOSE_OUT_OF_SYNC = 4009  # the log no longer has what this process missed: reconnect and take a snapshot
MIN_UNSENT_BYTES = 1 << 20  # a direct-write connection with more than this not yet taken by the client is dropped
MAX_TOPICS = 200  # per connection
MAX_TOPIC_LENGTH = 200  # the column size in storage.events
READY_TIMEOUT = 5.0


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


async def own_user_topic(uow: UnitOfWork, user: User, topic: str) -> bool:
    """``user:{id}``: a user's own notifications, for that user only."""
    return topic == f"user:{user.id}"


async def reload_snapshot(uow: UnitOfWork, user: User, topic: str) -> dict[str, Any]:
    """The default snapshot: nothing, meaning "reload your state"."""
    return {}


def close_message(user_id: int, reason: str = "", *, only: list[tuple[str, str]] | None = None,
                  keep: tuple[str, str] | None = None, code: int = CLOSE_REVOKED) -> dict[str, Any]:
    """The broker message of ``Hub.close_user`` (the command line publishes it without a hub)."""
    return {"topic": "", "type": CLOSE_REQUEST, "user_id": user_id, "code": code, "reason": reason,
            "only": [list(c) for c in only] if only is not None else None, "keep": list(keep) if keep else None}


def _verdict_key(conn: Connection) -> tuple[str, int]:
    """One access check per user, or per connection when it brings its own check."""
    return ("conn", id(conn)) if conn.authorizer is not None else ("user", conn.user.id)


@dataclass
class _TopicState:
    last: int = 0
    buffer: list[tuple[int, str]] | None = field(default_factory=list)  # None once live


class Connection:
    """One client as the hub sees it: a bounded outbox and, per topic, the last seq it was given."""

    def __init__(self, hub: Hub, user: User, queue_size: int) -> None:
        self.hub = hub
        self.user = user
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.topics: dict[str, _TopicState] = {}
        self.closed = asyncio.Event()
        self.close_code = 1000
        self.close_reason = ""
        # how the handshake authenticated ("session" | "bearer", sha256 of the token): commands that
        # change state check it is still valid (a logout or a revoked token ends what the socket may do)
        self.credential: tuple[str, str] | None = None
        # set when the server offers direct frame writes (``web.ws_protocol``): frames then skip the queue
        self.writer: FrameWriter | None = None
        # a connection that is not a user's (the room screen, opened by a signed link) brings its own check,
        # used instead of the topic prefix's when it subscribes and when access is checked again
        self.authorizer: Authorizer | None = None

    def offer(self, text: str) -> bool:
        """Send a frame without waiting: written at once (``writer``) or queued; a slow client is dropped."""
        if self.closed.is_set():
            return False
        if self.writer is not None:
            if not self.writer.write(self.hub.frames(text)):
                return False  # the client is gone; the endpoint sees the disconnect
            if self.writer.buffered() > self.hub.unsent_limit:
                log.info("hub: dropping slow connection of user %s (%d bytes unsent)", self.user.id,
                         self.writer.buffered())
                self.close(CLOSE_TOO_SLOW, "too slow")
                return False
            return True
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.info("hub: dropping slow connection of user %s (queue full)", self.user.id)
            self.close(CLOSE_TOO_SLOW, "too slow")
            return False
        return True

    def send(self, message: dict[str, Any]) -> bool:
        return self.offer(encode(message))

    async def put(self, text: str) -> None:
        """Queue a frame, waiting for room: used only by this connection's own task (replays)."""
        if self.writer is not None:
            self.offer(text)
        elif not self.closed.is_set():
            await self.queue.put(text)

    def close(self, code: int, reason: str = "") -> None:
        """Ask the endpoint to close the socket; stop receiving events now."""
        if self.closed.is_set():
            return
        self.close_code, self.close_reason = code, reason
        self.closed.set()
        self.hub.disconnect(self)

    def _deliver(self, topic: str, seq: int, text: str) -> None:
        state = self.topics.get(topic)
        if state is None:
            return
        if state.buffer is not None:
            state.buffer.append((seq, text))
            if len(state.buffer) > self.hub.buffer_limit:
                self.close(CLOSE_TOO_SLOW, "too slow")
        elif seq > state.last:
            state.last = seq
            self.offer(text)


class Hub:
    def __init__(self, db: Database, broker: Broker, settings: Settings) -> None:
        self.db = db
        self.broker = broker
        self.settings = settings
        if db.publisher is None:
            db.publisher = broker.publish
        self.connections: set[Connection] = set()
        self._subs: dict[str, set[Connection]] = {}
        self._seen: dict[str, int] = {}  # last seq dispatched per topic with subscribers
        self._authorizers: dict[str, Authorizer] = {"user:": own_user_topic}
        self._snapshots: dict[str, Snapshot] = {}
        self._commands: dict[str, Command] = {}
        self._access_events: set[str] = set()
        self._dependents: dict[str, Dependents] = {}
        self._replay_filters: dict[str, ReplayFilter] = {}
        self.last_dispatch = 0.0  # monotonic time of the last event handed to subscribers
        self._recheck: dict[str, asyncio.Task[None]] = {}  # topic -> pending re-authorisation
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.buffer_limit = max(settings.ws_queue_size, settings.event_log_size)
        # a replay of the whole retained log must fit: about 1 KiB per event
        self.unsent_limit = max(MIN_UNSENT_BYTES, self.buffer_limit * 1024)
        self._frames: tuple[str, Frames] = ("", Frames.of(""))
        # who followed a meeting's room and when they left (the control desk), shared through Redis if used
        self.presence = Presence(open_presence(settings.broker_url))

    def frames(self, text: str) -> Frames:
        """The wire frames of ``text``, built once per event (every subscriber gets the same ``str``)."""
        if self._frames[0] is not text:
            self._frames = (text, Frames.of(text))
        return self._frames[1]

    # -- configuration -------------------------------------------------------------------

    def add_authorizer(self, prefix: str, fn: Authorizer) -> None:
        """Who may subscribe to topics starting with ``prefix`` (the longest matching prefix wins)."""
        self._authorizers[prefix] = fn

    def add_snapshot(self, prefix: str, fn: Snapshot) -> None:
        """State for a client too far behind to replay, for topics starting with ``prefix``."""
        self._snapshots[prefix] = fn

    def add_access_events(self, *types: str) -> None:
        """Event types after which a topic's subscribers are authorised again (access may have shrunk)."""
        self._access_events.update(types)

    def add_access_dependents(self, prefix: str, fn: Dependents) -> None:
        """Topics (besides sub-topics) whose access depends on a topic starting with ``prefix``: re-checked
        with it after an access event."""
        self._dependents[prefix] = fn

    def add_replay_filter(self, prefix: str, fn: ReplayFilter) -> None:
        """Rewrite logged events replayed to a subscriber for what that reader may see now."""
        self._replay_filters[prefix] = fn

    async def _for_reader(self, conn: Connection, topic: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fn: ReplayFilter | None = self._lookup(self._replay_filters, topic)
        if fn is None or not messages:
            return messages
        async with self.db.uow(readonly=True) as uow:
            return await fn(uow, conn.user, topic, messages)

    def add_command(self, op: str, fn: Command) -> None:
        """A client command ``{"op": op, "id": ..., ...}``, answered by one ``reply`` frame (``web.routes.ws``)."""
        self._commands[op] = fn

    def command(self, op: str) -> Command | None:
        return self._commands.get(op)

    @staticmethod
    def _lookup(table: dict[str, Any], topic: str) -> Any:
        matches = [p for p in table if topic.startswith(p)]
        return table[max(matches, key=len)] if matches else None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start consuming the broker; returns once subscribed (or after a few seconds, with a warning)."""
        self._task = asyncio.create_task(self._consume(), name="hub-consumer")
        await self.presence.start()
        try:
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT)
        except TimeoutError:
            log.warning("hub: broker subscription not ready after %.0f s; continuing, clients will catch up",
                        READY_TIMEOUT)

    async def stop(self) -> None:
        for pending in [self._task, *self._recheck.values()]:
            if pending is None:
                continue
            pending.cancel()
            try:
                await pending
            except asyncio.CancelledError:
                pass
        self._task = None
        self._recheck.clear()
        for conn in list(self.connections):
            conn.close(CLOSE_GOING_AWAY, "server shutting down")
        await self.presence.stop()

    def connect(self, user: User) -> Connection:
        conn = Connection(self, user, self.settings.ws_queue_size)
        self.connections.add(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for topic in list(conn.topics):
            self.unsubscribe(conn, topic)

    # -- closing sockets whose credentials ended (any process: through the broker) ------------

    async def close_user(self, user_id: int, reason: str = "", *, only: list[tuple[str, str]] | None = None,
                         keep: tuple[str, str] | None = None, code: int = CLOSE_REVOKED) -> None:
        """Close, in every process sharing the broker, ``user_id``'s sockets: those authenticated by one of
        ``only`` (credentials as ``web.auth.credential`` gives them; None: all) except ``keep``."""
        await self.broker.publish([close_message(user_id, reason, only=only, keep=keep, code=code)])

    def _close_matching(self, message: dict[str, Any]) -> None:
        only = {tuple(c) for c in message["only"]} if message.get("only") is not None else None
        keep = tuple(message["keep"]) if message.get("keep") else None
        for conn in list(self.connections):
            cred = conn.credential
            if conn.user.id != message.get("user_id") or (cred is not None and cred == keep):
                continue
            if only is None or cred in only:
                log.info("hub: closing a socket of user %s (%s)", conn.user.id, message.get("reason", ""))
                conn.close(int(message.get("code", CLOSE_REVOKED)), str(message.get("reason", ""))[:100])

    # -- subscriptions -------------------------------------------------------------------

    async def subscribe(self, conn: Connection, topic: Any, since: Any = None) -> None:
        """Authorise, then start live delivery of ``topic`` to ``conn`` after replaying from ``since``.

        Raises ``Invalid`` or ``Forbidden`` (Vietnamese messages, shown to the client).
        """
        if not isinstance(topic, str) or not topic or len(topic) > MAX_TOPIC_LENGTH:
            raise Invalid("Tên kênh (topic) không hợp lệ.")
        if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
            raise Invalid("Giá trị «since» phải là số nguyên không âm.")
        if topic not in conn.topics and len(conn.topics) >= MAX_TOPICS:
            raise Invalid(f"Mỗi kết nối chỉ được theo dõi tối đa {MAX_TOPICS} kênh.")
        authorizer: Authorizer | None = conn.authorizer or self._lookup(self._authorizers, topic)
        async with self.db.uow(readonly=True) as uow:
            if authorizer is None or not await authorizer(uow, conn.user, topic):
                raise Forbidden(f"Bạn không có quyền theo dõi kênh «{topic}».")

        self.unsubscribe(conn, topic)  # a second subscribe restarts from its own ``since``
        state = _TopicState()
        conn.topics[topic] = state
        self._subs.setdefault(topic, set()).add(conn)  # from here on, live events are buffered
        self.presence.joined(conn, topic)

        replayed: list[dict[str, Any]] = []
        snapshot: dict[str, Any] | None = None
        try:
            async with self.db.uow(readonly=True) as uow:
                if since is None:
                    current = await events.last_seq(uow.session, topic)
                else:
                    replay = await events.events_since(uow.session, topic, since, limit=self.settings.event_log_size)
                    current = replay.last_seq
                    if replay.complete and since <= current:
                        replayed = replay.events
                    else:
                        snapshot_fn: Snapshot = self._lookup(self._snapshots, topic) or reload_snapshot
                        snapshot = await snapshot_fn(uow, conn.user, topic)
        except BaseException:
            if conn.topics.get(topic) is state:
                self.unsubscribe(conn, topic)
            raise
        if conn.topics.get(topic) is not state:
            return  # unsubscribed (or the connection closed) meanwhile

        if replayed:
            replayed = await self._for_reader(conn, topic, replayed)
        await conn.put(encode({"type": "subscribed", "topic": topic, "seq": current}))
        state.last = current if since is None or snapshot is not None else since
        if snapshot is not None:
            await conn.put(encode({"type": "snapshot", "topic": topic, "seq": current, "data": snapshot}))
        for message in replayed:  # the read may see commits newer than ``current``: seq decides
            if message["seq"] > state.last:
                state.last = message["seq"]
                await conn.put(encode(message))
        state.last = max(state.last, current)
        while state.buffer:  # live events that arrived meanwhile, minus what the log gave
            pending, state.buffer = state.buffer, []
            for seq, text in sorted(pending, key=lambda item: item[0]):
                if seq <= state.last:
                    continue
                if seq > state.last + 1:  # committed after our read but lost by the broker: take it from the log
                    missed = [row.as_message() for row in await self._log_range(topic, state.last, seq)]
                    for message in await self._for_reader(conn, topic, missed):
                        state.last = message["seq"]
                        await conn.put(encode(message))
                state.last = seq
                await conn.put(text)
        state.buffer = None  # live from now on (no await between the check and this line)
        self._seen.setdefault(topic, state.last)

    def unsubscribe(self, conn: Connection, topic: str) -> None:
        conn.topics.pop(topic, None)
        subs = self._subs.get(topic)
        if subs is not None and conn in subs:
            subs.discard(conn)
            if not subs:
                del self._subs[topic]
                self._seen.pop(topic, None)
            self.presence.left(conn, topic)

    # -- the consumer --------------------------------------------------------------------

    async def _consume(self) -> None:
        """Read the broker forever; if the iterator itself fails, log and start over."""
        delay = 0.1
        while True:
            try:
                async for message in self.broker.subscribe():
                    if message.get("type") == CLOSE_REQUEST and not message.get("topic"):
                        self._close_matching(message)
                        continue
                    if is_control(message):  # (re)subscribed: the first time means ready, later a resync
                        if self._ready.is_set():
                            await self._resync()
                        self._ready.set()
                        delay = 0.1
                        continue
                    await self._on_event(message)
                    await asyncio.sleep(0)  # let the connections' senders run between events of a burst
                log.warning("hub: broker subscription ended; resubscribing")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hub: broker subscription failed; resubscribing in %.1f s", delay)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 5.0)

    async def _on_event(self, message: dict[str, Any]) -> None:
        try:
            topic, seq = message["topic"], int(message["seq"])
        except (KeyError, TypeError, ValueError):
            log.warning("hub: ignoring a broker message without topic/seq: %r", message)
            return
        if message.get("type") in self._access_events and self._subs and topic not in self._recheck:
            self._recheck[topic] = asyncio.create_task(self._reauthorize(topic), name=f"hub-reauthorize:{topic}")
        if topic not in self._subs:
            return
        seen = self._seen.get(topic)
        if seen is not None:
            if seq <= seen:
                return  # already dispatched (a gap fill got there first)
            if seq > seen + 1:
                await self._fill(topic, seen, seq)
                if self._seen.get(topic, 0) >= seq:
                    return
        self._dispatch(topic, seq, encode(message))

    async def _reauthorize(self, topic: str) -> None:
        """Authorise again the subscribers of ``topic``, its sub-topics and its dependents; unsubscribe
        (and tell) those no longer allowed."""
        try:
            await asyncio.sleep(REAUTHORIZE_DELAY)
            del self._recheck[topic]  # an event from now on schedules another pass
            dependents: Dependents | None = self._lookup(self._dependents, topic)
            async with self.db.uow(readonly=True) as uow:
                related = await dependents(uow, topic) if dependents is not None else set()
                targets = [t for t in list(self._subs) if t == topic or t.startswith(topic + ":") or t in related]
                verdicts: list[tuple[str, list[Connection], dict[tuple[str, int], bool]]] = []
                for target in targets:
                    authorizer: Authorizer | None = self._lookup(self._authorizers, target)
                    subscribers = list(self._subs.get(target, ()))
                    allowed: dict[tuple[str, int], bool] = {}
                    for conn in subscribers:
                        if _verdict_key(conn) not in allowed:
                            check = conn.authorizer or authorizer
                            allowed[_verdict_key(conn)] = check is not None and await check(uow, conn.user, target)
                    verdicts.append((target, subscribers, allowed))
            for target, subscribers, allowed in verdicts:
                for conn in subscribers:
                    if not allowed[_verdict_key(conn)] and target in conn.topics:
                        self.unsubscribe(conn, target)
                        conn.send({"type": "error", "op": "subscribe", "topic": target, "revoked": True,
                                   "message": f"Bạn không còn quyền theo dõi kênh «{target}»."})
                        log.info("hub: user %s no longer may follow %s; unsubscribed", conn.user.id, target)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("hub: re-authorising the subscribers of %s failed", topic)
        finally:
            if self._recheck.get(topic) is asyncio.current_task():
                del self._recheck[topic]

    def _dispatch(self, topic: str, seq: int, text: str) -> None:
        self.last_dispatch = time.monotonic()
        self._seen[topic] = max(seq, self._seen.get(topic, 0))
        for conn in list(self._subs.get(topic, ())):
            conn._deliver(topic, seq, text)

    async def _fill(self, topic: str, after: int, before: int | None) -> None:
        """Dispatch the events ``after < seq < before`` from the log (``before`` None: all newer)."""
        rows = await self._log_range(topic, after, before)
        if not rows or rows[0].seq != after + 1:
            if before is not None or rows:  # the log no longer has them: make the clients resume
                log.warning("hub: events %s after seq %d no longer in the log; resyncing clients", topic, after)
                for conn in list(self._subs.get(topic, ())):
                    conn.close(CLOSE_OUT_OF_SYNC, "out of sync")
            return
        log.info("hub: filled %d missed events of %s from the log", len(rows), topic)
        for row in rows:
            if row.seq > self._seen.get(topic, 0):
                self._dispatch(topic, row.seq, encode(row.as_message()))

    async def _log_range(self, topic: str, after: int, before: int | None) -> list[events.Event]:
        query = select(events.Event).where(events.Event.topic == topic, events.Event.seq > after)
        if before is not None:
            query = query.where(events.Event.seq < before)
        async with self.db.uow(readonly=True) as uow:
            return list((await uow.session.scalars(query.order_by(events.Event.seq))).all())

    async def _resync(self) -> None:
        """After a broker reconnect: deliver what was committed while we were not listening."""
        known = {t: s for t, s in self._seen.items() if t in self._subs}
        if not known:
            return
        async with self.db.uow(readonly=True) as uow:
            rows = (
                await uow.session.execute(
                    select(events.Topic.name, events.Topic.last_seq).where(events.Topic.name.in_(list(known)))
                )
            ).all()
        for name, last in rows:
            seen = self._seen.get(name)
            if seen is not None and last > seen:
                await self._fill(name, seen, None)
