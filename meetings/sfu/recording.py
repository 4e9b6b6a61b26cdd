"""Recording a room's forwarded streams to disk without decoding or encoding them: one WebM file per track.

What is written
---------------
Each published track (a site's camera, its microphone) gets a :class:`TrackRecorder` fed with the RTP packets its
:class:`~meetings.sfu.forwarding.TrackForwarder` forwards (``forwarder.recorder``: after de-duplication, never while
the track is muted). The packets are reassembled into the publisher's encoded frames by the same
:class:`~meetings.sfu.frames.PassthroughBuffer` the test clients use (aiortc's receiver has already run the codec's
depayloader: ``packet._data``), and each frame is muxed as an ``av.Packet`` into a WebM (Matroska) file: VP8 frames
and Opus packets exactly as the publisher encoded them. Nothing is decoded or encoded (aiortc's ``MediaRecorder``
would decode and encode again).

Timing
------
Presentation times come from the publisher's RTP timestamps (unwrapped; 90 kHz video, 48 kHz Opus), so gaps (a mute,
a lost frame) keep their length. A track's first frame is placed at its arrival time from the recording's start
(``offset``), so every file of one recording shares one time line: the first video frame of a site that joined the
recording 2.4 s late starts at 2.4 s in its file. The offsets are also returned (:class:`RecordedTrack`) for the
meeting archive. Alignment is by arrival time, good to a few tens of milliseconds on a loaded server (RTCP sender
reports would do better, across publishers; not used).

Video starts at a keyframe (one is asked from the publisher when a track is added) and starts again at the next
keyframe after frames had to be skipped.

Crash safety
------------
The muxer flushes every packet (``flush_packets``) and Matroska needs no index to be read: a file cut off by a crash
(no Cues, no final duration) still opens and plays up to its last cluster
(``tests/meetings/test_recording_files.py``).
"""

from __future__ import annotations

import fractions
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from .forwarding import TrackForwarder
from .frames import EncodedFrame, PassthroughBuffer

logger = logging.getLogger(__name__)

CONTENT_TYPES = {"video": "video/webm", "audio": "audio/webm"}
# PyAV codec names for the streams' parameters only: the encoders are never opened, no frame goes through them
_STREAM_CODECS = {"VP8": "libvpx", "OPUS": "libopus"}


class UnsupportedCodec(Exception):
    """A track in a codec WebM cannot carry (H.264 from a browser that preferred it): it is not recorded."""


@dataclass(frozen=True)
class RecordedTrack:
    """One finished file: whose track, where it is, and where it sits on the recording's time line."""

    participant: str
    name: str
    kind: str
    codec: str  # "VP8" or "opus"
    path: Path
    started_at: float  # wall-clock (Unix) time of the first frame
    offset: float  # seconds from the recording's start to the first frame
    duration: float  # seconds from the first to the last frame (plus one frame)
    frames: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]


class TrackRecorder:
    """Writes one track's frames to ``path`` as they are completed. ``add`` is what the forwarder calls."""

    def __init__(self, path: Path, forwarder: TrackForwarder, *, participant: str, name: str, origin: float,
                 wall_origin: float) -> None:
        codec = forwarder.codec
        self.codec = codec.name if codec is not None else ""
        if self.codec.upper() not in _STREAM_CODECS:
            raise UnsupportedCodec(self.codec)
        self.path = path
        self.kind = forwarder.kind
        self.participant = participant
        self.name = name
        self.clock_rate = forwarder.clock_rate
        self._time_base = fractions.Fraction(1, self.clock_rate)
        self._forwarder = forwarder
        self._origin = origin  # time.monotonic() at the recording's start
        self._wall_origin = wall_origin
        codecs = {codec.payloadType: codec} if codec is not None and codec.payloadType is not None else {}
        self._buffer = PassthroughBuffer(self.kind, codecs, self._on_frame)
        self._container: Any = None
        self._stream: Any = None
        self._need_keyframe = self.kind == "video"
        self._first_pts = 0
        self._last_ts = 0
        self._pts = 0
        self._frame_length = 0  # RTP ticks of the last frame (its duration at the end of the file)
        self.offset: float | None = None
        self.started_at: float | None = None
        self.frames = 0
        self.closed = False

    def add(self, packet: Any) -> None:
        if not self.closed:
            self._buffer.add(packet)

    def _on_frame(self, frame: EncodedFrame) -> None:
        if self.kind == "video":
            if frame.after_loss and not frame.keyframe:
                self._need_keyframe = True
            if self._need_keyframe:
                if not frame.keyframe:
                    self._forwarder.request_keyframe()
                    return
                self._need_keyframe = False
        if self._container is None:
            self._open(frame)
        else:
            delta = (frame.timestamp - self._last_ts) & 0xFFFFFFFF
            if delta == 0 or delta >= 0x80000000:
                return  # the same time or older (reordered across a restart): a file's times only go forward
            self._pts += delta
            self._frame_length = delta
        self._last_ts = frame.timestamp
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = self._pts
        packet.time_base = self._time_base  # (not the stream's: the muxer changes that to Matroska's 1/1000)
        packet.stream = self._stream
        if frame.keyframe and self.kind == "video":
            packet.is_keyframe = True
        try:
            self._container.mux(packet)
        except av.error.FFmpegError:
            logger.exception("recording %s: muxing a frame failed", self.path.name)
            return
        self.frames += 1

    def _open(self, frame: EncodedFrame) -> None:
        now = time.monotonic()
        self.offset = max(0.0, now - self._origin)
        self.started_at = self._wall_origin + self.offset
        self._first_pts = self._pts = round(self.offset * self.clock_rate)
        self._frame_length = self.clock_rate // 50
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(self.path), "w", format="webm", options={"flush_packets": "1"})
        stream = container.add_stream(_STREAM_CODECS[self.codec.upper()], rate=self.clock_rate)
        if isinstance(stream, av.VideoStream):
            width, height = _vp8_size(frame.data)
            stream.width, stream.height = width or 640, height or 480
            self._frame_length = self.clock_rate // 30
        stream.time_base = self._time_base
        self._container, self._stream = container, stream

    def close(self) -> RecordedTrack | None:
        """Finish the file (Cues and duration written); None when no frame was ever written (nothing on disk)."""
        self.closed = True
        if self._container is None:
            return None
        try:
            self._container.close()
        except av.error.FFmpegError:
            logger.exception("recording %s: closing the file failed", self.path.name)
        assert self.offset is not None and self.started_at is not None
        duration = (self._pts - self._first_pts + self._frame_length) / self.clock_rate
        return RecordedTrack(self.participant, self.name, self.kind, self.codec, self.path, self.started_at,
                             self.offset, duration, self.frames)


def _vp8_size(frame: bytes) -> tuple[int, int]:
    """Width and height from a VP8 keyframe's header (RFC 6386 section 9.1), (0, 0) if it is not one."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return 0, 0
    return int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(frame[8:10], "little") & 0x3FFF


class RoomRecording:
    """One recording of a room, from start to stop: a recorder per publication, files in ``directory``.

    ``on_track`` gets each finished file (a participant left, its track ended, or the recording stopped); the caller
    stores it (blob store, meeting archive)."""

    def __init__(self, directory: Path, session: str, started_at: float | None = None) -> None:
        """``started_at``: the session's start (Unix time) when it began before this room's recording (a room
        reopened while the meeting is being recorded): the files then share the session's time line."""
        self.directory = directory
        self.session = session
        now = time.time()
        self.wall_origin = min(now, started_at) if started_at is not None else now
        self.origin = time.monotonic() - (now - self.wall_origin)
        self._recorders: dict[TrackForwarder, TrackRecorder] = {}
        self._count = 0

    @property
    def recorders(self) -> list[TrackRecorder]:
        return list(self._recorders.values())

    def add(self, forwarder: TrackForwarder, participant: str, name: str) -> TrackRecorder | None:
        if forwarder in self._recorders:
            return self._recorders[forwarder]
        self._count += 1
        safe = "".join(ch if ch.isalnum() else "-" for ch in participant)
        path = self.directory / f"{self._count:03d}-{safe}-{forwarder.kind}.webm"
        try:
            recorder = TrackRecorder(path, forwarder, participant=participant, name=name, origin=self.origin,
                                     wall_origin=self.wall_origin)
        except UnsupportedCodec as exc:
            logger.warning("recording: %s's %s track in %s is not recorded", participant, forwarder.kind, exc)
            return None
        self._recorders[forwarder] = recorder
        forwarder.recorder = recorder.add
        forwarder.request_keyframe()
        return recorder

    def remove(self, forwarder: TrackForwarder) -> RecordedTrack | None:
        recorder = self._recorders.pop(forwarder, None)
        if recorder is None:
            return None
        if forwarder.recorder == recorder.add:
            forwarder.recorder = None
        return recorder.close()

    def stop(self) -> list[RecordedTrack]:
        done = [self.remove(f) for f in list(self._recorders)]
        return [t for t in done if t is not None]

