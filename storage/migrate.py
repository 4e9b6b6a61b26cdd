"""Run Alembic migrations from code (the ``eoffice migrate`` step, tests), one process at a time.

Migrating is its own step, run before any server starts (``eoffice migrate``); ``eoffice serve`` only checks
that the schema is current (``schema_state``) and refuses to start otherwise. Several processes may still
migrate at once (every node of a deployment running ``eoffice migrate`` on start): a lock makes them take
turns, and the ones that wait find the schema already current and do nothing.

- PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) on a connection of its own, held for the
  whole upgrade. Advisory locks are per database, so two deployments on one server do not wait for each other.
- SQLite: an exclusive ``flock`` on ``<database file>.migrate-lock`` beside the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from storage.db import create_engine
from storage.private_files import private_dir

ROOT = Path(__file__).resolve().parent
LOCK_KEY = 0x656F_6666_6D69_6772  # "eoffmigr": the advisory lock every `eoffice migrate` takes
log = logging.getLogger(__name__)

Notify = Callable[[str], None]
WAITING = ("Đang chờ một tiến trình khác cập nhật cơ sở dữ liệu... "
           "(waiting for another process to finish migrating)")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head", on_wait: Notify | None = None) -> None:
    """Upgrade the database at ``url`` under the migration lock (waiting for it if another process holds it).
    Synchronous, with an event loop of its own: call it in a thread from async code."""
    asyncio.run(_migrate(url, revision, on_wait or log.warning))


async def _migrate(url: str, revision: str, on_wait: Notify) -> None:
    async with migration_lock(url, on_wait):
        # Alembic's env.py runs its own event loop: a worker thread has none yet.
        await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


@contextlib.asynccontextmanager
async def migration_lock(url: str, on_wait: Notify | None = None) -> AsyncIterator[None]:
    """Hold the database's migration lock; ``on_wait`` is told once if another process has it."""
    notify = on_wait or log.warning
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        import asyncpg  # the PostgreSQL driver, only for a PostgreSQL database

        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                notify(WAITING)
                await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        finally:
            await conn.close()
    elif parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).with_name(Path(parsed.database).name + ".migrate-lock")
        private_dir(path.parent)  # var/ is created 0700 whatever the umask, as the database would be
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                notify(WAITING)
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    else:
        yield


@dataclass(frozen=True)
class SchemaState:
    current: tuple[str, ...]  # revisions the database is at (empty: never migrated)
    head: tuple[str, ...]  # revisions of this code

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.head)

    @property
    def ahead(self) -> bool:
        """The database has a revision this code does not know (a newer version migrated it)."""
        return bool(self.current) and not set(self.current) <= self._known

    _known: frozenset[str] = frozenset()

    def message(self) -> str:
        """What an operator should do, in Vietnamese and English."""
        if not self.current:
            return ("Cơ sở dữ liệu chưa được khởi tạo. Hãy chạy `eoffice migrate` trước khi khởi động máy chủ.\n"
                    "The database has not been migrated. Run `eoffice migrate` before starting the server.")
        if self.ahead:
            return (f"Cơ sở dữ liệu ở phiên bản {', '.join(self.current)}, mới hơn mã nguồn này "
                    f"({', '.join(self.head)}). Hãy cài phiên bản eoffice mới hơn.\n"
                    f"The database is at revision {', '.join(self.current)}, newer than this code "
                    f"({', '.join(self.head)}). Install the newer eoffice release.")
        return (f"Cơ sở dữ liệu ở phiên bản {', '.join(self.current)}, cần cập nhật lên {', '.join(self.head)}. "
                "Hãy chạy `eoffice migrate` trước khi khởi động máy chủ.\n"
                f"The database is at revision {', '.join(self.current)} and must be upgraded to "
                f"{', '.join(self.head)}. Run `eoffice migrate` before starting the server.")


def _missing_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    return (parsed.get_backend_name() == "sqlite" and bool(parsed.database) and parsed.database != ":memory:"
            and not Path(str(parsed.database)).exists())


async def schema_state(url: str) -> SchemaState:
    """Where the database's schema is against this code's migrations (reads only)."""
    script = ScriptDirectory.from_config(alembic_config(url))
    known = frozenset(rev.revision for rev in script.walk_revisions())
    if _missing_sqlite_file(url):  # do not create an empty file just to look
        return SchemaState(current=(), head=tuple(script.get_heads()), _known=known)

    def current(conn: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(conn).get_current_heads())

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            heads = await conn.run_sync(current)
    finally:
        await engine.dispose()
    return SchemaState(current=heads, head=tuple(script.get_heads()), _known=known)
