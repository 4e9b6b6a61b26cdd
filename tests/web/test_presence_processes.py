"""The control desk sees every process's tablets (issue #17): presence shared through Redis.

Two real ``eoffice serve`` processes share PostgreSQL and Redis (127.0.0.1:6379, a channel of this run's own). A
tablet follows the room on process A and another on process B: the desk on either process lists both online.
B is then killed with SIGKILL (no goodbye): the desk on A shows B's tablet as dropped, within a bound, at about
the time B died, while A's tablet stays online.

Also, without servers: how views merge, and a Redis that accepts connections and never answers (stopped) neither
holds the hub's bookkeeping nor the desk longer than the store's time limit (the desk then shows its own view)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect

from eoffice import identity
from eoffice.org import User
from meetings import topics
from meetings.demo import CHAIR, MEMBERS
from storage import keys
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import migrate
from storage.pubsub.presence import TIMEOUT, RedisPresence
from tests.conftest import REDIS_URL, free_port, require, scratch_pg_database, tcp_open
from tests.ops_world import populate
from tests.web.nginx_world import Server, server_env
from web import presence as presence_module
from web.presence import ALIVE_SECONDS, Presence, View, merge

SECRET = "khóa-bí-mật-thử-nghiệm-hiện-diện-Đông-Triều"


async def _desk(port: int, meeting_id: int, token: str) -> dict[int, dict[str, Any]]:
    """The desk's tablets by user id, as process ``port`` sees them."""
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.get(f"http://127.0.0.1:{port}/api/meetings/{meeting_id}/desk",
                             headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return {t["user_id"]: t for t in r.json()["tablets"]}


async def _until(what: str, check: Any, within: float = 60.0) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def _tablet(port: int, token: str, topic: str) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {token}"},
                       open_timeout=30)
    await ws.send(json.dumps({"op": "subscribe", "topic": topic}))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if message.get("type") == "subscribed":
            return ws
        assert message.get("type") in ("ping", "hello", "welcome") or "seq" in message, message


async def test_desk_on_either_process_lists_both_tablets_and_a_killed_process_drops_its_own(tmp_path: Path) -> None:
    require("Redis", tcp_open("127.0.0.1", 6379), "127.0.0.1:6379")
    broker = f"{REDIS_URL.rsplit('/', 1)[0]}/6?channel=test:presence:{uuid.uuid4().hex}"
    blob_url = f"file://{tmp_path}/blobs"
    async with scratch_pg_database("eoffice_presence") as url:
        await asyncio.to_thread(migrate, url)
        keys.register(url, SECRET)
        db, blobs = Database(url), open_blob_store(blob_url)
        try:
            facts = await populate(db, blobs)
            async with db.uow() as uow:
                users = {u.username: u for u in (await uow.session.scalars(select(User))).all()}
                tokens = {name: await identity.create_token(uow, None, users[name], "máy tính bảng")
                          for name in (CHAIR, MEMBERS[0], MEMBERS[1])}
                await uow.commit()
        finally:
            await db.dispose()
            await blobs.close()
        mid = facts["meeting_id"]
        on_a, on_b = users[MEMBERS[0]].id, users[MEMBERS[1]].id
        env = server_env(url, blob_url, broker, SECRET, tmp_path / "var")
        a, b = (Server(free_port(), env, tmp_path / f"server-{n}.log") for n in "ab")
        a.start()
        b.start()
        try:
            await asyncio.gather(asyncio.to_thread(a.wait_ready), asyncio.to_thread(b.wait_ready))
            topic = topics.room(mid)
            tablet_a = await _tablet(a.port, tokens[MEMBERS[0]], topic)
            tablet_b = await _tablet(b.port, tokens[MEMBERS[1]], topic)
            try:
                for server in (a, b):  # the desk on either process lists both tablets online
                    async def both_online(port: int = server.port) -> bool:
                        desk = await _desk(port, mid, tokens[CHAIR])
                        return desk[on_a]["status"] == "online" and desk[on_b]["status"] == "online"

                    await _until(f"both tablets online on the desk of :{server.port}", both_online)

                assert b.process is not None
                killed_at = time.time()
                b.process.send_signal(signal.SIGKILL)
                b.process.wait(30)

                async def b_dropped() -> bool:
                    return (await _desk(a.port, mid, tokens[CHAIR]))[on_b]["status"] == "dropped"

                took = await _until("B's tablet dropped on A's desk", b_dropped, within=60)
                desk = await _desk(a.port, mid, tokens[CHAIR])
                assert desk[on_a]["status"] == "online" and desk[on_a]["connections"] == 1
                at = dt.datetime.fromisoformat(desk[on_b]["dropped_at"]).timestamp()
                # the drop is dated B's last heartbeat: at most one heartbeat (plus slack) before it died
                assert killed_at - 2 * presence_module.HEARTBEAT_SECONDS - 5 <= at <= killed_at + 1, (at, killed_at)
                print(f"\nB's tablet shown dropped on A's desk {took:.1f} s after SIGKILL "
                      f"(bound {ALIVE_SECONDS:.0f} s + a heartbeat)")
            finally:
                for ws in (tablet_a, tablet_b):
                    with contextlib.suppress(Exception):
                        await ws.close()
        finally:
            a.stop()
            b.stop()


def test_merge_counts_live_processes_and_drops_a_dead_ones_tablets() -> None:
    views: dict[str, View] = {
        "a": {"online": {1: 1, 2: 1}, "left": {3: 100.0}},
        "b": {"online": {2: 2, 4: 1}, "left": {1: 90.0}},
        "dead": {"online": {5: 1, 1: 1}, "left": {6: 80.0}},
    }
    online, dropped = merge(views, {"a", "b"}, {"dead": 120.0})
    assert online == {1: 1, 2: 3, 4: 1}
    assert dropped == {3: 100.0, 5: 120.0, 6: 80.0}  # 1 left b and died with dead, but is online on a


async def test_a_hung_redis_holds_neither_the_hub_nor_the_desk() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing: what a SIGSTOPped Redis does

    hung = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = hung.sockets[0].getsockname()[1]
    presence = Presence(RedisPresence(f"redis://127.0.0.1:{port}/0?channel=test:hung"))
    await presence.start()
    try:
        conn = SimpleNamespace(authorizer=None, user=SimpleNamespace(id=7))
        started = time.perf_counter()
        for _ in range(1000):  # what the hub does on subscribe / close: bookkeeping only, never a wait
            presence.joined(conn, "meeting:1")  # type: ignore[arg-type]
            presence.left(conn, "meeting:1")  # type: ignore[arg-type]
        presence.joined(conn, "meeting:1")  # type: ignore[arg-type]
        assert time.perf_counter() - started < 1.0
        started = time.perf_counter()
        online, dropped = await presence.view("meeting:1")
        took = time.perf_counter() - started
        assert online == {7: 1} and dropped == {}  # this process's own view
        assert took < TIMEOUT + 5, took  # the store's limit, with slack for a loaded machine
        assert accepted, "the store never even tried Redis"
    finally:
        started = time.perf_counter()
        await presence.stop()
        assert time.perf_counter() - started < 2 * TIMEOUT + 5
        hung.close()
        for writer in accepted:
            writer.close()
