"""Pages and API reads that only read use read-only units of work: on SQLite they do not queue
behind a writer (storage/db.py: a read-write unit of work takes BEGIN IMMEDIATE and waits its turn
in the process's writer queue; a read-only one reads its WAL snapshot at once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import update

from eoffice import identity, tasks
from eoffice.documents import register_incoming
from eoffice.org import User
from storage.blobs import open_blob_store
from storage.db import Database
from storage.settings import Settings
from tests.conftest import serving
from tests.eoffice.conftest import incoming_fields, make_org
from web.app import create_app


@dataclass
class World:
    db: Database
    http: httpx.AsyncClient
    clerk: dict[str, str]
    admin: dict[str, str]
    doc_id: int
    task_id: int


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    db = Database(settings.database_url)
    blobs = open_blob_store(settings.blob_url)
    org = await make_org(db)
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(
            1, summary="Công văn về việc triển khai chính quyền điện tử tại huyện Đông Triều"))
        await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
        _, (task,) = await tasks.direct(uow, org["lanhdao"], doc.id, text="Chuyên viên theo dõi",
                                        main={"user_id": org["chuyenvien"].id})
        clerk = await identity.create_token(uow, None, org["vanthu"], "Trình duyệt thử")
        admin = await identity.create_token(uow, None, org["admin"], "Quản trị thử")
        await uow.commit()
    await blobs.close()
    try:
        async with serving(create_app(settings)) as port, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield World(db, http, {"Authorization": f"Bearer {clerk}"}, {"Authorization": f"Bearer {admin}"},
                        doc.id, task.id)
    finally:
        await db.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL readers never wait for writers
async def test_reads_do_not_wait_behind_an_open_write_transaction(world: World) -> None:
    w = world
    clerk_reads = ["/", "/documents", "/tasks", f"/documents/{w.doc_id}", f"/tasks/{w.task_id}",
                   "/api/edxml/quarantine", f"/api/documents/{w.doc_id}/edxml/timeline",
                   f"/api/documents/{w.doc_id}/signatures"]
    admin_reads = ["/admin/users", "/admin/audit", "/admin/audit?verify=1"]
    reads = [(p, w.clerk) for p in clerk_reads] + [(p, w.admin) for p in admin_reads]
    for path, headers in reads:  # first use of each token (recorded, a write) and a warm server
        r = await w.http.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text[:300])

    async with w.db.uow() as writer:  # another part of the process is writing: BEGIN IMMEDIATE, held
        await writer.session.execute(update(User).where(User.username == "vanthu2").values(title="Văn thư"))
        for path, headers in reads:
            r = await asyncio.wait_for(w.http.get(path, headers=headers), 10)
            assert r.status_code == 200, path
        assert "Nguyễn Thị Lan" in (await w.http.get("/", headers=w.clerk)).text
        # a write meanwhile does wait for its turn (the held transaction is real)
        write = asyncio.create_task(w.http.post("/api/tokens", json={"name": "Máy quét"}, headers=w.clerk))
        await asyncio.sleep(0.5)
        assert not write.done()
        await writer.commit()
    assert (await asyncio.wait_for(write, 30)).status_code == 201
