"""Two server processes (``uvicorn --factory web.app:create_app``) sharing one database and one Redis.

An event committed on the shared database and published to Redis must reach WebSocket clients
of *both* processes, and a client may resume on the other process from where it left off (the
event log is shared, so ``since`` means the same thing everywhere).

The events are committed by this test process through ``Database(url, publisher=RedisBroker.publish)``,
the very path (``UnitOfWork.commit`` -> broker) a service inside a server process takes: no HTTP
route emits events yet. Both servers are then equally "the other process".
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from storage.db import Database
from storage.pubsub.redis import RedisBroker
from storage.settings import Settings
from tests.conftest import REDIS_URL, free_port, require, tcp_open
from tests.web.conftest import add_user, make_token
from tests.web.test_ws import bearer, collect, emit, recv, subscribe

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120  # a loaded 2-core machine took up to 83 s (the lifespan waits for the PDF workers)


@dataclass
class Proc:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


def _start(env: dict[str, str], log: Path) -> Proc:
    port = free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "web.app:create_app", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
    )
    return Proc(port, process, log)


def _wait_healthy(proc: Proc) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{proc.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{proc.port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not healthy in {STARTUP_SECONDS} s:\n{proc.log.read_text()[-3000:]}")
        time.sleep(0.1)


@dataclass
class Cluster:
    a: Proc
    b: Proc
    settings: Settings  # database_url as the servers see it
    db: Database  # the test's publisher


@pytest.fixture
def broker_url() -> str:
    require("Redis", tcp_open("127.0.0.1", 6379), "127.0.0.1:6379")
    base = REDIS_URL.rsplit("/", 1)[0]
    return f"{base}/5?channel=test:{uuid.uuid4().hex}"  # a channel of our own: parallel runs do not mix


@pytest.fixture
def servers(settings: Settings, broker_url: str, tmp_path: Path) -> Iterator[tuple[Proc, Proc]]:
    env = {
        **os.environ,
        "EOFFICE_DATABASE_URL": settings.database_url,
        "EOFFICE_BROKER_URL": broker_url,
        "EOFFICE_BLOB_URL": f"file://{tmp_path}/blobs",
        "EOFFICE_VAR_DIR": str(tmp_path / "var"),
        "EOFFICE_SECRET_KEY": settings.secret_key,
        "PYTHONPATH": str(ROOT),
    }
    procs = [_start(env, tmp_path / f"server-{name}.log") for name in "ab"]
    try:
        for proc in procs:
            _wait_healthy(proc)
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            proc.process.terminate()
        for proc in procs:
            try:
                proc.process.wait(15)
            except subprocess.TimeoutExpired:
                proc.process.kill()


@pytest.fixture
async def cluster(servers: tuple[Proc, Proc], settings: Settings, broker_url: str) -> AsyncIterator[Cluster]:
    broker = RedisBroker(broker_url)
    db = Database(settings.database_url, publisher=broker.publish)
    yield Cluster(servers[0], servers[1], settings, db)
    await db.dispose()
    await broker.close()


async def test_an_event_reaches_clients_of_both_processes(cluster: Cluster) -> None:
    uid = add_user(cluster.settings, "thuky", full_name="Phạm Thị Thu Hà")
    token = make_token(cluster.settings, "thuky")
    topic = f"user:{uid}"
    async with connect(cluster.a.ws, additional_headers=bearer(token)) as on_a, \
            connect(cluster.b.ws, additional_headers=bearer(token)) as on_b:
        await subscribe(on_a, topic)
        await subscribe(on_b, topic)
        sent = await emit(cluster.db, topic, 3)
        assert [await recv(on_a) for _ in range(3)] == sent
        assert [await recv(on_b) for _ in range(3)] == sent


async def test_resume_on_the_other_process(cluster: Cluster) -> None:
    uid = add_user(cluster.settings, "thuky", full_name="Phạm Thị Thu Hà")
    token = make_token(cluster.settings, "thuky")
    topic = f"user:{uid}"
    async with connect(cluster.a.ws, additional_headers=bearer(token)) as ws:
        await subscribe(ws, topic)
        await emit(cluster.db, topic, 3)
        assert await collect(ws, topic, 3) == [1, 2, 3]
    await emit(cluster.db, topic, 4)  # missed while moving from A to B (a load balancer's choice)
    async with connect(cluster.b.ws, additional_headers=bearer(token)) as ws:
        assert (await subscribe(ws, topic, since=3))["seq"] == 7
        await emit(cluster.db, topic, 2)
        assert await collect(ws, topic, 9) == [4, 5, 6, 7, 8, 9]



async def test_a_login_on_one_process_reaches_a_client_of_the_other(cluster: Cluster) -> None:
    """The real path: a request handled by server A commits and publishes; server B delivers."""
    import re

    import httpx

    from tests.web.conftest import PASSWORD

    uid = add_user(cluster.settings, "thuky", full_name="Phạm Thị Thu Hà")
    token = make_token(cluster.settings, "thuky")
    topic = f"user:{uid}"
    async with connect(cluster.b.ws, additional_headers=bearer(token)) as on_b:
        await subscribe(on_b, topic)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.a.port}") as http:
            page = await http.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf
            r = await http.post("/login", data={"username": "thuky", "password": PASSWORD,
                                                "csrf_token": csrf.group(1)})
        assert r.status_code == 303
        event = await recv(on_b)
        assert event["topic"] == topic and event["type"] == "login" and event["seq"] == 1
        assert "vừa đăng nhập" in event["data"]["message"]


async def test_logout_on_one_process_closes_that_sessions_socket_on_the_other(cluster: Cluster) -> None:
    """``Hub.close_user`` through Redis: the logout is handled by server A, the socket lives on server B."""
    import re

    import httpx
    from websockets.exceptions import ConnectionClosed

    from tests.web.conftest import PASSWORD

    add_user(cluster.settings, "thuky", full_name="Phạm Thị Thu Hà")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.a.port}") as http:
        page = await http.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        r = await http.post("/login", data={"username": "thuky", "password": PASSWORD, "csrf_token": csrf.group(1)})
        assert r.status_code == 303
        cookie = {"Cookie": f"eo_session={http.cookies['eo_session']}"}
        async with connect(cluster.b.ws, additional_headers=cookie) as on_b:
            await on_b.send('{"op": "ping"}')
            assert '"pong"' in await on_b.recv()
            home = await http.get("/")
            token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
            assert token
            assert (await http.post("/logout", data={"csrf_token": token.group(1)})).status_code == 303
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(10):
                    await asyncio.wait_for(on_b.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

