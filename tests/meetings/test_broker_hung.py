"""A hung Redis (stopped with SIGSTOP: it accepts connections and never answers) must not slow commits.

Server A runs in this process (``TestClient``), server B in a subprocess (uvicorn); both share the database and
a private redis-server on a free port (the machine's Redis at 6379 is never stopped). Real API writes (meeting
check-in and check-out) are timed on A while Redis runs and while it is stopped; then Redis is continued and a
tablet connected to B must get every event, the ones committed during the hang included (from the broker's
queue or, if they were dropped, from the database log after the publisher's resync announcement).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from websockets.asyncio.client import connect

from eoffice import identity
from meetings import topics
from storage.pubsub.redis import TIMEOUT
from storage.settings import Settings
from tests.meetings.conftest import World
from tests.storage.test_pubsub import PrivateRedis
from tests.web.test_ws import bearer, collect, subscribe
from tests.web.test_ws_redis import ROOT, Proc, _start, _wait_healthy
from web.app import create_app

ROUNDS = 8


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)  # a stopped process would not die of SIGKILL's wait
        server.stop()


@pytest.fixture
def server_b(settings: Settings, redis_server: PrivateRedis, tmp_path: Path) -> Iterator[tuple[Proc, str]]:
    broker_url = f"redis://127.0.0.1:{redis_server.port}/0?channel=test:{uuid.uuid4().hex}"
    env = {**os.environ, "EOFFICE_DATABASE_URL": settings.database_url, "EOFFICE_BROKER_URL": broker_url,
           "EOFFICE_BLOB_URL": f"file://{tmp_path}/blobs-b", "EOFFICE_VAR_DIR": str(tmp_path / "var-b"),
           "EOFFICE_SECRET_KEY": settings.secret_key, "PYTHONPATH": str(ROOT)}
    proc = _start(env, tmp_path / "server-b.log")
    try:
        _wait_healthy(proc)
        yield proc, broker_url
    finally:
        proc.process.terminate()
        try:
            proc.process.wait(15)
        except subprocess.TimeoutExpired:
            proc.process.kill()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_hung_redis_does_not_slow_commits(
    settings: Settings, world: World, redis_server: PrivateRedis, server_b: tuple[Proc, str]
) -> None:
    proc_b, broker_url = server_b
    assert redis_server.process is not None
    m = await world.meeting(start=True)
    mid, seat = m["meeting_id"], m["seats"]["member"]
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, world.member)
        await uow.commit()
    auth = {"Authorization": f"Bearer {token}"}
    topic = topics.room(mid)
    actions = iter(("check-in", "check-out") * ROUNDS * 4)

    def write(c: TestClient) -> float:
        start = time.perf_counter()
        r = c.post(f"/api/meetings/{mid}/participants/{seat}/{next(actions)}", headers=auth)
        elapsed = time.perf_counter() - start
        assert r.status_code == 200, r.text
        return elapsed

    app_settings = Settings(**{**settings.__dict__, "broker_url": broker_url})
    with TestClient(create_app(app_settings), base_url="http://testserver") as c:
        async with connect(f"ws://127.0.0.1:{proc_b.port}/ws", additional_headers=bearer(token)) as tablet:
            last = (await subscribe(tablet, topic))["seq"]
            for _ in range(3):  # warm up: connections, statement caches
                write(c)
            last = (await collect(tablet, topic, last + 3))[-1]

            running = [write(c) for _ in range(ROUNDS)]
            assert (await collect(tablet, topic, last + ROUNDS))[-1] == last + ROUNDS  # live through Redis
            last += ROUNDS

            os.kill(redis_server.process.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(0.2)
                hung = [write(c) for _ in range(ROUNDS)]
            finally:
                os.kill(redis_server.process.pid, signal.SIGCONT)
            last += ROUNDS
            write(c)  # one more after Redis is back
            last += 1
            seqs = await collect(tablet, topic, last, within=30)
            assert seqs[-1] == last and sorted(set(seqs)) == list(range(last - ROUNDS - 1 + 1, last + 1))

    load = os.getloadavg()[0]
    up, down = statistics.median(running), statistics.median(hung)
    print(f"\ncommit latency (check-in API) Redis running: median {up * 1000:.1f} ms, max {max(running) * 1000:.1f} ms;"
          f" Redis stopped: median {down * 1000:.1f} ms, max {max(hung) * 1000:.1f} ms; load {load:.2f}")
    assert down < 3 * up + 0.1, (running, hung)
    assert max(hung) < TIMEOUT, hung  # no write waited for Redis's timeout
