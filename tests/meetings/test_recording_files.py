"""Recording in the SFU: real aiortc peers publish through a room, the room writes one WebM file per track.

The files must hold the publisher's encoded frames unchanged (no decode, no encode), on one time line, and a file
cut off mid-recording (a crash: no Cues, no duration) must still open."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import pytest

from meetings.sfu.client import LocalMeeting, until
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.recording import RecordedTrack
from meetings.sfu.synthetic import ReplayTrack, encode_opus, encode_vp8


@pytest.fixture(autouse=True)
def _loopback() -> Iterator[None]:
    with loopback_ice():
        yield


@pytest.fixture
async def meeting() -> AsyncIterator[LocalMeeting]:
    m = LocalMeeting()
    try:
        yield m
    finally:
        await m.close()


def packets_of(path: Path) -> tuple[str, list[av.Packet]]:
    with av.open(str(path)) as container:
        stream = container.streams[0]
        return stream.codec_context.name, [p for p in container.demux(stream) if p.size]


async def test_tracks_are_recorded_as_forwarded_on_one_time_line(meeting: LocalMeeting, tmp_path: Path) -> None:
    vp8 = encode_vp8(90, 160, 120, gop=30)
    opus = encode_opus(100)
    await meeting.join("dong-trieu", ReplayTrack("video", vp8, rate=30, clock_rate=90000),
                       ReplayTrack("audio", opus, rate=50, clock_rate=48000))
    await meeting.join("uong-bi", ReplayTrack("audio", opus[50:] + opus[:50], rate=50, clock_rate=48000))
    received = await meeting.receive("uong-bi", "dong-trieu", "video")
    await until(lambda: len(received.frames) >= 10, within=20, what="the site's video at the subscriber")

    stored: list[RecordedTrack] = []

    async def store(track: RecordedTrack) -> None:
        stored.append(track)

    started = time.monotonic()
    recording = meeting.room.start_recording(tmp_path / "rec", "phiên-1", store)
    assert len(recording.recorders) == 3
    video = next(r for r in recording.recorders if r.participant == "dong-trieu" and r.kind == "video")
    audio = next(r for r in recording.recorders if r.participant == "dong-trieu" and r.kind == "audio")
    await until(lambda: video.frames >= 45 and audio.frames >= 75, within=30, what="1.5 s recorded")

    # a crash now: the files as they are on disk, never finished
    crashed = tmp_path / "crashed.webm"
    shutil.copy(video.path, crashed)
    codec, partial = packets_of(crashed)
    assert codec == "vp8" and len(partial) >= 30, "an unfinished file opens and has its frames"
    with av.open(str(crashed)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 30

    await until(lambda: video.frames >= 90 and audio.frames >= 150, within=30, what="3 s recorded")
    tracks = await meeting.room.stop_recording()
    elapsed = time.monotonic() - started
    assert {(t.participant, t.kind) for t in tracks} == {("dong-trieu", "video"), ("dong-trieu", "audio"),
                                                         ("uong-bi", "audio")}
    assert sorted(stored, key=id) == sorted(tracks, key=id), "every finished file was handed to the sink"

    by_key = {(t.participant, t.kind): t for t in tracks}
    for (participant, kind), track in by_key.items():
        codec, packets = packets_of(track.path)
        assert codec == ("vp8" if kind == "video" else "opus")
        assert track.content_type == f"{kind}/webm"
        # unchanged: every recorded packet is one the publisher encoded, byte for byte
        sent = set(vp8 if kind == "video" else opus)
        assert all(bytes(p) in sent for p in packets), f"{participant} {kind}: a frame was re-encoded"
        assert len(packets) == track.frames
        assert 2.5 <= track.duration <= elapsed + 0.5, (track.duration, elapsed)
        with av.open(str(track.path)) as container:
            assert container.duration is not None  # finished properly: duration written
            assert abs(container.duration / 1e6 - (track.offset + track.duration)) < 0.2
            # the file's first frame sits at the track's offset on the recording's time line
            first = next(p for p in container.demux(container.streams[0]) if p.size)
            assert first.pts is not None and first.time_base is not None
            assert abs(float(first.pts * first.time_base) - track.offset) < 0.05
    offsets = [t.offset for t in tracks]
    assert max(offsets) - min(offsets) < 1.0, f"tracks start together: {offsets}"
    video_track, audio_track = by_key["dong-trieu", "video"], by_key["dong-trieu", "audio"]
    assert abs(video_track.started_at - audio_track.started_at) < 1.0
    with av.open(str(video_track.path)) as container:
        frames = list(container.decode(video=0))
        assert frames and (frames[0].width, frames[0].height) == (160, 120)

    # nothing is recorded once stopped
    forwarder = meeting.room.participants["dong-trieu"].publications[0].forwarder
    assert forwarder.recorder is None and meeting.room.recording is None


async def test_a_site_that_leaves_hands_its_files_over_at_once(meeting: LocalMeeting, tmp_path: Path) -> None:
    vp8 = encode_vp8(60, 160, 120, gop=30)
    await meeting.join("ha-long", ReplayTrack("video", vp8, rate=30, clock_rate=90000))
    stored: list[RecordedTrack] = []

    async def store(track: RecordedTrack) -> None:
        stored.append(track)

    recording = meeting.room.start_recording(tmp_path, "phiên-2", store)
    await until(lambda: recording.recorders[0].frames >= 15, within=20, what="frames recorded")
    await meeting.leave("ha-long")
    await until(lambda: len(stored) == 1, what="the file handed over when the site left")
    assert stored[0].participant == "ha-long" and stored[0].path.exists()
    # a site joining later is recorded from its first keyframe
    await meeting.join("cam-pha", ReplayTrack("video", vp8, rate=30, clock_rate=90000))
    await until(lambda: len(recording.recorders) == 1 and recording.recorders[0].frames >= 10, within=20,
                what="the late site recorded")
    late = recording.recorders[0]
    tracks = await meeting.room.stop_recording()
    assert [t.participant for t in tracks] == ["cam-pha"] and late.offset is not None and late.offset > 0.3
    _, packets = packets_of(tracks[0].path)
    assert packets[0].is_keyframe
