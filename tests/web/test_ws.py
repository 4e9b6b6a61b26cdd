"""The WebSocket hub end to end: a real uvicorn server (in a thread), real ``websockets`` clients.

Events are committed from the test's own event loop through a ``Database`` whose publisher is
the server's in-process broker, exactly as a service in the server would publish them.
Runs on SQLite and PostgreSQL (the ``settings`` fixture is parametrised over both).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from eoffice import identity
from eoffice.org import User
from storage import events
from storage.db import Database, UnitOfWork
from storage.pubsub import SUBSCRIBED
from storage.pubsub.memory import MemoryBroker
from storage.settings import Settings
from tests.conftest import free_port
from tests.web.conftest import add_user, make_token
from web import ws_protocol
from web.app import create_app
from web.auth import SESSION_COOKIE, signer
from web.hub import CLOSE_TOO_SLOW, Hub

NOTICE = "Công văn về việc triển khai chính quyền điện tử — Ủy ban nhân dân huyện Đông Triều"


# ------------------------------------------------------------------------------------------- helpers ---


@dataclass
class Server:
    url: str  # ws://127.0.0.1:port/ws
    app: Starlette
    settings: Settings
    db: Database  # the test's own connection, publishing to the server's broker

    @property
    def hub(self) -> Hub:
        return self.app.state.hub


def start_uvicorn(app: Starlette, ws: str = "auto") -> tuple[uvicorn.Server, threading.Thread, int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           ws=ws))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return server, thread, port


@pytest.fixture(params=[ws_protocol.PROTOCOL, "auto"], ids=["frames", "asgi"])
def ws_impl(request: pytest.FixtureRequest) -> str:
    """Both ways frames leave the server: written directly by the hub (``eoffice serve``) or through ASGI."""
    return str(request.param)


@contextlib.asynccontextmanager
async def running_server(settings: Settings, ws: str = "auto") -> AsyncIterator[Server]:
    """The app under uvicorn in a thread, and a database handle publishing to its broker."""
    app = create_app(settings)
    uv, thread, port = start_uvicorn(app, ws)
    db = Database(settings.database_url, publisher=app.state.broker.publish)
    try:
        yield Server(f"ws://127.0.0.1:{port}/ws", app, settings, db)
    finally:
        await db.dispose()
        uv.should_exit = True
        await asyncio.to_thread(thread.join, 20)


@pytest.fixture
async def server(settings: Settings, ws_impl: str, request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    """A running server; tests needing other queue, heartbeat or log sizes parametrise it indirectly."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    async with running_server(replace(settings, **overrides), ws_impl) as running:
        yield running


async def emit(db: Database, topic: str, count: int = 1, pad: int = 0, type_: str = "notice") -> list[dict[str, Any]]:
    async with db.uow() as uow:
        for i in range(count):
            uow.emit(topic, type_, message=NOTICE, i=i, pad=secrets.token_urlsafe(pad) if pad else "")
        return await uow.commit()


async def recv(ws: ClientConnection, within: float = 10.0, pings: bool = False) -> dict[str, Any]:
    """The next frame, skipping heartbeat pings unless asked for."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), within))
        if pings or message.get("type") != "ping":
            return message


async def subscribe(ws: ClientConnection, topic: str, since: int | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"op": "subscribe", "topic": topic}
    if since is not None:
        frame["since"] = since
    await ws.send(json.dumps(frame))
    reply = await recv(ws)
    assert reply["type"] == "subscribed" and reply["topic"] == topic, reply
    return reply


async def collect(ws: ClientConnection, topic: str, upto: int, within: float = 15.0) -> list[int]:
    """Seqs of ``topic`` events received until ``upto`` arrives (anything else is a failure)."""
    seqs: list[int] = []
    deadline = time.monotonic() + within
    while not seqs or seqs[-1] < upto:
        message = await recv(ws, max(0.1, deadline - time.monotonic()))
        assert message.get("topic") == topic and "seq" in message and message["type"] not in ("snapshot", "error"), (
            message
        )
        seqs.append(message["seq"])
    return seqs


def user_and_token(settings: Settings, username: str) -> tuple[int, str]:
    return add_user(settings, username, full_name="Trần Thị Hồng Nhung"), make_token(settings, username)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------------------- protocol ---


async def test_subscribe_receives_live_events_in_order_and_only_own_topic(server: Server) -> None:
    uid, token = user_and_token(server.settings, "lan")
    other, _ = user_and_token(server.settings, "hung")
    async with connect(server.url, additional_headers=bearer(token)) as ws:
        assert (await subscribe(ws, f"user:{uid}"))["seq"] == 0
        await emit(server.db, f"user:{other}", 2)  # someone else's: must not arrive
        sent = await emit(server.db, f"user:{uid}", 3)
        got = [await recv(ws) for _ in range(3)]
        assert got == sent  # same frames, Vietnamese intact, in order
        assert got[0]["data"]["message"] == NOTICE and [g["seq"] for g in got] == [1, 2, 3]
        await ws.send(json.dumps({"op": "ping"}))
        assert await recv(ws) == {"type": "pong"}  # nothing of the other user's topic came in between


async def test_eoffice_serve_writes_event_frames_directly_with_and_without_deflate(
        server: Server, ws_impl: str) -> None:
    """Under ``eoffice serve`` the hub writes each event's prebuilt frame straight to the transport:
    deflated once per event for clients that negotiated permessage-deflate (long messages), plain
    for the others; events, replies and errors interleave, in order, with Vietnamese text intact."""
    uid, token = user_and_token(server.settings, "lan")
    long_text = NOTICE * 40  # compressible: sent deflated to the first client
    async with connect(server.url, additional_headers=bearer(token), compression="deflate") as deflating, \
            connect(server.url, additional_headers=bearer(token), compression=None) as plain:
        assert "permessage-deflate" in deflating.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "Sec-WebSocket-Extensions" not in plain.response.headers
        for ws in (deflating, plain):
            await subscribe(ws, f"user:{uid}")
        conns = [c for c in server.hub.connections if c.user.id == uid]
        assert len(conns) == 2
        assert all((c.writer is not None) == (ws_impl == ws_protocol.PROTOCOL) for c in conns)
        if ws_impl == ws_protocol.PROTOCOL:
            assert sorted(c.writer.deflate for c in conns if c.writer) == [False, True]
        for round_ in range(3):
            async with server.db.uow() as uow:
                uow.emit(f"user:{uid}", "notice", message=NOTICE)  # short: plain for everyone
                uow.emit(f"user:{uid}", "notice", message=long_text)
                await uow.commit()
            for ws in (deflating, plain):
                await ws.send(json.dumps({"op": "ping"}))
                await ws.send("không phải JSON")
                got = [await recv(ws) for _ in range(4)]  # events travel via the broker: they may come after the pong
                events = [m for m in got if "seq" in m]
                others = [m for m in got if "seq" not in m]
                assert [m["seq"] for m in events] == [2 * round_ + 1, 2 * round_ + 2]
                assert [m["data"]["message"] for m in events] == [NOTICE, long_text]
                assert [m["type"] for m in others] == ["pong", "error"]
                assert others[1]["message"] == "Thông điệp không phải JSON hợp lệ."


def test_a_frame_is_a_valid_unmasked_text_frame_at_every_length_boundary() -> None:
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    for size in (0, 1, 125, 126, 65535, 65536, 70000):
        text = "Đ" * (size // 2) + "a" * (size % 2)
        reader = StreamReader()
        reader.feed_data(ws_protocol.frame(text))
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            parsed = done.value
        else:  # pragma: no cover - the whole frame was fed
            raise AssertionError("frame incomplete")
        assert parsed.opcode is Opcode.TEXT and parsed.fin and not parsed.rsv1
        assert parsed.data.decode() == text


def test_a_shared_deflated_frame_inflates_in_any_receivers_context() -> None:
    """One deflated frame per event serves every connection: a receiver keeping its window from
    earlier messages (context takeover, as browsers negotiate by default) inflates it correctly,
    before and after messages compressed by a per-connection compressor."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    def parse(data: bytes, receiver: PerMessageDeflate) -> Frame:
        reader = StreamReader()
        reader.feed_data(data)
        parser = Frame.parse(reader.read_exact, mask=False, extensions=[receiver])  # parsed, then inflated
        try:
            next(parser)
        except StopIteration as done:
            return done.value
        raise AssertionError("frame incomplete")

    sender = PerMessageDeflate(False, False, 12, 12)  # the connection's own compressor (uvicorn's)
    receiver = PerMessageDeflate(False, False, 12, 12)  # a browser keeping its window
    texts = [NOTICE * 3, "Biểu quyết: " + NOTICE * 50, "ngắn", json.dumps({"điểm": list(range(3000))})]
    for i, text in enumerate(texts):
        if i % 2:  # a message of the connection's own, compressed with the context it keeps
            wire = sender.encode(Frame(Opcode.TEXT, text.encode()))
            assert receiver.decode(wire).data.decode() == text
        frames = ws_protocol.Frames.of(text)
        assert (frames.deflated is None) == (len(text) < ws_protocol.DEFLATE_MIN)
        assert bool((frames.deflated or frames.plain)[0] & 0x40) == (frames.deflated is not None)  # RSV1
        assert parse(frames.deflated or frames.plain, receiver).data.decode() == text
        if frames.deflated is not None:
            assert len(frames.deflated) < len(frames.plain) / 2


async def test_bad_input_and_forbidden_topics_get_vietnamese_errors_without_closing(server: Server) -> None:
    uid, token = user_and_token(server.settings, "lan")
    other, _ = user_and_token(server.settings, "hung")
    async with connect(f"{server.url}?token={token}") as ws:  # ?token= works too
        cases = [
            ("{không phải json", "JSON"),
            ("[1, 2]", "đối tượng"),
            (json.dumps({"op": "nhảy"}), "không được hỗ trợ"),
            (json.dumps({"op": "subscribe"}), "Thiếu tên kênh"),
            (json.dumps({"op": "subscribe", "topic": "meeting:1"}), "không có quyền"),  # no authorizer: refused
            (json.dumps({"op": "subscribe", "topic": f"user:{other}"}), "không có quyền"),
            (json.dumps({"op": "subscribe", "topic": f"user:{uid}", "since": -1}), "since"),
        ]
        for frame, expected in cases:
            await ws.send(frame)
            reply = await recv(ws)
            assert reply["type"] == "error" and expected in reply["message"], (frame, reply)
        await subscribe(ws, f"user:{uid}")  # still open and usable
        await emit(server.db, f"user:{other}")
        await emit(server.db, f"user:{uid}")
        assert (await recv(ws))["topic"] == f"user:{uid}"


async def test_custom_authorizer_longest_prefix_wins(server: Server) -> None:
    _, token = user_and_token(server.settings, "lan")

    async def rooms(uow: UnitOfWork, user: User, topic: str) -> bool:
        return topic == "meeting:7"

    async def control(uow: UnitOfWork, user: User, topic: str) -> bool:
        return False

    server.hub.add_authorizer("meeting:", rooms)
    server.hub.add_authorizer("meeting:7:control", control)
    async with connect(server.url, additional_headers=bearer(token)) as ws:
        await subscribe(ws, "meeting:7")
        for topic in ("meeting:8", "meeting:7:control"):
            await ws.send(json.dumps({"op": "subscribe", "topic": topic}))
            assert (await recv(ws))["type"] == "error"


async def test_a_subscriber_whose_access_shrank_is_unsubscribed_after_an_access_event(server: Server) -> None:
    """Access is checked at subscribe time, and again after an event registered as access-changing:
    the one who lost access is told (``revoked``) and gets nothing more; the other keeps receiving."""
    lan_id, lan_token = user_and_token(server.settings, "lan")
    _, hung_token = user_and_token(server.settings, "hung")
    allowed = {"lan", "hung"}

    async def room(uow: UnitOfWork, user: User, topic: str) -> bool:
        return user.username in allowed

    server.hub.add_authorizer("room:", room)
    server.hub.add_access_events("participants.changed")
    topic = "room:9"
    async with connect(server.url, additional_headers=bearer(lan_token)) as lan, \
            connect(server.url, additional_headers=bearer(hung_token)) as hung:
        await subscribe(lan, topic)
        await subscribe(hung, topic)
        await emit(server.db, topic)
        assert (await recv(lan))["seq"] == 1 and (await recv(hung))["seq"] == 1
        allowed.discard("lan")
        await emit(server.db, topic, 2)  # an ordinary event re-checks nothing: lan still gets it
        assert [(await recv(lan))["seq"] for _ in range(2)] == [2, 3]
        await emit(server.db, topic, type_="participants.changed")
        assert (await recv(lan))["seq"] == 4  # dispatched before the re-check
        revoked = await recv(lan)
        assert revoked["type"] == "error" and revoked["revoked"] is True and revoked["topic"] == topic
        assert revoked["message"] == f"Bạn không còn quyền theo dõi kênh «{topic}»."
        await emit(server.db, topic)
        assert [(await recv(hung))["seq"] for _ in range(4)] == [2, 3, 4, 5]
        await lan.send(json.dumps({"op": "ping"}))  # lan's socket is alive, only that topic is gone
        assert (await recv(lan))["type"] == "pong"
        await subscribe(lan, f"user:{lan_id}")
        with pytest.raises(TimeoutError):
            while True:
                message = await recv(lan, within=0.5)
                assert message.get("topic") != topic, message


async def test_unauthenticated_or_cross_site_is_closed_with_a_code(server: Server) -> None:
    for url, headers, code in [
        (server.url, {}, 4401),
        (f"{server.url}?token=eo_sai", {}, 4401),
        (server.url, {"Authorization": "Bearer eo_sai"}, 4401),
        (server.url, {"Origin": "http://evil.example"}, 4403),
    ]:
        async with connect(url, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
            assert info.value.rcvd is not None and info.value.rcvd.code == code, (url, headers)


async def _session_cookie(settings: Settings, username: str) -> str:
    db = Database(settings.database_url)
    try:
        async with db.uow() as uow:
            token = await identity.start_session(uow, await identity.get_user(uow, username), days=1)
            await uow.commit()
    finally:
        await db.dispose()
    return f"{SESSION_COOKIE}={signer(settings).sign(token).decode()}"


async def test_session_cookie_works_from_own_origin_only(server: Server) -> None:
    uid, _ = user_and_token(server.settings, "lan")
    cookie = await _session_cookie(server.settings, "lan")
    host = server.url.split("/")[2]
    async with connect(server.url, origin=f"http://{host}", additional_headers={"Cookie": cookie}) as ws:
        await subscribe(ws, f"user:{uid}")
    async with connect(server.url, origin="http://evil.example", additional_headers={"Cookie": cookie}) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4403


# ----------------------------------------------------------------------------------------- resume ---


async def test_resume_with_since_gives_exactly_the_missed_events_even_while_new_ones_arrive(server: Server) -> None:
    uid, token = user_and_token(server.settings, "lan")
    topic = f"user:{uid}"
    async with connect(server.url, additional_headers=bearer(token)) as ws:
        await subscribe(ws, topic)
        await emit(server.db, topic, 3)
        assert await collect(ws, topic, 3) == [1, 2, 3]
    last = 3
    for round_ in range(4):
        await emit(server.db, topic, 5)  # missed while away
        stop = asyncio.Event()

        async def keep_emitting(stop: asyncio.Event) -> None:  # and more, racing the replay
            while not stop.is_set():
                await emit(server.db, topic, 1)
                await asyncio.sleep(0)

        writer = asyncio.create_task(keep_emitting(stop))
        try:
            async with connect(server.url, additional_headers=bearer(token)) as ws:
                reply = await subscribe(ws, topic, since=last)
                assert reply["seq"] >= last + 5
                await asyncio.sleep(0.05 * round_)
                stop.set()
                await writer
                async with server.db.uow() as uow:
                    current = await events.last_seq(uow.session, topic)
                seqs = await collect(ws, topic, current)
                assert seqs == list(range(last + 1, current + 1)), f"round {round_}: gap or duplicate"
                with pytest.raises(TimeoutError):  # and nothing after it
                    await recv(ws, within=0.3)
                last = current
        finally:
            stop.set()
            await writer


@pytest.mark.parametrize("server", [{"event_log_size": 5}], indirect=True)
async def test_snapshot_when_too_far_behind_or_ahead(server: Server) -> None:
    uid, token = user_and_token(server.settings, "lan")
    topic = f"user:{uid}"
    await emit(server.db, topic, 12)
    async with connect(server.url, additional_headers=bearer(token)) as ws:
        assert (await subscribe(ws, topic, since=2))["seq"] == 12
        assert await recv(ws) == {"type": "snapshot", "topic": topic, "seq": 12, "data": {}}
        await emit(server.db, topic)
        assert (await recv(ws))["seq"] == 13  # live after the snapshot, nothing replayed
        # within the replay limit: a replay, not a snapshot
        await subscribe(ws, topic, since=10)
        assert await collect(ws, topic, 13) == [11, 12, 13]

    async def unread(uow: UnitOfWork, user: User, topic: str) -> dict[str, Any]:
        return {"chưa_đọc": 13, "user": user.username}

    server.hub.add_snapshot("user:", unread)
    async with connect(server.url, additional_headers=bearer(token)) as ws:
        await subscribe(ws, topic, since=500)  # ahead of the log (a restored database): snapshot too
        assert await recv(ws) == {"type": "snapshot", "topic": topic, "seq": 13,
                                  "data": {"chưa_đọc": 13, "user": "lan"}}


async def test_snapshot_when_the_log_was_pruned(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "EVENT_LOG_SIZE", 50)
    uid, token = user_and_token(server.settings, "lan")
    topic = f"user:{uid}"
    for _ in range(4):
        await emit(server.db, topic, 40)  # 160 events, the log keeps about the last 50
    async with server.db.uow() as uow:
        assert not (await events.events_since(uow.session, topic, 20)).complete  # pruned, really
        assert (await events.events_since(uow.session, topic, 150)).complete
    async with connect(server.url, additional_headers=bearer(token)) as ws:
        await subscribe(ws, topic, since=20)
        assert (await recv(ws))["type"] == "snapshot"
        await subscribe(ws, topic, since=150)
        assert await collect(ws, topic, 160) == list(range(151, 161))


# ------------------------------------------------------------------------------ slow and silent ---


def _tiny_buffer_socket(port: int) -> socket.socket:
    """A client socket that takes little data before pushing back (so the test needs a few MB, not 10)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


@pytest.mark.parametrize("server", [{"ws_queue_size": 16}], indirect=True)
async def test_slow_client_is_dropped_while_a_fast_one_keeps_receiving(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="web.hub")
    uid, token = user_and_token(server.settings, "lan")
    topic = f"user:{uid}"
    port = int(server.url.split(":")[2].split("/")[0])
    fast = await connect(server.url, additional_headers=bearer(token), max_size=None)
    slow = await connect(server.url, additional_headers=bearer(token), max_queue=1, max_size=None,
                         sock=_tiny_buffer_socket(port))
    try:
        await subscribe(fast, topic)
        await subscribe(slow, topic)  # ...and then never reads again
        total, batch = 0, 10
        received: list[int] = []
        started = time.monotonic()
        while total < 600:
            await emit(server.db, topic, batch, pad=12000)  # ~16 KB per event, incompressible
            total += batch
            received += await collect(fast, topic, total)  # the fast client is never held back
        assert received == list(range(1, total + 1))
        assert time.monotonic() - started < 60
        codes = []
        with pytest.raises(ConnectionClosed) as info:  # drain what the slow one got, then the close
            while True:
                codes.append(await recv(slow, within=10))
        # 4008 when the close frame gets through; a stalled peer may only see the TCP connection end
        # (the server gives up on the close handshake after a while): both mean "reconnect and resume".
        assert info.value.rcvd is None or info.value.rcvd.code == CLOSE_TOO_SLOW
        assert len(codes) < total  # it was dropped, not served everything slowly
        assert "dropping slow connection" in caplog.text
    finally:
        await fast.close()
        await slow.close()


@pytest.mark.parametrize("server", [{"ws_heartbeat_seconds": 0.2}], indirect=True)
async def test_heartbeat_pings_and_closes_a_silent_client(server: Server) -> None:
    uid, token = user_and_token(server.settings, "lan")
    async with connect(server.url, additional_headers=bearer(token)) as silent, \
            connect(server.url, additional_headers=bearer(token)) as alive:
        started = time.monotonic()
        pings = 0
        with pytest.raises(ConnectionClosed) as info:
            while True:
                assert (await recv(silent, within=5, pings=True)) == {"type": "ping"}
                pings += 1
                answer = await recv(alive, within=5, pings=True)
                assert answer == {"type": "ping"}
                await alive.send(json.dumps({"op": "pong"}))
        assert info.value.rcvd is not None and info.value.rcvd.code == 4002
        assert 2 <= pings <= 4 and 0.5 < time.monotonic() - started < 3
        await alive.send(json.dumps({"op": "pong"}))
        await subscribe(alive, f"user:{uid}")  # the answering client is still there


# ---------------------------------------------------------------------------------- hub, directly ---


class Probe:
    """Stands in for a socket: the hub's connection object, read directly."""

    def __init__(self, hub: Hub, user: User) -> None:
        self.conn = hub.connect(user)

    def frames(self) -> list[dict[str, Any]]:
        out = []
        while not self.conn.queue.empty():
            out.append(json.loads(self.conn.queue.get_nowait()))
        return out


async def _user(db: Database, username: str) -> User:
    async with db.uow() as uow:
        user = await identity.create_user(uow, None, username=username, full_name="Lê Văn Đức", password="mật-khẩu-dài")
        await uow.commit()
        return user


async def _settle(hub: Hub) -> None:
    for _ in range(50):
        await asyncio.sleep(0.01)


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    broker = MemoryBroker()
    db = Database(settings.database_url)
    hub = Hub(db, broker, replace(settings, ws_queue_size=8))
    assert db.publisher == broker.publish  # wired by the hub when the factory did not
    await hub.start()
    yield hub
    await hub.stop()
    await broker.close()
    await db.dispose()


async def test_dispatch_never_waits_for_a_full_queue(hub: Hub) -> None:
    user = await _user(hub.db, "lan")
    fast, slow = Probe(hub, user), Probe(hub, user)
    topic = f"user:{user.id}"
    await hub.subscribe(fast.conn, topic)
    await hub.subscribe(slow.conn, topic)
    got: list[int] = []
    for _ in range(5):
        await emit(hub.db, topic, 4)
        await _settle(hub)
        got += [f["seq"] for f in fast.frames() if "seq" in f and f.get("type") == "notice"]
    assert got == list(range(1, 21))
    assert slow.conn.closed.is_set() and slow.conn.close_code == CLOSE_TOO_SLOW
    assert slow.conn not in hub.connections and not slow.conn.topics


async def test_an_event_the_broker_lost_is_taken_from_the_log(hub: Hub) -> None:
    user = await _user(hub.db, "lan")
    probe = Probe(hub, user)
    topic = f"user:{user.id}"
    await hub.subscribe(probe.conn, topic)
    quiet = Database(hub.db.url)  # commits without publishing: the broker "loses" them
    try:
        await emit(quiet, topic, 2)
        await emit(hub.db, topic, 1)  # seq 3 arrives: 1 and 2 come from the log first
        await _settle(hub)
        assert [f.get("seq") for f in probe.frames()] == [0, 1, 2, 3]  # subscribed(seq 0), then events
        await emit(quiet, topic, 1)  # lost, and nothing follows it...
        await hub.broker.publish([{"topic": "", "type": SUBSCRIBED}])  # ...until the broker reconnects
        await _settle(hub)
        assert [f.get("seq") for f in probe.frames()] == [4]
        await emit(hub.db, topic, 1)
        await _settle(hub)
        assert [f.get("seq") for f in probe.frames()] == [5]  # no duplicate of 4
    finally:
        await quiet.dispose()


async def test_an_event_is_encoded_once_whatever_the_number_of_subscribers(
        hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fan-out hands every subscriber the same already-encoded frame (the same str object): the JSON
    encoding is paid once per event, not once per client."""
    import web.hub

    user = await _user(hub.db, "lan")
    probes = [Probe(hub, user) for _ in range(5)]
    topic = f"user:{user.id}"
    for p in probes:
        await hub.subscribe(p.conn, topic)
        p.frames()  # the "subscribed" frame
    encoded: list[str] = []

    def counting(message: dict[str, Any]) -> str:
        encoded.append(web.hub.json.dumps(message, ensure_ascii=False, separators=(",", ":")))
        return encoded[-1]

    monkeypatch.setattr(web.hub, "encode", counting)
    await emit(hub.db, topic, 3)
    await _settle(hub)
    assert len(encoded) == 3
    for p in probes:
        frames = [p.conn.queue.get_nowait() for _ in range(3)]
        assert all(f is e for f, e in zip(frames, encoded, strict=True))
