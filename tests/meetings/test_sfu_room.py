"""The SFU room with real aiortc clients: everyone sees everyone, slots are reused, mutes, the active speaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc.rtp import RtpPacket

from meetings.sfu.client import LocalMeeting, until
from meetings.sfu.forwarding import TrackForwarder
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.room import ActiveSpeakerDetector
from meetings.sfu.synthetic import PatternTrack, ToneTrack


@pytest.fixture(autouse=True)
def _loopback() -> Iterator[None]:
    with loopback_ice():
        yield


@pytest.fixture
async def meeting() -> AsyncIterator[LocalMeeting]:
    m = LocalMeeting("Họp trực tuyến UBND tỉnh Quảng Ninh")
    try:
        yield m
    finally:
        await m.close()


async def test_everyone_sees_everyone(meeting: LocalMeeting) -> None:
    sites = ["dong-trieu", "uong-bi", "ha-long"]
    for site in sites:
        await meeting.join(site, PatternTrack(160, 120), ToneTrack(0.2))
    received = {
        (viewer, source, kind): await meeting.receive(viewer, source, kind)
        for viewer in sites
        for source in sites
        if source != viewer
        for kind in ("video", "audio")
    }
    await until(lambda: all(len(r.frames) >= 15 for r in received.values()), what="every stream")

    for (_, _, kind), r in received.items():
        if kind == "video":
            assert {(f.width, f.height) for f in r.frames} == {(160, 120)}
    for site in sites:
        client = meeting.clients[site]
        others = {t["participant"] for t in client.tracks.values()}
        assert others == set(sites) - {site}
        assert {t["name"] for t in client.tracks.values()} == {f"Điểm cầu {s}" for s in others}
        assert client.errors == []
    stats = meeting.room.stats()
    assert all(len(stats[s]["slots"]) == 4 for s in sites)


async def test_a_new_site_reuses_the_slots_of_one_that_left(meeting: LocalMeeting) -> None:
    await meeting.join("dong-trieu", PatternTrack(160, 120))
    viewer = await meeting.join("uong-bi")
    await meeting.join("ha-long", PatternTrack(160, 120))
    await until(lambda: len(viewer.mids_from("ha-long")) == 1 and len(viewer.received) == 2, what="two slots")
    participant = meeting.room.participants["uong-bi"]
    offers = participant.sub.offers_sent
    assert offers == 2, "joining with one publication, then a second site: two offers"
    old_mid = viewer.mids_from("ha-long")[0]

    await meeting.leave("ha-long")
    await until(lambda: viewer.tracks[old_mid]["participant"] is None, what="slot freed")

    await meeting.join("cam-pha", PatternTrack(160, 120))
    await until(lambda: viewer.mids_from("cam-pha") == [old_mid], what="slot reused")
    video = await meeting.receive("uong-bi", "cam-pha", "video")
    await until(lambda: len(video.frames) >= 10, what="video from the new site")
    assert participant.sub.offers_sent == offers, "no renegotiation was needed"
    assert len(participant.slots) == 2
    assert viewer.errors == []


async def test_chair_mutes_and_unmutes_a_site(meeting: LocalMeeting) -> None:
    await meeting.join("dong-trieu", PatternTrack(160, 120), ToneTrack(0.3))
    viewer = await meeting.join("uong-bi")
    video = await meeting.receive("uong-bi", "dong-trieu", "video")
    await until(lambda: len(video.frames) >= 10, what="video")

    assert meeting.room.set_muted("dong-trieu", "video", True)
    assert not meeting.room.set_muted("dong-trieu", "video", True), "already muted"
    await until(lambda: any(m.get("type") == "muted" for m in viewer.messages), what="muted notice")
    await asyncio.sleep(0.3)  # frames in flight
    count = len(video.frames)
    await asyncio.sleep(0.7)
    assert len(video.frames) == count, "nothing is forwarded while muted"

    unmuted_at = time.monotonic()
    meeting.room.set_muted("dong-trieu", "video", False)
    await until(lambda: len(video.frames) > count + 5, within=3, what="video after unmute")
    assert video.times[count] - unmuted_at < 1.0, "resumes at once, on a fresh keyframe"

    # a site's operator mutes its own microphone
    publisher = meeting.clients["dong-trieu"]
    await publisher.mute("audio")
    audio_pub = next(p for p in meeting.links["dong-trieu"].participant.publications if p.kind == "audio")
    await until(lambda: audio_pub.muted, what="self-mute")
    assert {"type": "muted", "participant": "dong-trieu", "kind": "audio", "muted": True} in [
        {k: v for k, v in m.items() if k != "pc"} for m in viewer.messages
    ]


async def test_active_speaker_follows_the_loudest_site(meeting: LocalMeeting) -> None:
    loud, quiet = ToneTrack(0.5), ToneTrack(0.0)
    events: list[str | None] = []
    meeting.room.on_event = lambda e: events.append(e["participant"]) if e["type"] == "active-speaker" else None
    await meeting.join("dong-trieu", loud)
    await meeting.join("uong-bi", quiet)
    levels: list[int | None] = []
    for pub in meeting.room.participants["dong-trieu"].publications:
        observe = pub.forwarder.on_packet
        assert observe is not None

        def tap(fwd: TrackForwarder, packet: RtpPacket, observe=observe) -> None:
            level = packet.extensions.audio_level
            levels.append(None if level is None else level[1])
            observe(fwd, packet)

        pub.forwarder.on_packet = tap
    viewer = await meeting.join("ha-long")

    await until(lambda: viewer.active_speaker == "dong-trieu", what="first speaker")
    await until(lambda: len(levels) >= 10, what="audio packets")
    assert all(level is not None for level in levels), "levels come from the RFC 6464 header extension"
    assert min(levels) < 20  # a tone at half scale is about -9 dBov

    loud.amplitude, quiet.amplitude = 0.0, 0.5
    switched_at = time.monotonic()
    await until(lambda: viewer.active_speaker == "uong-bi", within=5, what="the floor moving")
    assert time.monotonic() - switched_at < 2.5
    assert events == ["dong-trieu", "uong-bi"]


def test_active_speaker_hysteresis() -> None:
    changes: list[str | None] = []
    detector = ActiveSpeakerDetector(on_change=changes.append)
    t = 0.0
    for _ in range(50):  # one second of packets
        t += 0.02
        detector.update("a", -20, t)
        detector.update("b", -60, t)
    assert changes == ["a"]
    for _ in range(10):  # b coughs for 200 ms: shorter than hold
        t += 0.02
        detector.update("a", -20, t)
        detector.update("b", -5, t)
    for _ in range(20):
        t += 0.02
        detector.update("a", -20, t)
        detector.update("b", -60, t)
    assert changes == ["a"]
    for _ in range(50):  # b really speaks, a goes quiet
        t += 0.02
        detector.update("a", -70, t)
        detector.update("b", -15, t)
    assert changes == ["a", "b"]
    for _ in range(50):  # everyone silent: the last speaker keeps the floor
        t += 0.02
        detector.update("a", -127, t)
        detector.update("b", -127, t)
    assert changes == ["a", "b"]
    detector.remove("b")
    assert changes == ["a", "b", None]


def _opus_packets(amplitude: float, count: int = 25) -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate, codec.sample_rate, codec.layout, codec.format = 32000, 48000, "mono", "s16"
    codec.time_base = Fraction(1, 48000)
    rng = np.random.default_rng(7)
    out = []
    for n in range(count):
        t = (n * 960 + np.arange(960)) / 48000
        pcm = amplitude * (np.sin(2 * np.pi * 300 * t) + 0.3 * rng.standard_normal(960))
        frame = av.AudioFrame.from_ndarray((pcm * 20000).astype(np.int16).reshape(1, -1), "s16", "mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, n * 960, Fraction(1, 48000)
        out += [bytes(p) for p in codec.encode(frame)]
    return out[5:]


def test_fallback_level_estimate_separates_speech_from_silence() -> None:
    """Without RFC 6464 levels, packet sizes (variable bitrate Opus) still rank a speaking site above a silent one."""
    estimate = ActiveSpeakerDetector.level_from_payload_size
    silent = [estimate(len(p)) for p in _opus_packets(0.0)]
    speech = [estimate(len(p)) for p in _opus_packets(0.8)]
    threshold = ActiveSpeakerDetector().threshold
    assert max(silent) < threshold < min(speech)
