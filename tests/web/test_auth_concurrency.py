"""Many API clients arriving at once must not exhaust the connection pool during authentication."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import uvicorn

from eoffice import identity
from eoffice.org import Role
from storage.db import Database
from storage.settings import Settings
from tests.conftest import free_port
from web.app import create_app

CLIENTS = 60  # more than the pool (5 + 10 overflow) holds


async def _tokens(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.uow() as uow:
            out = []
            for i in range(CLIENTS):
                user = await identity.create_user(uow, None, username=f"daibieu{i:02d}", full_name=f"Đại biểu {i}",
                                                  password="mat-khau-dai", roles=[Role.SPECIALIST])
                out.append(await identity.create_token(uow, None, user))  # never used: its first use is recorded
            await uow.commit()
            return out
    finally:
        await db.dispose()


async def test_first_requests_of_many_token_clients_at_once(settings: Settings) -> None:
    tokens = await _tokens(settings.database_url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):  # the server says when it listens by a flag only
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            answers = await asyncio.gather(*(
                http.get("/api/me", headers={"Authorization": f"Bearer {t}"}) for t in tokens))
        assert [r.status_code for r in answers] == [200] * CLIENTS
        assert sorted(r.json()["username"] for r in answers) == [f"daibieu{i:02d}" for i in range(CLIENTS)]
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
