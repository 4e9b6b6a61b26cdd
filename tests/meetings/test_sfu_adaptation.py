"""Adaptation to each site's link: the estimate from feedback, Last-N and audio selection, the REMB cap on publishers.

The rules are checked directly (no I/O), then in a room with real aiortc clients: a site whose link is poor gets
fewer videos (the floor holder's first), only the loudest sites' audio, and the floor holder's publisher is capped
with REMB to what that site can take.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from meetings.sfu import adaptation
from meetings.sfu.adaptation import (
    AUDIO_BPS,
    MIN_BPS,
    MIN_VIDEO_BPS,
    START_BPS,
    Choice,
    LinkEstimate,
    choose,
    publisher_cap,
    video_order,
)
from meetings.sfu.client import LocalMeeting, until
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.synthetic import PatternTrack, ToneTrack

SITES = [f"xa-{n}" for n in range(9)]  # nine communes
RATE = {s: 500_000.0 for s in SITES}


def test_video_order_puts_floor_then_speaker_then_recent_speakers_first() -> None:
    order = video_order("xa-0", "xa-5", "xa-3", ["xa-3", "xa-7", "xa-0"], SITES)
    assert order[:4] == ["xa-5", "xa-3", "xa-7", "xa-1"]
    assert "xa-0" not in order and len(order) == 8


def test_choose_forwards_loudest_audio_first_and_video_within_the_budget() -> None:
    levels = {s: -80.0 + 5 * i for i, s in enumerate(SITES)}  # xa-8 loudest
    order = video_order("xa-0", "xa-1", "xa-8", [], SITES)
    choice = choose(2_000_000, order, RATE, levels, floor="xa-1", last_n=4)
    assert choice.audio == {"xa-8", "xa-7", "xa-6", "xa-1"}, "the 3 loudest and the floor holder"
    # 2 Mbit/s less 4 audio streams: the main view and two more fit (each new one with 15 % headroom), not a fourth
    assert choice.video == ("xa-1", "xa-8", "xa-2")

    rich = choose(10_000_000, order, RATE, levels, floor="xa-1", last_n=4)
    assert len(rich.video) == 4, "Last-N caps a good link too"
    poor = choose(400_000, order, RATE, levels, floor="xa-1", last_n=4)
    assert poor.video == ("xa-1",), "a poor link keeps the floor holder's picture"
    assert poor.audio == choice.audio, "audio is never given up for video"
    hopeless = choose(4 * AUDIO_BPS + MIN_VIDEO_BPS - 1, order, RATE, levels, floor="xa-1")
    assert hopeless.video == () and len(hopeless.audio) == 4


def test_choose_keeps_a_forwarded_video_without_the_headroom_a_new_one_needs() -> None:
    order = ["a", "b"]
    rates = {"a": 500_000.0, "b": 500_000.0}
    budget = 500_000 + 520_000  # b fits exactly, not with 15 % headroom
    assert choose(budget, order, rates, {}).video == ("a",)
    assert choose(budget, order, rates, {}, current=frozenset({"a", "b"})).video == ("a", "b")


def test_link_estimate_follows_loss_round_trip_and_remb() -> None:
    link = LinkEstimate(sent_bps=1_000_000)
    assert link.available(now=0) == START_BPS
    link.on_report(0.20, packets=100, jitter_ms=5, rtt=0.05)
    assert link.available(now=0) == pytest.approx(1_000_000 * 0.9), "heavy loss: below what was sent"
    lossy = LinkEstimate(sent_bps=1_000_000)
    for _ in range(5):
        lossy.on_report(0.05, packets=100, jitter_ms=5, rtt=0.05)
    assert lossy.available(now=0) == START_BPS, "random loss of a few per cent is not congestion"
    lossy.on_report(0.12, packets=100, jitter_ms=5, rtt=0.05)
    assert lossy.available(now=0) == START_BPS, "one report at the edge is not a trend"
    held = link.available(now=0)
    for _ in range(6):  # clean reports: once the smoothed loss is below 10 %, 8 % more per report
        link.on_report(0.0, packets=100, jitter_ms=5, rtt=0.05)
    assert held * 1.08**3 < link.available(now=0) <= held * 1.08**6
    held = link.available(now=0)
    link.on_report(0.30, packets=0, jitter_ms=5, rtt=0.05)
    assert link.available(now=0) == held, "a stream not sent says nothing about loss"
    for _ in range(10):  # the round trip doubles: a queue builds up in front of the link
        link.on_report(0.0, packets=100, jitter_ms=5, rtt=0.4)
    assert link.available(now=0) < held
    for _ in range(50):
        link.on_report(0.5, packets=100, jitter_ms=5, rtt=0.4)
    assert link.available(now=0) == MIN_BPS
    link.loss_bps = 3_000_000
    link.on_remb(700_000, now=10.0)
    assert link.available(now=11.0) == 700_000
    assert link.available(now=20.0) == 3_000_000, "a stale REMB no longer counts"
    assert link.summary()["loss_pct"] > 10 and link.summary()["quality"] == "kém"


def test_publisher_cap_is_what_the_poorest_site_showing_it_as_main_view_can_take() -> None:
    rates = {"a": 1_500_000.0, "b": 500_000.0}
    choices = {
        "rich": Choice(frozenset({"a"}), ("a", "b"), 5_000_000, 4),
        "poor": Choice(frozenset({"a", "b"}), ("a",), 700_000, 4),
        "thumb": Choice(frozenset({"a"}), ("b", "a"), 900_000, 4),
    }
    assert publisher_cap("a", choices, rates) == 700_000 - 2 * AUDIO_BPS
    assert publisher_cap("b", choices, rates) == MIN_VIDEO_BPS, "never below the smallest useful main view"
    assert publisher_cap("c", choices, rates) is None


# -- in a room ---------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _loopback() -> Iterator[None]:
    with loopback_ice():
        yield


@pytest.fixture
async def meeting() -> AsyncIterator[LocalMeeting]:
    m = LocalMeeting("Họp trực tuyến UBND tỉnh với các xã")
    try:
        yield m
    finally:
        await m.close()


def _forwarding(client: Any) -> list[dict[str, Any]]:
    return [m for m in client.messages if m.get("type") == "forwarding"]


async def test_a_site_on_a_poor_link_gets_the_floor_video_and_the_loudest_audio(
    meeting: LocalMeeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Test media is small (a still pattern is some 70 kbit/s): scale the smallest main view down with it.
    monkeypatch.setattr(adaptation, "MIN_VIDEO_BPS", 30_000)
    communes = ["dong-trieu", "uong-bi", "ha-long", "cam-pha", "mong-cai"]
    for i, site in enumerate(communes):  # mong-cai loudest
        await meeting.join(site, PatternTrack(160, 120), ToneTrack(0.05 + 0.15 * i))
    viewer = await meeting.join("xa-vung-cao")
    room = meeting.room
    link = room.links.links["xa-vung-cao"]
    # Four audio streams and 40 kbit/s for video: the main view only, and its publisher is capped to that.
    link.available = lambda now=None: 4 * AUDIO_BPS + 40_000  # type: ignore[method-assign]
    room.floor = "dong-trieu"
    await until(lambda: len(room.participants["xa-vung-cao"].slots) == 10, what="ten slots")

    def forwarded(kind: str) -> set[str]:
        return {
            s.publication.participant.id
            for s in room.participants["xa-vung-cao"].slots
            if s.kind == kind and s.publication is not None and s.track.enabled
        }

    await until(lambda: forwarded("video") == {"dong-trieu"}, what="only the floor holder's video")
    await until(lambda: forwarded("audio") == {"dong-trieu", "mong-cai", "ha-long", "cam-pha"}, what="audio")
    video = await meeting.receive("xa-vung-cao", "dong-trieu", "video")
    await until(lambda: len(video.frames) >= 10, what="the floor holder's picture")
    slots = {(s.kind, s.publication.participant.id): s.track for s in room.participants["xa-vung-cao"].slots}
    quiet = slots[("video", "uong-bi")].packets_sent
    flowing = slots[("video", "dong-trieu")].packets_sent
    await until(lambda: slots[("video", "dong-trieu")].packets_sent > flowing + 30, what="floor video flowing")
    assert slots[("video", "uong-bi")].packets_sent == quiet, "Last-N left the others out"
    await until(lambda: bool(_forwarding(viewer)) and _forwarding(viewer)[-1]["video"] == ["dong-trieu"],
                what="the site is told what it gets")
    levels = _forwarding(viewer)[-1]["levels"]
    assert set(levels) == set(communes) and levels["mong-cai"] > levels["dong-trieu"], "named tiles with a level"

    # The publisher of the main view is capped with REMB to what this site can take, and its encoder follows.
    forwarder = room.participants["dong-trieu"].publications[0].forwarder
    await until(lambda: forwarder.bitrate_cap is not None, what=f"a cap ({room.links.publish_bps})")
    assert forwarder.bitrate_cap == 40_000
    publisher = meeting.clients["dong-trieu"]
    sender = next(t.sender for t in publisher.pub_pc.getTransceivers() if t.kind == "video")
    rembs: list[int] = []
    handle = sender._handle_rtcp_packet

    async def spy(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            rembs.append(unpack_remb_fci(packet.fci)[0])
        await handle(packet)

    sender._handle_rtcp_packet = spy  # type: ignore[method-assign]
    forwarder.bitrate_cap = None  # send the cap again now that the spy listens
    await until(lambda: any(r <= 40_000 for r in rembs), what="the cap as REMB at the publisher")

    # A better link brings the other videos back (each resumes at a keyframe), up to Last-N.
    link.available = lambda now=None: 10_000_000  # type: ignore[method-assign]
    await until(lambda: len(forwarded("video")) == room.links.last_n, what="Last-N videos on a good link")
    stats = room.link_stats()["xa-vung-cao"]
    assert stats["video_forwarded"] == room.links.last_n and stats["audio_forwarded"] == 4
    assert {"loss_pct", "rtt_ms", "sent_kbps", "available_kbps", "quality"} <= set(stats)


async def test_registry_stats_count_rooms_sessions_and_forwarded_streams(meeting: LocalMeeting) -> None:
    from meetings.sfu.registry import MediaRegistry, MediaRoom

    registry = MediaRegistry()
    registry.rooms[7] = MediaRoom(7, meeting.room)  # the meeting's room as the registry would hold it
    assert registry.stats() == {"rooms": 1, "participants": 0, "published": 0, "forwarded_video": 0,
                                "forwarded_audio": 0, "poor_links": 0}
    await meeting.join("dong-trieu", PatternTrack(160, 120), ToneTrack(0.3))
    await meeting.join("uong-bi")
    await until(lambda: registry.stats()["forwarded_video"] == 1 and registry.stats()["forwarded_audio"] == 1,
                what="one video and one audio forwarded")
    assert registry.stats()["participants"] == 2 and registry.stats()["published"] == 2
