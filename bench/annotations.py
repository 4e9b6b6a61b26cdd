"""Shared annotations, live: one presenter draws, N tablets in the same meeting see it.

    .venv/bin/python bench/annotations.py [--clients 200] [--events 200] [--burst 200] [--quick]

The application runs as a real server process (``uvicorn --factory web.app:create_app``: SQLite, the
in-process broker, the hub), so the server and this process (the N tablets) each have a core of the
machine instead of sharing one interpreter. N participants of one meeting, each with its own browser
session and WebSocket, subscribed to the document version's shared-annotation topic ``annot:v:{version}``
(authorised per connection, like a real tablet). The presenter adds an ink stroke of 40 points shared
with the meeting: permission checks, shape validation, insert, audit entry, event numbering, commit,
then the hub's fan-out. Two ways in, the two a tablet has:

- ``http``: ``POST /api/meetings/{m}/versions/{v}/annotations`` (session cookie and CSRF token);
- ``ws``: the ``annotation.create`` command on the WebSocket the tablet already holds (answered after
  the commit), skipped when the server does not offer it.

Measured, one stroke at a time: ``e2e`` from sending to the moment the *last* tablet has the event;
``ack`` from sending to the answer; ``spread`` from the first tablet having it to the last (the fan-out
to N sockets). Throughput: the presenter and three others draw as fast as the server answers (4 clients
in parallel); strokes fully delivered to all N tablets per second, and the server's CPU per stroke.

The baseline, in the same run and the same arrangement (a server process, the same N clients here):
bench/ws_fanout.py's ``BareEcho``, a bare ``websockets`` server broadcasting every frame a client sends
to everyone; the presenter sends a frame of the same size. Latency one frame at a time, throughput
back to back. The ratios say what the application (a durable, audited, authorised write) costs on top
of "a client sends, N receive". The load average is recorded with each phase: other work on the
machine shows up in the figures, so compare ratios from the same run.

Prints the figures, then one JSON line. ``--quick``: 50 clients, 40 events (a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.asyncio.client import ClientConnection, connect

from bench.voting import Http, drop_pg, pg_database
from bench.ws_fanout import AppProcess, BareEcho, percentile
from eoffice import identity, uploads
from eoffice.org import User
from meetings import agenda, documents, lifecycle, meetings, render
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import migrate
from storage.settings import Settings
from web.auth import CSRF_COOKIE, SESSION_COOKIE, csrf_for, signer

CLIENT_ID = re.compile(r'"client_id":"([A-Za-z0-9_-]+)"')
TARGET_P99_MS = 50.0


def stroke(n: int) -> list[list[float]]:
    """A 40-point pen stroke with pressure, somewhere on an A4 page."""
    y = 80 + (n * 7) % 680
    return [[round(60 + i * 11.5, 2), round(y + 12 * ((i % 8) - 4) / 4, 2), round(0.3 + (i % 5) / 10, 2)]
            for i in range(40)]


class Tablets:
    """N sockets; ``arm(key)`` resolves with (first, last): when the first and the last of them had the frame
    carrying ``key``."""

    def __init__(self, marker: str, key_re: re.Pattern[str]) -> None:
        self.marker = marker
        self.key_re = key_re
        self.sockets: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.counts: dict[str, int] = {}
        self.first: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[tuple[float, float]]] = {}
        self.delivered = 0
        self.last_size = 0

    def arm(self, key: str) -> asyncio.Future[tuple[float, float]]:
        fut: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
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
            if n == 1:
                self.first[key] = now
            if n == len(self.sockets):
                fut = self.waiters.pop(key, None)
                if fut is not None and not fut.done():
                    fut.set_result((self.first.pop(key), now))
                del self.counts[key]

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._read(ws)) for ws in self.sockets]

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Commands:
    """The presenter's own WebSocket: sends commands, ``call`` resolves with the reply carrying its ``id``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.unsupported: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg.get("type") == "reply":
                fut = self.replies.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            elif msg.get("type") == "error" and not self.unsupported.done():
                self.unsupported.set_result(msg)
            elif msg.get("type") == "ping":
                await self.ws.send('{"op":"pong"}')

    async def call(self, command: dict[str, Any]) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[command["id"]] = fut
        await self.ws.send(json.dumps(command))
        done, _ = await asyncio.wait([fut, self.unsupported], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if fut in done:
            return fut.result()
        raise LookupError(self.unsupported.result() if self.unsupported in done else "no reply")

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def load() -> float:
    return round(os.getloadavg()[0], 2)


async def connect_all(port: int, cookies: list[str], topic: str | None, batch: int = 50) -> list[ClientConnection]:
    """Open (and subscribe) the sockets, ``batch`` at a time; each is ready when this returns."""

    async def one(cookie: str | None) -> ClientConnection:
        headers = {"Cookie": cookie} if cookie else {}
        ws = await connect(f"ws://127.0.0.1:{port}/ws" if cookie else f"ws://127.0.0.1:{port}",
                           additional_headers=headers, max_queue=4096, open_timeout=60, ping_interval=None)
        if topic is not None:
            await ws.send(json.dumps({"op": "subscribe", "topic": topic}))
        elif cookie:
            return ws  # the application's socket, nothing subscribed: nothing to wait for
        reply = json.loads(await ws.recv())
        assert reply["type"] in ("subscribed", "ready"), reply
        return ws

    out: list[ClientConnection] = []
    for i in range(0, len(cookies), batch):
        out += await asyncio.gather(*(one(c) for c in cookies[i:i + batch]))
    return out


async def one_at_a_time(tablets: Tablets, events: int,
                        send: Callable[[str], Awaitable[float]]) -> dict[str, list[float]]:
    """``send(key)`` starts one stroke and returns when its answer came; e2e, ack and spread per stroke (ms)."""
    out: dict[str, list[float]] = {"e2e": [], "ack": [], "spread": []}
    for i in range(events):
        key = f"one-{i:06d}-{secrets.token_hex(3)}"
        done = tablets.arm(key)
        began = time.perf_counter()
        acked = await send(key)
        first, last = await asyncio.wait_for(done, 30)
        out["e2e"].append((last - began) * 1000)
        out["ack"].append((acked - began) * 1000)
        out["spread"].append((last - first) * 1000)
    return out


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
            await lifecycle.start_meeting(uow, chair, m.id)
            await uow.commit()
        return {"meeting_id": m.id, "version_id": version.id, "tokens": tokens, "drawers": drawers}
    finally:
        await blobs.close()
        await db.dispose()


async def bench_app(n: int, events: int, burst: int, workdir: Path, url: str, deflate: bool) -> dict[str, Any]:
    await asyncio.to_thread(migrate, url)
    world = await setup(url, workdir, n)
    mid, vid = world["meeting_id"], world["version_id"]
    secret = "bench-annotations-" + secrets.token_hex(16)
    settings = Settings(database_url=url, blob_url=f"file://{workdir}/blobs", secret_key=secret)
    server = AppProcess({"EOFFICE_DATABASE_URL": url, "EOFFICE_BLOB_URL": f"file://{workdir}/blobs",
                         "EOFFICE_BROKER_URL": "memory://", "EOFFICE_VAR_DIR": str(workdir / "var"),
                         "EOFFICE_SECRET_KEY": secret}, workdir / "server.log", deflate=deflate)
    nonce = secrets.token_urlsafe(16)
    csrfs = [csrf_for(settings, nonce, t) for t in world["drawers"]]  # a CSRF token is bound to its session
    cookies = [f"{SESSION_COOKIE}={signer(settings).sign(t).decode()}; {CSRF_COOKIE}={nonce}"
               for t in world["tokens"]]
    drawer_cookies = [f"{SESSION_COOKIE}={signer(settings).sign(t).decode()}; {CSRF_COOKIE}={nonce}"
                      for t in world["drawers"]]
    http = Http(server.port, len(drawer_cookies))
    tablets = Tablets('"annotation.saved"', CLIENT_ID)
    presenters: list[Commands] = []
    path = f"/api/meetings/{mid}/versions/{vid}/annotations"
    counter = 0

    def body(key: str) -> dict[str, Any]:
        nonlocal counter
        counter += 1
        return {"client_id": key, "page": 1, "kind": "ink", "visibility": "meeting", "color": "#d32f2f",
                "shape": {"strokes": [stroke(counter)], "width": 2}}

    async def via_http(key: str, who: int = 0) -> float:
        status, data = await http.request("POST", path, {"Cookie": drawer_cookies[who], "X-CSRF-Token": csrfs[who]},
                                          body(key))
        assert status == 201, (status, data)
        return time.perf_counter()

    async def via_ws(key: str, who: int = 0) -> float:
        reply = await presenters[who].call({"op": "annotation.create", "id": key, "meeting_id": mid,
                                            "version_id": vid, **body(key)})
        assert reply["ok"] and reply["data"]["created"], reply
        return time.perf_counter()

    out: dict[str, Any] = {}
    try:
        await http.open()
        status, _ = await http.request("GET", path, {"Cookie": drawer_cookies[0]})
        assert status == 200
        tablets.sockets = await connect_all(server.port, cookies, f"annot:v:{vid}")
        tablets.start()
        presenters = [Commands(ws) for ws in await connect_all(server.port, drawer_cookies, None)]
        try:
            await via_ws("probe-ws-command")
            ways = {"http": via_http, "ws": via_ws}
        except LookupError:
            ways = {"http": via_http}
        for way, send in ways.items():
            out[f"load_{way}"] = load()
            cpu0 = server.cpu_seconds()
            out[way] = await one_at_a_time(tablets, events, send)
            out[f"cpu_ms_{way}"] = (server.cpu_seconds() - cpu0) * 1000 / events

            # throughput: four people drawing as fast as the server answers
            per = burst // len(drawer_cookies)

            async def keep_drawing(who: int, send: Callable[..., Awaitable[float]] = send, per: int = per) -> None:
                for i in range(per):
                    key = f"burst-{who}-{i:05d}-{secrets.token_hex(3)}"
                    done = tablets.arm(key)
                    await send(key, who)
                    await asyncio.wait_for(done, 30)

            before = tablets.delivered
            out[f"load_{way}_burst"] = load()
            cpu0 = server.cpu_seconds()
            t0 = time.perf_counter()
            await asyncio.gather(*(keep_drawing(w) for w in range(len(drawer_cookies))))
            elapsed = time.perf_counter() - t0
            sent = per * len(drawer_cookies)
            assert tablets.delivered - before == sent * n
            out[f"events_per_s_{way}"] = sent / elapsed
            out[f"burst_cpu_ms_{way}"] = (server.cpu_seconds() - cpu0) * 1000 / sent
        out["frame_size"] = tablets.last_size
    finally:
        await tablets.close()
        for c in presenters:
            await c.close()
        await http.close()
        server.stop()
    return out


# -------------------------------------------------------------------------------------- baseline ---


async def bench_baseline(n: int, events: int, burst: int, frame_size: int, deflate: bool) -> dict[str, Any]:
    bare = BareEcho(deflate)
    tablets = Tablets('"annotation.saved"', CLIENT_ID)
    pad = "x" * max(0, frame_size - 120)

    def frame(cid: str) -> str:
        return json.dumps({"topic": "annot:v:1", "seq": 1, "type": "annotation.saved",
                           "data": {"annotation": {"client_id": cid, "pad": pad}}}, ensure_ascii=False,
                          separators=(",", ":"))

    out: dict[str, Any] = {}
    presenter: ClientConnection | None = None
    try:
        tablets.sockets = await connect_all(bare.port, [""] * n, None)
        tablets.start()
        (presenter,) = await connect_all(bare.port, [""], None)
        drain = asyncio.create_task(_drain(presenter))

        async def send(key: str) -> float:
            assert presenter is not None
            await presenter.send(frame(key))
            return time.perf_counter()

        out["load"] = load()
        cpu0 = bare.cpu_seconds()
        out["latency"] = await one_at_a_time(tablets, events, send)
        out["cpu_ms"] = (bare.cpu_seconds() - cpu0) * 1000 / events
        frames = [frame(f"burst-{i:06d}") for i in range(burst)]
        last = tablets.arm(f"burst-{burst - 1:06d}")
        before = tablets.delivered
        out["load_burst"] = load()
        t0 = time.perf_counter()
        for f in frames:
            await presenter.send(f)
        await asyncio.wait_for(last, 60)  # each socket is in order: the last frame everywhere means all of them
        assert tablets.delivered - before == burst * n
        out["events_per_s"] = burst / (time.perf_counter() - t0)
        drain.cancel()
    finally:
        await tablets.close()
        if presenter is not None:
            await presenter.close()
        bare.stop()
    return out


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


def _stats(values: list[float]) -> tuple[float, float]:
    return round(statistics.median(values), 2), round(percentile(values, 99), 2)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--burst", type=int, default=200, help="annotations drawn back to back for throughput")
    parser.add_argument("--quick", action="store_true", help="50 clients, 40 events: a smoke run")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database instead of SQLite")
    parser.add_argument("--no-deflate", action="store_true",
                        help="no permessage-deflate, on both servers (each compresses per connection by default)")
    args = parser.parse_args()
    n, m, burst = (50, 40, 40) if args.quick else (args.clients, args.events, args.burst)
    warm = max(5, m // 20)

    with tempfile.TemporaryDirectory() as tmp:
        pg_name = None
        try:
            if args.postgres:
                url, pg_name = await pg_database()
            else:
                url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            ours = await bench_app(n, m + warm, burst, Path(tmp), url, not args.no_deflate)
        finally:
            if pg_name:
                await drop_pg(pg_name)
    base = await bench_baseline(n, m + warm, burst, ours["frame_size"], not args.no_deflate)
    b50, b99 = _stats(base["latency"]["e2e"][warm:])
    s50, s99 = _stats(base["latency"]["spread"][warm:])
    r: dict[str, Any] = {
        "bench": "annotations", "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": "postgresql" if args.postgres else "sqlite", "deflate": not args.no_deflate, "clients": n,
        "events": m, "burst": burst, "frame_bytes": ours["frame_size"],
        "baseline_p50_ms": b50, "baseline_p99_ms": b99, "baseline_spread_p50_ms": s50, "baseline_spread_p99_ms": s99,
        "baseline_events_per_s": round(base["events_per_s"], 1), "baseline_cpu_ms": round(base["cpu_ms"], 2),
        "baseline_load": base["load"], "target_p99_ms": TARGET_P99_MS,
    }
    print(f"Shared annotations, {n} tablets in one meeting, {m} strokes one at a time (after {warm} warm-up), "
          f"{burst} back to back; server in its own process on {r['database']}, "
          f"{'with' if r['deflate'] else 'without'} permessage-deflate")
    print(f"  bare echo/broadcast     : e2e p50 {b50:7.2f} p99 {b99:7.2f} ms   spread p50 {s50:6.2f} p99 {s99:6.2f}"
          f"   {r['baseline_events_per_s']:7.1f} frames/s   load {base['load']}")
    for way in ("http", "ws"):
        if way not in ours:
            continue
        d = ours[way]
        e50, e99 = _stats(d["e2e"][warm:])
        a50, a99 = _stats(d["ack"][warm:])
        f50, f99 = _stats(d["spread"][warm:])
        eps = ours[f"events_per_s_{way}"]
        r.update({f"{way}_e2e_p50_ms": e50, f"{way}_e2e_p99_ms": e99, f"{way}_ack_p50_ms": a50,
                  f"{way}_ack_p99_ms": a99, f"{way}_spread_p50_ms": f50, f"{way}_spread_p99_ms": f99,
                  f"{way}_events_per_s": round(eps, 1), f"{way}_server_cpu_ms": round(ours[f"cpu_ms_{way}"], 2),
                  f"{way}_burst_server_cpu_ms": round(ours[f"burst_cpu_ms_{way}"], 2),
                  f"{way}_ratio_e2e_p50": round(e50 / b50, 2), f"{way}_ratio_e2e_p99": round(e99 / b99, 2),
                  f"{way}_ratio_spread_p50": round(f50 / max(s50, 0.01), 2), f"{way}_ratio_throughput": round(
                      eps / base["events_per_s"], 3), f"{way}_target_met": e99 < TARGET_P99_MS,
                  f"{way}_load": ours[f"load_{way}"], f"{way}_load_burst": ours[f"load_{way}_burst"]})
        print(f"  eoffice via {way:<4}       : e2e p50 {e50:7.2f} p99 {e99:7.2f} ms   "
              f"spread p50 {f50:6.2f} p99 {f99:6.2f}"
              f"   {eps:7.1f} strokes/s   load {ours[f'load_{way}']}")
        print(f"      answer p50 {a50:.2f} p99 {a99:.2f} ms; server CPU {ours[f'cpu_ms_{way}']:.2f} ms/stroke "
              f"(bare {base['cpu_ms']:.2f}); x{r[f'{way}_ratio_e2e_p50']} / x{r[f'{way}_ratio_e2e_p99']} e2e, "
              f"x{r[f'{way}_ratio_spread_p50']} spread, x{r[f'{way}_ratio_throughput']} throughput; "
              f"target p99 < {TARGET_P99_MS:.0f} ms: {'met' if e99 < TARGET_P99_MS else 'NOT met'}")
    print(json.dumps(r))


if __name__ == "__main__":
    asyncio.run(main())
