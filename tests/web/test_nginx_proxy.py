"""The reverse-proxy recipe (``docker/nginx/eoffice.conf``) run by a real nginx over TLS in front of two
``eoffice serve`` processes sharing PostgreSQL, Redis and S3 (SeaweedFS), with a meeting going on (issue 17).

Eight tablets follow the room over WebSockets through nginx, spread over both processes. The chair moves the agenda
before, during and after one process is killed with SIGKILL: every tablet of the dead process reconnects through
nginx to the other one and resumes by ``seq``, so each tablet sees every event of the room, in order, with no gap.
Then the dead process is started again and the other one is stopped with SIGTERM: requests through nginx keep being
answered during its drain, its tablets move over the same way, and it exits with status 0.

Also: a 32 MiB upload streams through nginx into S3; a file over ``EOFFICE_UPLOAD_LIMIT`` gets the server's
Vietnamese 413, and one over nginx's ``client_max_body_size`` gets the same message from nginx; the client's
address reaches the server only through nginx (X-Forwarded-For from anyone else is ignored); the request id passes
through both ways and is in nginx's access log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from eoffice import identity
from eoffice.audit import AuditEntry
from eoffice.org import User
from meetings.demo import CHAIR, MEMBERS, ORGANISER, SECRETARY, SITE_OPERATOR
from storage import keys
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import migrate
from storage.settings import DEFAULT_UPLOAD_LIMIT
from tests.conftest import REDIS_URL, free_port, require, scratch_pg_database, tcp_open
from tests.ops_world import populate
from tests.s3server import bucket_url, s3_client
from tests.web.nginx_world import RECIPE, Nginx, Server, client_tls, running_nginx, server_env
from web.uploads import limit_message

SECRET = "khóa-bí-mật-thử-nghiệm-nginx-Quảng-Ninh"
TABLET_USERS = [CHAIR, SECRETARY, ORGANISER, SITE_OPERATOR, *MEMBERS, MEMBERS[0], SECRETARY]  # 8 tablets
MiB = 1024 * 1024


@dataclass
class Tablet:
    name: str
    token: str
    last: int = 0  # the last seq of the room seen
    currents: list[int | None] = field(default_factory=list)  # item ids of the agenda.current events, in order
    connects: int = 0
    closes: list[int | None] = field(default_factory=list)  # close codes seen (None: the connection just died)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)


async def follow(tablet: Tablet, nginx: Nginx, topic: str, stop: asyncio.Event) -> None:
    """What the room page does (live.js): connect, subscribe from the last seq seen, and on any loss reconnect
    with a short back-off. A gap in ``seq`` fails the test at once."""
    while not stop.is_set():
        try:
            async with connect(
                nginx.ws,
                additional_headers={"Authorization": f"Bearer {tablet.token}"},
                ssl=client_tls(),
                open_timeout=10,
            ) as ws:
                tablet.connects += 1
                await ws.send(json.dumps({"op": "subscribe", "topic": topic, "since": tablet.last}))
                while not stop.is_set():
                    try:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except TimeoutError:
                        continue
                    if message.get("type") == "subscribed":
                        tablet.subscribed.set()
                        continue
                    if message.get("topic") != topic or "seq" not in message:
                        continue
                    assert message["type"] not in ("snapshot", "error"), message
                    assert message["seq"] == tablet.last + 1, f"{tablet.name}: gap after {tablet.last}: {message}"
                    tablet.last = message["seq"]
                    if message["type"] == "agenda.current":
                        tablet.currents.append(message["data"]["item_id"])
        except ConnectionClosed as exc:
            tablet.closes.append(exc.rcvd.code if exc.rcvd is not None else None)
        except (OSError, InvalidHandshake, TimeoutError):
            tablet.closes.append(None)
        tablet.subscribed.clear()
        await asyncio.sleep(0.1)


async def until(what: str, check: Any, within: float = 60.0, watch: list[asyncio.Task[None]] | None = None) -> float:
    """Wait for ``check()`` (sync) to be true; the seconds it took. A task of ``watch`` that failed (a tablet saw a
    gap) is raised at once."""
    started = time.monotonic()
    while not check():
        for task in watch or []:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        assert time.monotonic() - started < within, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def ws_count(port: int) -> int:
    """Live WebSocket connections of one process, from its /metrics (loopback may read it)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    found = re.search(r"^eoffice_websocket_connections(?:\{[^}]*\})? (\S+)$", text, flags=re.MULTILINE)
    assert found, text[:2000]
    return int(float(found.group(1)))


async def failed_login_ip(db: Database, client: httpx.AsyncClient, username: str) -> str:
    """Fail a login through ``client`` and return the address the server wrote in the audit log for it."""
    page = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text[:500]
    answer = await client.post(
        "/login", data={"username": username, "password": "sai-mật-khẩu", "csrf_token": csrf.group(1)}
    )
    assert answer.status_code in (200, 400, 401, 429), answer.status_code
    async with db.uow(readonly=True) as uow:
        entry = (
            await uow.session.scalars(
                select(AuditEntry).where(AuditEntry.action == "login.failed").order_by(AuditEntry.seq.desc()).limit(1)
            )
        ).one()
    return entry.ip


@contextlib.asynccontextmanager
async def world(tmp_path: Path, s3_url: str) -> AsyncIterator[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """PostgreSQL database, S3 bucket and the live demo meeting; yields (database url, blob url, facts, tokens)."""
    async with scratch_pg_database("eoffice_nginx") as url:
        await asyncio.to_thread(migrate, url)
        keys.register(url, SECRET)
        bucket = f"nginx-{uuid.uuid4().hex[:10]}"
        blob_url = bucket_url(s3_url, bucket)
        await asyncio.to_thread(s3_client(blob_url).make_bucket, bucket)
        db = Database(url)
        blobs = open_blob_store(blob_url)
        try:
            facts = await populate(db, blobs)
            tokens: dict[str, str] = {}
            async with db.uow() as uow:
                for i, name in enumerate(TABLET_USERS):
                    user = (await uow.session.scalars(select(User).where(User.username == name))).one()
                    tokens[f"{name}#{i}"] = await identity.create_token(uow, None, user, f"máy tính bảng {i}")
                chair = (await uow.session.scalars(select(User).where(User.username == CHAIR))).one()
                tokens["chair"] = await identity.create_token(uow, None, chair, "chủ tọa")
                await uow.commit()
        finally:
            await db.dispose()
            await blobs.close()
        yield url, blob_url, facts, tokens


async def test_nginx_fails_over_a_killed_server_and_drains_one_mid_meeting(tmp_path: Path, s3_url: str) -> None:
    require("Redis", tcp_open("127.0.0.1", 6379), "127.0.0.1:6379")
    broker = f"{REDIS_URL.rsplit('/', 1)[0]}/6?channel=test:nginx:{uuid.uuid4().hex}"
    async with world(tmp_path, s3_url) as (url, blob_url, facts, tokens):
        env = server_env(url, blob_url, broker, SECRET, tmp_path / "var")
        drain = ["--drain-delay", "1", "--drain-grace", "15"]
        a, b = (Server(free_port(), env, tmp_path / f"server-{n}.log", drain) for n in "ab")
        a.start()
        b.start()
        db = Database(url)
        try:
            await asyncio.gather(asyncio.to_thread(a.wait_ready), asyncio.to_thread(b.wait_ready))
            with running_nginx(tmp_path / "nginx", [a.port, b.port]) as nginx:
                await _uploads(nginx, tokens["chair"])
                await _forwarded_headers(nginx, a, db)
                await _meeting(nginx, a, b, facts["meeting_id"], tokens)
        finally:
            a.stop()
            b.stop()
            await db.dispose()


async def _uploads(nginx: Nginx, token: str) -> None:
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/pdf",
        "X-Filename": "B%C3%A1o%20c%C3%A1o%20t%E1%BB%95ng%20h%E1%BB%A3p.pdf",
    }
    size = 32 * MiB
    block = os.urandom(MiB)

    async def body(total: int) -> AsyncIterator[bytes]:
        sent = 0
        while sent < total:
            chunk = block[: min(MiB, total - sent)]
            sent += len(chunk)
            yield chunk

    async with httpx.AsyncClient(base_url=nginx.base, verify=False, timeout=120) as client:
        started = time.monotonic()
        r = await client.post("/api/files", headers={**headers, "Content-Length": str(size)}, content=body(size))
        took = time.monotonic() - started
        assert r.status_code == 201, r.text
        assert r.json()["size"] == size
        print(f"32 MiB upload through nginx into S3: {took:.2f} s ({size / MiB / took:.0f} MiB/s)")

        # just over the server's limit: nginx lets it through (client_max_body_size is 1 MiB more) and the
        # server refuses it by its declared length, in Vietnamese
        over = DEFAULT_UPLOAD_LIMIT + 1
        r = await client.post("/api/files", headers={**headers, "Content-Length": str(over)}, content=body(over))
        assert r.status_code == 413, r.text
        assert r.json() == {
            "error": "too_large",
            "message": limit_message(DEFAULT_UPLOAD_LIMIT),
            "limit": DEFAULT_UPLOAD_LIMIT,
        }

    # far over: refused by nginx from the headers alone (a careful client asks before sending the body), and
    # the answer is the server's own message, not nginx's HTML page
    conf = RECIPE.read_text()
    declared = re.search(r"^\s*client_max_body_size (\d+)m;", conf, flags=re.MULTILINE)
    assert declared and DEFAULT_UPLOAD_LIMIT <= int(declared.group(1)) * MiB <= DEFAULT_UPLOAD_LIMIT + 2 * MiB
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", nginx.port, ssl=client_tls(), server_hostname="127.0.0.1"
    )
    writer.write(
        (
            f"POST /api/files HTTP/1.1\r\nHost: 127.0.0.1:{nginx.port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/pdf\r\nX-Filename: qua-lon.pdf\r\nContent-Length: {200 * MiB}\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 413"), head
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
    answer = json.loads(await asyncio.wait_for(reader.readexactly(length), 10))
    writer.close()
    assert b"application/json" in head
    assert answer == {
        "error": "too_large",
        "message": limit_message(DEFAULT_UPLOAD_LIMIT),
        "limit": DEFAULT_UPLOAD_LIMIT,
    }


async def _forwarded_headers(nginx: Nginx, a: Server, db: Database) -> None:
    # through nginx: the server sees the client's own address (127.0.0.7), whatever X-Forwarded-For it sends
    through = httpx.AsyncHTTPTransport(local_address="127.0.0.7", verify=False)
    async with httpx.AsyncClient(
        transport=through, base_url=nginx.base, timeout=30, headers={"X-Forwarded-For": "203.0.113.9"}
    ) as client:
        assert await failed_login_ip(db, client, MEMBERS[0]) == "127.0.0.7"
        # the request id: nginx's own when none is sent, the client's when it sends one; both in its log
        r = await client.get("/livez")
        made = r.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made), made
        r = await client.get("/livez", headers={"X-Request-ID": "phong-hop-so-1.tablet-07"})
        assert r.headers["x-request-id"] == "phong-hop-so-1.tablet-07"
        # /metrics is not published through the proxy
        assert (await client.get("/metrics")).status_code == 404
    log = nginx.access_log()
    assert f"rid={made}" in log and "rid=phong-hop-so-1.tablet-07" in log
    # straight to a process from an address that is not the proxy: X-Forwarded-For is not believed
    direct = httpx.AsyncHTTPTransport(local_address="127.0.0.5")
    async with httpx.AsyncClient(
        transport=direct, base_url=f"http://127.0.0.1:{a.port}", timeout=30, headers={"X-Forwarded-For": "203.0.113.9"}
    ) as client:
        assert await failed_login_ip(db, client, MEMBERS[0]) == "127.0.0.5"


async def _meeting(nginx: Nginx, a: Server, b: Server, meeting_id: int, tokens: dict[str, str]) -> None:
    topic = f"meeting:{meeting_id}"
    chair = {"Authorization": f"Bearer {tokens['chair']}"}
    tablets = [Tablet(name, token) for name, token in tokens.items() if name != "chair"]
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=nginx.base, verify=False, timeout=30, headers=chair) as http:
        meeting = (await http.get(f"/api/meetings/{meeting_id}")).json()
        items = [i["id"] for i in meeting["agenda"] if not i.get("confidential")]
        assert len(items) >= 2, meeting["agenda"]
        expected: list[int] = []

        async def move() -> None:
            """The chair moves the room to another item through nginx; it must be answered."""
            target = items[len(expected) % len(items)]
            if expected and expected[-1] == target:
                target = items[(len(expected) + 1) % len(items)]
            r = await http.post(f"/api/meetings/{meeting_id}/current", json={"item_id": target})
            assert r.status_code == 200, r.text
            expected.append(target)

        followers = [asyncio.create_task(follow(t, nginx, topic, stop)) for t in tablets]
        try:
            await until(
                "every tablet to subscribe", lambda: all(t.subscribed.is_set() for t in tablets), watch=followers
            )
            on_a, on_b = await ws_count(a.port), await ws_count(b.port)
            assert on_a + on_b == len(tablets) and on_a > 0 and on_b > 0, (on_a, on_b)  # nginx spread them

            for _ in range(3):  # before the kill
                await move()
            await until(
                "the first moves to arrive", lambda: all(len(t.currents) == 3 for t in tablets), watch=followers
            )

            assert a.process is not None
            os.kill(a.process.pid, signal.SIGKILL)
            killed = time.monotonic()
            reconnected = asyncio.create_task(
                until(
                    "the dead process's tablets to reconnect",
                    lambda: (
                        sum(t.connects > 1 for t in tablets) == on_a and all(t.subscribed.is_set() for t in tablets)
                    ),
                    watch=followers,
                )
            )
            for _ in range(3):  # during: the tablets of the dead process are reconnecting
                await move()
            moved = time.monotonic() - killed
            back = await reconnected  # seconds from the kill
            assert a.process.wait(10) == -signal.SIGKILL
            for _ in range(3):  # after
                await move()
            caught = await until(
                "every tablet to catch up", lambda: all(t.currents == expected for t in tablets), 30, followers
            )
            print(
                f"SIGKILL of 1 of 2 processes behind nginx: {on_a} of {len(tablets)} tablets reconnected and "
                f"resubscribed {back:.2f} s after the kill; 3 chair moves meanwhile took {moved:.2f} s; "
                f"all caught up {caught:.2f} s after the last move"
            )
            assert await ws_count(b.port) == len(tablets)
            assert all(t.currents == expected for t in tablets)  # before, during and after, in order, once

            # restart the killed process, then stop the other one gracefully: requests through nginx go on
            a.start()
            await asyncio.to_thread(a.wait_ready)
            statuses: list[int] = []
            polling = asyncio.Event()

            async def poll() -> None:
                while not polling.is_set():
                    r = await http.get(f"/api/meetings/{meeting_id}")
                    statuses.append(r.status_code)
                    await asyncio.sleep(0.02)

            poller = asyncio.create_task(poll())
            await until("some requests before the drain", lambda: len(statuses) >= 5)
            assert b.process is not None
            b.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(b.process.wait, 60)
            await until(
                "the drained tablets to reconnect",
                lambda: (
                    all(t.subscribed.is_set() for t in tablets)
                    and sum(1012 in t.closes for t in tablets) == len(tablets)
                ),
                watch=followers,
            )
            await move()  # after the drain: answered by the restarted process
            await until("the last move to arrive", lambda: all(t.currents == expected for t in tablets), 30, followers)
            polling.set()
            await poller
            assert code == 0, b.log.read_text()[-3000:]
            assert statuses and set(statuses) == {200}, statuses
            assert await ws_count(a.port) == len(tablets)
            print(
                f"SIGTERM drain behind nginx: {len(statuses)} requests during it, all 200; every tablet "
                "closed with 1012 and resumed on the restarted process"
            )
        finally:
            stop.set()
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
    for task in followers:  # a gap or an error frame seen by a tablet is raised here
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    assert "Traceback" not in b.log.read_text(), b.log.read_text()[-3000:]
