"""What each subscriber can take, and what the room forwards to it within that: the SFU's adaptation to links.

A remote site (a commune on a 2-4 Mbit/s link with loss and long round trips) cannot take every other site's video:
a 10-site meeting sends each site about 4.5 Mbit/s. Three pieces, all without I/O so they are tested directly:

* :class:`LinkEstimate` - one per subscriber: its available bandwidth from its own RTCP feedback on the ``sub``
  connection. REMB (browsers and aiortc send it, from the ``abs-send-time`` extension the forwarder writes) when it
  comes and limits (see :meth:`LinkEstimate.remb_limits`); always the receiver reports' loss, jitter and round
  trip (aiortc's sender computes the RTT from our sender reports' LSR/DLSR). Loss above 10 % (smoothed over
  reports) or a round trip grown well beyond the link's minimum (a queue building up in front of a slow link) lowers
  the estimate below what was actually sent; little loss lets it grow by 8 % per report, up to 1.5 times what is
  being sent. Loss between 2 and 10 % (a lossy radio or DSL link, not congestion) holds it.
* :func:`choose` - Last-N and audio selection: audio of the floor holder and the 3 loudest sites first (audio is
  budgeted before any video), then video in priority order (floor holder, active speaker, the most recent speakers,
  then the others in join order) while it fits and at most ``last_n`` streams. The main view (first in the order)
  needs only ``MIN_VIDEO_BPS``: its publisher is capped to what the sites watching it can take (see
  :func:`publisher_cap`). Others appear as named tiles with their audio level.
* :func:`publisher_cap` - without simulcast (aiortc 1.16 cannot receive it, see the module docstring of
  :mod:`.forwarding`), a publisher sends one quality to all: it is capped with REMB to what its most important
  subscribers (those showing it as the main view, else all that forward it) can take.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

START_BPS = 2_500_000  # before any feedback: a site on a good link sees the meeting at once
MIN_BPS = 400_000  # never estimate below: audio of 4 sites and a small main view
MAX_BPS = 50_000_000
AUDIO_BPS = 60_000  # one Opus stream on the wire: ~32 kbit/s payload + RTP/SRTP/UDP/IP headers at 50 packets/s
MIN_VIDEO_BPS = 150_000  # the main view is forwarded if at least this is left after audio
VIDEO_DEFAULT_BPS = 600_000  # a publication's bitrate before it is measured
HEADROOM = 1.15  # a video stream not forwarded yet must fit with this margin (no flapping at the edge)
AUDIO_SELECTED = 3  # the loudest sites whose audio is forwarded (plus the floor holder)
LAST_N = 4  # video streams forwarded to one site at most
REMB_FRESH = 5.0  # seconds a REMB value stays valid
SILENCE_DBOV = -127.0


@dataclass
class LinkEstimate:
    """One subscriber's link, from the RTCP it sends about what the server forwards to it."""

    loss_bps: float = START_BPS  # the loss/delay based estimate
    remb_bps: float | None = None
    remb_at: float = -1e9
    loss: float = 0.0  # fraction lost (smoothed), 0..1
    rtt: float | None = None  # seconds (smoothed)
    min_rtt: float | None = None
    jitter_ms: float = 0.0
    sent_bps: float = 0.0  # what the server sends this subscriber (measured by the room)
    reports: int = 0
    _pending: dict[int, tuple[float, int]] = field(default_factory=dict)  # ssrc -> (fraction lost, packets)

    def on_remb(self, bps: float, now: float | None = None) -> None:
        self.remb_bps = float(bps)
        self.remb_at = time.monotonic() if now is None else now

    def on_report(self, fraction_lost: float, packets: int, jitter_ms: float, rtt: float | None) -> None:
        """One report block (RR or SR) about one stream: ``fraction_lost`` 0..1 since the previous report over
        ``packets`` sent since then (weights the streams of one report round), ``rtt`` as aiortc measured it."""
        self.reports += 1
        self.jitter_ms = 0.8 * self.jitter_ms + 0.2 * jitter_ms if self.reports > 1 else jitter_ms
        if rtt is not None and rtt > 0:
            self.rtt = rtt if self.rtt is None else 0.7 * self.rtt + 0.3 * rtt
            self.min_rtt = rtt if self.min_rtt is None else min(self.min_rtt, rtt)
        if packets <= 0:
            return  # a stream that was not sent in the interval says nothing about loss
        self.loss = 0.7 * self.loss + 0.3 * fraction_lost if self.reports > 1 else fraction_lost
        self._update(fraction_lost)

    def _queue_building(self) -> bool:
        if self.rtt is None or self.min_rtt is None:
            return False
        return self.rtt > self.min_rtt * 2 + 0.15  # well beyond jitter and a busy host's scheduling

    def _update(self, fraction_lost: float) -> None:
        sent = self.sent_bps or self.loss_bps
        if self.loss > 0.10:  # smoothed: one report at the edge (10 % of a few dozen packets) is not a trend
            self.loss_bps = min(self.loss_bps, sent) * (1 - 0.5 * self.loss)
        elif self._queue_building():
            self.loss_bps = min(self.loss_bps, sent) * 0.85
        elif fraction_lost < 0.02:
            self.loss_bps = min(self.loss_bps * 1.08, max(self.loss_bps, 1.5 * sent + 100_000))
        self.loss_bps = min(MAX_BPS, max(MIN_BPS, self.loss_bps))

    def available(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self.remb_limits(now):
            return max(MIN_BPS, min(self.remb_bps or 0.0, self.loss_bps))
        return self.loss_bps

    def remb_limits(self, now: float) -> bool:
        """Whether the REMB is a limit of the link rather than of what we chose to send: a receiver's estimator
        (WebRTC's AIMD) never says more than about 1.5 times what it receives, so while Last-N sends a site little,
        its REMB only echoes that; below 1.3 times what is sent, it saw a queue build up and means it."""
        if self.remb_bps is None or now - self.remb_at >= REMB_FRESH:
            return False
        return self.remb_bps < 1.3 * self.sent_bps or self.sent_bps == 0

    def quality(self) -> str:
        """A word for the chair's panel: tốt (good), trung bình (fair), kém (poor)."""
        if self.loss > 0.05 or (self.rtt or 0) > 0.4 or self.available() < 800_000:
            return "kém"
        if self.loss > 0.02 or (self.rtt or 0) > 0.2 or self.available() < 2_000_000:
            return "trung bình"
        return "tốt"

    def summary(self) -> dict[str, float | str | None]:
        return {
            "available_kbps": round(self.available() / 1000),
            "sent_kbps": round(self.sent_bps / 1000),
            "loss_pct": round(self.loss * 100, 1),
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000),
            "jitter_ms": round(self.jitter_ms, 1),
            "remb_kbps": None if self.remb_bps is None else round(self.remb_bps / 1000),
            "quality": self.quality(),
        }


@dataclass(frozen=True)
class Choice:
    audio: frozenset[str]
    video: tuple[str, ...]  # in priority order; the first is the main view
    budget_bps: float
    last_n: int


def video_order(subscriber: str, floor: str | None, speaker: str | None, recent: Sequence[str],
                others: Sequence[str]) -> list[str]:
    """Whose video a subscriber should see first: floor holder, active speaker, recent speakers, the rest."""
    out: list[str] = []
    for pid in (floor, speaker, *recent, *others):
        if pid is not None and pid != subscriber and pid not in out:
            out.append(pid)
    return out


def choose(
    budget_bps: float,
    order: Sequence[str],
    video_bps: dict[str, float],
    levels: dict[str, float],
    *,
    floor: str | None = None,
    last_n: int = LAST_N,
    current: frozenset[str] = frozenset(),
    audio_selected: int = AUDIO_SELECTED,
) -> Choice:
    """What to forward to one subscriber. ``order``: candidates by priority (see :func:`video_order`, the
    subscriber itself left out); ``video_bps``: measured bitrate of each candidate's video (absent: no video);
    ``levels``: smoothed audio level (dBov) of each candidate with audio; ``current``: videos forwarded now."""
    loud = sorted((p for p in levels if p in order), key=lambda p: levels[p], reverse=True)[:audio_selected]
    audio = set(loud)
    if floor is not None and floor in levels and floor in order:
        audio.add(floor)
    left = budget_bps - AUDIO_BPS * len(audio)
    video: list[str] = []
    for pid in order:
        if len(video) >= last_n:
            break
        bps = video_bps.get(pid)
        if bps is None:
            continue
        main = not video
        cost = max(bps, MIN_VIDEO_BPS)  # a still picture's rate jumps with motion and keyframes: reserve some
        need = MIN_VIDEO_BPS if main else cost * (1.0 if pid in current else HEADROOM)
        if need > left:
            break  # keep the priority order: a lower one never displaces a higher one that did not fit
        video.append(pid)
        left -= min(cost, left) if main else cost  # the main view's publisher is capped to what is left
    return Choice(frozenset(audio), tuple(video), budget_bps, last_n)


def main_view_allowance(choice: Choice, video_bps: dict[str, float]) -> float:
    """What the main view of ``choice`` may use: the budget less audio and the other forwarded videos."""
    others = sum(max(video_bps.get(p, 0.0), MIN_VIDEO_BPS) for p in choice.video[1:])
    return max(MIN_VIDEO_BPS, choice.budget_bps - AUDIO_BPS * len(choice.audio) - others)


def publisher_cap(publisher: str, choices: dict[str, Choice], video_bps: dict[str, float]) -> float | None:
    """REMB cap for ``publisher``'s video: the least that a subscriber showing it as the main view can take (not
    below ``MIN_VIDEO_BPS``); None when nobody shows it as the main view (it is then a thumbnail or not forwarded,
    and its rate decides whether it fits, not the other way round)."""
    allowances = [main_view_allowance(c, video_bps) for c in choices.values() if c.video[:1] == (publisher,)]
    if not allowances:
        return None
    return max(MIN_VIDEO_BPS, min(allowances))


def dbov_tile(level: float) -> int:
    """An audio level as 0..100 for a tile's meter (0 silence, 100 loudest)."""
    if math.isnan(level):
        return 0
    return round(max(0.0, min(1.0, (level + 70.0) / 70.0)) * 100)
