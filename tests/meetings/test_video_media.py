"""Video through the real server: uvicorn in this process, aiortc clients over ``/ws/meetings/{id}/media``.

Loopback ICE for both ends (``loopback_ice``), no ICE servers, small test media (160x120). SQLite only: the
database is not what is tested here (tests/meetings/test_video.py runs the services on both)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from eoffice import identity
from meetings.sfu.client import SfuClient, consume, until
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.registry import ICE_ENV, MediaRegistry
from meetings.sfu.room import rtc_configuration
from meetings.sfu.synthetic import PatternTrack, ToneTrack
from storage.settings import Settings
from tests.conftest import free_port
from tests.meetings.conftest import World
from web.app import create_app


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "eoffice.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(autouse=True)
def _loopback() -> Iterator[None]:
    with loopback_ice():
        yield


@pytest.fixture
async def server(settings: Settings, world: World) -> AsyncIterator[str]:
    app = create_app(settings)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    srv.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the test runner owns signals
    task = asyncio.ensure_future(srv.serve())
    await until(lambda: srv.started or task.done(), what="uvicorn")
    assert not task.done(), "uvicorn did not start"
    try:
        yield f"127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 15)


async def token(world: World, key: str) -> str:
    async with world.db.uow() as uow:
        t = await identity.create_token(uow, None, world.users[key])
        await uow.commit()
    return t


@dataclass
class Remote:
    """An aiortc participant connected through the real WebSocket."""

    client: SfuClient
    ws: Any
    welcome: dict[str, Any]
    states: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def state(self) -> dict[str, Any]:
        return self.states[-1] if self.states else {}

    async def close(self) -> None:
        await self.ws.close()
        if self.reader:
            await asyncio.wait_for(self.reader, 5)
        await self.client.close()


@contextlib.asynccontextmanager
async def joined(host: str, mid: int, tok: str, *tracks: Any) -> AsyncIterator[Remote]:
    ws = await websockets.connect(f"ws://{host}/ws/meetings/{mid}/media?token={tok}", max_size=2**20)
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    client = SfuClient()
    remote = Remote(client, ws, welcome)

    async def send(message: dict[str, Any]) -> None:
        await ws.send(json.dumps(message))

    client.send = send

    async def read() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in ws:
                message = json.loads(text)
                if message["type"] == "state":
                    remote.states.append(message)
                elif message["type"] == "ping":
                    await send({"type": "pong"})
                else:
                    await client.handle(message)

    remote.reader = asyncio.ensure_future(read())
    try:
        if tracks:
            await client.publish(*tracks)
            await asyncio.wait_for(client.published.wait(), 10)
        yield remote
    finally:
        await remote.close()


async def refused(host: str, mid: int, tok: str | None) -> tuple[int, list[dict[str, Any]]]:
    url = f"ws://{host}/ws/meetings/{mid}/media" + (f"?token={tok}" if tok else "")
    async with websockets.connect(url) as ws:
        messages = []
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in ws:
                messages.append(json.loads(text))
        assert ws.close_code is not None
        return ws.close_code, messages


async def test_two_sites_see_each_other_and_strangers_are_refused(server: str, world: World) -> None:
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok = await token(world, "chair"), await token(world, "operator")

    assert (await refused(server, mid, await token(world, "outsider")))[0] == 4403
    assert (await refused(server, mid, None))[0] == 4401
    assert (await refused(server, mid + 1000, chair_tok))[0] == 4403

    async with joined(server, mid, chair_tok, PatternTrack(160, 120), ToneTrack(0.3)) as chair, \
            joined(server, mid, op_tok, PatternTrack(160, 120), ToneTrack(0.0)) as op:
        assert op.welcome["you"] == site and op.welcome["ice_servers"] == []
        assert chair.welcome["controller"] and not op.welcome["controller"]
        me = f"user:{world.chair.id}"
        for viewer, source in ((chair, site), (op, me)):
            await until(lambda v=viewer, s=source: any(m in v.client.received for m in v.client.mids_from(s, "video")),
                        what="remote video")
        frames = {}
        for viewer, source in ((chair, site), (op, me)):
            mid_ = next(x for x in viewer.client.mids_from(source, "video") if x in viewer.client.received)
            frames[source] = consume(viewer.client.received[mid_])
        await until(lambda: all(len(r.frames) >= 10 for r in frames.values()), within=20, what="decoded frames")
        assert {(f.width, f.height) for r in frames.values() for f in r.frames} == {(160, 120)}
        names = {t["name"] for t in chair.client.tracks.values()}
        assert names == {"Điểm cầu thị xã Đông Triều"}
        await until(lambda: len(op.state.get("roster", [])) == 2, what="roster")
        assert {r["id"] for r in op.state["roster"]} == {me, site}
        await until(lambda: op.client.active_speaker == me, what="active speaker from the chair's tone")
        for task in [r.task for r in frames.values()]:
            assert task is not None
            task.cancel()
    # the last one out closes the meeting's media room


async def test_chair_mute_stops_forwarding_and_emits_the_event(server: str, world: World) -> None:
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok, member_tok = [await token(world, k) for k in ("chair", "operator", "member")]
    events: list[dict[str, Any]] = []
    # the room's topics are registered with the hub by the first meeting request (this one, on HEAD)
    async with httpx.AsyncClient(base_url=f"http://{server}") as warm:
        r = await warm.get(f"/api/meetings/{mid}", headers={"Authorization": f"Bearer {member_tok}"})
        assert r.status_code == 200, r.text
    hub = await websockets.connect(f"ws://{server}/ws?token={member_tok}")
    await hub.send(json.dumps({"op": "subscribe", "topic": f"meeting:{mid}"}))
    assert json.loads(await hub.recv())["type"] == "subscribed"

    async def listen() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in hub:
                events.append(json.loads(text))

    listener = asyncio.ensure_future(listen())
    http = httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {chair_tok}"})
    try:
        async with joined(server, mid, op_tok, PatternTrack(160, 120)) as op, joined(server, mid, chair_tok) as chair:
            await until(lambda: any(x in chair.client.received for x in chair.client.mids_from(site, "video")),
                        what="the site's video")
            received = consume(chair.client.received[chair.client.mids_from(site, "video")[0]])
            await until(lambda: len(received.frames) >= 5, what="frames before the mute")

            r = await http.post(f"/api/meetings/{mid}/video/mute", json={"participant": site, "kind": "video",
                                                                          "muted": True})
            assert r.status_code == 200, r.text
            await until(lambda: any(e.get("type") == "video.muted" for e in events), what="video.muted event")
            event = next(e for e in events if e.get("type") == "video.muted")
            assert event["data"] == {"participant": site, "kind": "video", "muted": True, "by_chair": True}
            await until(lambda: any(x["id"] == site and x["muted"]["video"] for x in op.state.get("roster", [])),
                        what="muted in the roster")
            await asyncio.sleep(0.3)  # frames already in flight
            count = len(received.frames)
            await asyncio.sleep(1.0)
            assert len(received.frames) - count <= 1, "nothing forwarded while muted"

            # the site cannot lift the chair's mute, over its own socket
            await op.ws.send(json.dumps({"type": "mute", "kind": "video", "muted": False}))
            await until(lambda: any("Chủ trì đã tắt camera" in e for e in op.client.errors), what="refusal")

            r = await http.post(f"/api/meetings/{mid}/video/mute", json={"participant": site, "kind": "video",
                                                                          "muted": False})
            assert r.status_code == 200
            await until(lambda: len(received.frames) > count + 5, what="frames after unmuting")

            # giving the floor reaches everyone's page (layout) and the room's state
            r = await http.post(f"/api/meetings/{mid}/video/floor", json={"participant": site})
            assert r.status_code == 200, r.text
            await until(lambda: any(e.get("type") == "video.floor" for e in events), what="video.floor event")
            await until(lambda: chair.state.get("floor") == site, what="floor in state")
            received.task.cancel()  # type: ignore[union-attr]
        member_http = httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {member_tok}"})
        async with member_http:
            r = await member_http.post(f"/api/meetings/{mid}/video/mute",
                                       json={"participant": site, "kind": "audio", "muted": True})
            assert r.status_code == 403
    finally:
        await http.aclose()
        await hub.close()
        await asyncio.wait_for(listener, 5)


async def test_a_reopened_media_room_keeps_the_chairs_mute_and_the_floor(server: str, world: World) -> None:
    """Mutes and the floor outlive the media room (it closes when the last one leaves; a restart or another server
    process starts without it): a room opening takes them from the meeting's record."""
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok = [await token(world, k) for k in ("chair", "operator")]
    async with httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {chair_tok}"}) as http:
        # nobody is connected: this process has no media room for the meeting
        r = await http.post(f"/api/meetings/{mid}/video/mute", json={"participant": site, "kind": "video",
                                                                      "muted": True})
        assert r.status_code == 200, r.text
        r = await http.post(f"/api/meetings/{mid}/video/floor", json={"participant": site})
        assert r.status_code == 200, r.text

    async with joined(server, mid, op_tok, PatternTrack(160, 120)) as op, joined(server, mid, chair_tok) as chair:
        await until(lambda: any(x["id"] == site and x["muted"]["video"] and x["imposed"]["video"]
                                for x in chair.state.get("roster", [])), what="the chair's mute in the roster")
        assert chair.state["floor"] == site
        await until(lambda: any(x in chair.client.received for x in chair.client.mids_from(site, "video")),
                    what="the site's video slot")
        received = consume(chair.client.received[chair.client.mids_from(site, "video")[0]])
        await asyncio.sleep(1.0)
        assert received.frames == [], "still muted: nothing forwarded"
        await op.ws.send(json.dumps({"type": "mute", "kind": "video", "muted": False}))
        await until(lambda: any("Chủ trì đã tắt camera" in e for e in op.client.errors), what="refusal")
        received.task.cancel()  # type: ignore[union-attr]


async def test_turn_settings_reach_each_session_with_its_own_credentials(
    server: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EOFFICE_ICE_SERVERS with a coturn shared secret: every browser session and the server's own peer connections
    get time-limited credentials (TURN REST API), and the secret is never sent."""
    secret = "bí-mật-coturn"
    monkeypatch.setenv(ICE_ENV, json.dumps([
        {"urls": "stun:stun.quangninh.gov.vn:3478"},
        {"urls": ["turn:turn.quangninh.gov.vn:3478?transport=udp"], "secret": secret},
    ], ensure_ascii=False))  # read when the app first needs its media rooms: after this point
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok = [await token(world, k) for k in ("chair", "operator")]

    def check(server_entry: dict[str, Any], who: str) -> None:
        expiry, name = server_entry["username"].split(":", 1)
        assert name == who and int(expiry) > time.time() + 11 * 3600
        digest = hmac.new(secret.encode(), server_entry["username"].encode(), hashlib.sha1).digest()
        assert server_entry["credential"] == base64.b64encode(digest).decode()

    async with websockets.connect(f"ws://{server}/ws/meetings/{mid}/media?token={op_tok}") as ws:
        text = await ws.recv()
        welcome = json.loads(text)
        assert welcome["type"] == "welcome" and secret not in text
        stun, turn = welcome["ice_servers"]
        assert stun == {"urls": ["stun:stun.quangninh.gov.vn:3478"]}
        assert turn["urls"] == ["turn:turn.quangninh.gov.vn:3478?transport=udp"]
        check(turn, site)
    async with httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {chair_tok}"}) as http:
        r = await http.get(f"/api/meetings/{mid}/video")
        assert r.status_code == 200 and secret not in r.text
        check(r.json()["ice_servers"][1], f"user:{world.chair.id}")

    # the server's side: its RTCPeerConnections are configured with the same servers, credentials of their own
    room = MediaRegistry.from_env().acquire(mid)
    config = rtc_configuration(room.sfu.ice_servers)
    assert [s.urls for s in config.iceServers] == [["stun:stun.quangninh.gov.vn:3478"],
                                                  ["turn:turn.quangninh.gov.vn:3478?transport=udp"]]
    turn_server = config.iceServers[1]
    check({"username": turn_server.username, "credential": turn_server.credential}, "sfu")


async def test_the_chair_sees_each_sites_link_quality(server: str, world: World) -> None:
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok, member_tok = [await token(world, k) for k in ("chair", "operator", "member")]
    me = f"user:{world.chair.id}"
    chair_http = httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {chair_tok}"})
    member_http = httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {member_tok}"})
    async with chair_http, member_http:
        r = await chair_http.get(f"/api/meetings/{mid}/video/links")
        assert r.status_code == 200 and r.json() == {"sites": []}, "no media room yet"
        async with joined(server, mid, op_tok, PatternTrack(160, 120), ToneTrack(0.3)), \
                joined(server, mid, chair_tok, PatternTrack(160, 120)):
            sites: dict[str, Any] = {}

            async def measured() -> bool:
                r = await chair_http.get(f"/api/meetings/{mid}/video/links")
                assert r.status_code == 200, r.text
                sites.clear()
                sites.update({s["id"]: s for s in r.json()["sites"]})
                chair = sites.get(me, {})
                return chair.get("rtt_ms") is not None and (chair.get("sent_kbps") or 0) > 0

            deadline = time.monotonic() + 20
            while not await measured():
                assert time.monotonic() < deadline, f"no link figures: {sites}"
                await asyncio.sleep(0.5)
            assert set(sites) == {me, site}
            assert sites[site]["name"] == "Điểm cầu thị xã Đông Triều"
            chair = sites[me]
            assert 0 <= chair["loss_pct"] < 5 and 0 <= chair["rtt_ms"] < 1000
            assert chair["quality"] in ("tốt", "trung bình", "kém")
            assert chair["video_forwarded"] == 1 and chair["audio_forwarded"] == 1
            assert sites[site]["publish_kbps"] > 0

            r = await member_http.get(f"/api/meetings/{mid}/video/links")
            assert r.status_code == 403
            assert "chủ trì" in r.json()["message"].lower()


async def test_an_ice_restart_keeps_the_session_and_is_not_a_flood(server: str, world: World) -> None:
    """``restart`` over the real socket: fresh TURN-less ICE servers in ``restarted``, new connections, media again,
    the same roster entry; a second restart within two seconds is refused, not carried out."""
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok = [await token(world, k) for k in ("chair", "operator")]
    async with joined(server, mid, chair_tok) as chair, joined(server, mid, op_tok, PatternTrack(160, 120)) as op:
        await until(lambda: any(x in chair.client.received for x in chair.client.mids_from(site, "video")),
                    what="the site's video")
        old_pub = op.client.pub_pc
        await op.client.restart()
        await op.client.restart()
        await until(lambda: op.client.pub_pc is not old_pub and op.client.published.is_set(), within=20,
                    what="the restarted site's new connections")
        assert [x for x in op.client.messages if x["type"] == "restarted"] == [{"type": "restarted", "ice_servers": []}]
        assert any("chờ" in e for e in op.client.errors), op.client.errors
        mid_ = chair.client.mids_from(site, "video")[0]
        received = consume(chair.client.received[mid_])
        await until(lambda: len(received.frames) >= 5, within=20, what="the site's picture after the restart")
        received.task.cancel()  # type: ignore[union-attr]
        assert [x["id"] for x in chair.state["roster"]].count(site) == 1
