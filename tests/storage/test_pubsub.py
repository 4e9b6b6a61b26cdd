"""Brokers: the in-process one and Redis (the shared one at 127.0.0.1:6379, and a private one we restart)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database
from storage.errors import Unavailable
from storage.pubsub import SUBSCRIBED, Broker, is_control, open_broker
from storage.pubsub.memory import MemoryBroker
from storage.pubsub.redis import RedisBroker, channel_for
from tests.conftest import REDIS_URL, free_port, require, tcp_open


def _redis_ok() -> bool:
    return tcp_open("127.0.0.1", 6379)


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "memory":
        b: Broker = open_broker("memory://")
    else:
        require("Redis", _redis_ok(), "127.0.0.1:6379")
        b = open_broker(f"{REDIS_URL}?channel=test:{uuid.uuid4().hex}")  # our own channel: runs don't mix
    yield b
    await b.close()


def message(seq: int, topic: str = "meeting:1") -> dict[str, Any]:
    return {"topic": topic, "seq": seq, "type": "agenda.current", "data": {"tiêu_đề": "Báo cáo kinh tế – xã hội"},
            "at": "2026-03-02T01:00:00+00:00"}


async def take(it: AsyncIterator[dict[str, Any]], n: int, within: float = 5.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while len(out) < n:
            out.append(await anext(it))
    return out


def test_open_broker_by_url() -> None:
    assert isinstance(open_broker("memory://"), MemoryBroker)
    assert isinstance(open_broker("redis://127.0.0.1:6379/2"), RedisBroker)
    with pytest.raises(ValueError):
        open_broker("kafka://x")


def test_redis_channel_includes_the_database_number() -> None:
    """Redis pub/sub ignores the db number: it has to be in the channel name to keep deployments apart."""
    assert channel_for("redis://h:6379/0") == ("redis://h:6379/0", "eoffice:events")
    assert channel_for("redis://h:6379") == ("redis://h:6379", "eoffice:events")
    assert channel_for("redis://h:6379/3") == ("redis://h:6379/3", "eoffice:3:events")
    assert channel_for("redis://h:6379/3?channel=x&socket_timeout=1") == ("redis://h:6379/3?socket_timeout=1", "x")


async def test_every_subscriber_gets_every_message_in_order(broker: Broker) -> None:
    first, second = broker.subscribe(), broker.subscribe()
    for sub in (first, second):  # each announces that it is live before anything else
        assert is_control((await take(sub, 1))[0])
    await broker.publish([message(1), message(2)])
    await broker.publish([message(3, "user:5")])
    for sub in (first, second):
        assert await take(sub, 3) == [message(1), message(2), message(3, "user:5")]
    await broker.check()


async def test_many_concurrent_publishes_keep_per_call_order(broker: Broker) -> None:
    sub = broker.subscribe()
    await take(sub, 1)
    await asyncio.gather(*(broker.publish([message(i * 10 + j, f"t:{i}") for j in range(5)]) for i in range(20)))
    got = await take(sub, 100)
    for i in range(20):
        assert [m["seq"] for m in got if m["topic"] == f"t:{i}"] == [i * 10 + j for j in range(5)]


async def test_memory_publish_from_another_thread_reaches_the_loop() -> None:
    """The CLI or a test may publish from its own event loop; the subscriber's loop still gets it, in order."""
    broker = MemoryBroker()
    sub = broker.subscribe()
    await take(sub, 1)
    thread = threading.Thread(target=lambda: asyncio.run(broker.publish([message(1), message(2)])))
    thread.start()
    thread.join()
    assert [m["seq"] for m in await take(sub, 2)] == [1, 2]
    await broker.close()
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_database_publishes_committed_events_only(broker: Broker, db: Database) -> None:
    db.publisher = broker.publish
    sub = broker.subscribe()
    await take(sub, 1)
    async with db.uow() as uow:
        uow.emit("meeting:9", "lost")  # rolled back: never published
    async with db.uow() as uow:
        uow.emit("meeting:9", "meeting.state", state="đang họp")
        await uow.commit()
    [got] = await take(sub, 1)
    assert (got["topic"], got["seq"], got["type"], got["data"]) == ("meeting:9", 1, "meeting.state",
                                                                     {"state": "đang họp"})


async def test_redis_check_reports_unavailable() -> None:
    broker = open_broker(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Unavailable):
        await broker.check()
    await broker.close()


# ------------------------------------------------------------------------------- Redis restart ---


class PrivateRedis:
    """A redis-server of our own on a free port, so the test may kill it without hurting anyone."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not tcp_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    require("redis-server", shutil.which("redis-server") is not None, "the redis-server binary")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_redis_subscriber_survives_a_restart(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storage.pubsub.redis")
    broker = RedisBroker(f"redis://127.0.0.1:{private_redis.port}/0")
    sub = broker.subscribe()
    try:
        assert is_control((await take(sub, 1))[0])
        await broker.publish([message(1)])
        assert (await take(sub, 1))[0]["seq"] == 1

        reading = asyncio.create_task(take(sub, 1, within=30))
        private_redis.stop()
        await asyncio.sleep(0.5)
        with pytest.raises(Unavailable):
            await broker.check()
        await asyncio.sleep(1.0)  # a few failed reconnects, backing off
        private_redis.start()
        [again] = await reading
        assert again == {"topic": "", "type": SUBSCRIBED}  # "you may have missed something: resync"
        for _ in range(50):  # the publisher's connection pool reconnects on its own
            try:
                await broker.publish([message(2)])
                break
            except Exception:
                await asyncio.sleep(0.1)
        assert (await take(sub, 1))[0]["seq"] == 2
        logged = caplog.text
        assert "subscription to" in logged and "lost" in logged and "resubscribed" in logged
    finally:
        await broker.close()
