"""An aiortc participant that speaks the SFU's signalling protocol, an in-process link standing in for the
WebSocket, and :class:`LocalMeeting`, a room with in-process clients for tests.

Used by the tests and ``bench/sfu.py``; the client could also serve a headless recorder of a meeting. Browsers use
the JavaScript client in the meeting page, which speaks the same messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .room import Participant, SfuRoom, rtc_configuration
from .signalling import Message, Send

logger = logging.getLogger(__name__)


class SfuClient:
    """Publishes tracks on a ``pub`` connection and receives the others' on a ``sub`` connection."""

    def __init__(
        self,
        *,
        ice_servers: list[RTCIceServer] | tuple[RTCIceServer, ...] = (),
        on_track: Callable[[RTCRtpTransceiver, MediaStreamTrack], None] | None = None,
    ) -> None:
        self.ice_servers = list(ice_servers)
        self.pub_pc, self.sub_pc = self._new_connections()
        self.local_tracks: list[MediaStreamTrack] = []
        self.restarts = 0  # ICE restarts asked for
        self.restarting = False  # between our "restart" and the server's "restarted"
        self.send: Send | None = None
        self.on_track = on_track
        self.tracks: dict[str, dict[str, Any]] = {}  # mid -> what the server says the slot carries
        self.received: dict[str, MediaStreamTrack] = {}  # mid -> remote track
        self.active_speaker: str | None = None
        self.errors: list[str] = []
        self.messages: list[Message] = []
        self.published = asyncio.Event()
        self.tracks_changed = asyncio.Event()

    def _new_connections(self) -> tuple[RTCPeerConnection, RTCPeerConnection]:
        config = rtc_configuration(self.ice_servers)
        pub, sub = RTCPeerConnection(config), RTCPeerConnection(config)
        sub.on("track", self._on_track)
        return pub, sub

    def transceiver(self, mid: str) -> RTCRtpTransceiver:
        return next(t for t in self.sub_pc.getTransceivers() if t.mid == mid)

    def mids_from(self, participant_id: str, kind: str | None = None) -> list[str]:
        return [
            mid
            for mid, info in self.tracks.items()
            if info["participant"] == participant_id and (kind is None or info["kind"] == kind)
        ]

    async def publish(self, *tracks: MediaStreamTrack) -> None:
        assert self.send is not None, "connect the client first"
        self.local_tracks.extend(tracks)
        for track in tracks:
            self.pub_pc.addTransceiver(_Borrowed(track), direction="sendonly")
        await self.pub_pc.setLocalDescription(await self.pub_pc.createOffer())
        await self.send({"type": "offer", "pc": "pub", "sdp": self.pub_pc.localDescription.sdp})

    async def restart(self) -> None:
        """ICE restart after a network change (new address, a path that stopped working): ask the server for new
        connections; :meth:`handle` makes ours when it says ``restarted`` and publishes the same tracks again.
        aiortc cannot restart ICE on a live connection, so this is a new pair (see ``SfuRoom.restart``)."""
        assert self.send is not None, "connect the client first"
        self.restarting = True
        self.restarts += 1
        self.published.clear()
        await self.send({"type": "restart"})

    async def _restarted(self, message: Message) -> None:
        if message.get("ice_servers") is not None:  # fresh TURN credentials
            self.ice_servers = [
                RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                for s in message["ice_servers"]
            ]
        old = (self.pub_pc, self.sub_pc)
        self.pub_pc, self.sub_pc = self._new_connections()
        self.received.clear()
        self.tracks = {}
        self.restarting = False
        await asyncio.gather(*(pc.close() for pc in old))
        tracks, self.local_tracks = self.local_tracks, []
        if tracks:
            await self.publish(*tracks)

    async def mute(self, kind: str, muted: bool = True) -> None:
        assert self.send is not None
        await self.send({"type": "mute", "kind": kind, "muted": muted})

    async def handle(self, message: Message) -> None:
        self.messages.append(message)
        kind, pc = message.get("type"), message.get("pc")
        if kind == "restarted":
            await self._restarted(message)
        elif self.restarting and (pc is not None or kind == "tracks"):
            pass  # meant for the connections being replaced
        elif kind == "answer" and pc == "pub":
            await self.pub_pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
            self.published.set()
        elif kind == "offer" and pc == "sub":
            self._set_tracks(message.get("tracks", []))
            await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
            await self.sub_pc.setLocalDescription(await self.sub_pc.createAnswer())
            assert self.send is not None
            await self.send({"type": "answer", "pc": "sub", "sdp": self.sub_pc.localDescription.sdp})
        elif kind == "tracks":
            self._set_tracks(message["tracks"])
        elif kind == "active-speaker":
            self.active_speaker = message["participant"]
        elif kind == "error":
            self.errors.append(message["reason"])
            if message.get("op") == "restart":  # refused (too soon): the old connections stay
                self.restarting = False

    def _set_tracks(self, tracks: list[dict[str, Any]]) -> None:
        self.tracks = {t["mid"]: t for t in tracks}
        self.tracks_changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.sub_pc.getTransceivers() if t.receiver.track is track)
        assert transceiver.mid is not None  # set once the offer/answer gave it a line
        self.received[transceiver.mid] = track
        if self.on_track is not None:
            self.on_track(transceiver, track)

    async def close(self) -> None:
        await asyncio.gather(self.pub_pc.close(), self.sub_pc.close())


class _Borrowed(MediaStreamTrack):
    """A local track as one peer connection sends it: aiortc stops a sender's track when its connection closes,
    and a restart must send the same camera again on the new one."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source

    async def recv(self) -> Any:
        return await self.source.recv()


class Pipe:
    """One direction of a message channel: JSON-encoded, delivered in order by its own task, like a WebSocket."""

    def __init__(self, deliver: Callable[[Message], Awaitable[None]]) -> None:
        self._deliver = deliver
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._run())
        self.count = 0

    async def send(self, message: Message) -> None:
        self._queue.put_nowait(json.dumps(message, ensure_ascii=False))

    async def _run(self) -> None:
        while (text := await self._queue.get()) is not None:
            self.count += 1
            try:
                await self._deliver(json.loads(text))
            except Exception:
                logger.exception("delivering a signalling message failed")

    async def close(self) -> None:
        self._queue.put_nowait(None)
        await self._task


@dataclass
class InProcessLink:
    participant: Participant
    client: SfuClient
    pipes: list[Pipe] = field(default_factory=list)

    @classmethod
    async def join(cls, room: SfuRoom, participant_id: str, client: SfuClient, *, name: str = "") -> InProcessLink:
        joined: asyncio.Future[Participant] = asyncio.get_running_loop().create_future()

        async def to_participant(message: Message) -> None:
            await joined
            current = room.participants.get(participant_id)  # a restart replaces the Participant, like a socket's
            if current is not None:  # handler the link looks it up for every message
                await current.handle(message)

        to_server = Pipe(to_participant)
        client.send = to_server.send  # the room may offer before join() returns
        to_client = Pipe(client.handle)
        participant = await room.join(participant_id, to_client.send, name=name)
        joined.set_result(participant)
        return cls(participant, client, [to_client, to_server])

    async def close(self) -> None:
        for pipe in self.pipes:
            await pipe.close()


async def until(condition: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Received:
    """Everything one subscriber decoded from one track."""

    frames: list[av.VideoFrame | av.AudioFrame] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


def consume(track: MediaStreamTrack) -> Received:
    received = Received()

    async def run() -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, (av.VideoFrame, av.AudioFrame))  # a decoded track gives frames, not packets
                received.frames.append(frame)
                received.times.append(time.monotonic())
        except MediaStreamError:
            pass

    received.task = asyncio.ensure_future(run())
    return received


class LocalMeeting:
    """A room and in-process aiortc clients joined to it, closed together (for tests; use with loopback ICE)."""

    def __init__(self, room_id: str = "cuộc họp giao ban") -> None:
        self.room = SfuRoom(room_id)
        self.clients: dict[str, SfuClient] = {}
        self.links: dict[str, InProcessLink] = {}
        self.received: list[Received] = []

    async def join(self, pid: str, *tracks: MediaStreamTrack) -> SfuClient:
        client = SfuClient()
        self.clients[pid] = client
        self.links[pid] = await InProcessLink.join(self.room, pid, client, name=f"Điểm cầu {pid}")
        if tracks:
            await client.publish(*tracks)
            await until(lambda: len(self.links[pid].participant.publications) == len(tracks), what="publications")
        return client

    async def receive(self, pid: str, source: str, kind: str) -> Received:
        client = self.clients[pid]
        await until(lambda: any(m in client.received for m in client.mids_from(source, kind)), what="remote track")
        mid = next(m for m in client.mids_from(source, kind) if m in client.received)
        received = consume(client.received[mid])
        self.received.append(received)
        return received

    async def leave(self, pid: str) -> None:
        await self.room.leave(pid)
        await self.clients.pop(pid).close()
        await self.links.pop(pid).close()

    def server_receivers(self) -> list[RTCRtpReceiver]:
        return [t.receiver for p in self.room.participants.values() for t in p.pub.pc.getTransceivers()]

    def server_senders(self) -> list[RTCRtpSender]:
        return [t.sender for p in self.room.participants.values() for t in p.sub.pc.getTransceivers()]

    async def close(self) -> None:
        for received in self.received:
            if received.task:
                received.task.cancel()
        await self.room.close()
        for client in self.clients.values():
            await client.close()
        for link in self.links.values():
            await link.close()
