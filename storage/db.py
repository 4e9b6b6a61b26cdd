"""Async SQLAlchemy engine, declarative base and the unit of work.

The unit of work commits only on an explicit ``await uow.commit()``; leaving the block
without it rolls back. Events emitted during the unit of work get their per-topic sequence
number inside the same transaction and are published to the broker after the commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

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
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Read-only units of work take no write lock: in WAL mode readers never wait for writers.
        readonly = conn.get_execution_options().get(READONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            from pathlib import Path

            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        _setup_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


Publisher = Callable[[list[dict[str, Any]]], Awaitable[None]]


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
        self._pending: list[tuple[str, str, dict[str, Any]]] = []

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

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: if the block raises, what it wrote and the events it emitted are
        both dropped, and the unit of work goes on (e.g. a refused import gets quarantined)."""
        queued = len(self._pending)
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            del self._pending[queued:]
            raise

    def emit(self, topic: str, type_: str, **data: Any) -> None:
        """Queue an event; it gets its sequence number and is published at commit."""
        self._pending.append((topic, type_, data))

    async def commit(self) -> list[dict[str, Any]]:
        from storage.events import store_events

        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot commit")

        events: list[dict[str, Any]] = []
        if self._pending:
            events = await store_events(self.session, self._pending)
        await self.session.commit()
        self._pending = []
        if events and self.db.publisher is not None:
            try:
                await self.db.publisher(events)
            except Exception:  # committed already: clients catch up from the event log
                log.exception("publishing %d events failed; clients will resume from the log", len(events))
        return events
