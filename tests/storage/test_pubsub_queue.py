"""The Redis broker's background sender: publish never waits, a hung Redis costs the oldest events (counted,
logged) and the sender announces a resync once it gets through. A private redis-server, stopped with SIGSTOP."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.pubsub import is_control
from storage.pubsub.redis import RedisBroker
from tests.conftest import require
from tests.storage.test_pubsub import PrivateRedis, message, take


@pytest.fixture
def stopped_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    require("redis-server", shutil.which("redis-server") is not None, "the redis-server binary")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


async def test_a_hung_redis_drops_the_oldest_and_announces_a_resync(
    stopped_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="storage.pubsub.redis")
    assert stopped_redis.process is not None
    broker = RedisBroker(f"redis://127.0.0.1:{stopped_redis.port}/0", queue_limit=5)
    sub = broker.subscribe()
    try:
        assert is_control((await take(sub, 1))[0])
        await broker.publish([message(1)])
        assert (await take(sub, 1))[0]["seq"] == 1
        os.kill(stopped_redis.process.pid, signal.SIGSTOP)
        start = time.perf_counter()
        for seq in range(2, 22):
            await broker.publish([message(seq)])
        assert time.perf_counter() - start < 0.1  # twenty publishes, none waited for Redis
        assert broker.stats.dropped == 15 and broker.stats.queued == 5
        assert "dropped the oldest" in caplog.text
        await asyncio.sleep(2.5)  # the sender's round times out: Redis is reported failing
        assert not broker.healthy and broker.stats.failures >= 1
        assert "cannot publish" in caplog.text
        os.kill(stopped_redis.process.pid, signal.SIGCONT)
        got = await take(sub, 6, within=20)
        assert [m["seq"] for m in got[:5]] == [17, 18, 19, 20, 21]  # the newest were kept, in order
        assert is_control(got[5])  # "some never came: check your topics against the log"
        for _ in range(100):
            if broker.healthy:
                break
            await asyncio.sleep(0.05)
        assert broker.healthy and broker.stats.queued == 0 and "publishing to" in caplog.text
    finally:
        await broker.close()


async def test_close_flushes_what_is_queued(stopped_redis: PrivateRedis) -> None:
    """A command-line process publishes and exits at once: close() sends what is queued first."""
    url = f"redis://127.0.0.1:{stopped_redis.port}/0"
    listener = RedisBroker(url)
    sub = listener.subscribe()
    assert is_control((await take(sub, 1))[0])
    broker = RedisBroker(url)
    await broker.publish([message(seq) for seq in range(1, 101)])
    await broker.close()
    assert [m["seq"] for m in await take(sub, 100)] == list(range(1, 101))
    await listener.close()
