"""The SFU cascade across two real server processes (``uvicorn --factory web.app:create_app``) sharing PostgreSQL
and Redis: a site publishing on process A is seen by the chair on A and by three people on process B, its tracks
cross from A to B once, a keyframe request from B reaches the publisher, and when the site leaves, B's subscribers
see its tracks go. The internal endpoints refuse anyone without the cascade's secret."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets

from meetings.sfu.cascade import SECRET_HEADER
from meetings.sfu.client import consume, until
from meetings.sfu.forwarding import on_keyframe_request
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.synthetic import PatternTrack, ToneTrack
from storage.settings import Settings
from tests.conftest import REDIS_URL, free_port, require, tcp_open
from tests.meetings.conftest import World
from tests.meetings.test_video_media import Remote, joined, token
from tests.web.test_ws_redis import Proc

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120
SECRET = "cascade-secret-" + uuid.uuid4().hex


@pytest.fixture(autouse=True)
def _loopback() -> Iterator[None]:
    with loopback_ice():
        yield


@dataclass
class Node:
    name: str
    proc: Proc

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.proc.port}"

    async def stats(self) -> dict[str, Any]:
        async with websockets.connect(f"ws://{self.host}/internal/sfu/stats",
                                      additional_headers={SECRET_HEADER: SECRET}) as ws:
            data: dict[str, Any] = json.loads(await ws.recv())
            return data


@pytest.fixture
def nodes(settings: Settings, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    require("Redis", tcp_open("127.0.0.1", 6379), "127.0.0.1:6379")
    broker = f"{REDIS_URL.rsplit('/', 1)[0]}/5?channel=test:{uuid.uuid4().hex}"
    started: list[Node] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = {
                **os.environ,
                "EOFFICE_DATABASE_URL": settings.database_url,
                "EOFFICE_BROKER_URL": broker,
                "EOFFICE_BLOB_URL": f"file://{tmp_path}/blobs",
                "EOFFICE_VAR_DIR": str(tmp_path / f"var-{name}"),
                "EOFFICE_SECRET_KEY": settings.secret_key,
                "EOFFICE_TEST_MEDIA_LOOPBACK": "1",
                "EOFFICE_SFU_NODE_ID": name,
                "EOFFICE_SFU_NODE_URL": f"http://127.0.0.1:{port}",
                "EOFFICE_SFU_CASCADE_SECRET": SECRET,
                "PYTHONPATH": str(ROOT),
            }
            log = tmp_path / f"server-{name}.log"
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "web.app:create_app", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
            started.append(Node(name, Proc(port, process, log)))
        for node in started:
            _wait_healthy(node.proc)
        yield started[0], started[1]
    finally:
        for node in started:
            node.proc.process.terminate()
        for node in started:
            try:
                node.proc.process.wait(15)
            except subprocess.TimeoutExpired:
                node.proc.process.kill()


def _wait_healthy(proc: Proc) -> None:
    """The server answers /healthz (generous: the machine may be busy, a server may take a minute to start)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{proc.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{proc.port}/healthz", timeout=5) as r:
                if r.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not healthy in {STARTUP_SECONDS} s:\n{proc.log.read_text()[-3000:]}")
        time.sleep(0.2)


def _video_from(remote: Remote, source: str) -> str | None:
    return next((m for m in remote.client.mids_from(source, "video") if m in remote.client.received), None)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_site_on_one_process_is_seen_on_the_other_through_one_leg(
    nodes: tuple[Node, Node], world: World
) -> None:
    a, b = nodes
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    toks = {k: await token(world, k) for k in ("operator", "chair", "secretary", "member", "member2")}

    async with contextlib.AsyncExitStack() as stack:
        publisher = await stack.enter_async_context(
            joined(a.host, mid, toks["operator"], PatternTrack(160, 120), ToneTrack(0.3)))
        chair = await stack.enter_async_context(joined(a.host, mid, toks["chair"]))
        on_b = [await stack.enter_async_context(joined(b.host, mid, toks[k]))
                for k in ("secretary", "member", "member2")]
        viewers = [chair, *on_b]
        try:
            await until(lambda: all(_video_from(v, site) for v in viewers), within=60,
                        what="the site's video everywhere")
        except AssertionError:  # what each process has, for the report
            for node in nodes:
                print(node.name, json.dumps(await node.stats())[:3000], node.proc.log.read_text()[-3000:])
            raise
        received = []
        for viewer in viewers:
            video_mid = _video_from(viewer, site)
            assert video_mid is not None
            received.append(consume(viewer.client.received[video_mid]))
        await until(lambda: all(len(r.frames) >= 10 for r in received), within=60, what="decoded frames")
        assert {(f.width, f.height) for r in received for f in r.frames} == {(160, 120)}  # type: ignore[union-attr]
        assert {t["name"] for t in on_b[0].client.tracks.values() if t["participant"] == site} == {
            "Điểm cầu thị xã Đông Triều"}

        # once across: A's leg to B carries the site's two tracks; B feeds them to its three people
        sa, sb = await a.stats(), await b.stats()
        exports = sa["cascade"]["meetings"][str(mid)]["exports"]
        assert sorted((t["participant"], t["kind"]) for t in exports["b"]) == [(site, "audio"), (site, "video")]
        imports = sb["cascade"]["meetings"][str(mid)]["imports"]
        assert list(imports) == ["a"]
        assert sorted((t["participant"], t["kind"]) for t in imports["a"]) == [(site, "audio"), (site, "video")]
        assert all(t["subscribers"] == 3 for t in imports["a"])
        published = sa["rooms"][str(mid)][site]["published"]
        assert {p["kind"]: p["subscribers"] for p in published} == {"audio": 2, "video": 2}  # the chair, the leg
        assert sb["media"]["published"] == 2  # the remote site's two tracks, once

        # a keyframe request from a subscriber on B reaches the publisher on A
        await asyncio.sleep(0.5)  # past the PLI rate limit of the joins
        sender = next(t.sender for t in publisher.client.pub_pc.getTransceivers() if t.kind == "video")
        asked: list[int] = []
        on_keyframe_request(sender, lambda: asked.append(1))
        b_client = on_b[1].client
        video_mid = _video_from(on_b[1], site)
        assert video_mid is not None
        receiver = b_client.transceiver(video_mid).receiver
        await receiver._send_rtcp_pli(receiver.getSynchronizationSources()[0].source)
        await until(lambda: bool(asked), within=10, what="the PLI at the publisher")

        # the site leaves A: B's people see its tracks go
        await publisher.close()
        await until(lambda: all(not v.client.mids_from(site) for v in on_b), within=20, what="freed slots on B")
        for r in received:
            if r.task is not None:
                r.task.cancel()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_internal_endpoints_need_the_secret(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    for path, headers in (("/internal/sfu/stats", {}), ("/internal/sfu/stats", {SECRET_HEADER: "doan-bua-0123456789"}),
                          ("/internal/sfu/meetings/1/relay?node=x", {}),
                          ("/internal/sfu/meetings/1/relay?node=x", {SECRET_HEADER: SECRET[:-1]})):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"ws://{a.host}{path}", additional_headers=headers) as ws:
                await ws.recv()
        assert refused.value.response.status_code == 403
    assert "media" in await a.stats()
