"""Graceful drain (issue 17, ``web.drain``) on a real ``eoffice serve`` process: after SIGTERM /readyz answers
503 while requests are still taken, then new connections are refused, the live WebSocket is closed with 1012 (the
pages reconnect), a vote request already in flight completes and is answered, and once the process has exited
that acknowledged vote is in the database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets
from sqlalchemy import select

from eoffice import identity
from eoffice.org import User
from meetings.demo import MEMBERS
from storage import keys
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import migrate
from tests.conftest import free_port
from tests.ops_world import ballots_cast, populate
from web.drain import RESTART_CODE, Drain

ROOT = Path(__file__).resolve().parents[2]
SECRET = "khóa-bí-mật-thử-nghiệm-dừng-máy-chủ"


def test_drain_state_counts_from_the_first_signal() -> None:
    drain = Drain()
    assert not drain.draining and drain.elapsed() == 0.0
    drain.start()
    first = drain.started_at
    drain.start()  # a second signal does not restart the clock
    assert drain.draining and drain.started_at == first and drain.elapsed() >= 0.0


def _serve(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``eoffice serve ARGS``, its output in ``log`` (a pipe nobody reads would fill and block it)."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "web.cli", "serve", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


async def _until(what: str, check: object, within: float = 60.0) -> object:
    deadline = time.monotonic() + within
    while True:
        result = await check()  # type: ignore[operator]
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_sigterm_drains_readyz_503_in_flight_vote_answered_and_kept(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/var/eoffice.db"
    await asyncio.to_thread(migrate, url)
    keys.register(url, SECRET)
    db = Database(url)
    blobs = open_blob_store(f"file://{tmp_path}/blobs")
    try:
        facts = await populate(db, blobs)
        async with db.uow() as uow:
            voter = (await uow.session.scalars(select(User).where(User.username == MEMBERS[1]))).one()
            token = await identity.create_token(uow, None, voter, "máy tính bảng")
            await uow.commit()
    finally:
        await db.dispose()
        await blobs.close()

    port = free_port()
    env = {**os.environ, "EOFFICE_DATABASE_URL": url, "EOFFICE_VAR_DIR": str(tmp_path / "var"),
           "EOFFICE_BLOB_URL": f"file://{tmp_path}/blobs", "EOFFICE_SECRET_KEY": SECRET,
           "EOFFICE_BROKER_URL": "memory://", "EOFFICE_DIGEST_HOUR": "off", "PYTHONPATH": str(ROOT)}
    log = tmp_path / "serve.log"
    server = _serve(env, log, "--port", str(port), "--drain-delay", "3", "--drain-grace", "30")
    base = f"http://127.0.0.1:{port}"
    try:
        async def up() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    return (await client.get(f"{base}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await _until("the server to start", up, 90)

        live = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}")
        # a vote in flight: headers sent, the handler waiting for the body (100 Continue says it is reading it)
        body = json.dumps({"choice": "abstain"}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"POST /api/polls/{facts['poll_id']}/votes HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n").encode())
        await writer.drain()
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).startswith(b"HTTP/1.1 100")

        server.send_signal(signal.SIGTERM)

        async def draining() -> bool:
            async with httpx.AsyncClient(timeout=5) as client:  # a new connection: still accepted for now
                answer = await client.get(f"{base}/readyz")
            if answer.status_code == 503:
                assert answer.json()["status"] == "draining" and answer.headers["retry-after"]
                return True
            return False

        await _until("/readyz to answer 503", draining, 30)

        async def refused() -> bool:
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
            except ConnectionRefusedError:
                return True
            w.close()
            return False

        await _until("new connections to be refused", refused, 30)

        async def closed_code() -> int:
            try:
                while True:
                    await live.recv()
            except websockets.ConnectionClosed as exc:
                assert exc.rcvd is not None
                return exc.rcvd.code

        assert await asyncio.wait_for(closed_code(), 30) == RESTART_CODE  # live.js reconnects on it

        writer.write(body)  # the in-flight request goes on after the listener closed
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 201"), head
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        answer = json.loads(await asyncio.wait_for(reader.readexactly(length), 30))
        assert answer["ok"] is True and "Đã ghi nhận" in answer["message"]
        writer.close()

        code = await asyncio.to_thread(server.wait, 60)
        output = log.read_text()
        assert code == 0, output
        assert "Traceback" not in output
    finally:
        if server.poll() is None:
            server.kill()
            await asyncio.to_thread(server.wait, 30)

    assert await ballots_cast(url, facts["poll_id"]) == 3  # the two cast before, and the acknowledged one


async def test_readyz_is_503_while_draining(tmp_path: Path) -> None:
    """In process: the draining flag alone turns /readyz to 503, with the reason; answers end keep-alive."""
    from starlette.testclient import TestClient

    from storage.settings import Settings
    from web.app import create_app
    from web.drain import DRAIN

    url = f"sqlite+aiosqlite:///{tmp_path}/eoffice.db"
    await asyncio.to_thread(migrate, url)
    app = create_app(Settings(database_url=url, blob_url=f"file://{tmp_path}/blobs", secret_key=SECRET))

    def run() -> tuple[int, int, dict[str, object], str, str]:
        with TestClient(app) as client:
            before = client.get("/readyz")
            DRAIN.start()
            try:
                during = client.get("/readyz")
                page = client.get("/livez")  # still served, and the keep-alive connection is ended
            finally:
                DRAIN.started_at = None
            assert page.status_code == 200
            return (before.status_code, during.status_code, during.json(), before.headers.get("connection", ""),
                    page.headers.get("connection", ""))

    before, during, data, kept, closed = await asyncio.to_thread(run)
    assert before == 200 and during == 503 and data["status"] == "draining" and "đang dừng" in str(data["message"])
    assert kept != "close" and closed == "close"
