"""The SFU rooms of one server process: one :class:`MediaRoom` per meeting, created on the first join and closed
when the last connection leaves (and all of them when the app shuts down).

A :class:`MediaRoom` wraps the transport-independent :class:`~meetings.sfu.room.SfuRoom` with what the meeting
page needs besides media: who is connected (the roster, with the user and remote site behind each media id), the
video floor chosen by the chair, and who imposed a mute (a site may lift its own mute, not the chair's).

Media ids: a remote site's operator joins as ``site:{site_id}`` (named after the site, điểm cầu); everyone else as
``user:{user_id}``. One media session per id: a second connection with the same id (a reconnect, or a second tab)
replaces the first, which is told ``replaced`` and closed.

ICE configuration comes from ``EOFFICE_ICE_SERVERS``: a JSON list of ``{"urls", "username", "credential"}``, given to
aiortc and to the browsers; empty (the default) means host candidates only. For coturn with ``use-auth-secret``
(docker/turnserver.conf) give ``{"urls", "secret"}`` instead: each session then gets time-limited credentials
(TURN REST API: username ``expiry:media-id``, credential base64 HMAC-SHA1 of it with the secret), and the secret
never leaves the server.

``EOFFICE_TURN_URLS`` (comma list: ``turn:host:3478?transport=udp,turn:host:3478?transport=tcp,
turns:host:5349?transport=tcp``) with ``EOFFICE_TURN_SECRET`` (coturn's ``static-auth-secret``) is the short form
of the same for the sites: one TURN entry with per-session credentials, added to what the browsers and the aiortc
clients get, not to the server's own peer connections. The SFU listens on an address every site reaches over TCP
already (the WebSocket), and a relayed site needs no relay on the server's side as well: its relay candidate pairs
with the server's host candidate through coturn. ``EOFFICE_TURN_SFU=1`` gives the server's peer connections the
TURN server too (a server behind NAT with no public address; aiortc uses the first TURN URL only).
``EOFFICE_TEST_MEDIA_LOOPBACK``
(tests only) makes the server's ICE agents offer just 127.0.0.1 (see :mod:`meetings.sfu.loopback`).

Rooms live in this process. With several app processes a meeting's sites may connect to different ones only when
the cascade is configured (:mod:`.cascade`: the processes relay their sites' tracks to each other); without it a
meeting's media connections must reach the same process (sticky routing by meeting id). What a room must not
forget is kept outside it: a room opening (first connection, after a restart, in another process) first
:meth:`MediaRoom.restore` s the mutes, imposed mutes and floor from the meeting's record (``meetings.video``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCIceServer

from .cascade import Cascade, CascadeSettings
from .room import SfuRoom
from .signalling import Message, Send

logger = logging.getLogger(__name__)

ICE_ENV = "EOFFICE_ICE_SERVERS"
LOOPBACK_ENV = "EOFFICE_TEST_MEDIA_LOOPBACK"
TURN_URLS_ENV, TURN_SECRET_ENV, TURN_SFU_ENV = "EOFFICE_TURN_URLS", "EOFFICE_TURN_SECRET", "EOFFICE_TURN_SFU"


def ice_servers_from_env(env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """``EOFFICE_ICE_SERVERS`` parsed and checked; an invalid value is an error at startup, not at the first call."""
    raw = (os.environ if env is None else env).get(ICE_ENV, "").strip()
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{ICE_ENV} is not JSON: {exc}") from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"{ICE_ENV} must be a JSON list of {{urls, username, credential}}")
    servers = []
    for entry in data:
        if not isinstance(entry, dict) or not entry.get("urls"):
            raise ValueError(f"{ICE_ENV}: every server needs 'urls'")
        urls = entry["urls"]
        if isinstance(urls, str):
            urls = [urls]
        if not all(isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns") for u in urls):
            raise ValueError(f"{ICE_ENV}: urls must be stun:, stuns:, turn: or turns: URLs")
        server: dict[str, Any] = {"urls": urls}
        for key in ("username", "credential", "secret"):
            if entry.get(key) is not None:
                server[key] = str(entry[key])
        servers.append(server)
    return servers


def turn_servers_from_env(env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """``EOFFICE_TURN_URLS`` and ``EOFFICE_TURN_SECRET`` as one ICE server entry with a shared secret (or none)."""
    env = os.environ if env is None else env
    urls = [u.strip() for u in env.get(TURN_URLS_ENV, "").split(",") if u.strip()]
    secret = env.get(TURN_SECRET_ENV, "")
    if not urls:
        return []
    if not all(u.split(":", 1)[0] in ("turn", "turns") for u in urls):
        raise ValueError(f"{TURN_URLS_ENV}: a comma list of turn: or turns: URLs")
    if not secret:
        raise ValueError(f"{TURN_URLS_ENV} needs {TURN_SECRET_ENV} (coturn's static-auth-secret)")
    return [{"urls": urls, "secret": secret}]


TURN_CREDENTIAL_TTL = 12 * 3600  # seconds: a long meeting day; a reconnect gets fresh ones


def with_credentials(servers: list[dict[str, Any]], who: str, now: float | None = None) -> list[dict[str, Any]]:
    """The servers as a client may see them: entries with a shared ``secret`` get time-limited credentials."""
    out = []
    for server in servers:
        server = dict(server)
        secret = server.pop("secret", None)
        if secret is not None:
            username = f"{int((time.time() if now is None else now) + TURN_CREDENTIAL_TTL)}:{who}"
            digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
            server["username"], server["credential"] = username, base64.b64encode(digest).decode()
        out.append(server)
    return out


def rtc_ice_servers(servers: list[dict[str, Any]]) -> list[RTCIceServer]:
    servers = with_credentials(servers, "sfu")
    return [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential")) for s in servers]


def loopback_from_env(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get(LOOPBACK_ENV, "") in ("1", "true", "yes")


@dataclass(eq=False)
class Member:
    """One connected media session."""

    id: str  # media id: "site:3" or "user:12"
    name: str
    user_id: int
    site_id: int | None
    send: Send
    controller: bool = False

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "user_id": self.user_id, "site_id": self.site_id}


@dataclass(eq=False)
class MediaRoom:
    meeting_id: int
    sfu: SfuRoom
    members: dict[str, Member] = field(default_factory=dict)
    imposed: set[tuple[str, str]] = field(default_factory=set)  # (media id, kind) muted by the chair
    connections: int = 0
    restored: bool = False
    recording_checked: bool = False  # web.media_recording.resume ran for this room
    _restoring: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def floor(self) -> str | None:
        """Media id the chair gave the floor to (None: follow the voice); the SFU puts it first for everyone."""
        return self.sfu.floor

    @floor.setter
    def floor(self, media_id: str | None) -> None:
        self.sfu.floor = media_id

    async def restore(
        self, load: Callable[[], Awaitable[tuple[set[tuple[str, str]], set[tuple[str, str]], str | None]]]
    ) -> None:
        """Once per room, before anyone joins it: take (muted, imposed, floor) from ``load`` (the meeting's record),
        so the room carries on where the meeting was rather than where this process's memory was."""
        async with self._restoring:
            if self.restored:
                return
            muted, imposed, floor = await load()
            self.sfu.muted.update(muted)  # applied to each publication as it is made
            self.imposed.update(imposed)
            self.floor = floor
            self.restored = True

    def roster(self) -> list[dict[str, Any]]:
        out = []
        for m in self.members.values():
            out.append(
                {
                    **m.public(),
                    "muted": {k: (m.id, k) in self.sfu.muted for k in ("audio", "video")},
                    "imposed": {k: (m.id, k) in self.imposed for k in ("audio", "video")},
                }
            )
        return out

    def state(self) -> Message:
        return {
            "type": "state",
            "roster": self.roster(),
            "floor": self.floor,
            "active_speaker": self.sfu.active_speaker,
            "recording": self.sfu.recording is not None,
        }

    def link_stats(self) -> list[dict[str, Any]]:
        """Each connected site's link as the SFU sees it (see :meth:`SfuRoom.link_stats`), in roster order."""
        links = self.sfu.link_stats()
        return [{"id": m.id, **links.get(m.id, {}), "name": m.name} for m in self.members.values()]

    async def broadcast(self, message: Message) -> None:
        for member in list(self.members.values()):
            try:
                await member.send(dict(message))
            except Exception:  # a closing socket; its handler cleans up
                logger.debug("media room %s: could not send to %s", self.meeting_id, member.id, exc_info=True)

    async def send_to(self, media_id: str, message: Message) -> None:
        member = self.members.get(media_id)
        if member is not None:
            try:
                await member.send(dict(message))
            except Exception:  # a closing socket; its handler cleans up
                logger.debug("media room %s: could not send to %s", self.meeting_id, media_id, exc_info=True)

    async def join(self, member: Member) -> Any:
        """Add the member to the roster and the SFU (replacing an earlier session with the same media id)."""
        previous = self.members.get(member.id)
        if previous is not None and previous is not member:
            try:
                await previous.send({"type": "replaced"})
            except Exception:
                pass
        self.members[member.id] = member
        participant = await self.sfu.join(member.id, member.send, name=member.name)
        await self.broadcast(self.state())
        return participant

    async def leave(self, member: Member) -> None:
        """Remove the member, unless a newer session with the same media id replaced it already."""
        if self.members.get(member.id) is not member:
            return
        del self.members[member.id]
        await self.sfu.leave(member.id)
        await self.broadcast(self.state())

    def set_muted(self, media_id: str, kind: str, muted: bool, *, imposed: bool) -> bool:
        key = (media_id, kind)
        if muted and imposed:
            self.imposed.add(key)
        elif not muted:
            self.imposed.discard(key)
        return self.sfu.set_muted(media_id, kind, muted)


class MediaRegistry:
    """Media rooms by meeting id. ``acquire`` before joining, ``release`` when the connection ends."""

    def __init__(self, *, ice_servers: list[dict[str, Any]] | None = None, loopback: bool = False,
                 client_turn: list[dict[str, Any]] | None = None, cascade: CascadeSettings | None = None) -> None:
        self.ice_servers = list(ice_servers or [])  # the server's peer connections and the clients
        self.client_turn = list(client_turn or [])  # the clients only (EOFFICE_TURN_URLS)
        # several processes sharing meetings (see .cascade); None: this process's rooms stand alone
        self.cascade = Cascade(cascade, self) if cascade is not None else None
        self.loopback = loopback
        if loopback:
            from .loopback import enable_loopback_ice  # here: a test-only aioice patch, never loaded in production

            enable_loopback_ice()  # tests only: this process's ICE agents offer 127.0.0.1 alone
        self.rooms: dict[int, MediaRoom] = {}

    def client_ice_servers(self, media_id: str) -> list[dict[str, Any]]:
        return with_credentials(self.ice_servers + self.client_turn, media_id)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, broker_url: str = "memory://") -> MediaRegistry:
        turn = turn_servers_from_env(env)
        servers = ice_servers_from_env(env)
        if (os.environ if env is None else env).get(TURN_SFU_ENV, "") in ("1", "true", "yes"):
            servers, turn = servers + turn, []
        return cls(ice_servers=servers, loopback=loopback_from_env(env), client_turn=turn,
                   cascade=CascadeSettings.from_env(broker_url, env))

    def get(self, meeting_id: int) -> MediaRoom | None:
        return self.rooms.get(meeting_id)

    def acquire(self, meeting_id: int) -> MediaRoom:
        room = self.rooms.get(meeting_id)
        if room is None:
            sfu = SfuRoom(f"meeting:{meeting_id}", ice_servers=rtc_ice_servers(self.ice_servers))
            room = self.rooms[meeting_id] = MediaRoom(meeting_id, sfu)
            logger.info("media room for meeting %s opened", meeting_id)
        room.connections += 1
        return room

    async def release(self, room: MediaRoom) -> None:
        room.connections -= 1
        if room.connections > 0 or self.rooms.get(room.meeting_id) is not room:
            return
        del self.rooms[room.meeting_id]  # a join from now on gets a fresh room
        await room.sfu.close()  # (a recording's files are finished and stored first)
        logger.info("media room for meeting %s closed", room.meeting_id)

    def stats(self) -> dict[str, int]:
        """Totals for metrics: open rooms, connected sessions, published and forwarded video and audio streams
        (forwarded: switched on by the adaptation), and sessions whose link is poor."""
        out = dict.fromkeys(("rooms", "participants", "published", "forwarded_video", "forwarded_audio",
                             "poor_links"), 0)
        for room in self.rooms.values():
            out["rooms"] += 1
            for p in room.sfu.participants.values():
                out["participants"] += 1
                out["published"] += len(p.publications)
                for slot in p.slots:
                    if slot.publication is not None and slot.track.enabled:
                        out[f"forwarded_{slot.kind}"] += 1
            out["poor_links"] += sum(1 for s in room.sfu.link_stats().values() if s.get("quality") == "kém")
        return out

    async def close(self) -> None:
        if self.cascade is not None:
            await self.cascade.close()
        rooms, self.rooms = list(self.rooms.values()), {}
        for room in rooms:
            await room.broadcast({"type": "closing"})
            await room.sfu.close()
