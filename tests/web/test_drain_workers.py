"""Graceful drain with ``eoffice serve --workers 2`` (issue 17, ``web.drain.serve_workers``): SIGTERM to uvicorn's
supervisor makes every worker drain as a single server does. Tablets are connected until both workers hold some
(told apart by which worker owns the server side of each socket, from /proc); requests are left in flight on both
(headers sent, body not yet: a vote and uploads). After SIGTERM: /readyz answers 503 ``draining`` while requests
are still taken, every tablet is closed with 1012 (reconnect), every request in flight is answered, the vote is in
the database, and the supervisor exits with status 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import websockets
from sqlalchemy import select

from eoffice import identity
from eoffice.org import User
from meetings.demo import CHAIR, MEMBERS
from storage import keys
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import migrate
from tests.conftest import REDIS_URL, free_port, require, scratch_pg_database, tcp_open
from tests.ops_world import ballots_cast, populate
from tests.web.test_drain import _serve, _until
from web.drain import RESTART_CODE

ROOT = Path(__file__).resolve().parents[2]
SECRET = "khóa-bí-mật-thử-nghiệm-dừng-nhiều-tiến-trình"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n" \
      b"trailer<</Root 1 0 R>>\n%%EOF\n"


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _workers(supervisor: int) -> set[int]:
    """uvicorn's worker processes (the supervisor's children but multiprocessing's resource tracker)."""
    return {w for w in _children(supervisor)
            if "multiprocessing.resource_tracker" not in Path(f"/proc/{w}/cmdline").read_text()}


def _startup(log: Path) -> str:
    """The server's log without its access lines."""
    return "\n".join(line for line in log.read_text().splitlines()
                     if not any(word in line for word in ('"GET ', '"POST ', "WebSocket", "connection ")))[-6000:]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _owner(workers: set[int], server_port: int, client_port: int) -> int | None:
    """The worker holding the server side of the loopback connection from ``client_port``."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                inode = int(fields[9])
    if inode is None:
        return None
    return next((w for w in workers if inode in _socket_inodes(w)), None)


async def _in_flight(port: int, path: str, token: str, content_type: str, body: bytes,
                     extra: str = "") -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """A request whose handler is reading its body (100 Continue received), the body held back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                  f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
                  "Expect: 100-continue\r\n\r\n").encode())
    await writer.drain()
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).startswith(b"HTTP/1.1 100")
    return reader, writer, writer.get_extra_info("sockname")[1]


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, object]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    status = int(head.split(b" ", 2)[1])
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    return status, json.loads(await asyncio.wait_for(reader.readexactly(length), 30))


async def test_sigterm_to_the_supervisor_drains_every_worker(tmp_path: Path) -> None:
    require("Redis", tcp_open("127.0.0.1", 6379), "127.0.0.1:6379")
    broker = f"{REDIS_URL.rsplit('/', 1)[0]}/6?channel=test:workers:{uuid.uuid4().hex}"
    blob_url = f"file://{tmp_path}/blobs"
    async with scratch_pg_database("eoffice_workers") as url:
        await asyncio.to_thread(migrate, url)
        keys.register(url, SECRET)
        db, blobs = Database(url), open_blob_store(blob_url)
        try:
            facts = await populate(db, blobs)
            async with db.uow() as uow:
                users = {u.username: u for u in (await uow.session.scalars(select(User))).all()}
                voter = await identity.create_token(uow, None, users[MEMBERS[1]], "máy tính bảng")
                chair = await identity.create_token(uow, None, users[CHAIR], "máy tính bảng chủ tọa")
                await uow.commit()
        finally:
            await db.dispose()
            await blobs.close()

        port = free_port()
        env = {**os.environ, "EOFFICE_DATABASE_URL": url, "EOFFICE_VAR_DIR": str(tmp_path / "var"),
               "EOFFICE_BLOB_URL": blob_url, "EOFFICE_SECRET_KEY": SECRET, "EOFFICE_BROKER_URL": broker,
               "EOFFICE_DIGEST_HOUR": "off", "EOFFICE_PRERENDER_PAGES": "0", "PYTHONPATH": str(ROOT)}
        log = tmp_path / "serve.log"
        server = _serve(env, log, "--port", str(port), "--workers", "2", "--drain-delay", "3", "--drain-grace", "60")
        base = f"http://127.0.0.1:{port}"
        tablets: list[websockets.ClientConnection] = []
        try:
            async def up() -> bool:
                assert server.poll() is None, log.read_text()
                try:
                    async with httpx.AsyncClient(timeout=5) as client:
                        return (await client.get(f"{base}/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await _until("the server to start", up, 120)

            async def two_workers() -> set[int]:
                workers = _workers(server.pid)
                return workers if len(workers) == 2 else set()

            workers = await _until("two workers", two_workers, 60)
            assert isinstance(workers, set)

            # tablets until both workers hold some (the kernel hands each connection to one of them)
            # (a worker still starting under load takes none: keep trying, a little slower, for a while)
            holders: dict[int, int] = {}
            deadline = time.monotonic() + 180
            while len(set(holders.values())) < 2:
                assert time.monotonic() < deadline, f"every connection went to one worker: {holders}\n{_startup(log)}"
                if len(tablets) >= 8:
                    await asyncio.sleep(0.5)
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={chair}", open_timeout=30)
                tablets.append(ws)
                client_port = ws.transport.get_extra_info("sockname")[1]

                async def owner(client_port: int = client_port) -> int | None:
                    return _owner(workers, port, client_port)

                holders[client_port] = int(await _until("the socket's worker", owner, 30))  # type: ignore[call-overload]

            # requests in flight: a vote and uploads, until both workers have one
            vote = json.dumps({"choice": "abstain"}).encode()
            flights = [await _in_flight(port, f"/api/polls/{facts['poll_id']}/votes", voter, "application/json",
                                        vote)]
            uploads: list[int] = []
            while {_owner(workers, port, f[2]) for f in flights} != workers:
                assert len(flights) < 40, "every request went to one worker"
                flights.append(await _in_flight(port, "/api/files", chair, "application/pdf", PDF,
                                                f"X-Filename: bien-ban-{len(flights)}.pdf\r\n"))
                uploads.append(len(flights) - 1)

            server.send_signal(signal.SIGTERM)

            async def draining() -> bool:
                async with httpx.AsyncClient(timeout=5) as client:  # a new connection: still accepted for now
                    answer = await client.get(f"{base}/readyz")
                if answer.status_code == 503:
                    assert answer.json()["status"] == "draining" and answer.headers["retry-after"]
                    return True
                return False

            await _until("/readyz to answer 503 (a worker draining)", draining, 30)

            async def closed_code(ws: websockets.ClientConnection) -> int:
                try:
                    while True:
                        await ws.recv()
                except websockets.ConnectionClosed as exc:
                    assert exc.rcvd is not None
                    return exc.rcvd.code

            codes = await asyncio.wait_for(asyncio.gather(*(closed_code(ws) for ws in tablets)), 90)
            assert codes == [RESTART_CODE] * len(tablets), codes  # live.js reconnects on 1012, on every tablet

            for i, (_reader, writer, _) in enumerate(flights):  # the requests in flight go on and are answered
                writer.write(vote if i == 0 else PDF)
                await writer.drain()
            answers = [await _answer(reader) for reader, _, _ in flights]
            for _, writer, _ in flights:
                writer.close()
            assert answers[0][0] == 201 and answers[0][1]["ok"] is True, answers[0]
            assert [a[0] for a in answers[1:]] == [201] * len(uploads), answers

            code = await asyncio.to_thread(server.wait, 120)
            output = log.read_text()
            assert code == 0, output
            assert "Traceback" not in output, output
            assert not any(_running(w) for w in workers)
            spread = sorted(list(holders.values()).count(w) for w in workers)
            print(f"\n{len(tablets)} tablets over 2 workers {spread}, {len(flights)} requests in flight: every tablet "
                  "closed with 1012, every request answered")
        finally:
            for ws in tablets:
                await ws.close()
            if server.poll() is None:
                server.kill()
                await asyncio.to_thread(server.wait, 30)

        assert await ballots_cast(url, facts["poll_id"]) == 3  # the two cast before, and the acknowledged one
