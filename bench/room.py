"""The meeting room under load: the chair moves to the next agenda item, 200 tablets follow.

    .venv/bin/python bench/room.py [--clients 200] [--events 100] [--db URL]

A real uvicorn server (``web.app.create_app``, SQLite by default or ``--db`` PostgreSQL, in-process
broker, the hub) in a thread; a meeting in progress with ``--clients`` participants, each with its own
account and WebSocket subscribed to ``meeting:{id}`` (so the room's authoriser runs for every one).
Each round the chair's client sends ``POST /api/meetings/{id}/current {"step": ±1}`` over HTTP:
permission check, row lock, agenda update, audit entry, event numbered and committed, published,
fanned out. Latency runs from sending the request to the moment the *last* tablet has the
``agenda.current`` event; the HTTP answer time is reported beside it. One event at a time.

Baseline, in the same run: bench/ws_fanout.py's bare ``websockets.broadcast`` of one encoded frame
to the same number of clients (the floor for "one message to N sockets" on this machine).

Prints the figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from websockets.asyncio.client import connect

from bench.ws_fanout import Clients, bench_baseline, percentile, start_server
from eoffice import identity
from eoffice.org import Role, User
from meetings import agenda, lifecycle, meetings
from storage import events
from storage.db import Database
from storage.migrate import migrate
from storage.settings import Settings
from web.app import create_app

PASSWORD = "Mật-khẩu-đo-2026"
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô"]
GIVEN = ["Văn An", "Thị Bình", "Đức Cường", "Thu Hà", "Minh Tuấn", "Quang Vinh", "Thị Hương", "Văn Ánh"]


async def _pg(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def seed(url: str, n: int) -> dict[str, Any]:
    """A meeting in progress at its first item, the chair, and ``n`` participants with API tokens."""
    db = Database(url)
    pw = identity.hash_password(PASSWORD)  # once: argon2 is slow on purpose
    try:
        async with db.uow() as uow:
            people = [User(username=f"dai.bieu.{i}", full_name=f"{SURNAMES[i % 10]} {GIVEN[i % 8]} {i}",
                           password_hash=pw, roles=[Role.SPECIALIST]) for i in range(n)]
            chair = User(username="chu.tri", full_name="Trần Văn Hùng", password_hash=pw, roles=[Role.LEADER])
            secretary = User(username="thu.ky", full_name="Nguyễn Thị Lan", password_hash=pw, roles=[Role.CLERK])
            uow.session.add_all([*people, chair, secretary])
            await uow.session.flush()
            m = await meetings.create_meeting(uow, secretary, title="Họp UBND tỉnh thường kỳ (đo tải)",
                                              starts_at=dt.datetime.now(dt.UTC), chair_id=chair.id,
                                              secretary_id=secretary.id)
            for p in people:
                await meetings.add_participant(uow, secretary, m.id, user_id=p.id)
            for title in ("Báo cáo kinh tế - xã hội", "Kế hoạch chuyển đổi số", "Công tác cán bộ"):
                await agenda.add_item(uow, secretary, m.id, title=title, presenter_id=chair.id)
            await meetings.send_invitations(uow, secretary, m.id)
            await uow.commit()
        async with db.uow() as uow:
            await lifecycle.start_meeting(uow, chair, m.id)
            await agenda.step(uow, chair, m.id, 1)
            tokens = [await identity.create_token(uow, None, p, "bench") for p in people]
            chair_token = await identity.create_token(uow, None, chair, "bench")
            await uow.commit()
        return {"meeting_id": m.id, "tokens": tokens, "chair_token": chair_token}
    finally:
        await db.dispose()


async def bench_room(url: str, n: int, rounds: int, workdir: Path) -> dict[str, Any]:
    if url.startswith("postgresql"):  # a database of its own, created here and dropped at the end
        name = f"eoffice_bench_room_{os.getpid()}"
        await _pg(url, f'CREATE DATABASE "{name}"')
        try:
            server_url = url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            return await _bench_room(f"{server_url}/{name}", n, rounds, workdir)
        finally:
            await _pg(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return await _bench_room(url, n, rounds, workdir)


async def _bench_room(url: str, n: int, rounds: int, workdir: Path) -> dict[str, Any]:
    await asyncio.to_thread(migrate, url)
    data = await seed(url, n)
    mid = data["meeting_id"]
    topic = f"meeting:{mid}"
    settings = Settings(database_url=url, blob_url=f"file://{workdir}/blobs", secret_key="bench-" + "x" * 32,
                        ws_queue_size=1024)
    app = create_app(settings)
    server, thread, port = start_server(app)
    base = f"http://127.0.0.1:{port}"
    clients = Clients()
    http_ms: list[float] = []
    latencies: list[float] = []
    chair = {"Authorization": f"Bearer {data['chair_token']}"}
    try:
        async with httpx.AsyncClient(base_url=base, headers=chair, timeout=30) as http:
            r = await http.get(f"/api/meetings/{mid}")  # the chair's tablet loads the room first
            r.raise_for_status()
            first_seq = r.json()["seq"]
            t = time.perf_counter()
            for token in data["tokens"]:
                ws = await connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {token}"},
                                   max_queue=1024)
                await ws.send(json.dumps({"op": "subscribe", "topic": topic}))
                reply = json.loads(await ws.recv())
                assert reply["type"] == "subscribed", reply
                clients.sockets.append(ws)
            connect_s = time.perf_counter() - t
            clients.start()
            for k in range(rounds):
                seq = first_seq + k + 1
                done = clients.arm(seq)
                began = time.perf_counter()
                r = await http.post(f"/api/meetings/{mid}/current", json={"step": 1 if k % 2 == 0 else -1})
                answered = time.perf_counter()
                r.raise_for_status()
                finished = await asyncio.wait_for(done, 30)
                http_ms.append((answered - began) * 1000)
                latencies.append((finished - began) * 1000)
        db = Database(url)
        async with db.uow() as uow:  # every round became exactly one event, in order
            replay = await events.events_since(uow.session, topic, first_seq)
            assert [e["type"] for e in replay.events] == ["agenda.current"] * rounds
        await db.dispose()
    finally:
        await clients.close()
        server.should_exit = True
        await asyncio.to_thread(thread.join, 20)
    return {"latencies": latencies, "http_ms": http_ms, "connect_s": connect_s}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--db", default="", help="a PostgreSQL server URL (a database is created and dropped for "
                        "the run), e.g. postgresql://postgres@127.0.0.1:5432/test; default: a fresh SQLite file")
    args = parser.parse_args()
    n, m = args.clients, args.events
    warm = max(5, m // 10)

    base = await bench_baseline(n, m + warm)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{tmp}/room.db"
        ours = await bench_room(url, n, m + warm, Path(tmp))
    b, o, hms = base["latencies"][warm:], ours["latencies"][warm:], ours["http_ms"][warm:]
    result = {
        "bench": "room", "clients": n, "events": m, "db": "postgresql" if url.startswith("postgresql") else "sqlite",
        "chair_to_last_p50_ms": round(statistics.median(o), 3),
        "chair_to_last_p99_ms": round(percentile(o, 99), 3),
        "chair_to_last_max_ms": round(max(o), 3),
        "http_answer_p50_ms": round(statistics.median(hms), 3),
        "baseline_p50_ms": round(statistics.median(b), 3), "baseline_p99_ms": round(percentile(b, 99), 3),
        "connect_all_s": round(ours["connect_s"], 2),
    }
    result["ratio_p50"] = round(result["chair_to_last_p50_ms"] / result["baseline_p50_ms"], 2)
    result["ratio_p99"] = round(result["chair_to_last_p99_ms"] / result["baseline_p99_ms"], 2)
    r = result
    print(f"Meeting room, {n} tablets subscribed to one meeting, {m} agenda moves by the chair (after {warm} warm-up)")
    print(f"  bare websockets broadcast     : p50 {r['baseline_p50_ms']:8.2f} ms   p99 {r['baseline_p99_ms']:8.2f} ms")
    print(f"  chair POST -> last tablet     : p50 {r['chair_to_last_p50_ms']:8.2f} ms   "
          f"p99 {r['chair_to_last_p99_ms']:8.2f} ms   max {r['chair_to_last_max_ms']:.2f} ms")
    print(f"  chair's HTTP answer           : p50 {r['http_answer_p50_ms']:8.2f} ms ({result['db']})")
    print(f"  {n} tablets connected and subscribed in {r['connect_all_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
