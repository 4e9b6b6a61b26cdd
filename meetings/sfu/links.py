"""The room's adaptation loop: feedback in, Last-N / audio selection and publisher caps out (see :mod:`.adaptation`).

Each subscriber slot's RTCP (receiver reports, REMB) feeds its participant's :class:`~.adaptation.LinkEstimate`.
Every ``INTERVAL`` seconds, and at once when the active speaker or the floor changes, the controller measures what
each publication sends and what each subscriber is sent, chooses per subscriber what to forward, switches slots on or
off (video resumes at a keyframe), tells the subscriber (``forwarding`` message: the videos and audios it gets, and a
0-100 audio level for every site, so the others are drawn as named tiles with a level meter) and caps each video
publisher with REMB to what the subscribers showing it as their main view can take.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci

from .adaptation import (
    AUDIO_BPS,
    LAST_N,
    MIN_VIDEO_BPS,
    Choice,
    LinkEstimate,
    choose,
    dbov_tile,
    publisher_cap,
    video_order,
)
from .forwarding import ForwardedTrack
from .pacing import Pacer

if TYPE_CHECKING:
    from .room import Participant, SfuRoom

logger = logging.getLogger(__name__)

INTERVAL = 0.5  # seconds between decisions
PACKET_OVERHEAD = 58  # bytes per packet on the wire beyond the RTP payload: IP, UDP, RTP header, extensions, SRTP tag
RECENT_SPEAKERS = 8


@dataclass
class _Rate:
    """A byte counter turned into bits per second (smoothed)."""

    bytes_seen: int = 0
    packets_seen: int = 0
    at: float = 0.0
    bps: float = 0.0

    def update(self, total_bytes: int, total_packets: int, now: float) -> float:
        if self.at:
            dt = now - self.at
            if dt > 0:
                wire = (total_bytes - self.bytes_seen) + PACKET_OVERHEAD * (total_packets - self.packets_seen)
                sample = 8 * wire / dt
                self.bps = sample if not self.bps else 0.6 * self.bps + 0.4 * sample
        self.bytes_seen, self.packets_seen, self.at = total_bytes, total_packets, now
        return self.bps


class LinkController:
    def __init__(self, room: SfuRoom, *, enabled: bool = True, last_n: int = LAST_N) -> None:
        self.room = room
        self.enabled = enabled
        self.last_n = last_n
        self.links: dict[str, LinkEstimate] = {}
        self.choices: dict[str, Choice] = {}
        self.recent: list[str] = []  # most recent speakers first
        self.publish_bps: dict[str, float] = {}
        self.levels: dict[str, float] = {}
        self._pub_rates: dict[int, _Rate] = {}
        self._sub_rates: dict[str, _Rate] = {}
        self._report_marks: dict[int, int] = {}  # id(track) -> packets_sent at its previous report
        self._sent: dict[str, tuple[Any, ...]] = {}
        self.pacers: dict[str, Pacer] = {}  # per subscriber: its video at what its link takes, audio first
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # -- feedback -------------------------------------------------------------------------------------------

    def add(self, participant_id: str) -> None:
        self.links[participant_id] = LinkEstimate()
        self.pacers[participant_id] = Pacer()
        if self._task is None and self.enabled:
            self._task = asyncio.ensure_future(self._run())

    def remove(self, participant_id: str) -> None:
        self.links.pop(participant_id, None)
        pacer = self.pacers.pop(participant_id, None)
        if pacer is not None:
            pacer.close()
        self.choices.pop(participant_id, None)
        self._sub_rates.pop(participant_id, None)
        self._sent.pop(participant_id, None)
        if participant_id in self.recent:
            self.recent.remove(participant_id)

    def watch(self, subscriber_id: str, track: ForwardedTrack) -> None:
        track.on_rtcp = lambda t, packet: self._on_rtcp(subscriber_id, t, packet)
        if self.enabled:
            track.pacer = self.pacers.get(subscriber_id)

    def _on_rtcp(self, subscriber_id: str, track: ForwardedTrack, packet: Any) -> None:
        link = self.links.get(subscriber_id)
        out = track._out
        if link is None or out is None:
            return
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc != out.ssrc:
                    continue
                mark = self._report_marks.get(id(track), 0)
                self._report_marks[id(track)] = track.packets_sent
                clock = 90.0 if track.kind == "video" else 48.0  # RTP clock ticks per millisecond
                link.on_report(report.fraction_lost / 256.0, track.packets_sent - mark, report.jitter / clock,
                               track.round_trip)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            link.on_remb(bitrate)

    def wants(self, subscriber_id: str, publisher_id: str, kind: str) -> bool:
        """Whether a new slot carrying ``publisher_id``'s ``kind`` should start switched on: the choice the next
        decision would make, now (a slot switched on a moment later costs a second keyframe request)."""
        if not self.enabled:
            return True
        link = self.links.get(subscriber_id)
        if link is None:
            return True
        video_bps = dict(self.publish_bps)
        levels = dict(self.levels)
        (video_bps if kind == "video" else levels).setdefault(publisher_id, 600_000.0 if kind == "video" else -127.0)
        room = self.room
        order = video_order(subscriber_id, room.floor, room.active_speaker, self.recent, list(room.participants))
        previous = self.choices.get(subscriber_id)
        choice = choose(link.available(), order, video_bps, levels, floor=room.floor, last_n=self.last_n,
                        current=frozenset(previous.video) if previous else frozenset())
        return publisher_id in (choice.video if kind == "video" else choice.audio)

    def speaker_changed(self, speaker: str | None) -> None:
        if speaker is not None:
            if speaker in self.recent:
                self.recent.remove(speaker)
            self.recent.insert(0, speaker)
            del self.recent[RECENT_SPEAKERS:]
        self._wake.set()

    def poke(self) -> None:
        """Decide again now (the floor changed, someone joined or published)."""
        self._wake.set()

    # -- decisions ------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.adapt()
            except Exception:
                logger.exception("room %s: adaptation failed", self.room.id)

    async def adapt(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        room = self.room
        participants = list(room.participants.values())
        video_bps: dict[str, float] = {}
        levels: dict[str, float] = {}
        for p in participants:
            for pub in p.publications:
                if pub.muted:
                    continue
                f = pub.forwarder
                rate = self._pub_rates.setdefault(id(f), _Rate())
                bps = rate.update(f.bytes_in, f.packets_in, now)
                if pub.kind == "video":
                    video_bps[p.id] = bps or 600_000.0
                else:
                    levels[p.id] = room.speakers.level(p.id, now)
        self.publish_bps, self.levels = video_bps, levels
        floor, speaker = room.floor, room.active_speaker
        order_all = [p.id for p in participants]
        choices: dict[str, Choice] = {}
        for p in participants:
            link = self.links.get(p.id)
            if link is None:
                continue
            sent = self._sub_rates.setdefault(p.id, _Rate())
            link.sent_bps = sent.update(sum(s.track.bytes_sent for s in p.slots),
                                        sum(s.track.packets_sent for s in p.slots), now)
            order = video_order(p.id, floor, speaker, self.recent, order_all)
            current = frozenset(s.publication.participant.id for s in p.slots
                                if s.kind == "video" and s.publication is not None and s.track.enabled)
            choice = choose(link.available(now), order, video_bps, levels, floor=floor, last_n=self.last_n,
                            current=current)
            choices[p.id] = choice
            if self.enabled:
                pacer = self.pacers.get(p.id)
                if pacer is not None:
                    # Smooth the bursts (keyframes) to what is left after audio, but never below what the chosen
                    # videos send: the pacer is no bottleneck of its own (the publishers' REMB cap is the lever).
                    chosen = sum(video_bps.get(v, 0.0) for v in choice.video)
                    left = 0.95 * choice.budget_bps - AUDIO_BPS * len(choice.audio)
                    pacer.set_rate(max(MIN_VIDEO_BPS, left, 1.3 * chosen))
                self._apply(p, choice)
                await self._tell(p, choice, levels)
        self.choices = choices
        if self.enabled:
            for p in participants:
                for pub in p.publications:
                    if pub.kind == "video":
                        cap = publisher_cap(p.id, choices, video_bps)
                        if cap is not None and cap > 0.9 * video_bps.get(p.id, 0.0):
                            # It sends less already: no REMB. Each new rate costs a keyframe with aiortc's encoder
                            # (it restarts), and a cap it does not feel would only add churn.
                            cap = None
                        pub.forwarder.set_bitrate_cap(cap)

    def _apply(self, p: Participant, choice: Choice) -> None:
        for slot in p.slots:
            pub = slot.publication
            if pub is None:
                continue
            wanted = choice.video if slot.kind == "video" else choice.audio
            slot.track.set_enabled(pub.participant.id in wanted)

    async def _tell(self, p: Participant, choice: Choice, levels: dict[str, float]) -> None:
        tiles = {pid: dbov_tile(level) for pid, level in levels.items() if pid != p.id}
        key = (choice.video, tuple(sorted(choice.audio)), tuple(sorted((k, v // 10) for k, v in tiles.items())))
        if self._sent.get(p.id) == key:
            return
        self._sent[p.id] = key
        await p._send({"type": "forwarding", "video": list(choice.video), "audio": sorted(choice.audio),
                       "levels": tiles})

    # -- what the chair and operations see ------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per participant: its link (loss, RTT, jitter, estimate, what it is sent), what it publishes and gets."""
        out: dict[str, dict[str, Any]] = {}
        for pid, p in self.room.participants.items():
            link = self.links.get(pid)
            choice = self.choices.get(pid)
            out[pid] = {
                "name": p.name,
                **(link.summary() if link else {}),
                "publish_kbps": round(self.publish_bps.get(pid, 0.0) / 1000),
                "video_forwarded": len(choice.video) if choice and self.enabled else None,
                "audio_forwarded": len(choice.audio) if choice and self.enabled else None,
                "paced_dropped": self.pacers[pid].dropped if pid in self.pacers else None,
            }
        return out

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
