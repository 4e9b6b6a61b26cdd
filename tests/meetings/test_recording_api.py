"""Recording through the real server: aiortc sites publish over ``/ws/meetings/{id}/media``, the chair records about
3 s over the API, the files land in the blob store and the meeting's archive, and everyone is told.

SQLite only, like tests/meetings/test_video_media.py (whose helpers this reuses): the database is not what is
tested here."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import select
from starlette.applications import Starlette

from eoffice.audit import AuditEntry
from meetings.sfu.client import until
from meetings.sfu.synthetic import PatternTrack, ReplayTrack, ToneTrack, encode_opus, encode_vp8
from storage.settings import Settings
from tests.conftest import free_port
from tests.meetings.conftest import World
from tests.meetings.test_video_media import _loopback, db_url, joined, token  # noqa: F401 (fixtures)
from web.app import create_app


@pytest.fixture
async def served(settings: Settings, world: World) -> AsyncIterator[tuple[str, Starlette]]:
    app = create_app(settings)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    srv.install_signal_handlers = lambda: None  # type: ignore[method-assign,attr-defined]  # the test runner owns signals
    task = asyncio.ensure_future(srv.serve())
    await until(lambda: srv.started or task.done(), what="uvicorn")
    assert not task.done(), "uvicorn did not start"
    try:
        yield f"127.0.0.1:{port}", app
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 15)


def packets_of(data: bytes) -> tuple[str, list[av.Packet], float | None]:
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams[0]
        packets = [p for p in container.demux(stream) if p.size]
        pts, time_base = (packets[0].pts, packets[0].time_base) if packets else (None, None)
        first = float(pts * time_base) if pts is not None and time_base is not None else None
        return stream.codec_context.name, packets, first


async def test_the_chair_records_and_the_files_reach_the_archive(served: tuple[str, Starlette], world: World,
                                                                  settings: Settings) -> None:
    host, app = served
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok, member_tok, secretary_tok = [
        await token(world, k) for k in ("chair", "operator", "member", "secretary")]
    vp8, opus = encode_vp8(90, 160, 120, gop=30), encode_opus(100)

    def client(tok: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://{host}", headers={"Authorization": f"Bearer {tok}"}, timeout=60)

    events: list[dict[str, Any]] = []
    async with client(member_tok) as member, client(chair_tok) as chair_http, client(secretary_tok) as secretary:
        r = await member.get(f"/api/meetings/{mid}")  # registers the room's topics with the hub
        assert r.status_code == 200, r.text
        hub = await websockets.connect(f"ws://{host}/ws?token={member_tok}")
        await hub.send(json.dumps({"op": "subscribe", "topic": f"meeting:{mid}"}))
        assert json.loads(await hub.recv())["type"] == "subscribed"

        async def listen() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for text in hub:
                    events.append(json.loads(text))

        listener = asyncio.ensure_future(listen())
        try:
            async with joined(host, mid, op_tok, ReplayTrack("video", vp8, rate=30, clock_rate=90000),
                              ReplayTrack("audio", opus, rate=50, clock_rate=48000)) as op, \
                    joined(host, mid, chair_tok, PatternTrack(160, 120), ToneTrack(0.3)) as chair:
                await until(lambda: len(chair.state.get("roster", [])) == 2, what="both sites in the room")
                base = f"/api/meetings/{mid}/video/recording"
                # only the chair records (the default), not a member nor the secretary
                for who in (member, secretary):
                    r = await who.post(f"{base}/start")
                    assert r.status_code == 403, r.text
                    assert "chủ trì" in r.json()["message"]
                assert (await member.get(base)).json()["recording"] is False
                r = await secretary.post(f"{base}/policy", json={"who": "chair_secretary"})
                assert r.status_code == 403, "the setting is the chair's"

                r = await chair_http.post(f"{base}/start")
                assert r.status_code == 200, r.text
                assert r.json()["recording"] is True
                assert (await chair_http.post(f"{base}/start")).status_code == 409
                # announced to everyone: the event on the room's topic and the media room's state on every site
                await until(lambda: any(e.get("type") == "recording.started" for e in events), what="the event")
                started = next(e for e in events if e.get("type") == "recording.started")
                assert started["data"]["by"] == "Trần Văn Hùng"
                await until(lambda: op.state.get("recording") is True, what="the site told it is recorded")
                assert (await member.get(base)).json()["recording"] is True

                room = app.state.media.get(mid)
                assert room is not None and room.sfu.recording is not None
                recording = room.sfu.recording
                await until(lambda: len(recording.recorders) == 4, what="four tracks recorded")
                began = time.monotonic()
                await until(lambda: all(r.frames >= (90 if r.kind == "video" else 150) or
                                        (r.participant != site and r.frames >= (60 if r.kind == "video" else 100))
                                        for r in recording.recorders),
                            within=60, what="about 3 s recorded")

                # the chair lets the secretary record too; the secretary stops
                r = await chair_http.post(f"{base}/policy", json={"who": "chair_secretary"})
                assert r.status_code == 200 and r.json()["policy"] == "chair_secretary"
                r = await secretary.post(f"{base}/stop")
                assert r.status_code == 200, r.text
                elapsed = time.monotonic() - began
                assert r.json()["recording"] is False
                await until(lambda: any(e.get("type") == "recording.stopped" for e in events), what="stopped")
                await until(lambda: op.state.get("recording") is False, what="the site told it is not recorded")
        finally:
            await hub.close()
            await asyncio.wait_for(listener, 5)

        r = await member.get(f"/api/meetings/{mid}/recordings")
        assert r.status_code == 403
        r = await chair_http.get(f"/api/meetings/{mid}/recordings")
        assert r.status_code == 200, r.text
        files = r.json()["recordings"]
        assert {(f["participant"], f["kind"]) for f in files} == {
            (site, "video"), (site, "audio"), (f"user:{world.chair.id}", "video"), (f"user:{world.chair.id}", "audio")}
        assert {f["name"] for f in files} == {"Điểm cầu thị xã Đông Triều", "Trần Văn Hùng"}
        assert len({f["session"] for f in files}) == 1
        offsets = [f["offset_ms"] for f in files]
        assert max(offsets) - min(offsets) < 1500, f"tracks start together: {offsets}"
        for f in files:
            r = await member.get(f["url"])
            assert r.status_code == 403
            r = await chair_http.get(f["url"])
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == f"{f['kind']}/webm"
            assert r.headers["content-disposition"].startswith("attachment")
            assert len(r.content) == f["size"]
            codec, packets, first = packets_of(r.content)
            assert codec == ("vp8" if f["kind"] == "video" else "opus")
            assert first is not None and abs(first * 1000 - f["offset_ms"]) < 50, "the file sits on the time line"
            assert 2.0 <= f["duration_ms"] / 1000 <= elapsed + 3.0, (f, elapsed)
            if f["participant"] == site:  # replayed frames: the file holds them byte for byte, not re-encoded
                sent = set(vp8 if f["kind"] == "video" else opus)
                assert all(bytes(p) in sent for p in packets)
                assert len(packets) >= (85 if f["kind"] == "video" else 140)
        # listed in the meeting's archive (its page), for the chair, not for a member
        page = await chair_http.get(f"/meetings/{mid}")
        assert page.status_code == 200, page.text
        assert "Bản ghi hình cuộc họp" in page.text and all(f["url"] in page.text for f in files)
        page = await member.get(f"/meetings/{mid}")
        assert page.status_code == 200 and "Bản ghi hình cuộc họp" not in page.text
        # the local copies are gone once stored
        left = await asyncio.to_thread(lambda: [p for p in Path(settings.recording_dir).rglob("*") if p.is_file()])
        assert left == []

        # the audit trail names who recorded
        async with world.db.uow(readonly=True) as uow:
            actions = list(await uow.session.scalars(
                select(AuditEntry.action).where(AuditEntry.action.like("meeting.recording.%"),
                                                AuditEntry.object_id == str(mid)).order_by(AuditEntry.seq)))
        assert actions == ["meeting.recording.start", "meeting.recording.policy", "meeting.recording.stop"]
