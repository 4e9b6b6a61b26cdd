"""Cascade: one meeting across several SFU processes (issue #19).

Sites connect to the process nearest them (or the one a load balancer picks); each process relays each track of
*its own* sites once to each other process of the meeting, however many subscribers that process has for it.

The leg between two processes is an ordinary aiortc peer connection, with the roles the SFU already knows: process
B joins process A's room as a *relay* participant (``relay:{B's node id}``, see :class:`~.room.Participant`), so A
offers it one ``sub`` slot per track of A's own sites, with the usual ``tracks`` map saying which site each slot
carries. B answers with a :class:`RelayImport`, wraps each received track in a
:class:`~.forwarding.TrackForwarder` and publishes it in its own room for a *remote* participant, the site on A.
Everything the forwarding already does across one hop works across the leg: B's subscribers' NACKs are answered
from B's history, B's own losses on the leg are NACKed to A (which answers from its history); a subscriber's
PLI on B makes B's forwarder send a PLI on the leg, which A's relay slot turns into a PLI to the publisher. When the
site leaves A its slot on the leg is freed (``tracks``), B removes the remote publication and its subscribers' slots
are freed as for a local site. A relay never gets tracks that were themselves relayed (no loops: one hop from any
process to any other, a full mesh of legs between the processes of a meeting).

A process needs a leg from A only while it has sites of its own in the meeting; it then receives all of A's
sites' tracks (every site subscribes to every other one; Last-N and the audio selection run on B for B's sites,
the relay slots on A are never switched off).

Discovery and signalling:

* ``EOFFICE_SFU_NODE_URL`` (this process's internal address, ``http://10.0.0.5:8001``), ``EOFFICE_SFU_NODE_ID``
  (default: the URL) and ``EOFFICE_SFU_CASCADE_SECRET`` (the same long random string on every process) switch the
  cascade on; it needs the Redis broker (``EOFFICE_BROKER_URL=redis://...``).
* A process with sites in meeting M lists itself in the Redis hash ``{channel}:sfu:meeting:M`` (node id -> URL) and
  announces it on the channel ``{channel}:sfu``; the others with sites in M open a leg from it, and it opens one
  from each of them. With its last site gone it removes itself and the others close their legs.
* The leg's signalling is a WebSocket, ``/internal/sfu/meetings/{M}/relay?node=B`` on A, refused (4403) without the
  shared secret in the ``X-Eoffice-Sfu-Secret`` header (browsers cannot set it); keep ``/internal/`` off the public
  proxy as well. ``/internal/sfu/stats`` (same secret) gives the process's media statistics.

A mute carried out on the site's own process crosses the leg (``muted``), so the other processes' sites are told.
Known limits: a mute is carried out by the process that handles the chair's request, so one requested on B for a
site on A stops that site on B's side only; the floor is per process; rosters are per process; a process that
dies without removing itself leaves a stale entry, which the others retry with backoff until it comes back or the
meeting ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from .forwarding import TrackForwarder, negotiated_codec
from .room import Publication, SfuRoom, rtc_configuration
from .signalling import Message, Send

if TYPE_CHECKING:
    from .registry import MediaRegistry, MediaRoom

logger = logging.getLogger(__name__)

NODE_URL_ENV = "EOFFICE_SFU_NODE_URL"
NODE_ID_ENV = "EOFFICE_SFU_NODE_ID"
SECRET_ENV = "EOFFICE_SFU_CASCADE_SECRET"
SECRET_HEADER = "X-Eoffice-Sfu-Secret"
RELAY_PREFIX = "relay:"
RETRY_MIN, RETRY_MAX = 0.5, 10.0  # seconds between attempts to open a leg


@dataclass(frozen=True)
class CascadeSettings:
    node_id: str
    url: str  # http(s)://host:port of this process, reachable by the other processes
    secret: str
    redis_url: str
    channel: str  # the broker's channel: keys and announcements are named after it (two deployments never mix)

    @classmethod
    def from_env(cls, broker_url: str, env: Mapping[str, str] | None = None) -> CascadeSettings | None:
        env = os.environ if env is None else env
        url, secret = env.get(NODE_URL_ENV, "").strip().rstrip("/"), env.get(SECRET_ENV, "").strip()
        if not url and not secret:
            return None
        if not url or not secret:
            raise ValueError(f"the SFU cascade needs both {NODE_URL_ENV} and {SECRET_ENV}")
        if len(secret) < 16 or not secret.isascii() or not secret.isprintable():
            raise ValueError(f"{SECRET_ENV} must be at least 16 printable ASCII characters (it travels in a header)")
        if not broker_url.startswith(("redis://", "rediss://")):
            raise ValueError("the SFU cascade needs the Redis broker (EOFFICE_BROKER_URL=redis://...)")
        from storage.pubsub.redis import channel_for  # the Redis client loads only where the cascade is on

        redis_url, channel = channel_for(broker_url)
        return cls(env.get(NODE_ID_ENV, "").strip() or url, url, secret, redis_url, channel)


class RelayImport:
    """Process B's end of a leg from process A: A's sites' tracks, published in B's room as remote participants."""

    def __init__(self, room: SfuRoom, origin: str, send: Send) -> None:
        self.room = room
        self.origin = origin
        self.send = send
        self.pc = RTCPeerConnection(rtc_configuration(room.ice_servers))
        self.forwarders: dict[str, TrackForwarder] = {}  # mid -> the leg's receiver, for the life of the leg
        self.pubs: dict[str, Publication] = {}  # mid -> what it carries now, published in the room
        self.failed = asyncio.Event()  # ICE or DTLS gave up (aiortc has no ICE restart): open a new leg
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self.failed.set()

    async def handle(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "offer" and message.get("pc") == "sub":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=str(message["sdp"]), type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.send({"type": "answer", "pc": "sub", "sdp": self.pc.localDescription.sdp})
            await self._set_tracks(message.get("tracks") or [])
        elif kind == "tracks":
            await self._set_tracks(message.get("tracks") or [])
        elif kind == "muted":  # a site muted on its process: this side's sites are told too
            who = self.room.participants.get(str(message.get("participant")))
            if who is not None and who.remote and message.get("kind") in ("audio", "video"):
                self.room.set_muted(who.id, str(message["kind"]), bool(message.get("muted")))
        elif kind == "error":
            logger.warning("relay leg from %s: %s", self.origin, message.get("reason"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        if transceiver.mid is not None and transceiver.mid not in self.forwarders:
            # the tap goes in now: no packet of the leg ever reaches a decoder
            self.forwarders[transceiver.mid] = TrackForwarder(
                transceiver.receiver, track.kind, codec=negotiated_codec(transceiver)
            )

    async def _set_tracks(self, tracks: list[dict[str, Any]]) -> None:
        for info in tracks:
            mid, who = str(info.get("mid")), info.get("participant")
            current = self.pubs.get(mid)
            if current is not None and current.participant.id != who:
                del self.pubs[mid]
                await self.room.remove_remote(current)
            forwarder = self.forwarders.get(mid)
            if who is None or mid in self.pubs or forwarder is None:
                continue
            pub = self.room.add_remote(str(who), str(info.get("name") or who), str(info.get("kind")), forwarder)
            if pub is not None:
                self.pubs[mid] = pub

    def stats(self) -> list[dict[str, Any]]:
        return [
            {
                "participant": pub.participant.id,
                "kind": pub.kind,
                "packets_in": pub.forwarder.packets_in,
                "subscribers": len(pub.forwarder.subscribers),
                "keyframe_requests_sent": pub.forwarder.keyframe_requests_sent,
            }
            for pub in self.pubs.values()
        ]

    async def close(self) -> None:
        pubs, self.pubs = list(self.pubs.values()), {}
        for pub in pubs:
            await self.room.remove_remote(pub)
        await self.pc.close()


def relay_exports(room: SfuRoom) -> dict[str, list[dict[str, Any]]]:
    """Process A's ends of the legs: per relay participant, the tracks it carries to its process."""
    out: dict[str, list[dict[str, Any]]] = {}
    for p in room.participants.values():
        if p.relay:
            out[p.id.removeprefix(RELAY_PREFIX)] = [
                {
                    "participant": s.publication.participant.id,
                    "kind": s.kind,
                    "packets_sent": s.track.packets_sent,
                    "keyframe_requests_received": s.track.keyframe_requests_received,
                }
                for s in p.slots
                if s.publication is not None
            ]
    return out


class Cascade:
    """This process's part of the cascade: its entries in Redis and the legs it opens from the other processes."""

    def __init__(self, settings: CascadeSettings, registry: MediaRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.attached: set[int] = set()  # meetings this process has sites in (and is listed for)
        self.legs: dict[tuple[int, str], asyncio.Task[None]] = {}  # (meeting, origin node) -> the leg's task
        self.imports: dict[tuple[int, str], RelayImport] = {}
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    def authorised(self, secret: str | None) -> bool:
        return secret is not None and hmac.compare_digest(secret.encode(), self.settings.secret.encode())

    def _key(self, meeting_id: int) -> str:
        return f"{self.settings.channel}:sfu:meeting:{meeting_id}"

    @property
    def _channel(self) -> str:
        return f"{self.settings.channel}:sfu"

    async def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis  # only where the cascade is on (no Redis in the embedded set-up)

            self._redis = aioredis.Redis.from_url(self.settings.redis_url, decode_responses=True)
            self._listener = asyncio.ensure_future(self._listen())
        return self._redis

    async def attach(self, room: MediaRoom) -> None:
        """The room has a site of this process: list this process for the meeting and open the legs it needs."""
        mid = room.meeting_id
        async with self._lock:
            if mid in self.attached:
                return
            self.attached.add(mid)
            try:
                redis = await self._client()
                await redis.hset(self._key(mid), self.node_id, self.settings.url)
                await redis.publish(self._channel, json.dumps(
                    {"meeting": mid, "node": self.node_id, "url": self.settings.url, "present": True}))
                nodes = await redis.hgetall(self._key(mid))
            except Exception as exc:  # Redis down: this process's sites still see each other; the next join retries
                logger.warning("SFU cascade: cannot list meeting %s in Redis (%s)", mid, exc)
                self.attached.discard(mid)
                return
        for node, url in nodes.items():
            self._open(mid, node, url)

    async def detach(self, room: MediaRoom) -> None:
        """The room's last site of this process left: unlist this process and close the legs into it."""
        mid = room.meeting_id
        async with self._lock:
            if mid not in self.attached:
                return
            self.attached.discard(mid)
            try:
                redis = await self._client()
                await redis.hdel(self._key(mid), self.node_id)
                await redis.publish(self._channel, json.dumps(
                    {"meeting": mid, "node": self.node_id, "present": False}))
            except Exception as exc:  # the others' legs into this process then fail and retry until it is back
                logger.warning("SFU cascade: cannot unlist meeting %s in Redis (%s)", mid, exc)
        for key in [k for k in self.legs if k[0] == mid]:
            await self._stop(key)

    def _open(self, meeting_id: int, node: str, url: str) -> None:
        key = (meeting_id, node)
        if node == self.node_id or key in self.legs or meeting_id not in self.attached:
            return
        self.legs[key] = asyncio.ensure_future(self._leg(meeting_id, node, url))

    async def _stop(self, key: tuple[int, str]) -> None:
        task = self.legs.pop(key, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _listen(self) -> None:
        """Other processes joining and leaving meetings (announcements on the channel)."""
        delay = RETRY_MIN
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self._channel)
                delay = RETRY_MIN
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        event = json.loads(message["data"])
                        mid, node = int(event["meeting"]), str(event["node"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    if node == self.node_id:
                        continue
                    if event.get("present"):
                        self._open(mid, node, str(event.get("url", "")))
                    else:
                        await self._stop((mid, node))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("SFU cascade: announcements lost (%s); resubscribing", exc)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)

    async def _leg(self, meeting_id: int, node: str, url: str) -> None:
        """Keep a leg from ``node`` open while this process has sites in the meeting (reconnecting with backoff)."""
        from websockets.asyncio.client import connect  # the client side: only processes that open relay legs
        from websockets.exceptions import WebSocketException  # idem

        ws_url = (url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
                  + f"/internal/sfu/meetings/{meeting_id}/relay?node={quote(self.node_id)}")
        delay = RETRY_MIN
        while meeting_id in self.attached:
            room = self.registry.get(meeting_id)
            if room is None:
                return
            relay: RelayImport | None = None
            try:
                async with connect(ws_url, additional_headers={SECRET_HEADER: self.settings.secret},
                                   max_size=2**20, open_timeout=10) as ws:
                    async def send(message: Message, ws: Any = ws) -> None:
                        await ws.send(json.dumps(message, ensure_ascii=False))

                    relay = self.imports[(meeting_id, node)] = RelayImport(room.sfu, node, send)
                    delay = RETRY_MIN
                    logger.info("SFU cascade: leg from %s for meeting %s open", node, meeting_id)
                    async def watch(ws: Any = ws, relay: RelayImport = relay) -> None:
                        await relay.failed.wait()
                        logger.warning("SFU cascade: leg from %s for meeting %s failed; reopening", node,
                                       meeting_id)
                        await ws.close()

                    watcher = asyncio.ensure_future(watch())
                    try:
                        async for text in ws:
                            await relay.handle(json.loads(text))
                    finally:
                        watcher.cancel()
            except (OSError, WebSocketException, TimeoutError, ValueError) as exc:
                logger.info("SFU cascade: leg from %s for meeting %s: %s", node, meeting_id, exc)
            finally:
                if relay is not None:
                    self.imports.pop((meeting_id, node), None)
                    with contextlib.suppress(Exception):
                        await asyncio.shield(relay.close())
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX, delay * 2)

    def stats(self) -> dict[str, Any]:
        """Legs per meeting: tracks received from each other process, and tracks sent to each."""
        meetings: dict[str, Any] = {}
        for mid, room in self.registry.rooms.items():
            meetings[str(mid)] = {
                "imports": {node: imp.stats() for (m, node), imp in self.imports.items() if m == mid},
                "exports": relay_exports(room.sfu),
            }
        return {"node": self.node_id, "meetings": meetings}

    async def close(self) -> None:
        for key in list(self.legs):
            await self._stop(key)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._redis is not None:
            redis, self._redis = self._redis, None
            with contextlib.suppress(Exception):
                for mid in list(self.attached):
                    await redis.hdel(self._key(mid), self.node_id)
                    await redis.publish(self._channel, json.dumps(
                        {"meeting": mid, "node": self.node_id, "present": False}))
            self.attached.clear()
            await redis.aclose()
