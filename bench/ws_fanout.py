"""WebSocket fan-out: publish -> last of N clients, through the real service path vs a bare broadcast.

    .venv/bin/python bench/ws_fanout.py [--clients 200] [--events 200]

The application: a real uvicorn server (``web.app.create_app``: SQLite, in-process broker, the
hub) in a thread; each event is committed by a unit of work whose publisher is the server's
broker, the path every service takes. Latency runs from the moment ``publish`` is called
(after the database commit) to the moment the *last* client has the event; the commit itself
is reported separately. One event at a time, so this measures latency, not throughput.

The baseline, in the same run and the same arrangement (server thread, the same clients): a
bare ``websockets`` server that calls ``websockets.broadcast`` with an already-encoded frame.
That is the floor: the loop hand-off plus N socket writes plus N client reads. The ratio says
what the hub, ASGI and uvicorn add on top.

Prints the figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

from eoffice import identity
from storage.db import Database
from storage.migrate import migrate
from storage.settings import Settings
from web import ws_protocol
from web.app import create_app

NOTICE = "Thông báo: Ủy ban nhân dân huyện Đông Triều họp thường kỳ tháng 3"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Clients:
    """N connected clients; ``wait(seq)`` resolves when all of them have event ``seq``."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.seen: dict[int, int] = {}
        self.last_at: dict[int, float] = {}
        self.waiters: dict[int, asyncio.Future[float]] = {}

    def arm(self, seq: int) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[seq] = fut
        return fut

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            seq = message.get("seq")
            if message.get("type") in ("ping", "subscribed") or not isinstance(seq, int):
                if message.get("type") == "ping":
                    await ws.send('{"op":"pong"}')
                continue
            now = time.perf_counter()
            self.seen[seq] = self.seen.get(seq, 0) + 1
            if self.seen[seq] == len(self.sockets):
                fut = self.waiters.pop(seq, None)
                if fut is not None and not fut.done():
                    fut.set_result(now)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._read(ws)) for ws in self.sockets]

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def run_rounds(clients: Clients, events: int, fire: Callable[[int], Awaitable[float]]) -> list[float]:
    """``fire(seq)`` publishes event ``seq`` and returns when publishing started; returns latencies (ms)."""
    latencies = []
    for seq in range(1, events + 1):
        done = clients.arm(seq)
        started = await fire(seq)
        finished = await asyncio.wait_for(done, 30)
        latencies.append((finished - started) * 1000)
    return latencies


# ----------------------------------------------------------------------------------- application ---


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws_max_queue=1024, backlog=4096, ws=ws_protocol.PROTOCOL))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, port


async def bench_app(n: int, events: int, workdir: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{workdir}/bench.db"
    await asyncio.to_thread(migrate, url)
    settings = Settings(database_url=url, blob_url=f"file://{workdir}/blobs", secret_key="bench-" + "x" * 32,
                        ws_queue_size=1024)
    db = Database(url)
    async with db.uow() as uow:
        user = await identity.create_user(uow, None, username="bench", full_name="Đỗ Văn Bền",
                                          password="mật-khẩu-đo")
        token = await identity.create_token(uow, None, user)
        await uow.commit()
    topic = f"user:{user.id}"

    app = create_app(settings)
    server, thread, port = start_server(app)
    publish_at: list[float] = []
    broker_publish = app.state.broker.publish

    async def stamped(messages: list[dict[str, Any]]) -> None:
        publish_at.append(time.perf_counter())
        await broker_publish(messages)

    db.publisher = stamped
    clients = Clients()
    commit_ms: list[float] = []
    try:
        for _ in range(n):
            ws = await connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {token}"},
                               max_queue=1024)
            await ws.send(json.dumps({"op": "subscribe", "topic": topic}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            clients.sockets.append(ws)
        clients.start()

        async def fire(seq: int) -> float:
            began = time.perf_counter()
            async with db.uow() as uow:
                uow.emit(topic, "notice", message=NOTICE, i=seq)
                await uow.commit()
            commit_ms.append((publish_at[-1] - began) * 1000)
            return publish_at[-1]

        latencies = await run_rounds(clients, events, fire)
    finally:
        await clients.close()
        await db.dispose()
        server.should_exit = True
        await asyncio.to_thread(thread.join, 20)
    return {"latencies": latencies, "commit_ms": commit_ms}


# -------------------------------------------------------------------------------------- baseline ---


class BareBroadcast:
    """The floor every fan-out bench compares against: a bare ``websockets`` server in its own
    thread that hands an already-encoded frame to ``websockets.broadcast``."""

    def __init__(self, clients: int) -> None:
        self.expected = clients
        self.all_in = threading.Event()  # set from the server thread once every client is registered
        self._ready = threading.Event()
        self._connections: set[ServerConnection] = set()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        self._ready.wait(10)

    async def _serve(self) -> None:
        async def handler(ws: ServerConnection) -> None:
            self._connections.add(ws)
            if len(self._connections) == self.expected:
                self.all_in.set()
            try:
                async for _ in ws:
                    pass
            finally:
                self._connections.discard(ws)

        async with serve(handler, "127.0.0.1", 0, max_queue=1024) as srv:
            self.port = next(iter(srv.sockets)).getsockname()[1]
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def send(self, *frames: str) -> None:
        """Broadcast the frames, in order, from the server's own loop (thread-safe)."""

        def blast() -> None:
            for frame in frames:
                broadcast(self._connections, frame)

        self._loop.call_soon_threadsafe(blast)

    async def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, 10)


class AppProcess:
    """The application as a real server process (``uvicorn --factory web.app:create_app``), so that it and
    the bench's clients each have a core instead of sharing one interpreter (and its GIL). ``env``: the
    ``EOFFICE_*`` settings; the output goes to ``log``. ``BENCH_PROFILE=file``: run it under cProfile."""

    def __init__(self, env: dict[str, str], log: Path, deflate: bool = True) -> None:
        self.port = free_port()
        root = Path(__file__).resolve().parents[1]
        self._out = log.open("wb")
        self.profile = os.environ.get("BENCH_PROFILE")
        self.proc = subprocess.Popen(
            [sys.executable, *(["-m", "cProfile", "-o", self.profile] if self.profile else []), "-m", "uvicorn",
             "--factory", "web.app:create_app", "--host", "127.0.0.1", "--port",
             str(self.port), "--log-level", "warning", "--backlog", "4096", "--ws-max-queue", "1024",
             "--ws", ws_protocol.PROTOCOL,  # as `eoffice serve` runs it
             *([] if deflate else ["--ws-per-message-deflate", "false"])],
            cwd=root, env={**os.environ, "PYTHONPATH": str(root), **env}, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("server did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT if self.profile else signal.SIGTERM)  # SIGINT: the profile is written
        try:
            self.proc.wait(120 if self.profile else 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


class BareEcho:
    """The floor for "a client sends, everyone receives" (a command answered by a broadcast): a bare
    ``websockets`` server in its own process that broadcasts every frame a client sends, as is, to every
    connected client (the sender included). Each connection first gets ``{"type":"ready"}`` once the
    server has registered it. Same arrangement as ``AppProcess``: server and clients on separate cores.
    ``deflate``: negotiate permessage-deflate (compression) as ``websockets`` and uvicorn do by default."""

    def __init__(self, deflate: bool = True) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--bare-echo" if deflate else "--bare-echo-plain"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the server exits when its stdin closes
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _bare_echo(deflate: bool = True) -> None:
    connections: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connections.add(ws)
        try:
            await ws.send('{"type":"ready"}')
            async for frame in ws:
                broadcast(connections, frame)
        finally:
            connections.discard(ws)

    async with serve(handler, "127.0.0.1", 0, max_queue=1024, compression="deflate" if deflate else None) as srv:
        print(next(iter(srv.sockets)).getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def bench_baseline(n: int, events: int) -> dict[str, Any]:
    bare = BareBroadcast(n)
    clients = Clients()
    try:
        for _ in range(n):
            clients.sockets.append(await connect(f"ws://127.0.0.1:{bare.port}", max_queue=1024))
        await asyncio.to_thread(bare.all_in.wait, 30)
        clients.start()

        async def fire(seq: int) -> float:
            frame = json.dumps({"topic": "user:1", "seq": seq, "type": "notice", "data": {"message": NOTICE, "i": seq},
                                "at": "2026-03-02T01:00:00+00:00"}, ensure_ascii=False)
            began = time.perf_counter()
            bare.send(frame)
            return began

        latencies = await run_rounds(clients, events, fire)
    finally:
        await clients.close()
        await bare.close()
    return {"latencies": latencies}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    n, m = args.clients, args.events
    warm = max(5, m // 20)

    base = await bench_baseline(n, m + warm)
    with tempfile.TemporaryDirectory() as tmp:
        ours = await bench_app(n, m + warm, Path(tmp))
    b, o = base["latencies"][warm:], ours["latencies"][warm:]  # the first events warm caches up
    commit = ours["commit_ms"][warm:]
    result = {
        "bench": "ws_fanout", "clients": n, "events": m,
        "eoffice_p50_ms": round(statistics.median(o), 3), "eoffice_p99_ms": round(percentile(o, 99), 3),
        "baseline_p50_ms": round(statistics.median(b), 3), "baseline_p99_ms": round(percentile(b, 99), 3),
        "commit_p50_ms": round(statistics.median(commit), 3),
    }
    result["ratio_p50"] = round(result["eoffice_p50_ms"] / result["baseline_p50_ms"], 2)
    result["ratio_p99"] = round(result["eoffice_p99_ms"] / result["baseline_p99_ms"], 2)
    print(f"WebSocket fan-out, {n} clients on one topic, {m} events (after {warm} warm-up), one at a time")
    r = result
    print(f"  bare websockets broadcast : p50 {r['baseline_p50_ms']:8.2f} ms   p99 {r['baseline_p99_ms']:8.2f} ms")
    print(f"  eoffice publish -> client : p50 {r['eoffice_p50_ms']:8.2f} ms   p99 {r['eoffice_p99_ms']:8.2f} ms"
          f"   (x{r['ratio_p50']} / x{r['ratio_p99']})")
    print(f"  database commit before it : p50 {result['commit_p50_ms']:8.2f} ms (SQLite, not in the figures above)")
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] in (["--bare-echo"], ["--bare-echo-plain"]):
        asyncio.run(_bare_echo(deflate=sys.argv[1] == "--bare-echo"))
    else:
        asyncio.run(main())
