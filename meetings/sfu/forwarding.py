"""Forward encoded media through aiortc without decoding or re-encoding it (the SFU's passthrough).

Why this module exists
----------------------
Stock aiortc decodes every incoming track, and ``MediaRelay`` hands decoded frames to each consumer, so every viewer
costs a full encode (about a tenth of a core per 480p viewer). An SFU must forward the publisher's encoded frames
unchanged. aiortc has no public API for that and its maintainers declined one upstream, so we own this small piece:
everything that touches aiortc internals lives in this module, is checked against aiortc 1.16.x at import time and
is covered by ``tests/meetings/test_sfu_forwarding.py``.

How it hooks into aiortc 1.16 (three points, nothing else)
----------------------------------------------------------
1. Receiving side. ``RTCRtpReceiver._handle_rtp_packet`` unwraps RTX, sends NACKs, depayloads each RTP packet into
   ``packet._data`` and feeds it to the receiver's jitter buffer (private attribute
   ``_RTCRtpReceiver__jitter_buffer``); a complete frame returned by ``JitterBuffer.add`` goes to the decoder thread.
   :func:`install_passthrough` replaces that attribute with a :class:`PassthroughBuffer`, which honours the same
   ``add(packet) -> (pli_flag, frame | None)`` contract but hands each complete frame to a callback and always
   returns ``None``: the decoder thread (started by ``receive()`` anyway) never gets work and no decoder is created.
   NACK generation, RTCP receiver reports, REMB and ``pli_flag`` handling stay aiortc's.
2. Sending side. ``RTCRtpSender._next_encoded_frame`` calls ``encoder.pack(packet)`` instead of ``encoder.encode()``
   when the track yields an ``av.Packet``: VP8 is re-packetised with the sender's own PictureID, H.264 split into NAL
   units, Opus sent as is. :class:`ForwardedTrack` yields such packets, with RTP timestamps rewritten to stay
   continuous when its source changes. (The sender still instantiates an encoder object; only ``pack`` is called.)
3. Keyframe requests. A subscriber's PLI/FIR reaches ``RTCRtpSender._handle_rtcp_packet``, which calls
   ``self._send_keyframe()``; stock aiortc only forces the next *encode* to be a keyframe, which never happens here.
   :meth:`ForwardedTrack.bind` sets an instance attribute ``sender._send_keyframe`` (shadowing the method) that asks
   the publisher for a keyframe through ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)``, rate limited per publisher.

Latency
-------
aiortc's ``JitterBuffer`` only releases a frame when a packet of the *next* frame arrives: one frame interval for
video (33 ms at 30 fps) and, with audio's ``prefetch=4``, four further packets (80 ms with 20 ms Opus packets) per
hop. A forwarding server needs no playout buffer (the receiving browser has its own adaptive one), so
:class:`PassthroughBuffer` completes a video frame on the RTP marker bit (falling back to a timestamp change) and
forwards each audio packet as soon as it arrives. A frame with a missing packet waits for the NACK retransmission
at most ``max_wait`` seconds; then it is skipped, a PLI is sent and subscribers wait for the next keyframe.
``bench/sfu.py`` measures both buffers.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiortc
import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import VIDEO_TIME_BASE, MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

logger = logging.getLogger(__name__)

SUPPORTED_AIORTC = "1.16."
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_CODECS_ATTR = "_RTCRtpReceiver__codecs"

MAX_MISORDER = 100  # packets older than this (by sequence number) mean the stream restarted
VIDEO_CAPACITY = 512  # packets buffered while waiting for a hole to be filled
VIDEO_MAX_WAIT = 0.25  # seconds a frame with a hole waits for its retransmission
KEYFRAME_MIN_INTERVAL = 0.3  # seconds between PLIs sent to one publisher
QUEUE_LIMIT = {"video": 30, "audio": 50}  # frames a slow subscriber may lag before we drop and resync


def check_aiortc_version(version: str = aiortc.__version__) -> None:
    """The hooks below rely on aiortc 1.16 private names; refuse to run on another series."""
    if not version.startswith(SUPPORTED_AIORTC):
        raise RuntimeError(
            f"meetings.sfu.forwarding supports aiortc {SUPPORTED_AIORTC}x, found {version}: "
            "re-check RTCRtpReceiver._handle_rtp_packet, RTCRtpSender._next_encoded_frame and "
            "RTCRtpSender._handle_rtcp_packet, then update the hooks and this check"
        )
    for cls, name in ((RTCRtpReceiver, "_send_rtcp_pli"), (RTCRtpSender, "_send_keyframe")):
        if not callable(getattr(cls, name, None)):
            raise RuntimeError(f"aiortc {version}: {cls.__name__}.{name} is missing")


check_aiortc_version()


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


_TIME_BASES = {90000: VIDEO_TIME_BASE, 48000: fractions.Fraction(1, 48000)}


def _time_base(clock: int) -> fractions.Fraction:
    return _TIME_BASES.get(clock) or fractions.Fraction(1, clock)


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


class StockTimingBuffer(PassthroughBuffer):
    """Hands frames over when aiortc's own ``JitterBuffer`` (with the receiver's settings) would release them.

    Only for measuring what the stock buffer adds per hop (``bench/sfu.py``); the SFU uses :class:`PassthroughBuffer`.
    """

    def __init__(self, kind: str, codecs: dict[int, RTCRtpCodecParameters], on_frame: Callable[[EncodedFrame], None]):
        super().__init__(kind, codecs, on_frame)
        # the settings of RTCRtpReceiver.__init__ in aiortc 1.16
        self._stock = JitterBuffer(capacity=16, prefetch=4) if kind == "audio" else JitterBuffer(512, is_video=True)

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        pli, frame = self._stock.add(packet)
        if frame is not None:
            keyframe = self.kind == "audio" or is_keyframe(self._codec_name(packet), frame.data)
            self.frames += 1
            self._on_frame(
                EncodedFrame(frame.data, frame.timestamp, packet.ssrc, packet.payload_type, keyframe, None, pli)
            )
        return pli, None


def install_passthrough(
    receiver: RTCRtpReceiver,
    kind: str,
    on_frame: Callable[[EncodedFrame], None],
    *,
    buffer_cls: type[PassthroughBuffer] = PassthroughBuffer,
) -> PassthroughBuffer:
    """Make ``receiver`` hand encoded frames to ``on_frame`` instead of its decoder."""
    if not hasattr(receiver, _JITTER_ATTR) or not hasattr(receiver, _CODECS_ATTR):
        raise RuntimeError(f"aiortc {aiortc.__version__}: RTCRtpReceiver internals changed")
    codecs = getattr(receiver, _CODECS_ATTR)  # filled in place by receive(), so a reference stays current
    buffer = buffer_cls(kind, codecs, on_frame)
    setattr(receiver, _JITTER_ATTR, buffer)
    return buffer


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the remote side of ``sender`` sends PLI or FIR (hook 3 in the module docstring)."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def negotiated_codec(transceiver: object) -> RTCRtpCodecParameters | None:
    """The codec the remote side sends on ``transceiver`` (first of the negotiated list), if negotiated."""
    codecs = getattr(transceiver, "_codecs", None) or []
    return next((c for c in codecs if c.name.lower() != "rtx"), None)


class TrackForwarder:
    """One published track: takes encoded frames from its receiver and fans them out to :class:`ForwardedTrack` s."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        *,
        codec: RTCRtpCodecParameters | None = None,
        on_frame: Callable[[TrackForwarder, EncodedFrame], None] | None = None,
        keyframe_interval: float = KEYFRAME_MIN_INTERVAL,
        buffer_cls: type[PassthroughBuffer] = PassthroughBuffer,
    ) -> None:
        self.kind = kind
        self.codec = codec
        self.on_frame = on_frame  # observer (audio levels for active-speaker detection)
        self._receiver = receiver
        self._subscribers: set[ForwardedTrack] = set()
        self._ssrc: int | None = None
        self._paused = False
        self._keyframe_interval = keyframe_interval
        self._last_pli = -1e9
        self._pli_pending: asyncio.TimerHandle | None = None
        self._pli_tasks: set[asyncio.Task[None]] = set()
        self.frames_in = 0
        self.keyframes_in = 0
        self.bytes_in = 0
        self.keyframe_requests_sent = 0
        self.last_frame_at: float | None = None
        self.buffer = install_passthrough(receiver, kind, self._on_frame, buffer_cls=buffer_cls)

    @property
    def subscribers(self) -> frozenset[ForwardedTrack]:
        return frozenset(self._subscribers)

    @property
    def clock_rate(self) -> int:
        if self.codec is not None:
            return self.codec.clockRate
        return 90000 if self.kind == "video" else 48000

    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool) -> None:
        """Stop (or resume) forwarding, e.g. when the chair mutes a site. Resuming video waits for a keyframe."""
        if paused == self._paused:
            return
        self._paused = paused
        if not paused and self.kind == "video":
            for sub in self._subscribers:
                sub._need_keyframe = True
            self.request_keyframe()

    def _on_frame(self, frame: EncodedFrame) -> None:
        self._ssrc = frame.ssrc
        if self.codec is None:
            self.codec = self.buffer._codecs.get(frame.payload_type)
        self.frames_in += 1
        self.keyframes_in += frame.keyframe and self.kind == "video"
        self.bytes_in += len(frame.data)
        self.last_frame_at = time.monotonic()
        if self.on_frame is not None:
            self.on_frame(self, frame)
        if self._paused:
            return
        for sub in list(self._subscribers):
            sub._push(frame)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (PLI), at most once per ``keyframe_interval``."""
        if self.kind != "video":
            return
        loop = asyncio.get_running_loop()
        wait = self._last_pli + self._keyframe_interval - loop.time()
        if wait > 0:
            if self._pli_pending is None:  # honour the request when the interval is over
                self._pli_pending = loop.call_later(wait, self._send_pli)
            return
        self._send_pli()

    def _send_pli(self) -> None:
        self._pli_pending = None
        if self._ssrc is None:
            return  # nothing received yet: the publisher's first frame is a keyframe anyway
        self._last_pli = asyncio.get_running_loop().time()
        self.keyframe_requests_sent += 1
        task = asyncio.ensure_future(self._receiver._send_rtcp_pli(self._ssrc))
        self._pli_tasks.add(task)
        task.add_done_callback(self._pli_tasks.discard)

    def close(self) -> None:
        if self._pli_pending is not None:
            self._pli_pending.cancel()
            self._pli_pending = None
        for sub in list(self._subscribers):
            sub.set_source(None)


class ForwardedTrack(MediaStreamTrack):
    """What a subscriber's ``RTCRtpSender`` sends: encoded frames from one :class:`TrackForwarder` at a time.

    The source can change (a slot reused for another site, the main-speaker slot following the floor) without
    renegotiation: RTP timestamps stay continuous and video resumes at a keyframe. Frames pushed before the sender
    starts reading are dropped, so a late joiner begins with a fresh keyframe rather than a stale backlog.
    """

    def __init__(self, kind: str, *, queue_limit: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        self._queue_limit = queue_limit or QUEUE_LIMIT[kind]
        self._source: TrackForwarder | None = None
        self._reading = False
        self._need_keyframe = kind == "video"
        self._switched = True
        self._last_in: int | None = None
        self._last_out: int | None = None
        self._last_out_at = 0.0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.keyframe_requests_received = 0

    @property
    def source(self) -> TrackForwarder | None:
        return self._source

    def bind(self, sender: RTCRtpSender) -> None:
        """Route the subscriber's PLI/FIR on ``sender`` to this track's publisher."""
        on_keyframe_request(sender, self._keyframe_requested)

    def _keyframe_requested(self) -> None:
        self.keyframe_requests_received += 1
        if self._source is not None:
            self._source.request_keyframe()

    def set_source(self, source: TrackForwarder | None) -> None:
        if source is self._source:
            return
        if self._source is not None:
            self._source._subscribers.discard(self)
        self._source = source
        self._switched = True
        self._need_keyframe = self.kind == "video"
        self._clear_queue()
        if source is not None:
            source._subscribers.add(self)
            if self._reading:
                source.request_keyframe()

    def _clear_queue(self) -> None:
        while not self._queue.empty():
            if self._queue.get_nowait() is not None:
                self.frames_dropped += 1

    def _push(self, frame: EncodedFrame) -> None:
        if not self._reading or self.readyState != "live":
            return
        if frame.after_loss and self.kind == "video":
            self._need_keyframe = True
        if self._need_keyframe:
            if not frame.keyframe:
                self.frames_dropped += 1
                return
            self._need_keyframe = False
        if self._queue.qsize() >= self._queue_limit:
            # The subscriber's sender is not keeping up: drop the backlog and restart at a keyframe.
            self._clear_queue()
            if self.kind == "video":
                self._need_keyframe = True
                if self._source is not None:
                    self._source.request_keyframe()
                self.frames_dropped += 1
                return
        assert self._source is not None
        clock = self._source.clock_rate
        now = time.monotonic()
        if self._last_out is None:
            out = 0
        elif self._switched or self._last_in is None:
            out = self._last_out + max(1, round((now - self._last_out_at) * clock))
        else:
            step = (frame.timestamp - self._last_in) & 0xFFFFFFFF
            out = self._last_out + (step if step < 0x80000000 else 0)
        self._switched = False
        self._last_in, self._last_out, self._last_out_at = frame.timestamp, out, now
        packet = av.Packet(frame.data)
        packet.pts = out
        packet.time_base = _time_base(clock)  # the encoder's own time base: pack() then skips the conversion
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if not self._reading:
            self._reading = True  # the sender has started: from now on frames are worth queueing
            if self._source is not None:
                self._need_keyframe = self.kind == "video"
                self._source.request_keyframe()
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.frames_sent += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self.set_source(None)
            self._queue.put_nowait(None)
