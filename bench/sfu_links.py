"""A 10-site meeting with some sites behind impaired links (communes on 1-4 Mbit/s with loss and long round trips):
the SFU's adaptation (Last-N, audio selection, per-site estimate; ``meetings.sfu.adaptation``) against stock
forwarding (every track to every site) in the same run.

    sudo .venv/bin/python bench/sfu_links.py [--window 30] [--warmup 15]

Needs root: network namespaces, veth pairs, ``tc`` and ``iptables`` (Debian ``iproute2`` and ``iptables``).

Test bed (all on this machine, nothing leaves it). A bridge ``sflbr0`` (10.99.0.1) in the root namespace carries the
server; each impaired site is a process in its own namespace ``sfl<i>`` behind a veth pair on the bridge:

* rate: ``tc`` HTB on both ends of the pair (download shaped on the bridge side, upload in the namespace), with a
  byte FIFO of ~200 ms of the rate as the queue (a modest router buffer): overshooting the rate means queueing, then
  drops, as on a real access link;
* loss: ``iptables -m statistic --mode random`` drops UDP in the namespace, both directions (TCP signalling is left
  alone);
* delay and jitter: the kernel here has no ``netem``, so the site's own process delays every UDP datagram its ICE
  agent sends and receives by half the round trip plus a random jitter (order kept), a userspace relay in the
  namespace in all but name.

Profiles: ``1mbit`` 1 Mbit/s, 5 % loss, 300 ms RTT, 30 ms jitter; ``2mbit`` 2 Mbit/s, 3 %, 150 ms, 20 ms; ``4mbit``
4 Mbit/s, 1 %, 50 ms, 10 ms. Seven more sites (one of them the floor holder, who speaks) are on the bridge
unimpaired; they only publish unless ``--clean-receive`` (Python clients receiving 9 streams each are starved on a
busy 2-core machine, and their lateness then shows up everywhere). Every site publishes VP8 640x480 at ~500 kbit/s
(pre-encoded, replayed: it does not adapt to REMB, so the REMB cap is not exercised here) and Opus with in-band FEC
(as browsers send it). Receivers reassemble frames without decoding (``meetings.sfu.frames``) and send receiver
reports but no REMB (see ``Site._on_track``). ``SFL_DEBUG=1`` prints the server's and sites' counters to stderr.

Figures per impaired site (its profile), over the window after the warm-up:

* ``audio_delivered``: fraction of the floor holder's audio frames played: received, or recovered from the next
  packet's in-band FEC (what a browser's NetEq does); ``audio_received`` without the FEC credit;
* ``video_freezes_per_min``: freezes of the floor holder's video (the main view): a frame interval longer than
  max(3 x the mean interval, mean + 150 ms), WebRTC's definition, counting only decodable frames (after a loss
  nothing renders until a keyframe);
* ``video_kbps``: all video the site received;
* ``added_latency_ms``: median one-way audio latency from the floor holder's sender to the site, less the link's
  configured one-way delay (so: server, queueing and retransmission);
* ``server_cores``: CPU of the server process over the window (the same server for all profiles).

``baseline`` is the same meeting with stock forwarding (``SfuRoom(adaptive=False)``), in the same run; ``ratio`` is
adaptive / baseline. Prints one JSON line. Figures from a loaded shared machine must be rechecked on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import itertools
import json
import os
import pickle
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aioice.ice
import av
import numpy as np

from meetings.sfu.client import SfuClient
from meetings.sfu.forwarding import on_keyframe_request
from meetings.sfu.frames import EncodedFrame, install_passthrough
from meetings.sfu.room import SfuRoom
from meetings.sfu.signalling import Message
from meetings.sfu.synthetic import ReplayTrack, encode_vp8

ROOT = str(Path(__file__).resolve().parents[1])
SERVER_IP = "10.99.0.1"
BRIDGE = "sflbr0"
PROFILES: dict[str, dict[str, float]] = {
    "1mbit": {"rate_kbps": 1000, "loss": 0.05, "rtt_ms": 300, "jitter_ms": 30},
    "2mbit": {"rate_kbps": 2000, "loss": 0.03, "rtt_ms": 150, "jitter_ms": 20},
    "4mbit": {"rate_kbps": 4000, "loss": 0.01, "rtt_ms": 50, "jitter_ms": 10},
}
FLOOR = "xa-chu-tri"  # the floor holder: speaks, its video is everyone's main view
CLEAN = [FLOOR, *(f"xa-{n}" for n in range(1, 7))]
WIDTH, HEIGHT, FPS, GOP = 640, 480, 30, 60
AUDIO_RATE = 50
SAMPLES = 960


# -- media --------------------------------------------------------------------------------------------------------


def encode_opus_fec(packets: int, *, loud: bool) -> list[bytes]:
    """Opus (SILK, 20 ms) with in-band FEC on, as browsers send it: a lost packet is rebuilt from the next one."""
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate, codec.sample_rate, codec.layout, codec.format = 24000, 48000, "mono", "s16"
    codec.time_base = fractions.Fraction(1, 48000)
    codec.options = {"fec": "1", "packet_loss": "10", "application": "voip"}
    rng = np.random.default_rng(7 if loud else 3)
    out: list[bytes] = []
    for n in range(packets + 10):
        t = (n * SAMPLES + np.arange(SAMPLES)) / 48000
        amp = (0.4 + 0.2 * np.sin(n / 10)) if loud else 0.01
        pcm = amp * np.sin(2 * np.pi * 220 * t) + amp * 0.1 * rng.standard_normal(SAMPLES)
        frame = av.AudioFrame.from_ndarray((pcm * 32767 * 0.5).astype(np.int16).reshape(1, -1), "s16", "mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, n * SAMPLES, codec.time_base
        out.extend(bytes(p) for p in codec.encode(frame))
    return out[:packets]


def load_media() -> dict[str, list[bytes]]:
    cache = Path(tempfile.gettempdir()) / f"eoffice-bench-sfu-links-{WIDTH}x{HEIGHT}-{GOP}-v1.pickle"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    media = {"video": encode_vp8(GOP, WIDTH, HEIGHT, gop=GOP), "loud": encode_opus_fec(3 * AUDIO_RATE, loud=True),
             "quiet": encode_opus_fec(AUDIO_RATE, loud=False)}
    cache.write_bytes(pickle.dumps(media))
    return media


def only_address(ip: str) -> None:
    """This process's ICE agents offer one host candidate, ``ip`` (the bridge or the site's veth)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [ip] if use_ipv4 else []


# -- test bed -----------------------------------------------------------------------------------------------------


def sh(*args: str, check: bool = True) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")


def shape(dev: str, rate_kbps: float, netns: str | None = None) -> None:
    pre = ["ip", "netns", "exec", netns] if netns else []
    limit = max(15000, int(rate_kbps * 1000 / 8 * 0.2))  # ~200 ms of the rate
    sh(*pre, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
    rate = f"{int(rate_kbps)}kbit"
    sh(*pre, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", rate, "ceil", rate,
       "burst", "15k")
    sh(*pre, "tc", "qdisc", "add", "dev", dev, "parent", "1:10", "bfifo", "limit", str(limit))


def bed_up(sites: list[tuple[str, dict[str, float]]]) -> None:
    bed_down(len(sites))
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{SERVER_IP}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for i, (_, profile) in enumerate(sites):
        ns, host, inner = f"sfl{i}", f"sflh{i}", f"sfln{i}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "link", "set", host, "master", BRIDGE)
        sh("ip", "link", "set", host, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"10.99.0.{10 + i}/24", "dev", inner)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        shape(host, profile["rate_kbps"])
        shape(inner, profile["rate_kbps"], ns)
        for chain in ("INPUT", "OUTPUT"):
            sh("ip", "netns", "exec", ns, "iptables", "-A", chain, "-p", "udp", "-m", "statistic", "--mode", "random",
               "--probability", str(profile["loss"]), "-j", "DROP")


def bed_down(count: int) -> None:
    for i in range(count):
        sh("ip", "netns", "del", f"sfl{i}", check=False)  # takes its end of the veth pair, and so the pair
    sh("ip", "link", "del", BRIDGE, check=False)


# -- server -------------------------------------------------------------------------------------------------------


async def serve(adaptive: bool) -> None:
    only_address(SERVER_IP)
    room = SfuRoom("bench-links", adaptive=adaptive)
    if os.environ.get("SFL_DEBUG"):
        from meetings.sfu.adaptation import LinkEstimate

        report = LinkEstimate.on_report

        def traced(self: LinkEstimate, *a: Any) -> None:
            report(self, *a)
            print("EST", round(time.monotonic(), 1), [round(x, 3) if x else x for x in a], round(self.loss, 3),
                  round(self.loss_bps), round(self.sent_bps), self.remb_bps, file=sys.stderr)

        LinkEstimate.on_report = traced  # type: ignore[method-assign]
    room.floor = FLOOR

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = json.loads(await reader.readline())

        async def send(message: Message) -> None:
            writer.write(json.dumps(message).encode() + b"\n")

        if hello.get("control"):
            while await reader.readline():
                if os.environ.get("SFL_DEBUG"):
                    print(json.dumps(room.stats()), json.dumps(room.link_stats()), file=sys.stderr)
                await send({"links": room.link_stats()})
            return
        try:
            participant = await room.join(hello["participant"], send, name=hello["participant"])
            try:
                while line := await reader.readline():
                    await participant.handle(json.loads(line))
            finally:
                await room.leave(hello["participant"])
        except (ConnectionError, asyncio.CancelledError):
            pass

    server = await asyncio.start_server(connection, SERVER_IP, 0, limit=2**22)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    await room.close()


# -- clients ------------------------------------------------------------------------------------------------------


class Delay:
    """Half the round trip plus jitter on every UDP datagram of this process's ICE agents, each way, order kept."""

    def __init__(self, one_way: float, jitter: float) -> None:
        self.one_way, self.jitter = one_way, jitter
        self._due = {"up": 0.0, "down": 0.0}

    def later(self, direction: str, fn: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        # strictly later than the previous one: asyncio's timer heap does not keep the order of equal deadlines
        due = max(self._due[direction] + 1e-6, loop.time() + self.one_way + random.uniform(0, self.jitter))
        self._due[direction] = due
        loop.call_at(due, fn)

    def install(self) -> None:
        delay = self
        protocol = aioice.ice.StunProtocol
        received, made = protocol.datagram_received, protocol.connection_made

        class Transport:
            def __init__(self, inner: Any) -> None:
                self._inner = inner

            def sendto(self, data: bytes, addr: Any = None) -> None:
                delay.later("up", lambda: self._send(data, addr))

            def _send(self, data: bytes, addr: Any) -> None:
                if not self._inner.is_closing():
                    self._inner.sendto(data, addr)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

        def datagram_received(self: Any, data: bytes, addr: Any) -> None:
            delay.later("down", lambda: received(self, data, addr))

        def connection_made(self: Any, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None:  # seconds of media, as a browser's: a descheduled site must not drop on its socket
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            made(self, Transport(transport))

        protocol.datagram_received = datagram_received  # type: ignore[method-assign]
        protocol.connection_made = connection_made  # type: ignore[method-assign]


class Site:
    """One site: publishes replayed media, receives everyone's without decoding, records what it needs."""

    def __init__(self, name: str, start: float, end: float, record: bool, receive: bool = True,
                 rtt: float = 0.0) -> None:
        self.name, self.start, self.end, self.record, self.receive = name, start, end, record, receive
        self.rtt = rtt
        self.client = SfuClient(on_track=self._on_track)
        self.audio_in: list[tuple[int, float, int]] = []  # floor holder's audio: (timestamp, arrival, loop index)
        self.video_in: list[tuple[float, bool, bool]] = []  # floor holder's video: (arrival, keyframe, after_loss)
        self.video_bytes = 0
        self.sent: list[tuple[int, float]] = []  # (loop index, time) of our audio packets (floor holder)
        self.index: dict[bytes, int] = {}

    def _in_window(self) -> bool:
        return self.start <= time.monotonic() <= self.end

    def _on_track(self, transceiver: Any, track: Any) -> None:
        source = self.client.tracks.get(transceiver.mid or "", {}).get("participant")
        kind = track.kind
        # No REMB from synthetic sites: aiortc's estimator, fed arrival times by a Python process on a busy machine
        # plus the bed's random jitter, reads overuse all the time; the SFU then estimates from receiver reports,
        # as it does for a browser that sends no REMB.
        transceiver.receiver._RTCRtpReceiver__remote_bitrate_estimator = None

        def sink(frame: EncodedFrame) -> None:
            if not self._in_window():
                return
            now = time.monotonic()
            if kind == "video":
                self.video_bytes += len(frame.data)
                if source == FLOOR:
                    self.video_in.append((now, frame.keyframe, frame.after_loss))
            elif source == FLOOR:
                self.audio_in.append((frame.timestamp, now, self.index.get(frame.data, -1)))

        buffer = install_passthrough(transceiver.receiver, kind, sink)
        if self.record:  # wait for a retransmission as a browser does (about a round trip or two), not 250 ms
            buffer._max_wait = max(0.25, 2.5 * self.rtt)

    async def join(self, port: int, media: dict[str, list[bytes]]) -> None:
        reader, writer = await asyncio.open_connection(SERVER_IP, port, limit=2**22)
        writer.write(json.dumps({"participant": self.name}).encode() + b"\n")

        async def send(message: Message) -> None:
            writer.write(json.dumps(message).encode() + b"\n")

        self.client.send = send

        async def read() -> None:
            while line := await reader.readline():
                message = json.loads(line)
                if not self.receive and message.get("pc") == "sub":
                    continue  # a publish-only site: the server's offer to send it the others stays unanswered
                await self.client.handle(message)

        self._reader = asyncio.ensure_future(read())
        audio = media["loud"] if self.name == FLOOR else media["quiet"]
        self.index = {data: i for i, data in enumerate(media["loud"])}

        def on_sent(i: int, data: bytes) -> None:
            if self.name == FLOOR and self.start - 2 <= time.monotonic() <= self.end:
                self.sent.append((i % len(audio), time.monotonic()))

        video = ReplayTrack("video", media["video"], rate=FPS, clock_rate=90000)
        await self.client.publish(video, ReplayTrack("audio", audio, rate=AUDIO_RATE, clock_rate=48000,
                                                     on_sent=on_sent))
        for t in self.client.pub_pc.getTransceivers():
            if t.sender.track is video:
                on_keyframe_request(t.sender, video.request_keyframe)

    def result(self) -> dict[str, Any]:
        return {"audio_in": self.audio_in, "video_in": self.video_in, "video_bytes": self.video_bytes,
                "sent": self.sent}


def udp_receive_errors() -> int:
    """UDP datagrams this network namespace's kernel dropped for a full socket buffer (``RcvbufErrors``)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return int(dict(zip(lines[0], lines[1], strict=True)).get("RcvbufErrors", 0))


def write_json(path: str, data: Any) -> None:
    Path(path).write_text(json.dumps(data))


def read_results(paths: list[Path]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for path in paths:
        if path.exists():
            data.update(json.loads(path.read_text()))
    return data


async def run_sites(args: argparse.Namespace) -> None:
    only_address(args.ip)
    if args.record:
        os.nice(-5)  # the site stands for its own machine: on this shared one, give it its share of the CPU
    if args.rtt_ms:
        Delay(args.rtt_ms / 2000, args.jitter_ms / 1000).install()
    media = load_media()
    sites = [Site(n, args.start, args.end, args.record, args.record or args.clean_receive, args.rtt_ms / 1000)
             for n in args.names]
    for site in sites:
        await site.join(args.port, media)
    await asyncio.sleep(max(0.0, args.end + 1.5 - time.monotonic()))
    drops = udp_receive_errors()
    if os.environ.get("SFL_DEBUG") and args.record:
        for site in sites:
            for t in site.client.sub_pc.getTransceivers():
                buf = t.receiver._RTCRtpReceiver__jitter_buffer
                st = [x for x in (await t.receiver.getStats()).values() if x.type == "inbound-rtp"]
                info = site.client.tracks.get(t.mid, {})
                counts = [(x.packetsReceived, x.packetsLost) for x in st]
                print("SITE", site.name, info.get("participant"), t.kind, counts, getattr(buf, "late_packets", None),
                      getattr(buf, "skipped_packets", None), drops, file=sys.stderr)
    write_json(args.out, {s.name: {**s.result(), "socket_drops": drops} for s in sites})
    for site in sites:
        await site.client.close()


# -- figures ------------------------------------------------------------------------------------------------------


def audio_figures(received: list[tuple[int, float, int]], sent: list[tuple[int, float]], one_way_ms: float,
                  ) -> dict[str, float | None]:
    if len(received) < 2:
        return {"audio_delivered": 0.0, "audio_received": 0.0, "added_latency_ms": None}
    stamps = {ts for ts, _, _ in received}
    first, last = min(stamps), max(stamps)
    expected = [first + k * SAMPLES for k in range((last - first) // SAMPLES + 1)]
    got = sum(1 for ts in expected if ts in stamps)
    played = sum(1 for ts in expected if ts in stamps or ts + SAMPLES in stamps)
    latencies = []
    by_index: dict[int, list[float]] = {}
    for i, at in sent:
        by_index.setdefault(i, []).append(at)
    for _, arrival, i in received:
        before = [at for at in by_index.get(i, []) if at <= arrival]
        if before:
            latencies.append((arrival - max(before)) * 1000)
    added = statistics.median(latencies) - one_way_ms if latencies else None
    return {"audio_delivered": round(played / len(expected), 4), "audio_received": round(got / len(expected), 4),
            "added_latency_ms": None if added is None else round(added, 1)}


def freezes_per_min(video: list[tuple[float, bool, bool]], window: float) -> float:
    shown: list[float] = []
    decodable = False
    for at, keyframe, after_loss in video:
        if after_loss:
            decodable = False
        if keyframe:
            decodable = True
        if decodable:
            shown.append(at)
    if len(shown) < 2:
        return round(60 / window, 2)  # nothing moved: one freeze, the whole window
    gaps = [b - a for a, b in itertools.pairwise(shown)]
    mean = statistics.fmean(gaps)
    freezes = sum(1 for g in gaps if g > max(3 * mean, mean + 0.15))
    freezes += (shown[0] - (video[0][0] if video else shown[0])) > 1.0  # started frozen
    return round(freezes / (window / 60), 2)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def meeting(adaptive: bool, impaired: list[tuple[str, dict[str, float]]], args: argparse.Namespace,
                  tmp: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=ROOT)
    server = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", "1" if adaptive else "0",
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert server.stdout is not None and server.stdin is not None
    port = int(await asyncio.wait_for(server.stdout.readline(), 60))
    setup = 8.0
    start = time.monotonic() + setup + args.warmup
    end = start + args.window
    procs = []
    clean = CLEAN[: args.clean]
    groups: list[tuple[list[str], str, str | None, dict[str, float] | None]] = [
        (clean[:4], SERVER_IP, None, None), (clean[4:], SERVER_IP, None, None)]
    groups = [g for g in groups if g[0]]
    groups += [([name], f"10.99.0.{10 + i}", f"sfl{i}", profile) for i, (name, profile) in enumerate(impaired)]
    outs = []
    for n, (names, ip, ns, profile) in enumerate(groups):
        out = tmp / f"{'a' if adaptive else 'b'}-{n}.json"
        outs.append(out)
        cmd = [sys.executable, __file__, "--sites", *names, "--ip", ip, "--port", str(port), "--start", str(start),
               "--end", str(end), "--out", str(out)]
        if args.clean_receive:
            cmd.append("--clean-receive")
        if profile is not None:
            cmd += ["--rtt-ms", str(profile["rtt_ms"]), "--jitter-ms", str(profile["jitter_ms"]), "--record"]
        if ns is not None:
            cmd = ["ip", "netns", "exec", ns, *cmd]
        procs.append(await asyncio.create_subprocess_exec(*cmd, env=env))
        if n == 0:
            await asyncio.sleep(1.0)  # the floor holder first
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    cpu0, load0 = cpu_seconds(server.pid), os.getloadavg()
    control = await asyncio.open_connection(SERVER_IP, port)
    control[1].write(b'{"control": true}\n')
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    cpu1 = cpu_seconds(server.pid)
    control[1].write(b"{}\n")
    links = json.loads(await asyncio.wait_for(control[0].readline(), 10))["links"]
    control[1].close()
    for p in procs:
        try:
            await asyncio.wait_for(p.wait(), 60)
        except TimeoutError:
            p.kill()
            await p.wait()
    server.stdin.close()
    try:
        await asyncio.wait_for(server.wait(), 20)
    except TimeoutError:
        server.kill()
        await server.wait()
    data = read_results(outs)
    sent = data.get(FLOOR, {}).get("sent", [])
    cores = round((cpu1 - cpu0) / args.window, 3)
    figures: dict[str, Any] = {"server_cores": cores, "load_average": [round(x, 2) for x in load0]}
    for name, profile in impaired:
        site = data.get(name)
        if site is None:
            figures[name] = {"error": "the site's process wrote no result"}
            continue
        f = audio_figures([tuple(x) for x in site["audio_in"]], [tuple(x) for x in sent], profile["rtt_ms"] / 2)
        f["video_freezes_per_min"] = freezes_per_min([tuple(x) for x in site["video_in"]], args.window)
        f["video_kbps"] = round(site["video_bytes"] * 8 / args.window / 1000, 1)
        f["main_view_fps"] = round(len(site["video_in"]) / args.window, 1)
        f["site_socket_drops"] = site.get("socket_drops")
        f["server_cores"] = cores
        f["server_view"] = {k: links.get(name, {}).get(k) for k in
                            ("loss_pct", "rtt_ms", "available_kbps", "sent_kbps", "video_forwarded", "quality")}
        figures[name] = f
    return figures


async def main(args: argparse.Namespace) -> dict[str, Any]:
    impaired = [(f"xa-{p}", PROFILES[p]) for p in args.profiles]
    load_media()  # encode once, before anything is measured
    bed_up(impaired)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            adaptive = await meeting(True, impaired, args, Path(tmp))
            stock = await meeting(False, impaired, args, Path(tmp))
    finally:
        bed_down(len(impaired))
    keys = ("audio_delivered", "audio_received", "video_freezes_per_min", "video_kbps", "added_latency_ms",
            "server_cores")
    profiles: dict[str, Any] = {}
    for (name, profile), p in zip(impaired, args.profiles, strict=True):
        a, b = adaptive.get(name, {}), stock.get(name, {})
        ratio = {k: round(a[k] / b[k], 3) if isinstance(a.get(k), int | float) and b.get(k) else None for k in keys}
        profiles[p] = {**{k: int(v) if k == "rate_kbps" else v for k, v in profile.items()},
                       **{k: a.get(k) for k in keys}, "server_view": a.get("server_view"),
                       "baseline": {k: b.get(k) for k in keys}, "ratio": ratio}
    cascade: dict[str, Any] = {}
    if not args.no_cascade:  # one meeting over two processes (bench/sfu_cascade.py), no network shaping
        from bench import sfu_cascade

        cascade = await sfu_cascade.main(sfu_cascade.parse(["--quick"] if args.quick else []))
    return {"bench": "sfu_links", "sites": args.clean + len(impaired), "window_s": args.window,
            "cascade_sites": cascade.get("cascade_sites"), "cascade_server_cores": cascade.get("cascade_server_cores"),
            "cascade_baseline_server_cores": cascade.get("baseline_server_cores"),
            "cascade_ratio": cascade.get("ratio"),
            "warmup_s": args.warmup, "clean_sites_receive": args.clean_receive, "profiles": profiles,
            "server_cores": adaptive["server_cores"], "baseline_server_cores": stock["server_cores"],
            "load_average": adaptive["load_average"], "baseline_load_average": stock["load_average"],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "targets": {"audio_delivered_2mbit": 0.99, "video_freezes_per_min": 1.0},
            "note": "measured on a loaded shared machine: recheck on a quiet one"}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (make bench): 10 s window, 10 s warm-up")
    parser.add_argument("--no-cascade", action="store_true", help="leave out the two-process meeting (sfu_cascade)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring (estimates settle)")
    parser.add_argument("--clean", type=int, default=len(CLEAN), help="unimpaired sites (the floor holder first)")
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--serve", choices=["0", "1"], help=argparse.SUPPRESS)
    parser.add_argument("--sites", dest="names", nargs="+", help=argparse.SUPPRESS)
    for name, kind in (("--ip", str), ("--port", int), ("--start", float), ("--end", float), ("--out", str),
                       ("--rtt-ms", float), ("--jitter-ms", float)):
        parser.add_argument(name, type=kind, default=0 if kind is not str else "", help=argparse.SUPPRESS)
    parser.add_argument("--record", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--clean-receive", action="store_true",
                        help="the unimpaired sites receive too (a Python client per 9 streams: a busy machine "
                             "starves them, so by default they only publish)")
    args = parser.parse_args()
    if args.quick:
        args.window, args.warmup = 10.0, 10.0
    return args


if __name__ == "__main__":
    arguments = parse()
    if arguments.serve:
        asyncio.run(serve(arguments.serve == "1"))
    elif arguments.names:
        asyncio.run(run_sites(arguments))
    else:
        if os.geteuid() != 0:
            sys.exit("bench/sfu_links.py needs root (network namespaces, tc, iptables)")
        print(json.dumps(asyncio.run(main(arguments)), ensure_ascii=False))
