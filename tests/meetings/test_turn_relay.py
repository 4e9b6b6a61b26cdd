"""TURN against a real coturn: a remote site (điểm cầu) in a network namespace whose direct UDP to the server is
dropped reaches the meeting's video only through coturn, over UDP, over TCP (all UDP dropped) and over TLS (a
self-signed certificate the site trusts); then its path breaks and comes back, and the site's ICE restart brings the
picture back as the same participant with its mute and the floor.

The server (uvicorn in this process, on the bridge address ``HOST``) gets ``EOFFICE_TURN_URLS`` and
``EOFFICE_TURN_SECRET`` and hands each session TURN REST credentials; coturn (``turnserver``, started here on
random ports with the same secret) listens on the bridge too. The site is ``tests/meetings/turn_site.py`` run with
``ip netns exec``: an aiortc participant that decodes the chair's video and reports the selected candidate pair.
The chair is an aiortc participant in this process. Root, iproute2, iptables and coturn are needed (``make test``
installs them): without them the test skips on a developer machine and fails under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioice.ice
import httpx
import pytest
import uvicorn

from meetings.sfu.client import until
from meetings.sfu.loopback import AIOICE_HOST_ADDRESSES
from meetings.sfu.registry import TURN_SECRET_ENV, TURN_URLS_ENV
from meetings.sfu.synthetic import PatternTrack
from storage.settings import Settings
from tests import coturn, netbed
from tests.conftest import free_port, require
from tests.meetings.conftest import World
from tests.meetings.test_video_media import joined, token
from web.app import create_app

HOST, SITE, NETNS = "10.96.19.1", "10.96.19.2", "eoturn"
SECRET = "bí-mật-coturn-thử"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "eoffice.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(scope="module")
def link() -> Iterator[netbed.Link]:
    why = netbed.missing()
    require("network namespaces (TURN test bed)", why is None, why or "")
    require("coturn", coturn.missing() is None, coturn.missing() or "")
    try:
        with netbed.impaired_link(None, 0, NETNS, host_ip=HOST, site_ip=SITE) as built:
            yield built
    except RuntimeError as exc:
        require("network namespaces (TURN test bed)", False, str(exc))


@pytest.fixture(scope="module")
def turn(link: netbed.Link, tmp_path_factory: pytest.TempPathFactory) -> Iterator[coturn.Coturn]:
    """turnserver on the bridge: plain port (UDP and TCP) and TLS port, relay ports from a random range."""
    try:
        with coturn.running(HOST, SECRET, tmp_path_factory.mktemp("coturn")) as started:
            yield started
    except RuntimeError as exc:
        require("coturn", False, str(exc))


@pytest.fixture
async def server(settings: Settings, world: World, turn: coturn.Coturn,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setenv(TURN_URLS_ENV, turn.urls())
    monkeypatch.setenv(TURN_SECRET_ENV, SECRET)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", AIOICE_HOST_ADDRESSES)  # real addresses, not loopback
    app = create_app(settings)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on"))
    srv.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the test runner owns signals
    task = asyncio.ensure_future(srv.serve())
    await until(lambda: srv.started or task.done(), within=30, what="uvicorn")
    assert not task.done(), "uvicorn did not start"
    try:
        yield f"{HOST}:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 30)


def netns_iptables(link: netbed.Link, *rule: str) -> None:
    subprocess.run(link.command("iptables", *rule), check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def only_turn_reachable(link: netbed.Link, transport: str, coturn_port: int) -> Iterator[None]:
    """UDP between the site and the server dropped, except to coturn's port (``udp``) or altogether."""
    rules: list[tuple[str, ...]] = []
    if transport == "udp":
        rules += [("OUTPUT", "-p", "udp", "-d", HOST, "--dport", str(coturn_port), "-j", "ACCEPT"),
                  ("INPUT", "-p", "udp", "-s", HOST, "--sport", str(coturn_port), "-j", "ACCEPT")]
    rules += [("OUTPUT", "-p", "udp", "-j", "DROP"), ("INPUT", "-p", "udp", "-j", "DROP")]
    for rule in rules:
        netns_iptables(link, "-A", *rule)
    try:
        yield
    finally:
        netns_iptables(link, "-F", "INPUT")
        netns_iptables(link, "-F", "OUTPUT")


class Site:
    """The site's process in the namespace and what it last reported."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.reports: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.output: list[str] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            self.output.append(line)
            try:
                data = json.loads(line)
            except ValueError:
                continue
            (self.states if "state" in data else self.reports).append(data)

    @property
    def last(self) -> dict[str, Any]:
        return self.reports[-1] if self.reports else {"frames": 0, "restarts": 0, "pair": None}

    def tail(self) -> str:
        return "\n".join(self.output[-15:])

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await asyncio.wait_for(self.reader, 10)


@contextlib.asynccontextmanager
async def site_process(link: netbed.Link, url: str, transport: str, cert: Path) -> AsyncIterator[Site]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SSL_CERT_FILE": str(cert)}  # the site trusts coturn's certificate
    proc = await asyncio.create_subprocess_exec(
        *link.command(sys.executable, str(REPO / "tests" / "meetings" / "turn_site.py"), url, transport),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        cwd=str(REPO))
    site = Site(proc)
    try:
        yield site
    finally:
        await site.stop()


async def wait(site: Site, condition: Any, within: float, what: str) -> None:
    try:
        await until(condition, within=within, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the site said:\n{site.tail()}") from None


def relayed(report: dict[str, Any]) -> bool:
    pair = report.get("pair")
    return bool(pair) and pair["local"] == "relay"


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_a_site_without_direct_udp_gets_the_video_through_coturn_and_restarts_ice(
    transport: str, link: netbed.Link, turn: coturn.Coturn, server: str, world: World
) -> None:
    m = await world.meeting(start=True)
    mid, site_id = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok = [await token(world, k) for k in ("chair", "operator")]
    turn_port = turn.tls_port if transport == "tls" else turn.port
    started = time.monotonic()
    with only_turn_reachable(link, transport, turn.port):
        async with joined(server, mid, chair_tok, PatternTrack(160, 120)) as chair, \
                site_process(link, f"ws://{server}/ws/meetings/{mid}/media?token={op_tok}", transport,
                             turn.cert) as site:
            await wait(site, lambda: (site.last["frames"] >= 20 and relayed(site.last))
                       or site.proc.returncode is not None, 90, "the chair's picture at the site")
            assert site.proc.returncode is None, site.tail()
            first = site.last
            assert first["you"] == site_id
            pair = first["pair"]
            # the media goes site -> coturn -> server: a relay candidate on coturn's relay address (the server's
            # own address is the bridge, so the remote candidate is the server's host candidate)
            assert pair["local"] == "relay" and pair["local_address"].startswith(f"{HOST}:"), pair
            assert first["pub_pair"] and first["pub_pair"]["local"] == "relay", first
            assert first["errors"] == []
            assert first["turn"].startswith("turns:" if transport == "tls" else "turn:")
            assert first["turn"].endswith("transport=udp" if transport == "udp" else "transport=tcp")
            connected_in = time.monotonic() - started

            # the chair gives the site the floor (which opens its microphone), then mutes it; the site's place in
            # the roster
            async with httpx.AsyncClient(base_url=f"http://{server}",
                                         headers={"Authorization": f"Bearer {chair_tok}"}) as http:
                r = await http.post(f"/api/meetings/{mid}/video/floor", json={"participant": site_id})
                assert r.status_code == 200, r.text
                r = await http.post(f"/api/meetings/{mid}/video/mute",
                                    json={"participant": site_id, "kind": "audio", "muted": True})
                assert r.status_code == 200, r.text
            await until(lambda: chair.state.get("floor") == site_id, what="the floor in the chair's state")
            order = [x["id"] for x in chair.state["roster"]]

            # the site's path to coturn breaks: the picture stops, the site restarts ICE (new connections, same
            # session) and keeps trying; the path comes back and the picture with it
            proto = "udp" if transport == "udp" else "tcp"
            block = ("OUTPUT", "-p", proto, "-d", HOST, "--dport", str(turn_port), "-j", "DROP")
            netns_iptables(link, "-I", *block)
            try:
                await wait(site, lambda: site.last["restarts"] >= 1, 60, "the site's ICE restart")
                stalled = site.last["frames"]
            finally:
                netns_iptables(link, "-D", *block)
            broken = time.monotonic()
            await wait(site, lambda: site.last["frames"] >= stalled + 20 and relayed(site.last), 120,
                       "the picture after the restart")
            recovered_in = time.monotonic() - broken
            after = site.last
            assert after["you"] == site_id and after["errors"] == []
            assert after["pair"]["local_address"] != pair["local_address"], "a new allocation on coturn"

            # same participant: once in the roster, in the same place, still muted by the chair, holding the floor
            await until(lambda: [x["id"] for x in chair.state["roster"]] == order, what="the roster")
            entry = next(x for x in chair.state["roster"] if x["id"] == site_id)
            assert entry["muted"]["audio"] and entry["imposed"]["audio"], entry
            assert chair.state["floor"] == site_id
            # and the chair gets the site's picture again on its slot
            await until(lambda: any(x in chair.client.received for x in chair.client.mids_from(site_id, "video")),
                        what="the site's video slot at the chair")
            print(f"TURN {transport}: picture at the site {connected_in:.1f} s after joining, back "
                  f"{recovered_in:.1f} s after the path returned ({after['restarts']} restarts), pair {after['pair']}, "
                  f"load {os.getloadavg()[0]:.1f}")
