"""An SFU room: who publishes what, who receives what, mutes, and who is speaking.

Each participant (a delegate's tablet or a remote site, điểm cầu) has two peer connections with the server (see
:mod:`meetings.sfu.signalling`): on ``pub`` the server receives its camera and microphone, each wrapped in a
:class:`~meetings.sfu.forwarding.TrackForwarder`; on ``sub`` it sends every other participant's tracks through
*slots*, one ``sendonly`` transceiver each, carrying a :class:`~meetings.sfu.forwarding.ForwardedTrack`.

Slots are reused: when someone leaves, their slots in the other participants' connections become free (the clients
are told with a ``tracks`` message) and the next publication of the same kind and codec takes one without an SDP
round trip. Only a join that needs more slots than are free renegotiates (server offer, client answer).

Permissions (who may mute whom, who has the floor) belong to the meeting services; the room only carries them out.

Every slot is negotiated, but not every slot carries packets: :class:`~meetings.sfu.links.LinkController` switches
slots on and off per subscriber from its link estimate (Last-N video, the loudest sites' audio; ``adaptive=False``
forwards everything, as before).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from .adaptation import LAST_N
from .forwarding import ForwardedTrack, TrackForwarder, negotiated_codec
from .links import LinkController
from .recording import RecordedTrack, RoomRecording
from .signalling import Message, Send, SignallingError, SignallingSession

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")


def rtc_configuration(ice_servers: list[RTCIceServer] | tuple[RTCIceServer, ...] = ()) -> RTCConfiguration:
    """Peer connection settings for both ends: given ICE servers (none means host candidates only) and max-bundle.

    Max-bundle is required, not a preference: with aiortc's default "balanced" policy a second transceiver of a kind
    shares the first one's transport before BUNDLE is negotiated and is then left on that discarded transport, so
    its sender never starts (aiortc 1.16, ``RTCPeerConnection.__createTransceiver``). Browsers should use
    ``bundlePolicy: "max-bundle"`` too.
    """
    return RTCConfiguration(iceServers=list(ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


class ActiveSpeakerDetector:
    """Who is speaking, from per-packet audio levels, without decoding any audio.

    Levels come from the RFC 6464 client-to-mixer audio level header extension (``ssrc-audio-level``), which
    browsers send and aiortc negotiates by default: one byte per packet, 0 (loudest) to 127 (silence) in -dBov.
    When a publisher's packets carry no level (extension not negotiated) we fall back to a decode-free estimate from
    the Opus payload size: with variable bitrate, silence and comfort noise encode into a few bytes and speech into
    many. That estimate is coarse (useless with constant bitrate) and only meant to rank sites against each other.

    Each participant's level is smoothed (exponential, time constant ``tau``); the loudest one above ``threshold``
    becomes the speaker once it has stayed louder than the current speaker by ``margin`` dB for ``hold`` seconds, so
    a cough does not move the main view.
    """

    def __init__(
        self,
        *,
        tau: float = 0.3,
        threshold: float = -50.0,
        margin: float = 6.0,
        hold: float = 0.6,
        on_change: Callable[[str | None], None] | None = None,
    ) -> None:
        self.tau = tau
        self.threshold = threshold
        self.margin = margin
        self.hold = hold
        self.on_change = on_change
        self.speaker: str | None = None
        self._levels: dict[str, tuple[float, float]] = {}  # participant -> (smoothed dBov, updated at)
        self._challenger: tuple[str, float] | None = None

    @staticmethod
    def level_from_payload_size(size: int) -> float:
        """Pseudo dBov for one 20 ms Opus packet of ``size`` bytes (the fallback described above)."""
        if size <= 8:
            return -127.0
        return max(-127.0, min(0.0, -75.0 + 18.0 * math.log2(size / 8)))

    def update(self, participant: str, dbov: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        previous = self._levels.get(participant)
        if previous is None:
            smoothed = dbov
        else:
            weight = 1.0 - math.exp(-max(0.0, now - previous[1]) / self.tau)
            smoothed = previous[0] + weight * (dbov - previous[0])
        self._levels[participant] = (smoothed, now)
        self._decide(now)

    def level(self, participant: str, now: float | None = None) -> float:
        """Smoothed level, decayed towards silence if packets stopped coming."""
        entry = self._levels.get(participant)
        if entry is None:
            return -127.0
        now = time.monotonic() if now is None else now
        stale = now - entry[1]
        return entry[0] if stale < 0.5 else -127.0

    def remove(self, participant: str) -> None:
        self._levels.pop(participant, None)
        if self._challenger and self._challenger[0] == participant:
            self._challenger = None
        if self.speaker == participant:
            self._set(None)

    def _decide(self, now: float) -> None:
        loudest = max(self._levels, key=lambda p: self.level(p, now), default=None)
        if loudest is None or self.level(loudest, now) < self.threshold:
            self._challenger = None
            return  # silence keeps the last speaker on the main view
        if loudest == self.speaker:
            self._challenger = None
            return
        current = self.level(self.speaker, now) if self.speaker is not None else -127.0
        if self.level(loudest, now) < current + self.margin:
            self._challenger = None
            return
        if self._challenger is None or self._challenger[0] != loudest:
            self._challenger = (loudest, now)
        if self.speaker is None or now - self._challenger[1] >= self.hold:
            self._set(loudest)

    def _set(self, speaker: str | None) -> None:
        self._challenger = None
        if speaker != self.speaker:
            self.speaker = speaker
            if self.on_change is not None:
                self.on_change(speaker)


@dataclass(eq=False)
class Publication:
    participant: Participant
    kind: str
    mid: str | None
    forwarder: TrackForwarder

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        return self.forwarder.codec

    @property
    def muted(self) -> bool:
        return self.forwarder.paused


@dataclass(eq=False)
class Slot:
    kind: str
    codec_key: tuple[str, ...]
    transceiver: RTCRtpTransceiver
    track: ForwardedTrack
    publication: Publication | None = None


def _codec_key(codec: RTCRtpCodecParameters | None) -> tuple[str, ...]:
    if codec is None:
        return ("",)
    fmtp = sorted(f"{k}={v}" for k, v in codec.parameters.items() if k in ("profile-level-id", "packetization-mode"))
    return (codec.mimeType.lower(), *fmtp)


@dataclass(eq=False)
class Participant:
    room: SfuRoom
    id: str
    name: str
    send: Send
    pub: SignallingSession = field(init=False)
    sub: SignallingSession = field(init=False)
    publications: list[Publication] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    # Cascade (see :mod:`.cascade`): a *relay* is another SFU process subscribing to this process's own sites'
    # tracks (every slot always on, never the tracks it relayed here itself); a *remote* participant is a site
    # connected to another process, whose tracks arrive here over a relay leg (no peer connection of its own).
    relay: bool = False
    remote: bool = False

    def __post_init__(self) -> None:
        if self.remote:
            return
        config = rtc_configuration(self.room.ice_servers)
        self.pub = SignallingSession(RTCPeerConnection(config), self._send, name="pub")
        self.sub = SignallingSession(
            RTCPeerConnection(config), self._send, name="sub", extra=lambda: {"tracks": self.track_map()}
        )
        self.pub.pc.on("track", self._on_track)

    async def handle(self, message: Message) -> None:
        """One message from this participant's client (the WebSocket handler calls this)."""
        kind = message.get("type")
        if kind == "restart":  # new connections after a network change (the WebSocket handler adds ICE servers)
            await self._send({"type": "restarted"})
            await self.room.restart(self.id)
            return
        if kind == "mute":  # a site's operator mutes or unmutes itself
            what = message.get("kind")
            if what not in KINDS:
                await self._send({"type": "error", "reason": "mute needs kind audio or video"})
                return
            self.room.set_muted(self.id, what, bool(message.get("muted", True)))
            return
        session = {"pub": self.pub, "sub": self.sub}.get(message.get("pc", ""))
        if session is None:
            await self._send({"type": "error", "reason": "message needs pc 'pub' or 'sub'"})
            return
        await session.handle(message)

    def track_map(self) -> list[dict[str, Any]]:
        """What each negotiated slot on the ``sub`` connection currently carries."""
        tracks = []
        for slot in self.slots:
            if slot.transceiver.mid is None:
                continue
            pub = slot.publication
            tracks.append(
                {
                    "mid": slot.transceiver.mid,
                    "kind": slot.kind,
                    "participant": pub.participant.id if pub else None,
                    "name": pub.participant.name if pub else None,
                    "muted": pub.muted if pub else None,
                }
            )
        return tracks

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pub.pc.getTransceivers() if t.receiver.track is track)
        forwarder = TrackForwarder(
            transceiver.receiver,
            track.kind,
            codec=negotiated_codec(transceiver),
            on_packet=self.room._observe_packet,
        )
        if (self.id, track.kind) in self.room.muted:
            forwarder.set_paused(True)  # muted before publishing, or before a reconnect: stays muted
        pub = Publication(self, track.kind, transceiver.mid, forwarder)
        forwarder.publication = pub  # type: ignore[attr-defined]
        self.publications.append(pub)
        self.room._spawn(self.room._publish(pub))

    async def _send(self, message: Message) -> None:
        try:
            await self.send(message)
        except Exception:  # a closed socket must not break the room; leaving is handled by the caller
            logger.warning("could not send %s to participant %s", message.get("type"), self.id, exc_info=True)


class SfuRoom:
    """The media side of one meeting: participants, their publications and the slots that carry them."""

    def __init__(
        self,
        room_id: str,
        *,
        ice_servers: list[RTCIceServer] | tuple[RTCIceServer, ...] = (),
        on_event: Callable[[Message], Awaitable[None] | None] | None = None,
        speaker_detector: ActiveSpeakerDetector | None = None,
        adaptive: bool = True,
        last_n: int = LAST_N,
    ) -> None:
        self.id = room_id
        self.ice_servers = tuple(ice_servers)
        self.on_event = on_event
        self.participants: dict[str, Participant] = {}
        # (participant, kind) muted: kept across a reconnect and applied to publications made later
        self.muted: set[tuple[str, str]] = set()
        self.speakers = speaker_detector or ActiveSpeakerDetector()
        self.speakers.on_change = self._speaker_changed
        self._floor: str | None = None
        self.links = LinkController(self, enabled=adaptive, last_n=last_n)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.recording: RoomRecording | None = None
        self._on_recorded: Callable[[RecordedTrack], Awaitable[None]] | None = None
        self._saving: set[asyncio.Task[None]] = set()

    @property
    def floor(self) -> str | None:
        """The participant the chair gave the floor: first in everyone's video and always heard."""
        return self._floor

    @floor.setter
    def floor(self, participant_id: str | None) -> None:
        if participant_id != self._floor:
            self._floor = participant_id
            self.links.poke()

    @property
    def active_speaker(self) -> str | None:
        return self.speakers.speaker

    async def join(self, participant_id: str, send: Send, *, name: str = "", relay: bool = False) -> Participant:
        """Add a participant; a second join with the same id (a reconnect) replaces the first.

        ``relay``: another SFU process (see :mod:`.cascade`) receiving every track of this process's own sites."""
        if participant_id in self.participants:
            await self.leave(participant_id)
        participant = Participant(self, participant_id, name, send, relay=relay)
        self.participants[participant_id] = participant
        if not relay:  # a relay's slots are never switched off: the other process adapts for its own sites
            self.links.add(participant_id)
        needs_offer = False
        for other in self.participants.values():
            if other is participant:
                continue
            for pub in other.publications:
                if _routes(participant, pub):
                    needs_offer |= self._assign(participant, pub)
        if needs_offer:
            await participant.sub.negotiate()
        if self.speakers.speaker is not None:
            await participant._send({"type": "active-speaker", "participant": self.speakers.speaker})
        return participant

    async def restart(self, participant_id: str) -> Participant | None:
        """The ICE restart of a participant whose network changed (address, path): fresh ``pub`` and ``sub``
        connections in place of the old ones, for the same participant in the same session.

        aiortc cannot restart ICE on a live connection (an offer with new ICE credentials is not applied to the
        running transport), so a restart is a new pair of connections: the client sends ``{"type": "restart"}``,
        then offers its tracks again on a new ``pub``; the server offers the others' on a new ``sub``. What belongs
        to the participant rather than to a connection stays: its id and name, mutes (kept by id), the floor, and
        the roster it is in (:class:`~meetings.sfu.registry.MediaRoom`). The others see its slots empty until it
        has published again (the slots are reused, no renegotiation for them)."""
        participant = self.participants.get(participant_id)
        if participant is None:
            return None
        await self.leave(participant_id)
        return await self.join(participant_id, participant.send, name=participant.name)

    async def leave(self, participant_id: str) -> None:
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            return
        self.speakers.remove(participant_id)
        self.links.remove(participant_id)
        for pub in participant.publications:
            if self.recording is not None:
                self._recorded(self.recording.remove(pub.forwarder))
            pub.forwarder.close()
        for slot in participant.slots:
            slot.track.stop()
        pubs, participant.publications = participant.publications, []
        await self._unroute(pubs)
        if not participant.remote:
            await asyncio.gather(participant.pub.close(), participant.sub.close())
        await self._event({"type": "left", "participant": participant_id})

    def add_remote(self, participant_id: str, name: str, kind: str, forwarder: TrackForwarder) -> Publication | None:
        """A track of a site connected to another process, arriving over a relay leg (see :mod:`.cascade`):
        published here like a local one. None if that site is (also) connected here: the local session wins."""
        participant = self.participants.get(participant_id)
        if participant is None:
            participant = Participant(self, participant_id, name, _discard, remote=True)
            self.participants[participant_id] = participant
        elif not participant.remote:
            return None
        forwarder.on_packet = self._observe_packet
        forwarder.set_paused((participant_id, kind) in self.muted)
        pub = Publication(participant, kind, None, forwarder)
        forwarder.publication = pub  # type: ignore[attr-defined]
        participant.publications.append(pub)
        self._spawn(self._publish(pub))
        return pub

    async def remove_remote(self, pub: Publication) -> None:
        """The other process's site stopped publishing ``pub`` (it left there): free its slots here; the site
        leaves this room with its last track. The leg's forwarder stays (its slot on the other side is reused)."""
        participant = pub.participant
        if pub not in participant.publications:
            return
        participant.publications.remove(pub)
        if self.recording is not None:  # a recording here has the other processes' sites too: this file ends
            self._recorded(self.recording.remove(pub.forwarder))
        pub.forwarder.close()
        await self._unroute([pub])
        if not participant.publications and self.participants.get(participant.id) is participant:
            del self.participants[participant.id]
            self.speakers.remove(participant.id)
            await self._event({"type": "left", "participant": participant.id})

    async def _unroute(self, pubs: list[Publication]) -> None:
        """Free the slots carrying ``pubs`` and tell their subscribers."""
        if not pubs:
            return
        for other in self.participants.values():
            changed = False
            for slot in other.slots:
                if slot.publication is not None and slot.publication in pubs:
                    slot.publication = None
                    changed = True
            if changed:
                await other._send({"type": "tracks", "tracks": other.track_map()})

    def set_muted(self, participant_id: str, kind: str, muted: bool) -> bool:
        """Stop or resume forwarding a participant's audio or video. Returns whether anything changed.

        The state is kept per participant id, so it also holds for tracks published later and for the same
        participant after a reconnect (a site muted by the chair does not come back unmuted by reconnecting).
        """
        key = (participant_id, kind)
        changed = (key in self.muted) != muted
        if muted:
            self.muted.add(key)
        else:
            self.muted.discard(key)
        participant = self.participants.get(participant_id)
        if participant is None:
            return changed
        for pub in participant.publications:
            if pub.kind == kind and pub.muted != muted:
                pub.forwarder.set_paused(muted)
                changed = True
        if changed:
            if kind == "audio" and muted:
                self.speakers.remove(participant_id)
            message = {"type": "muted", "participant": participant_id, "kind": kind, "muted": muted}
            self._broadcast(message)
            self._spawn(self._event(message))
        return changed

    def stats(self) -> dict[str, Any]:
        return {
            pid: {
                "published": [
                    {
                        "kind": pub.kind,
                        "codec": pub.codec.mimeType if pub.codec else None,
                        "frames_in": pub.forwarder.frames_in,
                        "keyframes_in": pub.forwarder.keyframes_in,
                        "subscribers": len(pub.forwarder.subscribers),
                        "muted": pub.muted,
                    }
                    for pub in p.publications
                ],
                "slots": [
                    {
                        "kind": s.kind,
                        "source": s.publication.participant.id if s.publication else None,
                        "frames_sent": s.track.frames_sent,
                        "frames_dropped": s.track.frames_dropped,
                        "packets_sent": s.track.packets_sent,
                        "bytes_sent": s.track.bytes_sent,
                        "retransmissions": s.track.retransmissions,
                    }
                    for s in p.slots
                ],
            }
            for pid, p in self.participants.items()
        }

    def link_stats(self) -> dict[str, dict[str, Any]]:
        """Each participant's link as the server sees it (loss %, RTT ms, jitter, estimated and sent kbit/s,
        quality word) and how many videos and audios it is forwarded: for the chair's panel and for metrics."""
        return self.links.stats()

    def start_recording(self, directory: Path, session: str, on_track: Callable[[RecordedTrack], Awaitable[None]],
                        *, started_at: float | None = None) -> RoomRecording:
        """Record every publication, present and future, to ``directory`` (see :mod:`.recording`) until
        :meth:`stop_recording`; ``on_track`` gets each finished file (a participant left, or the recording stopped)."""
        if self.recording is not None:
            return self.recording
        recording = self.recording = RoomRecording(directory, session, started_at)
        self._on_recorded = on_track
        for participant in self.participants.values():
            for pub in participant.publications:
                recording.add(pub.forwarder, participant.id, participant.name)
        return recording

    async def stop_recording(self) -> list[RecordedTrack]:
        """Finish every file and wait until ``on_track`` has had each one (also those finished earlier)."""
        recording, self.recording = self.recording, None
        tracks = recording.stop() if recording is not None else []
        for track in tracks:
            self._recorded(track)
        while self._saving:
            await asyncio.gather(*self._saving, return_exceptions=True)
        return tracks

    def _recorded(self, track: RecordedTrack | None) -> None:
        if track is None or self._on_recorded is None:
            return
        task = asyncio.ensure_future(self._on_recorded(track))
        self._saving.add(task)
        task.add_done_callback(self._saved)

    def _saved(self, task: asyncio.Task[None]) -> None:
        self._saving.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("room %s: storing a recorded track failed", self.id, exc_info=task.exception())

    async def close(self) -> None:
        await self.stop_recording()
        await self.links.close()
        for pid in list(self.participants):
            await self.leave(pid)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- internals --------------------------------------------------------------------------------------------

    async def _publish(self, pub: Publication) -> None:
        """A new publication: give it a slot in every other participant's ``sub`` connection."""
        if pub.participant.id not in self.participants:
            return
        if self.recording is not None:
            self.recording.add(pub.forwarder, pub.participant.id, pub.participant.name)
        for other in list(self.participants.values()):
            if other is pub.participant or not _routes(other, pub):
                continue
            if self._assign(other, pub):
                await other.sub.negotiate()
            else:
                await other._send({"type": "tracks", "tracks": other.track_map()})
        await self._event({"type": "published", "participant": pub.participant.id, "kind": pub.kind})

    def _assign(self, subscriber: Participant, pub: Publication) -> bool:
        """Route ``pub`` to ``subscriber`` through a free slot, or a new one. Returns whether SDP must change."""
        if any(s.publication is pub for s in subscriber.slots):
            return False  # already routed (a join and a publication can race)
        key = _codec_key(pub.codec)
        slot = next(
            (s for s in subscriber.slots if s.publication is None and s.kind == pub.kind and s.codec_key == key),
            None,
        )
        created = slot is None
        if slot is None:
            track = ForwardedTrack(pub.kind)
            transceiver = subscriber.sub.pc.addTransceiver(track, direction="sendonly")
            if pub.codec is not None:
                transceiver.setCodecPreferences(_preferences(pub.kind, pub.codec))
            track.bind(transceiver.sender)
            self.links.watch(subscriber.id, track)
            slot = Slot(pub.kind, key, transceiver, track)
            subscriber.slots.append(slot)
        slot.publication = pub
        slot.track.enabled = self.links.wants(subscriber.id, pub.participant.id, pub.kind)  # (no keyframe asked)
        slot.track.set_source(pub.forwarder)
        self.links.poke()
        return created

    def _observe_packet(self, forwarder: TrackForwarder, packet: RtpPacket) -> None:
        if forwarder.kind != "audio" or forwarder.paused:
            return
        pub: Publication = forwarder.publication  # type: ignore[attr-defined]
        level = packet.extensions.audio_level
        if level is not None:
            dbov = -float(level[1])
        else:
            dbov = ActiveSpeakerDetector.level_from_payload_size(len(packet.payload))
        self.speakers.update(pub.participant.id, dbov)

    def _speaker_changed(self, speaker: str | None) -> None:
        self.links.speaker_changed(speaker)
        message = {"type": "active-speaker", "participant": speaker}
        self._broadcast(message)
        self._spawn(self._event(message))

    def _broadcast(self, message: Message) -> None:
        for participant in self.participants.values():
            self._spawn(participant._send(dict(message)))

    async def _event(self, message: Message) -> None:
        if self.on_event is None:
            return
        result = self.on_event({"room": self.id, **message})
        if asyncio.iscoroutine(result):
            await result

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, SignallingError):
                logger.info("room %s: %s", self.id, exc)
            else:
                logger.error("room %s task failed", self.id, exc_info=exc)


def _routes(subscriber: Participant, pub: Publication) -> bool:
    """Whether ``pub`` goes to ``subscriber``: a remote site receives nothing here (its process does), and a relay
    never gets back a track relayed here (each process relays only its own sites' tracks: no loops, one hop)."""
    return not subscriber.remote and not (subscriber.relay and pub.participant.remote)


async def _discard(message: Message) -> None:
    """A remote participant's messages: its own process talks to it."""


def _preferences(kind: str, codec: RTCRtpCodecParameters) -> list[Any]:
    """Codec preferences that make a subscriber slot send exactly the publisher's codec (plus RTX for video)."""
    wanted = _codec_key(codec)
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in caps if _codec_key(c) == wanted]  # type: ignore[arg-type]
    if kind == "video":
        chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return chosen
