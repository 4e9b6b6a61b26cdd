"""The forwarding SFU against stock aiortc re-encoding, a 10-site meeting, latency per hop and loss.

    .venv/bin/python bench/sfu.py [--quick] [--window 20]

Arrangement. The server runs in its own process (this file with ``--serve``), so its CPU time is measured alone
(developer aid: ``SFU_BENCH_PROFILE=/tmp/sfu.prof`` runs it under cProfile; ``--only meeting`` runs the meeting only):
``time.process_time()`` (all threads: aiortc's decoder threads and encoder executor included) read at the start and
end of a fixed wall-clock window. Clients run in this process (the meeting's in client processes, see 2) and cost no
codec work: publishers replay pre-encoded VP8 (640x480, ~500 kbit/s, 30 fps, a keyframe every 2 s) and Opus (20 ms
packets) as ``av.Packet``; subscribers reassemble encoded frames without a decoder (``meetings.sfu.frames``), so
nothing is decoded on either side. Signalling is the
SFU's JSON protocol over one TCP connection per participant; ICE runs on 127.0.0.1.

1. Fan-out: one publisher, N viewers. Ours forwards; the baseline is stock aiortc in the same run: the server
   decodes the publisher's track and ``MediaRelay`` feeds each viewer's sender, which encodes (aiortc's VP8 encoder
   at its defaults). Streams per core = delivered frames per second / 30, divided by the cores the server used.
2. Meeting: 10 participants, each publishing video and audio and receiving everyone else's: 10 video + 10 audio
   tracks published, each forwarded to 9 viewers (90 video + 90 audio forwarded streams). Server CPU over the
   window; frames delivered against frames expected; RTP packet loss from the subscribers' receiver statistics;
   packets per second sent and what SRTP encryption and ``sendto`` alone cost per packet (measured apart, in this
   process), i.e. the part of the server's CPU no Python code can remove. The participants run in a few client
   processes (``--client-processes``) with 4 MiB socket receive buffers: one Python process cannot receive 180
   streams on a busy 2-core machine, and the packets a starved client loses (and NACKs) would be charged to the
   server.
3. Latency per hop: publish -> SFU -> subscriber, measured from the moment the publisher's sender takes a packet to
   the moment the subscriber has the complete frame, minus the same path without the SFU (a direct peer
   connection), both running at once. The SFU forwards each RTP packet as it arrives (no jitter buffer on the
   server), so the hop adds only its processing time.

Prints the figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import json
import os
import pickle
import socket
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from meetings.sfu.client import SfuClient
from meetings.sfu.forwarding import on_keyframe_request
from meetings.sfu.frames import EncodedFrame, install_passthrough
from meetings.sfu.loopback import enable_loopback_ice
from meetings.sfu.room import SfuRoom, rtc_configuration
from meetings.sfu.signalling import Message, SignallingSession
from meetings.sfu.synthetic import ReplayTrack, encode_opus, encode_vp8

WIDTH, HEIGHT, FPS, GOP = 640, 480, 30, 60
AUDIO_RATE = 50  # Opus packets per second


# -- media --------------------------------------------------------------------------------------------------------


def load_media() -> tuple[list[bytes], list[bytes]]:
    """Pre-encoded VP8 and Opus loops, cached between runs (encoding 480p takes a few seconds)."""
    cache = Path(tempfile.gettempdir()) / f"eoffice-bench-sfu-{WIDTH}x{HEIGHT}-{GOP}-v1.pickle"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    media = (encode_vp8(GOP, WIDTH, HEIGHT, gop=GOP), encode_opus(2 * AUDIO_RATE))
    cache.write_bytes(pickle.dumps(media))
    return media


# -- server process -----------------------------------------------------------------------------------------------


class RelayRoom:
    """The baseline: stock aiortc. Incoming tracks are decoded; MediaRelay gives each viewer's sender decoded frames,
    which it encodes. Enough of SfuRoom's join/handle surface for the fan-out scenario (publisher first)."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.sources: list[MediaStreamTrack] = []
        self.sessions: list[SignallingSession] = []

    async def join(self, participant_id: str, send: Callable[[Message], Any]) -> Any:
        pub = SignallingSession(RTCPeerConnection(rtc_configuration()), send, name="pub")
        sub = SignallingSession(RTCPeerConnection(rtc_configuration()), send, name="sub")
        self.sessions += [pub, sub]
        pub.pc.on("track", self.sources.append)
        for source in self.sources:
            sub.pc.addTransceiver(self.relay.subscribe(source), direction="sendonly")
        if self.sources:
            await sub.negotiate()

        class Handle:
            @staticmethod
            async def handle(message: Message) -> None:
                await (pub if message.get("pc") == "pub" else sub).handle(message)

        return Handle()

    async def leave(self, participant_id: str) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()


async def serve(mode: str) -> None:
    enable_loopback_ice()
    rooms: dict[str, Any] = {"relay": RelayRoom()} if mode == "relay" else {"sfu": SfuRoom("bench")}

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = json.loads(await reader.readline())

        async def send(message: Message) -> None:
            writer.write(json.dumps(message).encode() + b"\n")

        if hello.get("control"):
            while line := await reader.readline():
                command = json.loads(line)
                reply: dict[str, Any] = {"cpu": time.process_time(), "wall": time.monotonic()}
                if command.get("stats"):
                    reply["stats"] = {name: room.stats() for name, room in rooms.items()}
                await send(reply)
            return
        room = rooms[hello["room"]]
        try:
            participant = await room.join(hello["participant"], send)
            try:
                while line := await reader.readline():
                    await participant.handle(json.loads(line))
            finally:
                await room.leave(hello["participant"])
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the benchmark is shutting the server down

    server = await asyncio.start_server(connection, "127.0.0.1", 0, limit=2**22)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()
    for room in rooms.values():
        await room.close()


class Server:
    """The server subprocess, and a control connection to read its CPU time."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process, self.port = process, port
        self._control: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @classmethod
    async def start(cls, mode: str) -> Server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", mode, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None
        port = int(await asyncio.wait_for(process.stdout.readline(), 30))
        return cls(process, port)

    async def sample(self, stats: bool = False) -> dict[str, Any]:
        if self._control is None:
            self._control = await asyncio.open_connection("127.0.0.1", self.port, limit=2**22)
            self._control[1].write(b'{"control": true}\n')
        reader, writer = self._control
        writer.write(json.dumps({"stats": stats}).encode() + b"\n")
        return json.loads(await reader.readline())

    async def stop(self) -> None:
        if self._control is not None:
            self._control[1].close()
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


# -- clients ------------------------------------------------------------------------------------------------------


class Measure:
    """Client-side bookkeeping: when each payload was sent (per publisher) and when frames arrived.

    With ``raw``, samples are also kept as they are (publisher, payload CRC, time) so that a parent process can match
    what one client process received against what another one sent (``time.monotonic`` is system-wide on Linux;
    ``hash()`` of bytes is not the same in two processes, hence the CRC).
    """

    def __init__(self, raw: bool = False) -> None:
        self.sent: dict[tuple[str, int], float] = {}
        self.recording = False
        self.frames: collections.Counter[str] = collections.Counter()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.first_frame: set[tuple[str, str, str]] = set()
        self.raw = raw
        self.raw_sent: collections.deque[tuple[str, int, float]] = collections.deque()
        self.raw_received: list[tuple[str, str, int, float]] = []

    def on_sent(self, publisher: str) -> Callable[[int, bytes], None]:
        def record(index: int, data: bytes) -> None:
            now = time.monotonic()
            self.sent[(publisher, zlib.crc32(data))] = now
            if self.raw:
                self.raw_sent.append((publisher, zlib.crc32(data), now))
                while self.raw_sent[0][2] < now - 3.0 and not self.recording:
                    self.raw_sent.popleft()

        return record

    def sink(self, viewer: str, publisher: str, kind: str, category: str) -> Callable[[EncodedFrame], None]:
        def on_frame(frame: EncodedFrame) -> None:
            now = time.monotonic()
            self.first_frame.add((viewer, publisher, kind))
            if not self.recording:
                return
            self.frames[f"{category}-{kind}"] += 1
            if self.raw:
                self.raw_received.append((publisher, kind, zlib.crc32(frame.data), now))
                return
            sent = self.sent.get((publisher, zlib.crc32(frame.data)))
            if sent is not None and now - sent < 1.0:
                self.latency[f"{category}-{kind}"].append(now - sent)

        return on_frame


def match_latency(
    sent: list[tuple[str, int, float]], received: list[tuple[str, str, int, float]]
) -> dict[str, list[float]]:
    """For each frame received, the time since its publisher last sent that payload (within a second)."""
    times: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
    for publisher, digest, at in sent:
        times[(publisher, digest)].append(at)
    for values in times.values():
        values.sort()
    latency: dict[str, list[float]] = collections.defaultdict(list)
    for publisher, kind, digest, at in received:
        values = times.get((publisher, digest), [])
        i = bisect.bisect_right(values, at)
        if i and at - values[i - 1] < 1.0:
            latency[f"meeting-{kind}"].append(at - values[i - 1])
    return latency


class Participant:
    """An SfuClient over a TCP signalling connection, publishing replayed media, receiving without decoding."""

    def __init__(self, pid: str, measure: Measure, category: str) -> None:
        self.pid, self.measure, self.category = pid, measure, category
        self.client = SfuClient(on_track=self._on_track)
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    def _on_track(self, transceiver: RTCRtpTransceiver, track: MediaStreamTrack) -> None:
        source = self.client.tracks.get(transceiver.mid or "", {}).get("participant") or "?"
        sink = self.measure.sink(self.pid, source, track.kind, self.category)
        install_passthrough(transceiver.receiver, track.kind, sink)
        # The receiver's bandwidth estimator (REMB) is a large part of a Python client's work per packet, and the
        # SFU has no use for a subscriber's REMB (it forwards the publisher's bitrate): spare the clients that.
        transceiver.receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]

    async def join(self, port: int, room: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
        self._writer = writer
        writer.write(json.dumps({"room": room, "participant": self.pid}).encode() + b"\n")

        async def send(message: Message) -> None:
            writer.write(json.dumps(message).encode() + b"\n")

        self.client.send = send

        async def read() -> None:
            while line := await reader.readline():
                await self.client.handle(json.loads(line))

        self._task = asyncio.ensure_future(read())

    async def publish(self, video: list[bytes], audio: list[bytes] | None) -> None:
        tracks: list[MediaStreamTrack] = [
            ReplayTrack("video", video, rate=FPS, clock_rate=90000, on_sent=self.measure.on_sent(self.pid))
        ]
        if audio is not None:
            tracks.append(
                ReplayTrack("audio", audio, rate=AUDIO_RATE, clock_rate=48000, on_sent=self.measure.on_sent(self.pid))
            )
        await self.client.publish(*tracks)
        for transceiver in self.client.pub_pc.getTransceivers():  # honour PLI like a live encoder would
            track = transceiver.sender.track
            if isinstance(track, ReplayTrack) and track.kind == "video":
                on_keyframe_request(transceiver.sender, track.request_keyframe)

    async def receive_stats(self) -> tuple[int, int]:
        received = lost = 0
        for transceiver in self.client.sub_pc.getTransceivers():
            for stat in (await transceiver.receiver.getStats()).values():
                if stat.type == "inbound-rtp":
                    received += stat.packetsReceived
                    lost += max(0, stat.packetsLost)
        return received, lost

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
        await self.client.close()


async def wait_for_streams(measure: Measure, expected: int, within: float) -> int:
    """Wait until ``expected`` streams have delivered a frame; on a machine too busy for that, go on after
    ``within`` seconds with the streams that did (the figures then say how much was delivered)."""
    deadline = time.monotonic() + within
    while len(measure.first_frame) < expected:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    if len(measure.first_frame) < expected:
        print(f"   only {len(measure.first_frame)} of {expected} streams started within {within:.0f} s")
    return len(measure.first_frame)


async def measured_window(server: Server | None, measure: Measure, window: float) -> dict[str, float]:
    before = await server.sample() if server else None
    client_before = time.process_time()
    measure.recording = True
    await asyncio.sleep(window)
    measure.recording = False
    after = await server.sample() if server else None
    result = {"client_cores": (time.process_time() - client_before) / window}
    if before and after:
        result["server_cores"] = (after["cpu"] - before["cpu"]) / (after["wall"] - before["wall"])
    return result


# -- scenarios ----------------------------------------------------------------------------------------------------


async def fanout(mode: str, viewers: int, window: float, media: tuple[list[bytes], list[bytes]]) -> dict[str, Any]:
    server = await Server.start(mode)
    measure = Measure()
    people: list[Participant] = []
    try:
        publisher = Participant("dong-trieu", measure, mode)
        people.append(publisher)
        await publisher.join(server.port, mode)
        await publisher.publish(media[0], None)
        await publisher.client.published.wait()
        await asyncio.sleep(0.5)
        for n in range(viewers):
            viewer = Participant(f"xem-{n}", measure, mode)
            people.append(viewer)
            await viewer.join(server.port, mode)
        await wait_for_streams(measure, viewers, 20)
        await asyncio.sleep(1.0)
        cpu = await measured_window(server, measure, window)
        delivered_fps = measure.frames[f"{mode}-video"] / window
        streams = delivered_fps / FPS
        return {
            "mode": mode,
            "viewers": viewers,
            "server_cores": cpu["server_cores"],
            "delivered_fps_per_viewer": delivered_fps / viewers,
            "streams_per_core": streams / cpu["server_cores"],
        }
    finally:
        for person in people:
            await person.close()
        await server.stop()


class ClientProcess:
    """Some of the meeting's participants, in a process of their own (one Python process cannot receive 180 streams
    on a busy 2-core machine without losing packets, which would then be charged to the server). Commands and
    answers are JSON lines on stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, port: int, participants: list[str]) -> ClientProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--clients", str(port), *participants,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26,
        )  # fmt: skip
        client = cls(process)
        await client.read(60)  # {"ready": true} once everyone in it has published
        return client

    async def read(self, within: float = 30) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        if not line:
            raise RuntimeError("a client process ended early")
        return json.loads(line)

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": command}).encode() + b"\n")
        return await self.read()

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def udp_receive_buffer_drops() -> int | None:
    """Datagrams the kernel dropped because a socket's receive buffer was full (whole machine, Linux only)."""
    try:
        lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


CLIENT_RCVBUF = 4 * 1024 * 1024  # Linux's usual net.core.rmem_max; the kernel caps what we ask at it


def enlarge_receive_buffers(pc: RTCPeerConnection) -> None:
    """Give the client's UDP sockets room for a few seconds of media: on a machine shared with other work a client
    process is sometimes descheduled for longer than the default 208 KiB buffer lasts (~0.3 s of 9 streams), and
    the packets the kernel then drops would count as loss caused by the server."""
    for transceiver in pc.getTransceivers():
        connection = getattr(transceiver.receiver.transport.transport, "_connection", None)
        for protocol in getattr(connection, "_protocols", []):
            if protocol.transport is not None:
                sock = protocol.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)


async def serve_clients(port: int, pids: list[str]) -> None:
    """The ``--clients`` side of :class:`ClientProcess`."""
    enable_loopback_ice()
    media = load_media()
    measure = Measure(raw=True)
    people = [Participant(pid, measure, "meeting") for pid in pids]
    for person in people:
        await person.join(port, "sfu")
        await person.publish(*media)
        await person.client.published.wait()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    answer({"ready": True})
    before: list[tuple[int, int]] = []
    cpu = wall = 0.0
    while line := await reader.readline():
        command = json.loads(line)["cmd"]
        if command == "status":
            for person in people:
                enlarge_receive_buffers(person.client.sub_pc)
            answer({"started": len(measure.first_frame)})
        elif command == "start":
            before = [await p.receive_stats() for p in people]
            measure.frames.clear()
            measure.raw_received.clear()
            cpu, wall = time.process_time(), time.monotonic()
            measure.recording = True
            answer({"ok": True})
        elif command == "stop":
            measure.recording = False
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            after = [await p.receive_stats() for p in people]
            answer(
                {
                    "cpu": cpu,
                    "wall": wall,
                    "frames": dict(measure.frames),
                    "received": sum(a[0] - b[0] for a, b in zip(after, before, strict=True)),
                    "lost": sum(a[1] - b[1] for a, b in zip(after, before, strict=True)),
                    "sent": list(measure.raw_sent),
                    "samples": measure.raw_received,
                }
            )
    for person in people:
        await person.close()


async def meeting(sites: int, window: float, processes: int) -> dict[str, Any]:
    server = await Server.start("sfu")
    groups = [[f"diem-cau-{n}" for n in range(i, sites, processes)] for i in range(processes)]
    clients: list[ClientProcess] = []
    try:
        for group in groups:
            clients.append(await ClientProcess.start(server.port, group))
        streams = sites * (sites - 1)
        deadline = time.monotonic() + (20 if window < 10 else 60)
        while (started := sum([(await c.ask("status"))["started"] for c in clients])) < 2 * streams:
            if time.monotonic() > deadline:
                print(f"   only {started} of {2 * streams} streams started")
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        before = await server.sample(stats=True)
        drops_before = udp_receive_buffer_drops()
        await asyncio.gather(*(c.ask("start") for c in clients))
        await asyncio.sleep(window)
        results = await asyncio.gather(*(c.ask("stop") for c in clients))
        after = await server.sample(stats=True)
        drops_after = udp_receive_buffer_drops()
        server_wall = after["wall"] - before["wall"]  # a little longer than the clients' window
        server_cores = (after["cpu"] - before["cpu"]) / server_wall
        sent_before, sent_after = server_counts(before["stats"]["sfu"]), server_counts(after["stats"]["sfu"])
        received = sum(r["received"] for r in results)
        lost = sum(r["lost"] for r in results)
        frames: collections.Counter[str] = collections.Counter()
        for r in results:
            frames.update(r["frames"])
        latency = match_latency(
            [tuple(x) for r in results for x in r["sent"]], [tuple(x) for r in results for x in r["samples"]]
        )
        expected = {"video": streams * FPS * window, "audio": streams * AUDIO_RATE * window}
        sent = {k: sent_after[k] - sent_before[k] for k in sent_after}
        # CPU per frame the server actually forwarded, times the frames of a meeting where nothing is missing:
        # robust when the machine is too busy for the server (or the clients) to keep up.
        per_frame = server_cores * server_wall / max(1, sent["video"] + sent["audio"])
        rate = sent["packets"] / server_wall
        costs = per_packet_costs(round(sent["bytes"] / max(1, sent["packets"])))
        return {
            "sites": sites,
            "client_processes": processes,
            "per_packet_cost": costs,
            "srtp_cores": costs["srtp"] * rate,
            "sendto_cores": costs["sendto"] * rate,
            "forwarded_streams": {"video": streams, "audio": streams},
            "server_cores": server_cores,
            # if frames were missing because the server did not get enough CPU, what it would need for all of them
            "server_cores_all_frames": per_frame * sum(expected.values()) / window,
            "server_forwarded": {k: sent[k] / (expected[k] * server_wall / window) for k in expected},
            "server_packets_per_second": sent["packets"] / server_wall,
            "server_bytes_per_packet": sent["bytes"] / max(1, sent["packets"]),
            "server_retransmissions": sent["retransmissions"],
            "client_cores": sum(r["cpu"] for r in results) / window,
            # against what each client process should have received over its own recording window
            "delivered": {
                k: frames[f"meeting-{k}"]
                / sum(len(g) * (sites - 1) * rate * r["wall"] for g, r in zip(groups, results, strict=True))
                for k, rate in (("video", FPS), ("audio", AUDIO_RATE))
            },
            "rtp_packets_received": received,
            "rtp_packet_loss": lost / max(1, received + lost),
            "udp_receive_buffer_drops": None if drops_before is None else drops_after - drops_before,
            "server_frames_dropped": sent["dropped"],
            "latency_ms": summarise(latency, "meeting"),
        }
    finally:
        for client in clients:
            await client.stop()
        await server.stop()


async def latency(window: float, media: tuple[list[bytes], list[bytes]]) -> dict[str, Any]:
    """Through the SFU and over a direct connection, side by side."""
    server = await Server.start("sfu")
    measure = Measure()
    people: list[Participant] = []
    direct: list[RTCPeerConnection] = []
    try:
        for room in ("sfu",):
            publisher, viewer = Participant(f"pub-{room}", measure, room), Participant(f"view-{room}", measure, room)
            people += [publisher, viewer]
            await publisher.join(server.port, room)
            await publisher.publish(*media)
            await viewer.join(server.port, room)

        sender, receiver = RTCPeerConnection(rtc_configuration()), RTCPeerConnection(rtc_configuration())
        direct += [sender, receiver]
        for kind, payloads, rate, clock in (("video", media[0], FPS, 90000), ("audio", media[1], AUDIO_RATE, 48000)):
            on_sent = measure.on_sent("pub-direct")
            sender.addTransceiver(ReplayTrack(kind, payloads, rate=rate, clock_rate=clock, on_sent=on_sent), "sendonly")

        @receiver.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            t = next(t for t in receiver.getTransceivers() if t.receiver.track is track)
            install_passthrough(t.receiver, track.kind, measure.sink("view-direct", "pub-direct", track.kind, "direct"))

        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)

        await wait_for_streams(measure, 4, 20)
        await asyncio.sleep(1.0)
        await measured_window(None, measure, window)
        lat = summarise(measure.latency)
        per_hop = {
            f"{buffer}-{kind}": lat[f"{buffer}-{kind}"]["median"] - lat[f"direct-{kind}"]["median"]
            for buffer in ("sfu",)
            for kind in ("video", "audio")
        }
        return {"end_to_end_ms": lat, "added_per_hop_ms": per_hop}
    finally:
        for person in people:
            await person.close()
        for pc in direct:
            await pc.close()
        await server.stop()


def server_counts(stats: dict[str, Any]) -> dict[str, int]:
    """Totals over every subscriber slot of the server's room: frames by kind, packets, bytes, retransmissions."""
    totals = dict.fromkeys(("video", "audio", "packets", "bytes", "retransmissions", "dropped"), 0)
    for participant in stats.values():
        for slot in participant["slots"]:
            totals[slot["kind"]] += slot["frames_sent"]
            totals["packets"] += slot["packets_sent"]
            totals["bytes"] += slot["bytes_sent"]
            totals["retransmissions"] += slot["retransmissions"]
            totals["dropped"] += slot["frames_dropped"]
    return totals


def summarise(samples: dict[str, list[float]], prefix: str = "") -> dict[str, dict[str, float]]:
    out = {}
    for key, values in sorted(samples.items()):
        if not key.startswith(prefix) or len(values) < 2:
            continue
        ms = sorted(v * 1000 for v in values)
        out[key.removeprefix(f"{prefix}-") if prefix else key] = {
            "median": round(statistics.median(ms), 2),
            "p95": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "n": len(ms),
        }
    return out


def per_packet_costs(size: int, count: int = 20000) -> dict[str, float]:
    """CPU seconds per packet of ``size`` bytes for the two costs no Python code can remove: SRTP encryption
    (pylibsrtp, the profile aiortc prefers) and the ``sendto`` system call on loopback (measured with the calling
    thread's CPU time, so the thread draining the receiving socket is not counted)."""
    import threading

    from aiortc.rtcdtlstransport import SRTP_PROFILES
    from pylibsrtp import Policy, Session

    profile = SRTP_PROFILES[0]
    key = os.urandom(profile.key_length + profile.salt_length)
    session = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile.libsrtp_profile))
    payload = os.urandom(max(0, size - 12))
    packets = [bytes([0x80, 96]) + n.to_bytes(2, "big") + bytes(8) + payload for n in range(count)]
    started = time.thread_time()
    for packet in packets:
        session.protect(packet)
    srtp = (time.thread_time() - started) / count

    receiver, sender = (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    )
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.5)
    address = receiver.getsockname()

    def drain() -> None:
        with contextlib.suppress(OSError):
            while receiver.recv(2048):
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    data = packets[0] + bytes(16)
    started = time.thread_time()
    for _ in range(count):
        sender.sendto(data, address)
    sendto = (time.thread_time() - started) / count
    sender.close()
    receiver.close()
    thread.join(1)
    return {"srtp": srtp, "sendto": sendto}


def report_meeting(meet: dict[str, Any]) -> None:
    print(
        f"   {meet['forwarded_streams']['video']} video + {meet['forwarded_streams']['audio']} audio streams: "
        f"server {meet['server_cores']:.3f} cores (target < 0.5); clients {meet['client_cores']:.3f} cores"
    )
    print(
        f"   the server forwarded {meet['server_forwarded']['video']:.1%} of video and "
        f"{meet['server_forwarded']['audio']:.1%} of audio frames; at its CPU cost per forwarded frame, every frame "
        f"would take {meet['server_cores_all_frames']:.2f} cores (load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores)"
    )
    rate, costs = meet["server_packets_per_second"], meet["per_packet_cost"]
    print(
        f"   {rate:.0f} packets/s sent ({meet['server_bytes_per_packet']:.0f} bytes each, "
        f"{meet['server_retransmissions']} retransmissions); of that, SRTP encryption alone "
        f"{costs['srtp'] * 1e6:.1f} us/packet = {meet['srtp_cores']:.3f} cores and sendto "
        f"{costs['sendto'] * 1e6:.1f} us/packet = {meet['sendto_cores']:.3f} cores"
    )
    print(
        f"   delivered {meet['delivered']['video']:.1%} of video and {meet['delivered']['audio']:.1%} of audio "
        f"frames; RTP loss {meet['rtp_packet_loss']:.3%} of {meet['rtp_packets_received']} packets "
        f"(the kernel dropped {meet['udp_receive_buffer_drops']} datagrams on full receive buffers meanwhile); "
        f"{meet['server_frames_dropped']} frames dropped by the server (waiting for a keyframe)"
    )
    for key, value in meet["latency_ms"].items():
        print(f"   end to end {key}: median {value['median']:.1f} ms, p95 {value['p95']:.1f} ms")


def meeting_summary(meet: dict[str, Any]) -> dict[str, Any]:
    return {
        "meeting_sites": meet["sites"],
        "meeting_streams": meet["forwarded_streams"],
        "meeting_server_cores": round(meet["server_cores"], 3),
        "meeting_server_cores_all_frames": round(meet["server_cores_all_frames"], 3),
        "meeting_packets_per_second": round(meet["server_packets_per_second"]),
        "meeting_srtp_cores": round(meet["srtp_cores"], 3),
        "meeting_sendto_cores": round(meet["sendto_cores"], 3),
        "meeting_delivered": {k: round(v, 4) for k, v in meet["delivered"].items()},
        "meeting_server_forwarded": {k: round(v, 4) for k, v in meet["server_forwarded"].items()},
        "meeting_rtp_loss": round(meet["rtp_packet_loss"], 5),
        "meeting_udp_receive_buffer_drops": meet["udp_receive_buffer_drops"],
        "meeting_retransmissions": meet["server_retransmissions"],
        "meeting_client_cores": round(meet["client_cores"], 3),
        "meeting_latency_ms": meet["latency_ms"],
    }


# -- main ---------------------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> dict[str, Any]:
    enable_loopback_ice()
    t0 = time.monotonic()
    load_before = os.getloadavg()[0]
    media = load_media()
    kbps = sum(map(len, media[0])) * 8 / (len(media[0]) / FPS) / 1000
    print(
        f"media: VP8 {WIDTH}x{HEIGHT} {FPS} fps ~{kbps:.0f} kbit/s, Opus 20 ms; {os.cpu_count()} cores on this machine"
    )

    if args.only == "meeting":
        meet = await meeting(args.sites, args.window, args.client_processes)
        report_meeting(meet)
        return {"bench": "sfu", "only": "meeting", **meeting_summary(meet)}
    print("\n1. latency per hop (publish -> SFU -> subscriber, minus a direct connection)")
    lat = await latency(args.window / 2, media)
    for key, value in lat["end_to_end_ms"].items():
        print(f"   end to end {key:14s} median {value['median']:7.2f} ms  p95 {value['p95']:7.2f} ms  (n={value['n']})")
    for key, value in lat["added_per_hop_ms"].items():
        print(f"   added by the SFU, {key.split('-')[1]}: {value:+.2f} ms")

    print(f"\n2. fan-out, one 480p publisher (window {args.window:.0f} s)")
    ours = await fanout("sfu", args.viewers, args.window, media)
    relay = await fanout("relay", args.relay_viewers, args.window, media)
    for r in (ours, relay):
        name = "forwarding SFU     " if r["mode"] == "sfu" else "MediaRelay re-encode"
        print(
            f"   {name} {r['viewers']:3d} viewers: server {r['server_cores']:.3f} cores, "
            f"{r['delivered_fps_per_viewer']:.1f} fps per viewer -> {r['streams_per_core']:.0f} streams per core"
        )
    ratio = ours["streams_per_core"] / relay["streams_per_core"]
    print(f"   ratio: {ratio:.1f}x (target >= 10x)")

    print(
        f"\n3. meeting of {args.sites} sites, everyone sees and hears everyone (window {args.window:.0f} s, "
        f"clients in {args.client_processes} processes)"
    )
    meet = await meeting(args.sites, args.window, args.client_processes)
    report_meeting(meet)
    elapsed = time.monotonic() - t0
    print(f"\n{elapsed:.0f} s in all")
    return {
        "bench": "sfu",
        "quick": args.quick,
        "streams_per_core": {"sfu": round(ours["streams_per_core"], 1), "relay": round(relay["streams_per_core"], 1)},
        "ratio": round(ratio, 1),
        "fanout_viewers": {"sfu": ours["viewers"], "relay": relay["viewers"]},
        **meeting_summary(meet),
        "added_latency_per_hop_ms": {k: round(v, 2) for k, v in lat["added_per_hop_ms"].items()},
        "end_to_end_ms": lat["end_to_end_ms"],
        "seconds": round(elapsed, 1),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows, fewer viewers (well under 2 minutes)")
    parser.add_argument("--window", type=float, help="seconds each measurement lasts")
    parser.add_argument("--viewers", type=int, help="viewers of the forwarding SFU in the fan-out")
    parser.add_argument("--relay-viewers", type=int, help="viewers of the re-encoding baseline")
    parser.add_argument("--sites", type=int, default=10, help="participants in the meeting")
    parser.add_argument(
        "--only",
        choices=["meeting"],
        help="run one scenario (e.g. to profile the server with SFU_BENCH_PROFILE=/tmp/sfu.prof)",
    )
    parser.add_argument("--client-processes", type=int, default=3, help="processes the meeting's clients run in")
    parser.add_argument("--serve", choices=["sfu", "relay"], help=argparse.SUPPRESS)
    parser.add_argument("--clients", nargs="+", help=argparse.SUPPRESS)  # PORT PARTICIPANT...
    args = parser.parse_args()
    args.window = args.window or (8.0 if args.quick else 20.0)
    args.viewers = args.viewers or (10 if args.quick else 20)
    args.relay_viewers = args.relay_viewers or (2 if args.quick else 4)
    return args


if __name__ == "__main__":
    arguments = parse()
    if arguments.serve and os.environ.get("SFU_BENCH_PROFILE"):  # developer aid: profile the server process
        import cProfile

        cProfile.run(f"asyncio.run(serve({arguments.serve!r}))", os.environ["SFU_BENCH_PROFILE"])
    elif arguments.serve:
        asyncio.run(serve(arguments.serve))
    elif arguments.clients:
        asyncio.run(serve_clients(int(arguments.clients[0]), arguments.clients[1:]))
    else:
        result = asyncio.run(main(arguments))
        print(json.dumps(result, ensure_ascii=False))
