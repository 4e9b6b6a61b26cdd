"""Async SQLAlchemy engine, declarative base and the unit of work.

The unit of work commits only on an explicit ``await uow.commit()``; leaving the block
without it rolls back. Events emitted during the unit of work get their per-topic sequence
number inside the same transaction and are published to the broker after the commit; other
work that must wait for the commit (waking a background worker) is registered with
``uow.after_commit`` and runs once after it, never after a rollback; work that must be done in
the transaction just before it commits (eoffice's search keys) with ``uow.before_commit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, String, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util.concurrency import await_only, in_greenlet

from storage.errors import Invalid
from storage.private_files import create_private_file, private_dir, tighten

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use storage.db.utcnow()")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime}


_SIZED: dict[Any, list[tuple[str, int]]] = {}


@event.listens_for(Base, "before_insert", propagate=True)
@event.listens_for(Base, "before_update", propagate=True)
def _check_lengths(mapper: Any, _connection: Any, target: Any) -> None:
    """A string longer than its column is the caller's mistake (Invalid, 400) on every database.

    PostgreSQL would refuse it with a driver error and SQLite would keep it whole, so the rule is
    checked here once, from the columns themselves, whatever service or route set the value.
    """
    sized = _SIZED.get(mapper)
    if sized is None:
        sized = _SIZED[mapper] = [(prop.key, prop.columns[0].type.length) for prop in mapper.column_attrs
                                  if isinstance(prop.columns[0].type, String) and prop.columns[0].type.length]
    state = target.__dict__
    for key, length in sized:
        value = state.get(key)
        if isinstance(value, str) and len(value) > length:
            raise Invalid(f"«{key}» quá dài (tối đa {length} ký tự).", field=key)


READONLY_OPTION = "eoffice_readonly"


def _setup_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so concurrent writers queue instead of failing."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows and freed pages are overwritten with zeros, not left in the file: a secret poll's
        # sealed ballots and its destroyed key (meetings.voting) must not survive their deletion.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Read-only units of work take no write lock: in WAL mode readers never wait for writers.
        readonly = conn.get_execution_options().get(READONLY_OPTION, False)
        if not readonly:
            _queue_writer(conn, engine.url.database or "")
        try:
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
        except BaseException:
            _writer_done(conn)
            raise

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def on_end(conn: Any) -> None:
        _writer_done(conn)

    @event.listens_for(engine.sync_engine, "checkin")
    @event.listens_for(engine.sync_engine, "invalidate")
    def on_release(_dbapi_conn: Any, record: Any, *_: Any) -> None:  # a connection lost mid-transaction
        if record is not None:
            _writer_done(record)


# Writers of one SQLite file in one process queue here, in order, instead of in SQLite's busy
# handler, which polls with sleeps of up to 100 ms: with two writers in a process (a request and a
# background job) those sleeps, not the writes, were most of the time. Other processes still meet
# at the busy handler. A writer that waits too long (a unit of work opened inside another one that
# already writes) goes on to BEGIN IMMEDIATE as before, so nothing deadlocks that did not already.
_WRITE_QUEUE_WAIT = 30.0
_write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary())


def _queue_writer(conn: Any, database: str) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a synchronous engine (migrations): nothing to queue with
        return
    if not in_greenlet() or database in ("", ":memory:"):  # each in-memory database is its own
        return
    lock = _write_locks.setdefault(loop, {}).setdefault(database, asyncio.Lock())
    try:
        await_only(asyncio.wait_for(lock.acquire(), _WRITE_QUEUE_WAIT))
    except TimeoutError:
        return
    conn.info["eoffice_write_lock"] = (lock, loop)


def _writer_done(conn: Any) -> None:
    """Let the next writer go. Never raises: it runs inside commit and rollback."""
    try:
        held = conn.info.pop("eoffice_write_lock", None)
    except Exception:  # an invalidated connection: its pool record is released on "invalidate"
        return
    if held is None:
        return
    lock, loop = held

    def release() -> None:
        if lock.locked():
            lock.release()

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        release()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(release)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            _private_sqlite_file(db)
        engine = create_async_engine(url, **kwargs)
        _setup_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _private_sqlite_file(db: str) -> None:
    """The database file (and so its -wal and -shm, which SQLite creates with the database's mode)
    readable by the server's account only, whatever the umask; an existing one is tightened."""
    path = Path(db)
    private_dir(path.parent)
    if not create_private_file(path):
        for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            tighten(f)


async def checkpoint_truncate(db: Database) -> bool:
    """SQLite: copy the write-ahead log into the database file and truncate it to zero bytes, so it no
    longer holds old page versions (secret ballots in commit order, a destroyed poll key). True when the
    log was emptied; False if a reader kept it busy (the next call or start-up does it). Other databases: True.
    """
    if db.dialect != "sqlite":
        return True
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # aiosqlite, outside SQLAlchemy's BEGIN (a checkpoint cannot run in one)
        assert driver is not None
        cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row = await cursor.fetchone()
        await cursor.close()
    return row is not None and int(row[0]) == 0


Publisher = Callable[[list[dict[str, Any]]], Awaitable[None]]
Hook = Callable[[], object]  # after a commit: a plain function, or one returning an awaitable
Pending = tuple[str, str, dict[str, Any]]  # an emitted event before it is stored: (topic, type, data)
EventHook = Callable[["UnitOfWork", list[Pending]], Awaitable[None]]


class Database:
    """The engine plus a session factory; one per process."""

    def __init__(self, url: str, publisher: Publisher | None = None, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self.readonly_sessionmaker = async_sessionmaker(
            self.engine.execution_options(**{READONLY_OPTION: True}), expire_on_commit=False, autoflush=True
        )
        self.publisher = publisher
        # Background consumers of this database's work, by name (eoffice's "ingest" runner): a
        # service hands them what it queued once its unit of work commits (``uow.after_commit``).
        self.consumers: dict[str, Callable[[list[int]], None]] = {}
        # Work derived from the events of every unit of work, in its transaction just before they are stored
        # (eoffice's notifications: whom an event concerns gets a stored notification); see ``UnitOfWork.commit``.
        self.event_hooks: list[EventHook] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def uow(self, readonly: bool = False) -> UnitOfWork:
        """A unit of work; ``readonly=True`` for one that only reads (it must not commit)."""
        return UnitOfWork(self, readonly=readonly)

    async def dispose(self) -> None:
        await self.engine.dispose()


class UnitOfWork:
    """``async with db.uow() as uow: ...; await uow.commit()``."""

    def __init__(self, db: Database, readonly: bool = False) -> None:
        self.db = db
        self.readonly = readonly
        self._session: AsyncSession | None = None
        self._pending: list[Pending] = []
        self._after_commit: list[Hook] = []
        self._before_commit: list[Hook] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    @property
    def dialect(self) -> str:
        return self.db.dialect

    async def __aenter__(self) -> UnitOfWork:
        self._session = (self.db.readonly_sessionmaker if self.readonly else self.db.sessionmaker)()
        self._pending = []
        self._after_commit = []
        self._before_commit = []
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        try:
            # Detach first: objects read in this unit of work stay readable after it ends
            # (a rollback would expire them); nothing uncommitted reaches the database.
            self._session.expunge_all()
            await self._session.rollback()
        finally:
            await self._session.close()
            self._session = None
            self._pending = []
            self._after_commit = []  # not committed: the work waiting for the commit is dropped
            self._before_commit = []

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: if the block raises, what it wrote and the events it emitted are
        both dropped, and the unit of work goes on (e.g. a refused import gets quarantined)."""
        queued, hooks = len(self._pending), len(self._after_commit)
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            del self._pending[queued:]
            del self._after_commit[hooks:]
            raise

    def emit(self, topic: str, type_: str, **data: Any) -> None:
        """Queue an event; it gets its sequence number and is published at commit."""
        self._pending.append((topic, type_, data))

    def before_commit(self, hook: Hook) -> None:
        """Run ``hook()`` (awaited if it returns an awaitable) at the next commit, in the
        transaction, before anything is committed; what it raises aborts the commit. Hooks run in
        the order registered, once; a savepoint that rolls back does not drop them (they work on the
        rows as they are at the commit)."""
        self._before_commit.append(hook)

    def after_commit(self, hook: Hook) -> None:
        """Run ``hook()`` once after the next successful commit (awaited if it returns an
        awaitable), in the order registered, after the events are published. Dropped if the unit of
        work ends without committing, or if the savepoint it was registered in rolls back. The
        commit stands whatever a hook does: a hook that raises is logged."""
        self._after_commit.append(hook)

    async def commit(self) -> list[dict[str, Any]]:
        from storage.events import store_events  # storage.events imports this module (Base)

        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot commit")

        while self._before_commit:  # a hook may register another one
            hooks, self._before_commit = self._before_commit, []
            for hook in hooks:
                result = hook()
                if inspect.isawaitable(result):
                    await result
        if self._pending and self.db.event_hooks:  # they see the events emitted so far, and may emit more
            emitted = list(self._pending)
            for event_hook in self.db.event_hooks:
                await event_hook(self, emitted)
        events: list[dict[str, Any]] = []
        if self._pending:
            events = await store_events(self.session, self._pending)
        await self.session.commit()
        self._pending = []
        hooks, self._after_commit = self._after_commit, []
        if events and self.db.publisher is not None:
            try:
                await self.db.publisher(events)
            except Exception:  # committed already: clients catch up from the event log
                log.exception("publishing %d events failed; clients will resume from the log", len(events))
        for hook in hooks:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # committed already: the hook's own work is what failed
                log.exception("after-commit hook %r failed", hook)
        return events
