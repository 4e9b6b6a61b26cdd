"""Live voting: N delegates on WebSockets cast at once; cast -> acknowledgement and cast -> tally latency.

    .venv/bin/python bench/voting.py [--voters 2000] [--spread 4] [--postgres] [--quick] [--http] [--secret]

The application runs as a real server process (``uvicorn --factory web.app:create_app``) on the
embedded setup (SQLite, in-process broker; ``--postgres`` for a fresh PostgreSQL database), so the
server and this client each have a core of this 2-core machine. Each simulated tablet logs in with a
session cookie (as a browser does), keeps a WebSocket on ``meeting:{id}`` and casts its vote with the
``vote`` command on that socket, as ``voting.js`` does (``--http``: through ``POST /api/polls/{id}/votes``
with its CSRF token instead), at a moment spread evenly over ``--spread`` seconds, so the load is
N / spread votes per second.

Measured per voter:
- ack: from sending the vote to its ``reply`` frame (or the 201); both are sent only after the commit;
- tally: from sending the vote to the moment *its own* WebSocket receives a ``poll.progress`` whose
  count includes it (the ack carries the count after this vote; progress events are coalesced by
  the server, at most one per 100 ms per poll).
Checked: every voter acknowledged once; the closed poll's result has exactly N ballots and the
yes/no/abstain counts equal what was sent; the database holds N has-voted rows, N ballots and N
``poll.vote`` audit entries, and the audit chain verifies.

Baseline, same run, same client, same rate: ``GET /healthz`` (the HTTP round trip through the same
server, a ``SELECT 1`` and no write). The ratio says what a durable, audited vote costs on top.

The server runs as ``eoffice serve`` does, with the hub writing each event's frame straight to
every socket (``web.ws_protocol``); ``BENCH_UVICORN_ARGS="--ws auto"`` measures uvicorn's ASGI send
path instead (the JSON line says which: ``ws``).

Prints the figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from eoffice import audit, identity  # noqa: E402
from eoffice.org import User  # noqa: E402
from meetings import lifecycle, meetings  # noqa: E402
from meetings.schema import Participant, PollBallot, PollVoter  # noqa: E402
from storage import keys  # noqa: E402
from storage.db import Database, utcnow  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.settings import Settings  # noqa: E402
from web.auth import CSRF_COOKIE, SESSION_COOKIE, csrf_for, signer  # noqa: E402

CHOICES = ("yes", "no", "abstain")
PG_ADMIN = os.environ.get("EOFFICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc), its children not included."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------ set-up ---


async def prepare(url: str, n: int, settings: Settings) -> dict[str, Any]:
    """Chair, N delegates with sessions, a started meeting where all are checked in (rows written in bulk)."""
    db = Database(url)
    pw = identity.hash_password("Mật-khẩu-đo-2026")
    try:
        async with db.uow() as uow:
            chair = User(username="chutoa", full_name="Trần Văn Hùng", password_hash=pw, roles=["leader"])
            uow.session.add(chair)
            await uow.session.flush()
            rows = [{"username": f"daibieu{i:04d}", "full_name": f"Đại biểu Nguyễn Văn {i}", "password_hash": pw,
                     "roles": ["specialist"], "title": "", "email": "", "active": True, "created_at": utcnow()}
                    for i in range(n)]
            await uow.session.execute(insert(User), rows)
            users = list((await uow.session.scalars(select(User).where(User.username.like("daibieu%"))
                                                    .order_by(User.username))).all())
            m = await meetings.create_meeting(uow, chair, title="Kỳ họp Hội đồng nhân dân tỉnh Quảng Ninh",
                                              starts_at=utcnow(), chair_id=chair.id, quorum_rule="half")
            now = utcnow()
            await uow.session.execute(insert(Participant), [
                {"meeting_id": m.id, "user_id": u.id, "role": "member", "entitled": True, "voting": True,
                 "response": "accepted", "checked_in_at": now, "check_in_method": "tablet", "guest_name": "",
                 "guest_title": "", "response_note": "", "created_at": now} for u in users])
            await meetings.send_invitations(uow, chair, m.id)
            await uow.commit()
        async with db.uow() as uow:
            await lifecycle.start_meeting(uow, chair, m.id)
            chair_seat = await meetings._seat_for(uow, m.id, chair.id)
            assert chair_seat is not None
            chair_seat.checked_in_at = utcnow()
            sessions = [await identity.start_session(uow, u, 1) for u in [chair, *users]]
            await uow.commit()
    finally:
        await db.dispose()
    sign = signer(settings)
    nonce = secrets.token_urlsafe(16)
    csrfs = [csrf_for(settings, nonce, t) for t in sessions]  # a CSRF token is bound to its session
    cookies = [f"{SESSION_COOKIE}={sign.sign(t).decode()}; {CSRF_COOKIE}={nonce}" for t in sessions]
    return {"meeting_id": m.id, "chair_cookie": cookies[0], "cookies": cookies[1:], "csrf": csrfs[0],
            "csrfs": csrfs[1:]}


# ------------------------------------------------------------------------------------ tiny HTTP client ---


class Http:
    """A pool of keep-alive HTTP/1.1 connections (httpx costs the client more CPU than the server spends)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.size = size
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self.pool.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def close(self) -> None:
        while not self.pool.empty():
            _r, w = self.pool.get_nowait()
            w.close()

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: Any = None) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Content-Length: {len(data)}",
                "Content-Type: application/json", "Accept: application/json"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        reader, writer = await self.pool.get()
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            payload = await reader.readexactly(length) if length else b""
        except Exception:
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            raise
        finally:
            self.pool.put_nowait((reader, writer))
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, payload.decode(errors="replace")


# ------------------------------------------------------------------------------------------- voters ---


class TabletSocket(asyncio.Protocol):
    """A minimal WebSocket client (RFC 6455, no extensions) for one simulated tablet.

    2,000 tablets share one core of this machine in the bench, while every real tablet has its own.
    With a full client library each received frame costs a task switch and a parse (about 50 µs),
    so the client process, not the server, decided when the last tablet saw a tally. This one
    parses frames inside ``data_received`` and stamps them with the time the bytes arrived."""

    def __init__(self, tablet: Tablet, port: int) -> None:
        self.tablet = tablet
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.handshaken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        transport.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                         f"Cookie: {self.tablet.cookie}\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send_text(self, text: str) -> None:
        self._send(0x81, text.encode())

    def _send(self, first_byte: int, data: bytes) -> None:
        """One masked frame (clients must mask)."""
        assert self.transport is not None
        n = len(data)
        head = bytes((first_byte, 0x80 | n)) if n < 126 else bytes((first_byte, 0x80 | 126)) + n.to_bytes(2, "big")
        mask = secrets.token_bytes(4)
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        self.transport.write(head + mask + (int.from_bytes(data, "big") ^ key).to_bytes(n, "big"))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buf + data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status = buf[:buf.find(b"\r\n")]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.handshaken = True
            self.opened.set_result(None)
            buf = buf[end + 4:]
        pos = 0
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, at = b1 & 0x7F, pos + 2
            if n == 126:
                if len(buf) - at < 2:
                    break
                n, at = int.from_bytes(buf[at:at + 2], "big"), at + 2
            elif n == 127:
                if len(buf) - at < 8:
                    break
                n, at = int.from_bytes(buf[at:at + 8], "big"), at + 8
            if len(buf) - at < n:
                break
            payload, pos = buf[at:at + n], at + n
            opcode = b0 & 0x0F
            if b0 & 0x40:
                raise RuntimeError("compressed frame without a negotiated extension")
            if opcode == 0x1:
                self.tablet.on_text(payload, now)
            elif opcode == 0x9:  # a protocol-level ping: answer as every client library does
                self._send(0x8A, payload)
            elif opcode == 0x8 and self.transport is not None:
                self.transport.close()
        self.buf = buf[pos:]


class Tablet:
    def __init__(self, index: int, cookie: str) -> None:
        self.index = index
        self.cookie = cookie
        self.sock: TabletSocket | None = None
        self.progress: list[tuple[int, float]] = []  # (cast count, when seen)
        self.sent = self.acked = 0.0
        self.ack_count = 0
        self.status = 0
        self.final = asyncio.Event()
        self.target = 0
        self.reply: asyncio.Future[dict[str, Any]] | None = None
        self.subscribed: asyncio.Future[dict[str, Any]] | None = None

    def send(self, message: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.send_text(json.dumps(message))

    def on_text(self, raw: bytes, now: float) -> None:
        if raw.startswith(b'{"type":"reply"'):
            if self.reply is not None and not self.reply.done():
                self.reply.set_result(json.loads(raw))
            return
        if b'"poll.' not in raw:
            if b'"type":"ping"' in raw:
                self.send({"op": "pong"})
            elif self.subscribed is not None and not self.subscribed.done() and (
                    raw.startswith(b'{"type":"subscribed"') or raw.startswith(b'{"type":"error"')):
                self.subscribed.set_result(json.loads(raw))
            return
        msg = json.loads(raw)
        data = msg.get("data") or {}
        cast = data.get("cast") if msg.get("type") == "poll.progress" else (data.get("poll") or {}).get("cast")
        if isinstance(cast, int):
            self.progress.append((cast, now))
            if self.target and cast >= self.target:
                self.final.set()

    async def connect(self, port: int, topic: str) -> None:
        loop = asyncio.get_running_loop()
        _transport, self.sock = await loop.create_connection(lambda: TabletSocket(self, port), "127.0.0.1", port)
        await asyncio.wait_for(self.sock.opened, 60)
        self.subscribed = loop.create_future()
        self.send({"op": "subscribe", "topic": topic})
        answer = await asyncio.wait_for(self.subscribed, 60)
        if answer.get("type") != "subscribed":
            raise RuntimeError(answer)

    def close(self) -> None:
        if self.sock is not None and self.sock.transport is not None:
            self.sock.transport.close()


async def connect_all(tablets: list[Tablet], port: int, topic: str, batch: int = 100) -> None:
    for start in range(0, len(tablets), batch):
        await asyncio.gather(*(t.connect(port, topic) for t in tablets[start:start + batch]))


# ---------------------------------------------------------------------------------------------- run ---


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    extra = os.environ.get("BENCH_UVICORN_ARGS", "").split()
    proc = subprocess.Popen(
        [sys.executable, *profile, "-m", "uvicorn", "--factory", "web.app:create_app", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", "warning", "--backlog", "4096", "--ws-ping-interval", "0",
         "--ws", "web.ws_protocol:FrameProtocol", *extra],  # as `eoffice serve` runs it (the hub has its heartbeat)
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def sampler(pid: int) -> subprocess.Popen[bytes] | None:
    """With BENCH_PYSPY=FILE: sample the server with py-spy (if installed) while the votes arrive."""
    out = os.environ.get("BENCH_PYSPY")
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not out or not spy:
        return None
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--threads", "--format", "raw",
                             "--output", out, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


async def timed_requests(http: Http, n: int, spread: float, make: Any) -> list[tuple[float, float, int, Any]]:
    """Fire ``make(i)`` -> (method, path, headers, body) for i < n, evenly over ``spread`` seconds."""
    t0 = time.perf_counter() + 0.05
    out: list[tuple[float, float, int, Any]] = [(0.0, 0.0, 0, None)] * n

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, t0 + i * spread / n - time.perf_counter()))
        method, path, headers, body = make(i)
        sent = time.perf_counter()
        try:
            status, data = await http.request(method, path, headers, body)
        except Exception as exc:  # counted as a failure below
            status, data = 0, str(exc)
        out[i] = (sent, time.perf_counter(), status, data)

    await asyncio.gather(*(one(i) for i in range(n)))
    return out


async def timed_ws_votes(tablets: list[Tablet], spread: float, poll_id: int) -> list[tuple[float, float, int, Any]]:
    """Each tablet sends its ``vote`` command at its moment of ``spread``; (sent, answered, 201 | status, data)."""
    t0 = time.perf_counter() + 0.05
    n = len(tablets)
    out: list[tuple[float, float, int, Any]] = [(0.0, 0.0, 0, None)] * n

    async def one(i: int, t: Tablet) -> None:
        await asyncio.sleep(max(0.0, t0 + i * spread / n - time.perf_counter()))
        t.reply = asyncio.get_running_loop().create_future()
        sent = time.perf_counter()
        try:
            t.send({"op": "vote", "id": f"b{i}", "poll_id": poll_id, "choice": CHOICES[i % 3]})
            reply = await asyncio.wait_for(t.reply, 60)
            status, data = (201, reply["data"]) if reply["ok"] else (reply["status"], reply)
        except Exception as exc:  # counted as a failure below
            status, data = 0, str(exc)
        out[i] = (sent, time.perf_counter(), status, data)

    await asyncio.gather(*(one(i, t) for i, t in enumerate(tablets)))
    return out


async def bench(n: int, spread: float, url: str, workdir: Path, pool: int, http_votes: bool,
                secret: bool = False) -> dict[str, Any]:
    await asyncio.to_thread(migrate, url)
    settings = Settings(database_url=url, blob_url=f"file://{workdir}/blobs", broker_url="memory://",
                        secret_key="bench-voting-" + secrets.token_hex(16))
    keys.register(url, settings.secret_key)  # this process's audit entries are keyed as the server's
    t_setup = time.perf_counter()
    world = await prepare(url, n, settings)
    setup_s = time.perf_counter() - t_setup
    port = free_port()
    env = {**os.environ, "EOFFICE_DATABASE_URL": url, "EOFFICE_BROKER_URL": "memory://",
           "EOFFICE_BLOB_URL": f"file://{workdir}/blobs", "EOFFICE_VAR_DIR": str(workdir / "var"),
           "EOFFICE_SECRET_KEY": settings.secret_key, "PYTHONPATH": str(ROOT)}
    server = start_server(env, port, workdir / "server.log")
    http = Http(port, pool)
    tablets = [Tablet(i, c) for i, c in enumerate(world["cookies"])]
    try:
        await http.open()
        topic = f"meeting:{world['meeting_id']}"
        await http.request("GET", "/healthz", {}, None)  # the server has started and served
        rss_idle = rss_bytes(server.pid)
        t_conn = time.perf_counter()
        await connect_all(tablets, port, topic)
        connect_s = time.perf_counter() - t_conn
        rss_connected = rss_bytes(server.pid)  # every tablet logged in, connected and subscribed
        chair = {"Cookie": world["chair_cookie"], "X-CSRF-Token": world["csrf"]}
        status, poll = await http.request("POST", "/api/polls", chair, {
            "meeting_id": world["meeting_id"], "title": "Thông qua Nghị quyết về kế hoạch phát triển kinh tế - xã hội",
            "method": "yes_no_abstain", "majority": "absolute", "base": "present", "secret": secret})
        assert status == 201, poll
        pid = poll["id"]
        status, opened = await http.request("POST", f"/api/polls/{pid}/open", chair, {})
        assert status == 200, opened
        assert opened["eligible"] == n + 1, opened  # the delegates and the chair (who does not vote here)

        def cast(i: int) -> tuple[str, str, dict[str, str], dict[str, Any]]:
            return ("POST", f"/api/polls/{pid}/votes", {"Cookie": tablets[i].cookie, "X-CSRF-Token": world["csrfs"][i]},
                    {"choice": CHOICES[i % 3]})

        spy = sampler(server.pid)
        t_cast = time.perf_counter()
        cpu0, mine0 = cpu_seconds(server.pid), time.process_time()
        results = await (timed_requests(http, n, spread, cast) if http_votes else timed_ws_votes(tablets, spread, pid))
        cast_s = time.perf_counter() - t_cast
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        server_cpu, client_cpu = cpu_seconds(server.pid) - cpu0, time.process_time() - mine0
        rss_voted = rss_bytes(server.pid)
        for t, (sent, acked, st, data) in zip(tablets, results, strict=True):
            t.sent, t.acked, t.status = sent, acked, st
            t.ack_count = data.get("cast", 0) if isinstance(data, dict) else 0
        ok = [t for t in tablets if t.status == 201]
        failures = [(t.index, t.status, r[3]) for t, r in zip(tablets, results, strict=True) if t.status != 201]
        for t in tablets:
            t.target = len(ok)
            if any(c >= len(ok) for c, _ in t.progress):
                t.final.set()
        await asyncio.wait_for(asyncio.gather(*(t.final.wait() for t in tablets)), 30)
        everyone_s = time.perf_counter() - t_cast

        ack_ms = [(t.acked - t.sent) * 1000 for t in ok]
        tally_ms = []
        for t in ok:
            seen = [when for count, when in t.progress if count >= t.ack_count]
            tally_ms.append((min(seen) - t.sent) * 1000)
        progress_events = max(len(t.progress) for t in tablets)
        spreads = []  # per progress event seen by every tablet: first to last arrival (the fan-out)
        arrivals: dict[int, list[float]] = {}
        for t in tablets:
            for count, when in t.progress:
                arrivals.setdefault(count, []).append(when)
        spreads = [(max(w) - min(w)) * 1000 for w in arrivals.values() if len(w) == len(tablets)]

        status, closed = await http.request("POST", f"/api/polls/{pid}/close", chair, {})
        assert status == 200, closed
        result = closed["result"]
        sent_counts = {c: sum(1 for t in ok if CHOICES[t.index % 3] == c) for c in CHOICES}
        db = Database(url)
        async with db.uow() as uow:
            voted = await uow.session.scalar(select(func.count()).select_from(PollVoter).where(
                PollVoter.poll_id == pid, PollVoter.voted_at.is_not(None)))
            ballots = await uow.session.scalar(select(func.count()).select_from(PollBallot).where(
                PollBallot.poll_id == pid))
            audited = await uow.session.scalar(select(func.count()).select_from(audit.AuditEntry).where(
                audit.AuditEntry.action == "poll.vote", audit.AuditEntry.object_id == str(pid)))
            chain = await audit.verify(uow.session)
        await db.dispose()
        counted_once = (len(ok) == n and result["ballots"] == n and closed["cast"] == n and voted == n
                        and ballots == n and result["counts"] == sent_counts and audited == n)

        cpu0 = cpu_seconds(server.pid)
        base = await timed_requests(http, n, spread, lambda i: ("GET", "/healthz", {}, None))
        healthz_cpu = cpu_seconds(server.pid) - cpu0
        base_ms = [(b - a) * 1000 for a, b, st, _ in base if st == 200]
    finally:
        for t in tablets:
            t.close()
        await http.close()
        # uvicorn re-raises the signal after its graceful shutdown; SIGINT lets a profiler write its file
        server.send_signal(signal.SIGINT if os.environ.get("BENCH_PROFILE") else signal.SIGTERM)
        try:
            server.wait(120 if os.environ.get("BENCH_PROFILE") else 20)
        except subprocess.TimeoutExpired:
            server.kill()
    return {
        "voters": n, "via": "http" if http_votes else "websocket", "spread_s": spread, "secret": secret,
        "ws": "asgi" if "auto" in os.environ.get("BENCH_UVICORN_ARGS", "") else "frames",
        "setup_s": round(setup_s, 2), "connect_s": round(connect_s, 2),
        "cast_s": round(cast_s, 3), "all_tallied_s": round(everyone_s, 3), "votes_per_s": round(n / cast_s, 1),
        "ack_p50_ms": round(percentile(ack_ms, 50), 1), "ack_p99_ms": round(percentile(ack_ms, 99), 1),
        "tally_p50_ms": round(percentile(tally_ms, 50), 1), "tally_p99_ms": round(percentile(tally_ms, 99), 1),
        "tally_max_ms": round(max(tally_ms), 1) if tally_ms else None,
        "progress_events_per_client": progress_events,
        "fanout_spread_p50_ms": round(percentile(spreads, 50), 1), "fanout_spread_max_ms": round(max(spreads), 1)
        if spreads else None, "failures": len(failures), "failure_sample": failures[:3],
        "counted_once": counted_once, "audited_votes": audited, "audit_chain_ok": chain.ok,
        "result_counts": result["counts"], "sent_counts": sent_counts,
        "healthz_p50_ms": round(percentile(base_ms, 50), 1), "healthz_p99_ms": round(percentile(base_ms, 99), 1),
        "ack_vs_healthz_p50": round(percentile(ack_ms, 50) / max(percentile(base_ms, 50), 1e-6), 2),
        "server_cpu_ms_per_vote": round(server_cpu * 1000 / n, 2), "client_cpu_ms_per_vote": round(
            client_cpu * 1000 / n, 2), "server_cpu_ms_per_healthz": round(healthz_cpu * 1000 / n, 2),
        "server_rss_mb_idle": round(rss_idle / 2**20, 1), "server_rss_mb_connected": round(rss_connected / 2**20, 1),
        "server_rss_mb_after_votes": round(rss_voted / 2**20, 1),
        "rss_kib_per_tablet": round((rss_connected - rss_idle) / 1024 / n, 1),
        "load_average": os.getloadavg()[0],
    }


async def pg_database() -> tuple[str, str]:
    import asyncpg

    name = f"eoffice_bench_{os.getpid()}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}", name


async def drop_pg(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voters", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=None, help="seconds over which the votes arrive")
    parser.add_argument("--quick", action="store_true", help="500 voters")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database instead of SQLite")
    parser.add_argument("--pool", type=int, default=64, help="HTTP keep-alive connections of the client")
    parser.add_argument("--secret", action="store_true", help="a secret ballot (sealed while open, shuffled at close)")
    parser.add_argument("--http", action="store_true",
                        help="vote with POST /api/polls/{id}/votes, not over the WebSocket")
    args = parser.parse_args()
    n = 500 if args.quick else args.voters
    spread = args.spread if args.spread is not None else max(1.0, n / 500)
    workdir = Path(tempfile.mkdtemp(prefix="bench-voting-"))
    pg_name = None
    try:
        if args.postgres:
            url, pg_name = asyncio.run(pg_database())
        else:
            url = f"sqlite+aiosqlite:///{workdir}/bench.db"
        out = asyncio.run(bench(n, spread, url, workdir, args.pool, args.http, args.secret))
    finally:
        if pg_name:
            asyncio.run(drop_pg(pg_name))
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
    out = {"bench": "voting", "database": "postgresql" if args.postgres else "sqlite",
           "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **out}
    print(f"{n} voters over {out['spread_s']} s on {out['database']}, votes over {out['via']}: "
          f"all acknowledged in {out['cast_s']} s "
          f"({out['votes_per_s']} votes/s), every tablet had the final count after {out['all_tallied_s']} s")
    print(f"cast -> ack    p50 {out['ack_p50_ms']} ms  p99 {out['ack_p99_ms']} ms "
          f"(healthz p50 {out['healthz_p50_ms']} ms, ratio {out['ack_vs_healthz_p50']})")
    print(f"cast -> tally  p50 {out['tally_p50_ms']} ms  p99 {out['tally_p99_ms']} ms  (target p99 < 200 ms)")
    print(f"server CPU {out['server_cpu_ms_per_vote']} ms per vote "
          f"({out['server_cpu_ms_per_healthz']} ms per healthz), client CPU {out['client_cpu_ms_per_vote']} ms "
          f"per vote; load average {out['load_average']:.1f}")
    print(f"server memory (RSS) {out['server_rss_mb_idle']} MB idle, {out['server_rss_mb_connected']} MB with every "
          f"tablet subscribed ({out['rss_kib_per_tablet']} KiB per tablet), {out['server_rss_mb_after_votes']} MB "
          "after the votes")
    print(f"counted exactly once: {out['counted_once']}  audit chain ok: {out['audit_chain_ok']}  "
          f"result {out['result_counts']}  sent {out['sent_counts']}")
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
