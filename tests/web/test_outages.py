"""Database and S3 outages answer a clear 503 (Retry-After, Vietnamese message), never a traceback.

PostgreSQL: a database of its own; a read blocked on a table lock has its backend ended (``pg_terminate_backend``)
and succeeds on its retry; a write in the same spot gets 503; a database that takes no connections gets 503
for JSON and for pages. S3: the session's SeaweedFS holds the file; the same bucket behind a closed port
answers 503 before any header, and a stream that cannot open fails before the response starts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from starlette.testclient import TestClient

from eoffice import identity
from meetings import documents
from storage import keys
from storage.blobs import open_blob_store
from storage.db import Database
from storage.errors import Unavailable
from storage.migrate import migrate
from storage.settings import Settings
from tests.conftest import PG_ADMIN, _pg_exec, free_port, scratch_pg_database
from tests.meetings.conftest import World, make_world
from web.app import create_app
from web.file_response import primed


@pytest.fixture
async def own_pg(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Settings, World, str]]:
    async with scratch_pg_database("eoffice_outage") as url:
        await asyncio.to_thread(migrate, url)
        keys.register(url, settings.secret_key)
        db = Database(url)
        world = await make_world(db, tmp_path / "blobs")
        try:
            yield replace(settings, database_url=url, blob_url=f"file://{tmp_path}/blobs"), world, url.rsplit("/", 1)[1]
        finally:
            await world.blobs.close()
            await db.dispose()


async def _token(world: World, key: str) -> dict[str, str]:
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, world.users[key])
        await uow.commit()
    return {"Authorization": f"Bearer {token}"}


async def _terminate_when_blocked(admin: asyncpg.Connection, name: str) -> int:
    """End the backend of ``name`` that waits on a lock (the request's), once it does."""
    for _ in range(200):
        pids = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                                 name)
        if pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
            return int(pids[0]["pid"])
        await asyncio.sleep(0.05)
    raise AssertionError("the request never waited on the lock")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_lost_postgresql_connections(own_pg: tuple[Settings, World, str],
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    settings, world, name = own_pg
    m = await world.meeting(start=True)
    mid, seat = m["meeting_id"], m["seats"]["member"]
    member = await _token(world, "member")
    admin = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    locker = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        with TestClient(create_app(settings)) as c:
            assert c.get(f"/api/meetings/{mid}", headers=member).status_code == 200

            # a read whose connection dies under it: tried once more on a fresh connection
            tx = locker.transaction()
            await tx.start()
            await locker.execute("LOCK TABLE meetings IN ACCESS EXCLUSIVE MODE")
            reading = asyncio.create_task(asyncio.to_thread(c.get, f"/api/meetings/{mid}", headers=member))
            await _terminate_when_blocked(admin, name)
            await tx.rollback()
            r = await reading
            assert r.status_code == 200 and r.json()["topic"] == f"meeting:{mid}"
            assert "trying once more" in caplog.text

            # a write is not repeated: 503, the client decides
            tx = locker.transaction()
            await tx.start()
            await locker.execute("LOCK TABLE meetings IN ACCESS EXCLUSIVE MODE")
            writing = asyncio.create_task(asyncio.to_thread(
                c.post, f"/api/meetings/{mid}/participants/{seat}/check-in", headers=member))
            await _terminate_when_blocked(admin, name)
            await tx.rollback()
            r = await writing
            assert r.status_code == 503 and r.headers["retry-after"] == "5"
            assert r.json()["error"] == "database_unavailable" and "Cơ sở dữ liệu" in r.json()["message"]

            # the database takes no connections at all
            await _pg_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await _pg_exec(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            try:
                api = await asyncio.to_thread(c.get, f"/api/meetings/{mid}", headers=member)
                page = await asyncio.to_thread(c.get, "/meetings", headers={**member, "Accept": "text/html"})
            finally:
                await _pg_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            assert api.status_code == 503 and api.headers["retry-after"] == "5"
            assert "thử lại" in api.json()["message"] and "Traceback" not in api.text
            assert page.status_code == 503 and "text/html" in page.headers["content-type"]
            assert "Cơ sở dữ liệu tạm thời không truy cập được" in page.text and "Traceback" not in page.text
            assert (await asyncio.to_thread(c.get, f"/api/meetings/{mid}", headers=member)).status_code == 200
    finally:
        for conn in (locker, admin):  # ended with the others
            conn.terminate()
    assert not [r for r in caplog.records if r.exc_info], "a lost database is logged without a traceback"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_s3_unreachable_while_serving_a_file_is_503_before_any_header(
    settings: Settings, db: Database, s3_url: str, tmp_path: Path
) -> None:
    world = await make_world(db, tmp_path / "unused")
    await world.blobs.close()
    world.blobs = open_blob_store(s3_url)  # the world's uploads go to the real S3
    m = await world.meeting(start=True)
    mid = m["meeting_id"]
    upload = await world.upload_pdf(world.organiser, [["Báo cáo kinh tế - xã hội huyện Đông Triều"]], "Báo cáo")
    async with world.db.uow() as uow:
        _, version = await documents.add_document(uow, world.organiser, world.blobs, mid, upload_id=upload,
                                                  item_id=m["item_ids"][0])
        await uow.commit()
    member = await _token(world, "member")
    path = f"/api/meetings/{mid}/versions/{version.id}/file"
    with TestClient(create_app(replace(settings, blob_url=s3_url))) as c:
        r = c.get(path, headers=member)
        assert r.status_code == 200 and r.content.startswith(b"%PDF")
        size = len(r.content)
    closed = s3_url.split("?")[0] + f"?endpoint=127.0.0.1:{free_port()}&access_key=a&secret_key=b&secure=false"
    with TestClient(create_app(replace(settings, blob_url=closed))) as c:
        r = c.get(path, headers=member)
        assert r.status_code == 503 and r.headers["retry-after"] == "5", r.status_code
        assert "content-disposition" not in r.headers and "không phản hồi" in r.json()["message"]
    down = open_blob_store(closed)
    try:
        with pytest.raises(Unavailable):  # S3 gone between stat and stream: raised before the response starts
            await primed(down.open(version.blob_key))
        whole = b"".join([chunk async for chunk in await primed(world.blobs.open(version.blob_key))])
        assert len(whole) == size
    finally:
        await down.close()
        await world.blobs.close()
