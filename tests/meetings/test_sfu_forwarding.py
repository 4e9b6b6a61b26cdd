"""The passthrough: real aiortc peers publish through the SFU to real aiortc subscribers, which decode what arrives.

The server side must never decode or encode: every decoder and encoder call is counted and attributed to the
server's receiver threads and sender encoders.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import aioice.ice
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Decoder, H264Encoder
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx

from meetings.sfu.client import LocalMeeting, SfuClient, until
from meetings.sfu.forwarding import (
    RECEIVE_BUFFER,
    ForwardedTrack,
    TrackForwarder,
    _Output,
    check_aiortc_version,
    starts_keyframe,
)
from meetings.sfu.frames import PassthroughBuffer, is_keyframe
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.synthetic import PatternTrack, ToneTrack, encode_vp8


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


def kernel_rmem_max() -> int:
    return int(Path("/proc/sys/net/core/rmem_max").read_text())


class CodecCalls:
    """Counts decode() per thread and encode()/pack() per encoder object, for every aiortc codec."""

    def __init__(self) -> None:
        self.decodes: collections.Counter[threading.Thread] = collections.Counter()
        self.encodes: collections.Counter[int] = collections.Counter()
        self.packs: collections.Counter[int] = collections.Counter()
        self.vp8: list[tuple[threading.Thread, float, bool]] = []  # (decoder thread, when, keyframe)

    def keyframes(self, client: SfuClient, mid: str) -> list[float]:
        """When the subscriber's decoder got keyframes on ``mid`` (PyAV's libvpx frames carry no key flag)."""
        thread = client.transceiver(mid).receiver._RTCRtpReceiver__decoder_thread
        return [when for t, when, key in self.vp8 if t is thread and key]

    def first_decoded_is_keyframe(self, client: SfuClient, mid: str) -> bool:
        thread = client.transceiver(mid).receiver._RTCRtpReceiver__decoder_thread
        return next(key for t, _, key in self.vp8 if t is thread)


@pytest.fixture
def codec_calls(monkeypatch: pytest.MonkeyPatch) -> CodecCalls:
    calls = CodecCalls()
    for cls in (Vp8Decoder, OpusDecoder, H264Decoder):

        def decode(self, encoded_frame, _orig=cls.decode, _cls=cls):
            calls.decodes[threading.current_thread()] += 1
            if _cls is Vp8Decoder:
                key = is_keyframe("VP8", encoded_frame.data)
                calls.vp8.append((threading.current_thread(), time.monotonic(), key))
            return _orig(self, encoded_frame)

        monkeypatch.setattr(cls, "decode", decode)
    for cls in (Vp8Encoder, OpusEncoder, H264Encoder):

        def encode(self, frame, force_keyframe=False, _orig=cls.encode):
            calls.encodes[id(self)] += 1
            return _orig(self, frame, force_keyframe)

        def pack(self, packet, _orig=cls.pack):
            calls.packs[id(self)] += 1
            return _orig(self, packet)

        monkeypatch.setattr(cls, "encode", encode)
        monkeypatch.setattr(cls, "pack", pack)
    return calls


async def test_video_and_audio_are_forwarded_without_decoding_or_encoding(
    meeting: LocalMeeting, codec_calls: CodecCalls
) -> None:
    await meeting.join("dong-trieu", PatternTrack(320, 240), ToneTrack(0.5))
    subscriber = await meeting.join("uong-bi")
    video = await meeting.receive("uong-bi", "dong-trieu", "video")
    audio = await meeting.receive("uong-bi", "dong-trieu", "audio")

    await until(lambda: len(video.frames) >= 45 and len(audio.frames) >= 50, what="45 video and 50 audio frames")

    # Frames arrive and decode at the subscriber, at the publisher's size.
    assert {(f.width, f.height) for f in video.frames} == {(320, 240)}
    assert codec_calls.first_decoded_is_keyframe(subscriber, subscriber.mids_from("dong-trieu", "video")[0])
    pcm = np.concatenate([f.to_ndarray().ravel() for f in audio.frames[10:]]).astype(np.float64)
    assert np.sqrt(np.mean(pcm**2)) > 1000, "the tone must come through, not silence"

    # The server never decoded, encoded or even re-packetised anything: its senders never created an encoder.
    server_threads = {r._RTCRtpReceiver__decoder_thread for r in meeting.server_receivers()}
    assert None not in server_threads and len(server_threads) == 2
    assert all(codec_calls.decodes[t] == 0 for t in server_threads)
    senders = meeting.server_senders()
    assert len(senders) == 2 and all(s._RTCRtpSender__encoder is None for s in senders)
    assert all(s._RTCRtpSender__packet_count > 0 for s in senders), "sender reports count what was forwarded"

    # The sockets publishers send to got a larger receive buffer (as large as the kernel allows; Linux doubles it).
    rmem_max = kernel_rmem_max()
    for receiver in meeting.server_receivers():
        pair = receiver.transport.transport._connection._nominated[1]
        sock = pair.protocol.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * min(RECEIVE_BUFFER, rmem_max)
    # ...while the clients did (so the counting itself works).
    assert sum(codec_calls.decodes.values()) >= len(video.frames) + len(audio.frames)
    assert sum(codec_calls.encodes.values()) > 0
    assert subscriber.errors == []


async def test_keyframe_request_from_subscriber_reaches_publisher(
    meeting: LocalMeeting, codec_calls: CodecCalls
) -> None:
    await meeting.join("dong-trieu", PatternTrack(320, 240))
    subscriber = await meeting.join("uong-bi")
    video = await meeting.receive("uong-bi", "dong-trieu", "video")
    await until(lambda: len(video.frames) >= 30, what="steady video")
    await asyncio.sleep(0.5)  # past the PLI rate limit of the join
    forwarder = meeting.room.participants["dong-trieu"].publications[0].forwarder
    requests_before, keyframes_before = forwarder.keyframe_requests_sent, forwarder.keyframes_in
    mid = subscriber.mids_from("dong-trieu", "video")[0]
    received_before = len(codec_calls.keyframes(subscriber, mid))

    # The subscriber reports picture loss to the SFU (RTCP PLI, as its decoder would after a loss).
    receiver = subscriber.transceiver(mid).receiver
    ssrc = receiver.getSynchronizationSources()[0].source
    sent_at = time.monotonic()
    await receiver._send_rtcp_pli(ssrc)

    await until(lambda: len(codec_calls.keyframes(subscriber, mid)) > received_before, within=3, what="keyframe")
    assert forwarder.keyframe_requests_sent == requests_before + 1
    assert forwarder.keyframes_in > keyframes_before
    assert codec_calls.keyframes(subscriber, mid)[-1] - sent_at < 0.5


async def test_late_joiner_starts_with_a_fresh_keyframe(meeting: LocalMeeting, codec_calls: CodecCalls) -> None:
    await meeting.join("dong-trieu", PatternTrack(320, 240))
    await meeting.join("uong-bi")
    early = await meeting.receive("uong-bi", "dong-trieu", "video")
    await until(lambda: len(early.frames) >= 45, what="first subscriber's video")  # the first keyframe is long gone

    joined_at = time.monotonic()
    await meeting.join("ha-long")
    late = await meeting.receive("ha-long", "dong-trieu", "video")
    await until(lambda: len(late.frames) >= 10, within=5, what="late joiner's video")

    client = meeting.clients["ha-long"]
    mid = client.mids_from("dong-trieu", "video")[0]
    assert codec_calls.first_decoded_is_keyframe(client, mid), "a late joiner starts with a keyframe"
    assert late.times[0] - joined_at < 1.5
    slot = meeting.room.participants["ha-long"].slots[0]
    assert slot.track.keyframe_requests_received == 0  # no decode error at the subscriber, so no PLI from it
    assert meeting.clients["ha-long"].errors == []


async def test_a_subscriber_leaving_does_not_disturb_the_others(meeting: LocalMeeting, codec_calls: CodecCalls) -> None:
    await meeting.join("dong-trieu", PatternTrack(320, 240), ToneTrack(0.3))
    await meeting.join("uong-bi")
    await meeting.join("ha-long")
    staying = await meeting.receive("uong-bi", "dong-trieu", "video")
    leaving = await meeting.receive("ha-long", "dong-trieu", "video")
    await until(lambda: len(staying.frames) >= 20 and len(leaving.frames) >= 20, what="both subscribers")
    forwarder = meeting.room.participants["dong-trieu"].publications[0].forwarder
    requests = forwarder.keyframe_requests_sent

    await meeting.leave("ha-long")
    left_at = time.monotonic()
    count_at_leave = len(staying.frames)
    await asyncio.sleep(1.0)

    after = [t for t in staying.times if t > left_at]
    assert len(staying.frames) - count_at_leave >= 25, "about 30 frames per second keep coming"
    assert max(b - a for a, b in zip([left_at, *after], after, strict=False)) < 0.2, "no stall"
    assert forwarder.keyframe_requests_sent == requests, "no keyframe was needed"
    assert len(forwarder.subscribers) == 1
    mid = meeting.clients["uong-bi"].mids_from("dong-trieu", "video")[0]
    assert not [t for t in codec_calls.keyframes(meeting.clients["uong-bi"], mid) if t > left_at]


async def test_packets_lost_towards_a_subscriber_are_repaired_by_its_nacks(
    meeting: LocalMeeting, codec_calls: CodecCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[int] = []
    send = _Output.send

    def lossy_send(self: _Output, data: bytes, payload_size: int, timestamp: int, ntp: int) -> None:
        if self.kind == "video" and self.packets % 10 == 9 and len(dropped) < 20:  # lose one packet in ten on the wire
            dropped.append(self.packets)
            self.packets += 1  # the sender counts it as sent, as a loss after the socket would
            return
        send(self, data, payload_size, timestamp, ntp)

    monkeypatch.setattr(_Output, "send", lossy_send)
    await meeting.join("dong-trieu", PatternTrack(320, 240))
    subscriber = await meeting.join("uong-bi")
    video = await meeting.receive("uong-bi", "dong-trieu", "video")

    await until(lambda: len(dropped) == 20 and len(video.frames) >= 60, within=10, what="60 frames through loss")
    track = meeting.room.participants["uong-bi"].slots[0].track
    assert track.retransmissions >= 18, "the subscriber NACKed the lost packets and got them again"
    assert {(f.width, f.height) for f in video.frames} == {(320, 240)}
    mid = subscriber.mids_from("dong-trieu", "video")[0]
    assert len(codec_calls.keyframes(subscriber, mid)) == 1, "repaired by retransmission, not by a new keyframe"


# -- the packet forwarder on its own (fake receiver and sender: every byte it puts on the wire is checked) -----------


class FakeUdp:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append(data)


class FakeReceiver:
    """What TrackForwarder needs of an aiortc receiver: the two private attributes and the PLI call."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self._RTCRtpReceiver__jitter_buffer = None
        self._RTCRtpReceiver__codecs = {codec.payloadType: codec}
        self.plis: list[int] = []

    async def _send_rtcp_pli(self, ssrc: int) -> None:
        self.plis.append(ssrc)

    def deliver(self, packet: RtpPacket) -> None:
        """What RTCRtpReceiver._handle_rtp_packet does with a packet after RTX, NACK and depayloading."""
        self._RTCRtpReceiver__jitter_buffer.add(packet)


class FakeSender:
    """An RTCRtpSender's surface as ForwardedTrack uses it; nothing is sent except through the fake socket."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._ssrc, self._rtx_ssrc = 0x5EED0001, 0x5EED0002
        self._RTCRtpSender__packet_count = self._RTCRtpSender__octet_count = 0
        self._RTCRtpSender__ntp_timestamp = self._RTCRtpSender__rtp_timestamp = 0
        self.udp = FakeUdp()
        pair = SimpleNamespace(protocol=aioice.ice.StunProtocol(None), remote_addr=("127.0.0.1", 9))
        pair.protocol.transport = self.udp
        srtp = SimpleNamespace(protect=lambda data: data)  # the wire shows the plain RTP the forwarder built
        ice = SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair}))
        self.transport = SimpleNamespace(_state=DtlsState.CONNECTED, _tx_srtp=srtp, transport=ice)

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        pass

    def _send_keyframe(self) -> None:
        pass

    async def _retransmit(self, seq: int) -> None:
        pass


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
SUB_EXTENSIONS = [
    RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
]


def send_parameters(codec: RTCRtpCodecParameters, mid: str) -> RTCRtpSendParameters:
    """What a subscriber's connection negotiated: payload type 120 for the codec (the publisher's differs), RTX 121."""
    codecs = [RTCRtpCodecParameters(mimeType=codec.mimeType, clockRate=codec.clockRate, payloadType=120)]
    if codec.mimeType.startswith("video/"):
        codecs.append(
            RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=121, parameters={"apt": 120})
        )
    return RTCRtpSendParameters(codecs=codecs, headerExtensions=SUB_EXTENSIONS, muxId=mid)


async def subscribe(track: ForwardedTrack, kind: str, mid: str, codec: RTCRtpCodecParameters = VP8) -> FakeSender:
    sender = FakeSender(kind)
    track.bind(sender)  # type: ignore[arg-type]
    await sender.send(send_parameters(codec, mid))
    return sender


def parse(data: bytes) -> RtpPacket:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=SUB_EXTENSIONS))
    return RtpPacket.parse(data, extensions)


def publisher(ssrc: int, frames: list[bytes], first_seq: int, first_ts: int) -> list[RtpPacket]:
    packets = vp8_packets(frames, first_seq=first_seq)
    for p in packets:
        p.ssrc, p.timestamp = ssrc, (p.timestamp + first_ts) & 0xFFFFFFFF
    return packets


async def test_packets_are_forwarded_unchanged_under_the_subscribers_header(vp8_frames: list[bytes]) -> None:
    receiver = FakeReceiver(VP8)
    forwarder = TrackForwarder(receiver, "video", codec=VP8)  # type: ignore[arg-type]
    track = ForwardedTrack("video")
    track.set_source(forwarder)
    sender = await subscribe(track, "video", "7")
    packets = publisher(1111, vp8_frames, first_seq=65530, first_ts=4_294_960_000)  # both wrap on the way

    for p in packets:
        receiver.deliver(p)
    receiver.deliver(packets[1])  # a retransmission that crossed the late original: not sent twice

    out = [parse(d) for d in sender.udp.sent]
    assert [o.payload for o in out] == [p.payload for p in packets], "payloads go out byte for byte"
    assert forwarder.duplicates_in == 1
    assert [o.marker for o in out] == [p.marker for p in packets]
    assert {(o.ssrc, o.payload_type) for o in out} == {(sender._ssrc, 120)}
    assert [(o.sequence_number - out[0].sequence_number) & 0xFFFF for o in out] == list(range(len(out)))
    assert [(o.timestamp - out[0].timestamp) & 0xFFFFFFFF for o in out] == [
        (p.timestamp - packets[0].timestamp) & 0xFFFFFFFF for p in packets
    ]
    assert all(o.extensions.mid == "7" and o.extensions.abs_send_time is not None for o in out)
    assert sender._RTCRtpSender__packet_count == len(out), "the sender's RTCP reports count what we sent"
    assert sender._RTCRtpSender__rtp_timestamp == out[-1].timestamp
    assert track.frames_sent == len(vp8_frames) and forwarder.keyframes_in == 1


async def test_a_subscriber_starts_at_a_keyframe_and_a_new_source_continues_its_numbering(
    vp8_frames: list[bytes],
) -> None:
    gop = encode_vp8(8, 160, 120, gop=4)  # keyframes at frames 0 and 4
    receiver_a, receiver_b = FakeReceiver(VP8), FakeReceiver(VP8)
    a = TrackForwarder(receiver_a, "video", codec=VP8)  # type: ignore[arg-type]
    b = TrackForwarder(receiver_b, "video", codec=VP8)  # type: ignore[arg-type]
    a_packets = publisher(1111, gop, first_seq=100, first_ts=0)
    b_packets = publisher(2222, gop, first_seq=40000, first_ts=123456)
    track = ForwardedTrack("video")
    track.set_source(a)
    for p in a_packets[:3]:
        receiver_a.deliver(p)  # before the subscriber's sender starts: nothing is queued
    sender = await subscribe(track, "video", "1")
    await asyncio.sleep(0)
    assert receiver_a.plis == [1111], "starting asks the publisher for a keyframe"
    a_rest = a_packets[3:]
    first_key = next(i for i, p in enumerate(a_rest) if starts_keyframe("VP8", p.payload))
    for p in a_rest:
        receiver_a.deliver(p)
    from_a = [parse(d) for d in sender.udp.sent]
    assert [o.payload for o in from_a] == [p.payload for p in a_rest[first_key:]], "delta frames before it dropped"
    assert track.frames_dropped > 0

    sender.udp.sent.clear()
    await asyncio.sleep(0.05)
    track.set_source(b)  # the slot now carries another site: wait for its keyframe, keep the numbering going
    for p in b_packets:
        receiver_b.deliver(p)
    from_b = [parse(d) for d in sender.udp.sent]
    assert [o.payload for o in from_b] == [p.payload for p in b_packets], "b's stream begins with a keyframe"
    assert from_b[0].ssrc == from_a[0].ssrc
    assert from_b[0].sequence_number == (from_a[-1].sequence_number + 1) & 0xFFFF, "no gap for the subscriber to NACK"
    elapsed = (from_b[0].timestamp - from_a[-1].timestamp) & 0xFFFFFFFF
    assert 0.04 * 90000 < elapsed < 1.0 * 90000, "timestamps move on by the wall time between the two sources"


async def test_a_nack_is_answered_from_the_history_as_rtx_once_per_interval(vp8_frames: list[bytes]) -> None:
    receiver = FakeReceiver(VP8)
    forwarder = TrackForwarder(receiver, "video", codec=VP8)  # type: ignore[arg-type]
    track = ForwardedTrack("video")
    track.set_source(forwarder)
    sender = await subscribe(track, "video", "3")
    packets = publisher(1111, vp8_frames, first_seq=5, first_ts=0)
    for p in packets:
        receiver.deliver(p)
    sent = [parse(d) for d in sender.udp.sent]
    lost = sent[2]

    await sender._retransmit(lost.sequence_number)  # the subscriber's NACK, as aiortc's RTCP handler calls it
    await sender._retransmit(lost.sequence_number)  # repeated at once: not resent again
    await sender._retransmit((sent[-1].sequence_number + 5) & 0xFFFF)  # never sent: ignored
    assert len(sender.udp.sent) == len(sent) + 1 and track.retransmissions == 1
    rtx = parse(sender.udp.sent[-1])
    assert (rtx.payload_type, rtx.ssrc) == (121, sender._rtx_ssrc)
    assert unwrap_rtx(rtx, payload_type=120, ssrc=sender._ssrc).payload == lost.payload
    assert int.from_bytes(rtx.payload[:2], "big") == lost.sequence_number
    assert rtx.timestamp == lost.timestamp and rtx.marker == lost.marker


async def test_audio_is_forwarded_packet_by_packet_with_its_level_and_muting_resumes_without_a_gap() -> None:
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    receiver = FakeReceiver(opus)
    forwarder = TrackForwarder(receiver, "audio", codec=opus)  # type: ignore[arg-type]
    track = ForwardedTrack("audio")
    track.set_source(forwarder)
    sender = await subscribe(track, "audio", "0", opus)
    for seq in (10, 11, 13, 12, 14):  # reordered on the way in: forwarded as it comes, the browser reorders
        receiver.deliver(audio_packet(seq))
    out = [parse(d) for d in sender.udp.sent]
    first = out[0].sequence_number
    assert [(o.sequence_number - first) & 0xFFFF for o in out] == [0, 1, 3, 2, 4]
    assert all(o.extensions.audio_level == (False, 30) for o in out)

    forwarder.set_paused(True)
    for seq in range(15, 40):
        receiver.deliver(audio_packet(seq))
    forwarder.set_paused(False)
    receiver.deliver(audio_packet(40))
    resumed = parse(sender.udp.sent[-1])
    assert len(sender.udp.sent) == 6
    assert resumed.sequence_number == (first + 5) & 0xFFFF, "resuming continues the numbering"
    assert resumed.timestamp - out[0].timestamp == 30 * 960, "timestamps keep the publisher's clock"


def test_keyframe_start_is_recognised_in_the_rtp_payload(vp8_frames: list[bytes]) -> None:
    packets = vp8_packets(vp8_frames)
    starts = [p for p in packets if starts_keyframe("VP8", p.payload)]
    assert starts == [packets[0]], "only the first packet of the first (key) frame"
    short_pid = Vp8Encoder._packetize(vp8_frames[0], picture_id=5)[0]  # 7-bit PictureID
    assert starts_keyframe("VP8", short_pid)
    assert starts_keyframe("H264", bytes([0x67, 0x42]))  # SPS
    assert starts_keyframe("H264", bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]))  # STAP-A(SPS, PPS)
    assert starts_keyframe("H264", bytes([0x7C, 0x85, 0x88]))  # FU-A start of an IDR slice
    assert not starts_keyframe("H264", bytes([0x7C, 0x45, 0x88]))  # FU-A end of an IDR slice
    assert not starts_keyframe("H264", bytes([0x41, 0x9A]))  # non-IDR slice
    assert starts_keyframe("opus", b"\x78") and not starts_keyframe("VP8", b"")


# -- the passthrough buffer on its own ----------------------------------------------------------------------------


def vp8_packets(frames: list[bytes], *, first_seq: int = 65530, mtu_payloads: bool = True) -> list[RtpPacket]:
    """RTP packets as aiortc's sender makes them, with ``_data`` depayloaded as its receiver does."""
    from aiortc.codecs import depayload
    from aiortc.codecs.vpx import Vp8Encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
    packets, seq = [], first_seq
    for n, frame in enumerate(frames):
        payloads = Vp8Encoder._packetize(frame, picture_id=n)
        for i, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=97, sequence_number=seq, timestamp=n * 3000, ssrc=1234)
            packet.payload = payload
            packet.marker = int(i == len(payloads) - 1)
            packet._data = depayload(codec, payload)  # type: ignore[attr-defined]
            packets.append(packet)
            seq = (seq + 1) & 0xFFFF
    return packets


@pytest.fixture(scope="module")
def vp8_frames() -> list[bytes]:
    return encode_vp8(6, 320, 240, gop=100)


def make_buffer(kind: str = "video") -> tuple[PassthroughBuffer, list]:
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    out: list = []
    mime, pt = ("video/VP8", 97) if kind == "video" else ("audio/opus", 96)
    codecs = {pt: RTCRtpCodecParameters(mimeType=mime, clockRate=90000 if kind == "video" else 48000, payloadType=pt)}
    return PassthroughBuffer(kind, codecs, out.append), out


def test_video_frame_is_released_on_its_marker_packet_not_one_frame_later(vp8_frames: list[bytes]) -> None:
    packets = vp8_packets(vp8_frames[:2])
    first_frame_packets = [p for p in packets if p.timestamp == 0]
    buffer, out = make_buffer()
    stock = JitterBuffer(capacity=512, is_video=True)
    stock_out = []
    for p in first_frame_packets:
        buffer.add(p)
        stock_out.append(stock.add(p)[1])
    assert len(out) == 1 and out[0].data == vp8_frames[0] and out[0].keyframe
    assert stock_out[-1] is None, "aiortc's buffer waits for the next frame's first packet"
    assert stock.add(packets[len(first_frame_packets)])[1].data == vp8_frames[0]


def test_video_frames_reassemble_across_reordering_and_sequence_wrap(vp8_frames: list[bytes]) -> None:
    packets = vp8_packets(vp8_frames)
    packets[3], packets[4] = packets[4], packets[3]
    buffer, out = make_buffer()
    for p in packets:
        assert buffer.add(p) == (False, None)
    assert [f.data for f in out] == vp8_frames
    assert [f.keyframe for f in out] == [True] + [False] * (len(vp8_frames) - 1)
    assert not any(f.after_loss for f in out)


def test_a_lost_packet_waits_for_retransmission_then_is_skipped_with_a_pli(
    vp8_frames: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    packets = vp8_packets(vp8_frames)
    frame1 = [p for p in packets if p.timestamp == 3000]
    lost = frame1[0]
    buffer, out = make_buffer()
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    for p in packets:
        if p is not lost and p.timestamp <= 3000 * 3:
            buffer.add(p)
    assert [f.timestamp for f in out] == [0], "frame 1 has a hole: later frames wait behind it"
    buffer.add(lost)  # the NACKed retransmission arrives in time
    assert [f.timestamp for f in out] == [0, 3000, 6000, 9000]

    buffer, out = make_buffer()
    for p in packets:
        if p.timestamp <= 6000 and p is not lost:
            buffer.add(p)
    assert [f.timestamp for f in out] == [0]
    clock[0] += 0.3  # the hole is older than max_wait: give up on frame 1
    pli = [buffer.add(p)[0] for p in packets if p.timestamp > 6000]
    assert pli[0] is True
    assert [f.timestamp for f in out] == [0, 6000, 9000, 12000, 15000]
    assert out[1].after_loss and not out[2].after_loss
    buffer.add(lost)  # too late now: dropped
    assert buffer.late_packets == 1


def audio_packet(seq: int) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 960, ssrc=9)
    packet.payload = packet._data = bytes([seq]) * 40  # type: ignore[attr-defined]
    packet.extensions.audio_level = (False, 30)
    return packet


def test_audio_packets_are_forwarded_immediately_and_late_ones_dropped() -> None:
    buffer, out = make_buffer("audio")
    for seq in (10, 11, 13, 12, 14):
        buffer.add(audio_packet(seq))
    assert [f.timestamp // 960 for f in out] == [10, 11, 13, 14]
    assert all(f.audio_level == 30 for f in out)
    assert buffer.late_packets == 1

    stock = JitterBuffer(capacity=16, prefetch=4)  # what aiortc's receiver uses for audio
    released = [stock.add(audio_packet(seq))[1] for seq in range(10, 15)]
    assert released[:4] == [None] * 4, "aiortc holds the first packet until four more arrive: 80 ms per hop"
    assert released[4] is not None and released[4].timestamp == 10 * 960


def test_keyframe_detection(vp8_frames: list[bytes]) -> None:
    assert is_keyframe("VP8", vp8_frames[0])
    assert not is_keyframe("VP8", vp8_frames[1])
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88")
    assert not is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a")


def test_refuses_an_unsupported_aiortc() -> None:
    check_aiortc_version("1.16.3")
    with pytest.raises(RuntimeError, match=r"supports aiortc 1\.16"):
        check_aiortc_version("1.17.0")
