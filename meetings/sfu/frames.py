"""Encoded frames out of an aiortc receiver without decoding them: the receiving end of tests and benchmarks.

The SFU itself forwards RTP packets (:mod:`.forwarding`) and never reassembles frames. Its test clients and
``bench/sfu.py`` need whole encoded frames (to check keyframes, to match what a publisher sent, to measure latency)
without paying for a decoder: :func:`install_passthrough` replaces the receiver's jitter buffer (private attribute
``_RTCRtpReceiver__jitter_buffer`` in aiortc 1.16) with a :class:`PassthroughBuffer`. It honours the
``JitterBuffer.add(packet) -> (pli_flag, frame | None)`` contract but hands each complete frame to a callback and
always returns ``None``, so the receiver's decoder thread never gets work. Unlike aiortc's ``JitterBuffer`` it
completes a video frame on the RTP marker bit (falling back to a timestamp change) instead of waiting for the next
frame's first packet, and forwards each audio packet at once, so latency measurements are not inflated by it.
A frame with a missing packet waits for the NACK retransmission at most ``max_wait`` seconds; then it is skipped
and ``pli_flag`` asks the publisher for a keyframe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiortc
from aiortc import RTCRtpReceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

from .forwarding import check_aiortc_version

logger = logging.getLogger(__name__)

check_aiortc_version()

_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_CODECS_ATTR = "_RTCRtpReceiver__codecs"

MAX_MISORDER = 100  # packets older than this (by sequence number) mean the stream restarted
VIDEO_CAPACITY = 512  # packets buffered while waiting for a hole to be filled
VIDEO_MAX_WAIT = 0.25  # seconds a frame with a hole waits for its retransmission


@dataclass(slots=True)
class EncodedFrame:
    """One complete encoded frame as the publisher sent it."""

    data: bytes
    timestamp: int  # RTP timestamp from the publisher (codec clock)
    ssrc: int
    payload_type: int
    keyframe: bool  # always True for audio
    audio_level: int | None  # RFC 6464 level in -dBov (0 loudest .. 127 silence), None if not negotiated
    after_loss: bool  # frames before this one were skipped: the decoder needs a keyframe


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether an encoded (depayloaded) video frame can be decoded on its own."""
    name = codec_name.upper()
    if name == "VP8":
        # RFC 6386 section 9.1: bit 0 of the frame tag is 0 for a key frame, followed by the start code 9d 01 2a.
        return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"
    if name == "H264":
        # Annex B stream: an IDR slice (type 5) or a sequence parameter set (type 7) starts a decodable picture.
        start = data.find(b"\x00\x00\x01")
        while start != -1 and start + 3 < len(data):
            if data[start + 3] & 0x1F in (5, 7):
                return True
            start = data.find(b"\x00\x00\x01", start + 3)
        return False
    return True


def _is_frame_start(codec_name: str, payload: bytes) -> bool:
    """Whether an RTP payload (before depayloading) begins a frame."""
    if not payload:
        return False
    name = codec_name.upper()
    if name == "VP8":
        return bool(payload[0] & 0x10) and payload[0] & 0x0F == 0  # S bit set, partition 0
    if name == "H264":
        if payload[0] & 0x1F == 28:  # FU-A: only the first fragment starts a NAL unit
            return len(payload) > 1 and bool(payload[1] & 0x80)
        return True
    return True


class PassthroughBuffer:
    """Drop-in replacement for a receiver's ``JitterBuffer`` that hands complete frames to ``on_frame``.

    ``add`` has the ``JitterBuffer.add`` contract: it returns ``(pli_flag, None)``; ``pli_flag`` asks the receiver to
    send a PLI upstream because a frame had to be skipped.
    """

    def __init__(
        self,
        kind: str,
        codecs: dict[int, RTCRtpCodecParameters],
        on_frame: Callable[[EncodedFrame], None],
        *,
        capacity: int = VIDEO_CAPACITY,
        max_wait: float = VIDEO_MAX_WAIT,
    ) -> None:
        self.kind = kind
        self._codecs = codecs
        self._on_frame = on_frame
        self._capacity = capacity
        self._max_wait = max_wait
        self._packets: dict[int, tuple[RtpPacket, float]] = {}
        self._next: int | None = None  # sequence number the next frame starts at
        self._after_loss = False
        self.frames = 0
        self.skipped_packets = 0
        self.late_packets = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def _codec_name(self, packet: RtpPacket) -> str:
        codec = self._codecs.get(packet.payload_type)
        return codec.name if codec is not None else ""

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        if self.kind == "audio":
            self._add_audio(packet)
            return False, None
        return self._add_video(packet, time.monotonic()), None

    def _age(self, seq: int) -> int:
        """How far ``seq`` is behind the next expected sequence number (0 when it is not behind)."""
        assert self._next is not None
        ahead = uint16_add(seq, -self._next)
        return 0 if ahead < 0x8000 else 0x10000 - ahead

    def _add_audio(self, packet: RtpPacket) -> None:
        # Each Opus packet is a whole frame: forward it at once. A packet that arrives after a newer one is dropped
        # rather than delaying every packet; the receiving side conceals the gap.
        if self._next is not None and 0 < self._age(packet.sequence_number) <= MAX_MISORDER:
            self.late_packets += 1
            return
        self._next = uint16_add(packet.sequence_number, 1)
        self._emit([packet], keyframe=True)

    def _add_video(self, packet: RtpPacket, now: float) -> bool:
        seq = packet.sequence_number
        codec_name = self._codec_name(packet)
        pli = False
        if self._next is not None:
            age = self._age(seq)
            if 0 < age <= MAX_MISORDER:
                self.late_packets += 1  # duplicate, or a retransmission of a frame already skipped
                return False
            if age > MAX_MISORDER:  # the sender restarted its sequence: start over
                self.skipped_packets += len(self._packets)
                self._packets.clear()
                self._next = None
                self._after_loss = pli = True
        if self._next is None:
            if not _is_frame_start(codec_name, packet.payload):
                return pli
            self._next = seq
        self._packets[seq] = (packet, now)
        while True:
            if self._drain():
                continue
            if not self._packets:
                return pli
            oldest = min(arrival for _, arrival in self._packets.values())
            if len(self._packets) < self._capacity and now - oldest < self._max_wait:
                return pli
            if not self._skip_hole():
                return pli
            pli = True

    def _drain(self) -> bool:
        """Emit the frame starting at ``self._next`` if all its packets are here."""
        assert self._next is not None
        seq = self._next
        frame: list[RtpPacket] = []
        for _ in range(len(self._packets)):
            entry = self._packets.get(seq)
            if entry is None:
                return False
            packet = entry[0]
            if frame and packet.timestamp != frame[0].timestamp:
                break  # the marker packet was lost or never set: the timestamp change ends the frame
            frame.append(packet)
            seq = uint16_add(seq, 1)
            if packet.marker:
                break
        else:
            return False  # every buffered packet belongs to an unfinished frame
        for p in frame:
            del self._packets[p.sequence_number]
        self._next = seq
        codec_name = self._codec_name(frame[0])
        data = b"".join(p._data for p in frame)  # type: ignore[attr-defined]
        self._emit(frame, keyframe=is_keyframe(codec_name, data), data=data)
        return True

    def _skip_hole(self) -> bool:
        """Give up on the incomplete frame: resume at the next buffered frame start."""
        assert self._next is not None
        ordered = sorted(self._packets, key=lambda s: uint16_add(s, -self._next))  # type: ignore[operator]
        for s in ordered:
            packet = self._packets[s][0]
            if s != self._next and _is_frame_start(self._codec_name(packet), packet.payload):
                for old in ordered[: ordered.index(s)]:
                    del self._packets[old]
                    self.skipped_packets += 1
                self._next = s
                self._after_loss = True
                return True
        self.skipped_packets += len(self._packets)
        self._packets.clear()
        self._next = None
        self._after_loss = True
        return False

    def _emit(self, packets: list[RtpPacket], keyframe: bool, data: bytes | None = None) -> None:
        first = packets[0]
        level = first.extensions.audio_level
        frame = EncodedFrame(
            data=data if data is not None else b"".join(p._data for p in packets),  # type: ignore[attr-defined]
            timestamp=first.timestamp,
            ssrc=first.ssrc,
            payload_type=first.payload_type,
            keyframe=keyframe,
            audio_level=None if level is None else level[1],
            after_loss=self._after_loss,
        )
        self._after_loss = False
        self.frames += 1
        try:
            self._on_frame(frame)
        except Exception:  # a faulty consumer must not break the receiver's RTP loop
            logger.exception("passthrough consumer failed")


def install_passthrough(
    receiver: RTCRtpReceiver,
    kind: str,
    on_frame: Callable[[EncodedFrame], None],
) -> PassthroughBuffer:
    """Make ``receiver`` hand encoded frames to ``on_frame`` instead of its decoder."""
    if not hasattr(receiver, _JITTER_ATTR) or not hasattr(receiver, _CODECS_ATTR):
        raise RuntimeError(f"aiortc {aiortc.__version__}: RTCRtpReceiver internals changed")
    codecs = getattr(receiver, _CODECS_ATTR)  # filled in place by receive(), so a reference stays current
    buffer = PassthroughBuffer(kind, codecs, on_frame)
    setattr(receiver, _JITTER_ATTR, buffer)
    return buffer
