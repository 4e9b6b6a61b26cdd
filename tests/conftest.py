"""Shared fixtures: real databases (SQLite file and PostgreSQL), service requirements.

With ``CI`` set, a test whose service is missing fails instead of skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage import keys
from storage.db import Base, Database
from storage.migrate import migrate
from storage.settings import Settings

pytest_plugins = ["tests.s3server"]

PG_ADMIN = os.environ.get("EOFFICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("EOFFICE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def require(service: str, available: bool, why: str = "") -> None:
    """Skip when a service is missing on a developer machine; fail under CI."""
    if available:
        return
    message = f"{service} is not available{': ' + why if why else ''}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: services are required)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def in_thread(fn: object, *args: object) -> object:
    """Run blocking set-up (which may start its own event loop) off the test's loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()  # type: ignore[arg-type]


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[int]:
    """``app`` under uvicorn on this test's event loop, on a free loopback port (yielded); stopped after."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the test runner owns signals
    running = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 10)


@contextlib.asynccontextmanager
async def scratch_pg_database(prefix: str) -> AsyncIterator[str]:
    """An empty PostgreSQL database of its own (for migration tests), dropped afterwards; yields its URL."""
    require("PostgreSQL", tcp_open("127.0.0.1", 5432), "127.0.0.1:5432")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await _pg_exec(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    finally:
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test run, migrated once; dropped at the end."""
    if not tcp_open("127.0.0.1", 5432):
        yield None
        return
    name = f"eoffice_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    in_thread(asyncio.run, _pg_exec(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    in_thread(migrate, url)
    yield url
    in_thread(asyncio.run, _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    in_thread(migrate, f"sqlite+aiosqlite:///{path}")
    return path


async def _truncate_all(url: str) -> None:
    import storage.models  # noqa: F401

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database URL: once on SQLite, once on PostgreSQL. Its secret (``settings``) is
    registered for it, so every ``Database(url)`` of the test keys the audit chain as the app does."""
    if request.param == "sqlite":
        target = tmp_path / "eoffice.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite+aiosqlite:///{target}"
    else:
        url = request.getfixturevalue("pg_database")
        require("PostgreSQL", url is not None, "127.0.0.1:5432")
        await _truncate_all(url)
    keys.register(url, "test-secret-key-" + uuid.uuid4().hex)
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for an app under test: the parametrised database, local blobs, in-process broker."""
    return Settings(
        database_url=db_url,
        blob_url=f"file://{tmp_path}/blobs",
        recording_dir=str(tmp_path / "recordings"),
        broker_url="memory://",
        secret_key=keys.secret_for(db_url),
        upload_limit=1024 * 1024,
    )
