"""Shared annotations, live: one presenter draws, N tablets in the same meeting see it.

    .venv/bin/python bench/annotations.py [--clients 200] [--events 200] [--quick]

The application, on a real uvicorn server (``web.app.create_app``: SQLite, in-process broker, the
hub) in a thread; N participants of one meeting, each with its own bearer token and WebSocket,
subscribed to the document version's shared-annotation topic ``annot:v:{version}`` (authorised per
connection, like a real tablet). The presenter POSTs an ink stroke of 40 points shared with the
meeting through the HTTP API, the path a tablet takes: permission checks, shape validation, insert,
audit entry, event numbering, commit, then the hub's fan-out.

- ``e2e``: from the moment the POST starts to the moment the *last* tablet has the event;
- ``fanout``: from the moment the committed event is handed to the broker to that same moment
  (comparable with bench/ws_fanout.py and with the baseline);
- throughput: the presenter and three other people draw as fast as the server answers (4 HTTP
  clients in parallel); events fully delivered to all N tablets per second.

The baseline, in the same run and the same arrangement (server thread, N clients in this
process): a bare ``websockets`` server calling ``websockets.broadcast`` with an already-encoded
frame of the same size; latency one frame at a time, throughput back to back.

Prints the figures, then one JSON line. ``--quick``: 50 clients, 40 events (a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.ws_fanout import BareBroadcast, percentile, start_server
from eoffice import identity, uploads
from eoffice.org import User
from meetings import agenda, documents, meetings, render
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import migrate
from storage.settings import Settings
from web.app import create_app
from web.auth import CSRF_COOKIE, SESSION_COOKIE, csrf_for, signer

CLIENT_ID = re.compile(r'"client_id":"([A-Za-z0-9_-]+)"')
TARGET_P99_MS = 50.0


def stroke(n: int) -> list[list[float]]:
    """A 40-point pen stroke with pressure, somewhere on an A4 page."""
    y = 80 + (n * 7) % 680
    return [[round(60 + i * 11.5, 2), round(y + 12 * ((i % 8) - 4) / 4, 2), round(0.3 + (i % 5) / 10, 2)]
            for i in range(40)]


class Tablets:
    """N sockets; ``arm(key)`` resolves when every one of them has received the frame carrying ``key``."""

    def __init__(self, marker: str, key_re: re.Pattern[str]) -> None:
        self.marker = marker
        self.key_re = key_re
        self.sockets: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.counts: dict[str, int] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.delivered = 0
        self.last_size = 0

    def arm(self, key: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[key] = fut
        return fut

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            text = str(raw)
            if self.marker not in text:  # heartbeats, "subscribed": no JSON parsing on the hot path
                if '"type":"ping"' in text:
                    await ws.send('{"op":"pong"}')
                continue
            now = time.perf_counter()
            m = self.key_re.search(text)
            if not m:
                continue
            key = m.group(1)
            self.delivered += 1
            self.last_size = len(text.encode())
            n = self.counts[key] = self.counts.get(key, 0) + 1
            if n == len(self.sockets):
                fut = self.waiters.pop(key, None)
                if fut is not None and not fut.done():
                    fut.set_result(now)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._read(ws)) for ws in self.sockets]

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# ----------------------------------------------------------------------------------- application ---


async def setup(url: str, workdir: Path, n: int) -> dict[str, Any]:
    """A meeting in progress with N participants, a document, and a token for everyone."""
    db = Database(url)
    blobs = open_blob_store(f"file://{workdir}/blobs")
    pw = identity.hash_password("mật-khẩu-đo")  # once: argon2 is slow on purpose
    try:
        async with db.uow() as uow:
            chair = await identity.create_user(uow, None, username="chutri", full_name="Trần Văn Hùng",
                                               password="mật-khẩu-đo")
            organiser = await identity.create_user(uow, None, username="vanthu", full_name="Phạm Thu Hà",
                                                   password="mật-khẩu-đo")
            people = [User(username=f"daibieu{i:03d}", full_name=f"Đại biểu số {i} huyện Đông Triều", password_hash=pw,
                           roles=["specialist"]) for i in range(n)]
            uow.session.add_all(people)
            await uow.session.flush()
            m = await meetings.create_meeting(uow, organiser, title="Họp trực tuyến toàn tỉnh",
                                              starts_at=dt.datetime.now(dt.UTC), chair_id=chair.id)
            for p in people:
                await meetings.add_participant(uow, organiser, m.id, user_id=p.id)
            item = await agenda.add_item(uow, organiser, m.id, title="Báo cáo chuyển đổi số", presenter_id=chair.id)
            pdf = await render.write_text_pdf([["Báo cáo chuyển đổi số của Ủy ban nhân dân huyện Đông Triều."]] * 3)
            info = await blobs.put_bytes(pdf, content_type="application/pdf")
            up = await uploads.record_upload(uow, organiser, info, "bao-cao.pdf")
            _doc, version = await documents.add_document(uow, organiser, blobs, m.id, upload_id=up.id,
                                                         item_id=item.id)
            await meetings.send_invitations(uow, organiser, m.id)
            # browser sessions, as the tablets have (a bearer token would also write last_used_at per request)
            tokens = [await identity.start_session(uow, p, 1) for p in people]
            drawers = [await identity.start_session(uow, u, 1) for u in (chair, *people[:3])]
            await uow.commit()
        async with db.uow() as uow:
            await meetings.start_meeting(uow, chair, m.id)
            await uow.commit()
        return {"meeting_id": m.id, "version_id": version.id, "tokens": tokens, "drawers": drawers}
    finally:
        await blobs.close()
        await db.dispose()


async def bench_app(n: int, events: int, burst: int, workdir: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{workdir}/bench.db"
    await asyncio.to_thread(migrate, url)
    world = await setup(url, workdir, n)
    mid, vid = world["meeting_id"], world["version_id"]
    settings = Settings(database_url=url, blob_url=f"file://{workdir}/blobs", secret_key="bench-" + "x" * 32,
                        ws_queue_size=1024)
    app = create_app(settings)
    server, thread, port = start_server(app)
    handed: dict[str, float] = {}
    inner = app.state.db.publisher

    async def stamped(messages: list[dict[str, Any]]) -> None:
        t = time.perf_counter()
        for msg in messages:
            a = msg.get("data", {}).get("annotation")
            if a and msg["topic"].startswith("annot:v:"):
                handed[a["client_id"]] = t
        await inner(messages)

    app.state.db.publisher = stamped
    base = f"http://127.0.0.1:{port}/api/meetings/{mid}"
    tablets = Tablets('"annotation.saved"', CLIENT_ID)

    def browser_headers(session: str) -> dict[str, str]:
        nonce = f"nonce-{session[:12]}"
        return {"Cookie": f"{SESSION_COOKIE}={signer(settings).sign(session).decode()}; {CSRF_COOKIE}={nonce}",
                "X-CSRF-Token": csrf_for(settings, nonce)}

    drawers = [httpx.AsyncClient(base_url=base, headers=browser_headers(t), timeout=30) for t in world["drawers"]]
    try:
        r = await drawers[0].get(f"/versions/{vid}/annotations")  # the hub learns the annot: topics
        r.raise_for_status()
        topic = f"annot:v:{vid}"
        for token in world["tokens"]:
            ws = await connect(f"ws://127.0.0.1:{port}/ws", additional_headers=browser_headers(token), max_queue=1024)
            await ws.send(json.dumps({"op": "subscribe", "topic": topic}))
            reply = json.loads(await ws.recv())
            assert reply["type"] == "subscribed", reply
            tablets.sockets.append(ws)
        tablets.start()
        counter = 0

        async def draw(client: httpx.AsyncClient) -> tuple[str, float, float]:
            nonlocal counter
            counter += 1
            cid = f"bench-{counter:06d}-stroke"
            done = tablets.arm(cid)
            began = time.perf_counter()
            resp = await client.post(f"/versions/{vid}/annotations", json={
                "client_id": cid, "page": 1, "kind": "ink", "visibility": "meeting", "color": "#d32f2f",
                "shape": {"strokes": [stroke(counter)], "width": 2}})
            assert resp.status_code == 201, resp.text
            finished = await asyncio.wait_for(done, 30)
            return cid, began, finished

        e2e, fanout, http = [], [], []
        for _ in range(events):
            cid, began, finished = await draw(drawers[0])
            e2e.append((finished - began) * 1000)
            fanout.append((finished - handed[cid]) * 1000)
            http.append((handed[cid] - began) * 1000)

        # throughput: four people drawing as fast as the server answers
        before = tablets.delivered
        t0 = time.perf_counter()

        async def keep_drawing(client: httpx.AsyncClient, count: int) -> None:
            for _ in range(count):
                await draw(client)

        await asyncio.gather(*(keep_drawing(c, burst // len(drawers)) for c in drawers))
        elapsed = time.perf_counter() - t0
        sent = burst // len(drawers) * len(drawers)
        frame_size = tablets.last_size
        assert tablets.delivered - before == sent * n
    finally:
        await tablets.close()
        for c in drawers:
            await c.aclose()
        server.should_exit = True
        await asyncio.to_thread(thread.join, 20)
    return {"e2e": e2e, "fanout": fanout, "http": http, "events_per_s": sent / elapsed,
            "deliveries_per_s": sent * n / elapsed, "frame_size": frame_size}


# -------------------------------------------------------------------------------------- baseline ---


async def bench_baseline(n: int, events: int, burst: int, frame_size: int) -> dict[str, Any]:
    bare = BareBroadcast(n)
    tablets = Tablets('"annotation.saved"', CLIENT_ID)
    pad = "x" * max(0, frame_size - 120)

    def frame(cid: str) -> str:
        return json.dumps({"topic": "annot:v:1", "seq": 1, "type": "annotation.saved",
                           "data": {"annotation": {"client_id": cid, "pad": pad}}}, ensure_ascii=False,
                          separators=(",", ":"))

    try:
        for _ in range(n):
            tablets.sockets.append(await connect(f"ws://127.0.0.1:{bare.port}", max_queue=1024))
        await asyncio.to_thread(bare.all_in.wait, 30)
        tablets.start()
        latencies = []
        for i in range(events):
            cid = f"base-{i:06d}"
            done = tablets.arm(cid)
            text = frame(cid)
            began = time.perf_counter()
            bare.send(text)
            latencies.append((await asyncio.wait_for(done, 30) - began) * 1000)
        frames = [frame(f"burst-{i:06d}") for i in range(burst)]
        last = tablets.arm(f"burst-{burst - 1:06d}")
        before = tablets.delivered
        t0 = time.perf_counter()
        bare.send(*frames)
        await asyncio.wait_for(last, 60)  # each socket is in order: the last frame everywhere means all of them
        assert tablets.delivered - before == burst * n
        elapsed = time.perf_counter() - t0
    finally:
        await tablets.close()
        await bare.close()
    return {"latencies": latencies, "events_per_s": burst / elapsed, "deliveries_per_s": burst * n / elapsed}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--burst", type=int, default=200, help="annotations drawn back to back for throughput")
    parser.add_argument("--quick", action="store_true", help="50 clients, 40 events: a smoke run")
    args = parser.parse_args()
    n, m, burst = (50, 40, 40) if args.quick else (args.clients, args.events, args.burst)
    warm = max(5, m // 20)

    with tempfile.TemporaryDirectory() as tmp:
        ours = await bench_app(n, m + warm, burst, Path(tmp))
    base = await bench_baseline(n, m + warm, burst, ours["frame_size"])
    e2e, fan, http = ours["e2e"][warm:], ours["fanout"][warm:], ours["http"][warm:]
    b = base["latencies"][warm:]
    r: dict[str, Any] = {
        "bench": "annotations", "clients": n, "events": m, "burst": burst, "frame_bytes": ours["frame_size"],
        "e2e_p50_ms": round(statistics.median(e2e), 3), "e2e_p99_ms": round(percentile(e2e, 99), 3),
        "fanout_p50_ms": round(statistics.median(fan), 3), "fanout_p99_ms": round(percentile(fan, 99), 3),
        "http_commit_p50_ms": round(statistics.median(http), 3),
        "baseline_p50_ms": round(statistics.median(b), 3), "baseline_p99_ms": round(percentile(b, 99), 3),
        "eoffice_events_per_s": round(ours["events_per_s"], 1),
        "eoffice_deliveries_per_s": round(ours["deliveries_per_s"]),
        "baseline_events_per_s": round(base["events_per_s"], 1),
        "baseline_deliveries_per_s": round(base["deliveries_per_s"]),
    }
    r["ratio_fanout_p50"] = round(r["fanout_p50_ms"] / r["baseline_p50_ms"], 2)
    r["ratio_fanout_p99"] = round(r["fanout_p99_ms"] / r["baseline_p99_ms"], 2)
    r["ratio_e2e_p99"] = round(r["e2e_p99_ms"] / r["baseline_p99_ms"], 2)
    r["ratio_throughput"] = round(r["eoffice_events_per_s"] / r["baseline_events_per_s"], 3)
    r["target_p99_ms"] = TARGET_P99_MS
    r["target_met"] = r["e2e_p99_ms"] < TARGET_P99_MS
    print(f"Shared annotations, {n} tablets in one meeting, {m} strokes one at a time (after {warm} warm-up), "
          f"{burst} back to back")
    print(f"  bare websockets broadcast  : p50 {r['baseline_p50_ms']:8.2f} ms   p99 {r['baseline_p99_ms']:8.2f} ms"
          f"   {r['baseline_events_per_s']:8.1f} frames/s")
    print(f"  eoffice publish -> tablets : p50 {r['fanout_p50_ms']:8.2f} ms   p99 {r['fanout_p99_ms']:8.2f} ms"
          f"   (x{r['ratio_fanout_p50']} / x{r['ratio_fanout_p99']})")
    print(f"  eoffice POST -> tablets    : p50 {r['e2e_p50_ms']:8.2f} ms   p99 {r['e2e_p99_ms']:8.2f} ms"
          f"   {r['eoffice_events_per_s']:8.1f} strokes/s (x{r['ratio_throughput']})"
          f"   target p99 < {TARGET_P99_MS:.0f} ms: {'met' if r['target_met'] else 'NOT met'}")
    print(f"  of which HTTP + service + commit: p50 {r['http_commit_p50_ms']:.2f} ms")
    print(json.dumps(r))


if __name__ == "__main__":
    asyncio.run(main())
