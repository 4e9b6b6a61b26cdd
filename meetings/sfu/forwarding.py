"""Forward RTP packets through aiortc without depacketising, decoding, encoding or re-packetising them (a true SFU).

Why this module exists
----------------------
Stock aiortc decodes every incoming track, and ``MediaRelay`` hands decoded frames to each consumer, so every viewer
costs a full encode (about a tenth of a core per 480p viewer). An SFU must forward what the publisher sent. aiortc
has no public API for that and its maintainers declined one upstream, so we own this small piece: everything that
touches aiortc internals lives in this module, is checked against aiortc 1.16.x at import time and is covered by
``tests/meetings/test_sfu_forwarding.py``.

What is forwarded
-----------------
Each RTP packet a publisher sends is forwarded to every subscriber as soon as it arrives: same payload bytes, same
marker bit, with only the header rewritten for the subscriber's stream (its SSRC, payload type, its own contiguous
sequence numbers, a timestamp offset, and the header extensions its connection negotiated: ``mid``,
``abs-send-time`` for video, ``ssrc-audio-level`` carried over for audio). There is no jitter buffer on the server
(the receiving browser has its own adaptive one) and no frame reassembly, so a hop adds only processing time, and a
packet costs one header build, one SRTP encryption and one ``sendto`` per subscriber. No asyncio task or coroutine
is created per packet: forwarding runs synchronously inside the receiver's packet handler.

Sequence numbers and timestamps are mapped by an offset per subscriber, re-based when the subscriber starts, when its
slot switches to another publisher, and when forwarding resumes after a mute: the subscriber then sees one
continuous stream (no gap to NACK, no timestamp jump) although its source changed. Video (re)starts at the first
packet of a keyframe; until then packets are dropped and a keyframe is requested from the publisher.

Loss: a packet lost between publisher and server is NACKed by aiortc's receiver as usual; the retransmission
(unwrapped from RTX by aiortc) is forwarded like any packet and fills the subscriber's gap, which the subscriber has
NACKed meanwhile without an answer. A packet lost between server and subscriber is NACKed by the subscriber and
resent from the publication's packet history (one history per published track, shared by all its subscribers), as
RTX (browsers and aiortc negotiate it for video; without it SRTP forbids resending a sequence number).

Known limitation: VP8 PictureIDs are the publisher's, so they jump when a slot switches publisher. The switch always
lands on a keyframe, which decoders accept whatever its PictureID.

How it hooks into aiortc 1.16 (four points, nothing else)
---------------------------------------------------------
1. Receiving. ``RTCRtpReceiver._handle_rtp_packet`` unwraps RTX, sends NACKs and REMB, keeps RTCP statistics, then
   feeds the packet to the receiver's jitter buffer (private ``_RTCRtpReceiver__jitter_buffer``). We replace that
   buffer with a tap whose ``add(packet)`` forwards the packet and returns ``(False, None)``: the decoder thread
   (started by ``receive()`` anyway) never gets work and no decoder is created.
2. Sending. ``RTCRtpSender.send(parameters)`` is wrapped (instance attribute) to learn what was negotiated: payload
   types, RTX, header extension ids, ``mid``. Packets are then built here, encrypted with the DTLS transport's SRTP
   session (``RTCDtlsTransport._tx_srtp``) and handed to the nominated ICE pair's UDP transport. The sender's own RTP
   loop waits on a :class:`ForwardedTrack` that never yields a frame, so no encoder is ever created; its RTCP loop
   still sends sender reports, from counters we keep current (``_RTCRtpSender__packet_count`` and friends).
3. Keyframe requests. A subscriber's PLI/FIR reaches ``RTCRtpSender._handle_rtcp_packet``, which calls
   ``self._send_keyframe()``; we shadow it per sender with a call that sends a PLI to the publisher through
   ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)``, rate limited per publication.
4. Retransmissions. The same handler calls ``self._retransmit(seq)`` for each NACKed packet; we shadow it with a
   lookup in the publication's history.

Adaptation (see :mod:`.adaptation`) adds two observation points on the same objects: the subscriber's receiver
reports and REMB reach ``RTCRtpSender._handle_rtcp_packet``, which we wrap per sender to pass them on after aiortc
has handled them (its RTT estimate, ``_RTCRtpSender__rtt``, is read there); and a publisher's REMB comes from the
receiver's ``_RTCRtpReceiver__remote_bitrate_estimator``, which we wrap to cap the value it reports
(:meth:`TrackForwarder.set_bitrate_cap`). A slot can be switched off (:meth:`ForwardedTrack.set_enabled`, Last-N):
its packets are dropped at the server and it resumes at a keyframe with continuous numbering, like a mute.

Why no simulcast: aiortc 1.16 answers an offer with ``a=simulcast``/``a=rid`` without them (so Chromium then sends
one layer), routes RTP by SSRC or payload type with one NACK generator and one RTX mapping per receiver (from
``ssrc-group:FID``, which RID-based simulcast leaves out), and parses the RID header extensions only for sending.
Receiving layers would mean munging both SDPs and re-implementing NACK and RTX per layer in the receiver tap; the
cap by REMB gives the poor sites a picture of the speaker without that.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import aioice.ice
import aiortc
import pylibsrtp
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci

logger = logging.getLogger(__name__)

SUPPORTED_AIORTC = "1.16."
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_CODECS_ATTR = "_RTCRtpReceiver__codecs"
_SENDER_COUNTERS = ("_RTCRtpSender__packet_count", "_RTCRtpSender__octet_count", "_RTCRtpSender__ntp_timestamp")
_ESTIMATOR_ATTR = "_RTCRtpReceiver__remote_bitrate_estimator"
_RTCP_SSRC_ATTR = "_RTCRtpReceiver__rtcp_ssrc"
_RTT_ATTR = "_RTCRtpSender__rtt"

HISTORY = 1024  # packets kept per published track for subscribers' NACKs (1-2 s of 480p video)
KEYFRAME_MIN_INTERVAL = 0.3  # seconds between PLIs sent to one publisher
RETRANSMIT_MIN_INTERVAL = 0.1  # seconds before one packet is resent to one subscriber again
RECEIVE_BUFFER = 1 << 20  # bytes of socket receive buffer asked for each publisher's connection (see _forward)

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
_HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence number, timestamp, SSRC


def check_aiortc_version(version: str = aiortc.__version__) -> None:
    """The hooks below rely on aiortc 1.16 private names; refuse to run on another series."""
    if not version.startswith(SUPPORTED_AIORTC):
        raise RuntimeError(
            f"meetings.sfu.forwarding supports aiortc {SUPPORTED_AIORTC}x, found {version}: "
            "re-check RTCRtpReceiver._handle_rtp_packet, RTCRtpSender.send, _handle_rtcp_packet, _retransmit and "
            "_run_rtcp, and RTCDtlsTransport._send_rtp, then update the hooks and this check"
        )
    for cls, name in (
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpSender, "_retransmit"),
        (RTCRtpSender, "_handle_rtcp_packet"),
        (RTCRtpReceiver, "_send_rtcp"),
        (RTCDtlsTransport, "_send_rtp"),
    ):
        if not callable(getattr(cls, name, None)):
            raise RuntimeError(f"aiortc {version}: {cls.__name__}.{name} is missing")


check_aiortc_version()


def ntp_now() -> int:
    """The current time as a 64-bit NTP timestamp (what aiortc's ``clock.current_ntp_time`` gives, faster)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 4294967296.0)


def starts_keyframe(codec_name: str, payload: bytes) -> bool:
    """Whether an RTP payload (as sent, before depacketising) is the first packet of a frame decodable on its own.

    VP8 (RFC 7741): the payload descriptor's S bit with partition index 0 marks a frame's first packet; the VP8
    payload header after the descriptor has the P bit (inverse key frame flag) in bit 0. H.264 (RFC 6184): a packet
    carrying a sequence parameter set or an IDR slice, alone, in a STAP-A, or as the first FU-A fragment (encoders
    send SPS and PPS right before the IDR slice, so the first of these packets starts the keyframe). Audio: always.
    """
    if not payload:
        return False
    name = codec_name.upper()
    if name == "VP8":
        b0 = payload[0]
        if not b0 & 0x10 or b0 & 0x0F:
            return False  # not the start of partition 0
        i = 1
        if b0 & 0x80:  # X: extension byte follows
            if len(payload) < 2:
                return False
            x, i = payload[1], 2
            if x & 0x80:  # I: PictureID, 7 or 15 bits
                if len(payload) <= i:
                    return False
                i += 2 if payload[i] & 0x80 else 1
            if x & 0x40:  # L: TL0PICIDX
                i += 1
            if x & 0x30:  # T or K: TID/KEYIDX byte
                i += 1
        return len(payload) > i and not payload[i] & 0x01
    if name == "H264":
        nal = payload[0] & 0x1F
        if nal in (5, 7):
            return True
        if nal == 24:  # STAP-A: 16-bit size, then the NAL unit, repeated
            i = 1
            while i + 2 < len(payload):
                if payload[i + 2] & 0x1F in (5, 7):
                    return True
                i += 2 + int.from_bytes(payload[i : i + 2], "big")
            return False
        if nal == 28:  # FU-A: start bit and the fragmented NAL unit's type in the FU header
            return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
        return False
    return True


def negotiated_codec(transceiver: object) -> RTCRtpCodecParameters | None:
    """The codec the remote side sends on ``transceiver`` (first of the negotiated list), if negotiated."""
    codecs = getattr(transceiver, "_codecs", None) or []
    return next((c for c in codecs if c.name.lower() != "rtx"), None)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the remote side of ``sender`` sends PLI or FIR (hook 3 in the module docstring)."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


class _ReceiverTap:
    """Stands in for a receiver's ``JitterBuffer`` (hook 1): every packet goes to ``forward``, no frame comes back."""

    __slots__ = ("forward",)

    def __init__(self, forward: Callable[[RtpPacket], None]) -> None:
        self.forward = forward

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        try:
            self.forward(packet)
        except Exception:  # a faulty subscriber must not break the receiver's RTP loop
            logger.exception("forwarding an RTP packet failed")
        return False, None


class _CappedEstimator:
    """Wraps a receiver's ``RemoteBitrateEstimator``: the REMB it makes the receiver send is at most ``cap``."""

    __slots__ = ("cap", "inner")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cap: float | None = None

    def add(self, **kwargs: Any) -> tuple[int, list[int]] | None:
        remb = self.inner.add(**kwargs)
        if remb is not None and self.cap is not None and remb[0] > self.cap:
            return int(self.cap), remb[1]
        return remb


class TrackForwarder:
    """One published track: takes RTP packets from its receiver and forwards them to :class:`ForwardedTrack` s."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        *,
        codec: RTCRtpCodecParameters | None = None,
        on_packet: Callable[[TrackForwarder, RtpPacket], None] | None = None,
        keyframe_interval: float = KEYFRAME_MIN_INTERVAL,
    ) -> None:
        if not hasattr(receiver, _JITTER_ATTR) or not hasattr(receiver, _CODECS_ATTR):
            raise RuntimeError(f"aiortc {aiortc.__version__}: RTCRtpReceiver internals changed")
        self.kind = kind
        self.codec = codec
        self.on_packet = on_packet  # observer (audio levels for active-speaker detection)
        self.recorder: Callable[[RtpPacket], None] | None = None  # the room's recording (.recording), if on
        self._codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, _CODECS_ATTR)  # filled by receive()
        self._codec_name = codec.name if codec is not None else ""
        self._receiver = receiver
        self._subscribers: set[ForwardedTrack] = set()
        self._history: list[RtpPacket | None] = [None] * HISTORY
        self._ssrc: int | None = None
        self._paused = False
        self._keyframe_interval = keyframe_interval
        self._last_pli = -1e9
        self._pli_pending: asyncio.TimerHandle | None = None
        self._pli_tasks: set[asyncio.Task[None]] = set()
        self.packets_in = 0
        self.duplicates_in = 0
        self.frames_in = 0
        self.keyframes_in = 0
        self.bytes_in = 0
        self.keyframe_requests_sent = 0
        self.last_timestamp: int | None = None  # RTP timestamp of the newest packet
        self.last_packet_at: float | None = None  # and when it arrived (time.monotonic)
        self.bitrate_cap: float | None = None  # REMB cap sent to the publisher (video)
        self.remb_sent = 0
        self._estimator: _CappedEstimator | None = None
        estimator = getattr(receiver, _ESTIMATOR_ATTR, None)
        if estimator is not None:
            self._estimator = _CappedEstimator(estimator)
            setattr(receiver, _ESTIMATOR_ATTR, self._estimator)
        setattr(receiver, _JITTER_ATTR, _ReceiverTap(self._forward))

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
        if not paused:
            for sub in self._subscribers:
                sub._restart()
            self.request_keyframe()

    def packet(self, sequence_number: int) -> RtpPacket | None:
        """The packet with this sequence number, if it is still in the history."""
        packet = self._history[sequence_number % HISTORY]
        return packet if packet is not None and packet.sequence_number == sequence_number else None

    def _forward(self, packet: RtpPacket) -> None:
        if not self.packets_in:
            _enlarge_receive_buffer(getattr(self._receiver, "transport", None))
        slot = packet.sequence_number % HISTORY
        seen = self._history[slot]
        if seen is not None and seen.sequence_number == packet.sequence_number:
            # A duplicate: a retransmission that crossed the late original. Subscribers have it, and SRTP would
            # refuse to encrypt the same sequence number twice anyway.
            self.duplicates_in += 1
            return
        video = self.kind == "video"
        if self.codec is None:
            self.codec = self._codecs.get(packet.payload_type)
            self._codec_name = self.codec.name if self.codec is not None else ""
        keyframe = video and starts_keyframe(self._codec_name, packet.payload) if packet.payload else False
        self._ssrc = packet.ssrc
        self.packets_in += 1
        self.frames_in += packet.marker or not video
        self.keyframes_in += keyframe
        self.bytes_in += len(packet.payload)
        self.last_timestamp = packet.timestamp
        self.last_packet_at = time.monotonic()
        self._history[slot] = packet
        if self.on_packet is not None:
            self.on_packet(self, packet)
        if self._paused:
            return
        if self.recorder is not None:
            try:
                self.recorder(packet)
            except Exception:  # a failing recording must not stop the meeting's media
                logger.exception("recording an RTP packet failed")
        if not self._subscribers:
            return
        ntp = ntp_now()
        for sub in self._subscribers:
            try:
                sub._forward(packet, keyframe or not video, ntp)
            except Exception:
                logger.exception("forwarding to a subscriber failed")

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

    def set_bitrate_cap(self, bps: float | None) -> None:
        """Cap what the publisher sends (video): its REMB is at most ``bps`` from now on, and a lower cap is sent at
        once (browsers and aiortc's encoder follow REMB when transport-wide congestion control is not negotiated,
        which aiortc never negotiates)."""
        previous, self.bitrate_cap = self.bitrate_cap, bps
        if self._estimator is not None:
            self._estimator.cap = bps
        if bps is None or self._ssrc is None or self.kind != "video":
            return
        if previous is not None and abs(previous - bps) < 0.1 * previous:
            return
        rtcp_ssrc = getattr(self._receiver, _RTCP_SSRC_ATTR, None)
        if rtcp_ssrc is None:
            return
        fci = pack_remb_fci(int(bps), [self._ssrc])
        packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
        self.remb_sent += 1
        task = asyncio.ensure_future(self._receiver._send_rtcp(packet))
        self._pli_tasks.add(task)
        task.add_done_callback(self._pli_tasks.discard)

    def close(self) -> None:
        if self._pli_pending is not None:
            self._pli_pending.cancel()
            self._pli_pending = None
        for sub in list(self._subscribers):
            sub.set_source(None)


def _enlarge_receive_buffer(dtls: RTCDtlsTransport | None, size: int = RECEIVE_BUFFER) -> None:
    """Ask for a larger UDP receive buffer on the socket a publisher's media arrives on.

    The default (about 208 KiB on Linux) holds some 3 s of a 500 kbit/s publication; a server process descheduled
    longer on a busy host loses packets, and a packet lost upstream is a gap for every subscriber until the NACKed
    retransmission comes. The kernel caps the request at ``net.core.rmem_max`` (raise it on a media server)."""
    ice = getattr(dtls, "transport", None)
    pair = getattr(getattr(ice, "_connection", None), "_nominated", {}).get(1)
    transport = getattr(getattr(pair, "protocol", None), "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        except OSError:
            logger.debug("could not enlarge a receive buffer", exc_info=True)


def _extension_block(static: bytes, tail_id: int | None, tail_length: int) -> tuple[bytes, bytes]:
    """An RFC 8285 one-byte-header extension block as (prefix, suffix): ``static`` elements, then the id/length byte
    of an element whose ``tail_length`` value bytes go between prefix and suffix (per packet), then padding."""
    elements = static + (bytes([tail_id << 4 | (tail_length - 1)]) if tail_id else b"")
    length = len(elements) + (tail_length if tail_id else 0)
    if not length:
        return b"", b""
    padding = -length % 4
    return b"\xbe\xde" + ((length + padding) // 4).to_bytes(2, "big") + elements, b"\x00" * padding


class _Output:
    """How one subscriber's ``RTCRtpSender`` puts packets on the wire, from the parameters it was started with."""

    def __init__(self, sender: RTCRtpSender, parameters: RTCRtpSendParameters) -> None:
        codec = parameters.codecs[0]
        self.sender = sender
        self.kind = sender.kind
        self.payload_type = codec.payloadType
        self.ssrc = sender._ssrc
        self.rtx_payload_type = next(
            (c.payloadType for c in parameters.codecs if is_rtx(c) and c.parameters.get("apt") == codec.payloadType),
            None,
        )
        self.rtx_ssrc = sender._rtx_ssrc
        self.rtx_sequence_number = random.getrandbits(15)
        ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        mid = (parameters.muxId or "").encode()
        mid_element = bytes([ids[URI_MID] << 4 | (len(mid) - 1)]) + mid if URI_MID in ids and mid else b""
        self.abs_send_time = URI_ABS_SEND_TIME in ids
        self.audio_level = URI_AUDIO_LEVEL in ids
        self.video_ext = _extension_block(mid_element, ids.get(URI_ABS_SEND_TIME), 3)
        self.level_ext = _extension_block(mid_element, ids.get(URI_AUDIO_LEVEL), 1)
        self.plain_ext = _extension_block(mid_element, None, 0)
        self.packets = 0
        self.octets = 0
        self._route: tuple[RTCDtlsTransport, Any, Any] | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    def build(self, packet: RtpPacket, seq: int, timestamp: int, ntp: int) -> bytes:
        """The subscriber's RTP packet: ``packet``'s payload under this sender's header."""
        if self.kind == "video":
            prefix, suffix = self.video_ext
            value = ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") if self.abs_send_time else b""
        else:
            level = packet.extensions.audio_level
            voice, dbov = level if level is not None else (False, None)
            if dbov is not None and self.audio_level:
                prefix, suffix = self.level_ext
                value = bytes([voice << 7 | dbov])
            else:
                (prefix, suffix), value = self.plain_ext, b""
        assert self.payload_type is not None  # negotiated before anything is forwarded to this sender
        header = _HEADER.pack(
            0x90 if prefix else 0x80, packet.marker << 7 | self.payload_type, seq, timestamp, self.ssrc
        )
        return b"".join((header, prefix, value, suffix, packet.payload))

    def send(self, data: bytes, payload_size: int, timestamp: int, ntp: int) -> None:
        """Encrypt and send one packet, and keep the counters the sender's RTCP reports read."""
        if not self.transmit(data):
            return
        self.packets += 1
        self.octets += payload_size
        sender = self.sender
        sender._RTCRtpSender__packet_count = self.packets  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count = self.octets  # type: ignore[attr-defined]
        sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[attr-defined]

    def transmit(self, data: bytes) -> bool:
        dtls = self.sender.transport
        if dtls._state is not DtlsState.CONNECTED:
            return False
        route = self._route
        if route is None or route[0] is not dtls:
            route = self._route = self._resolve(dtls)
        if route[1] is None:  # not plain UDP (e.g. relayed through TURN): aiortc's own path, in order
            task = asyncio.ensure_future(dtls._send_rtp(data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return True
        try:
            route[1].sendto(dtls._tx_srtp.protect(data), route[2])
        except pylibsrtp.Error as exc:  # e.g. an index libsrtp has used already: drop it, as a network would
            logger.debug("SRTP refused a packet: %s", exc)
            return False
        return True

    @staticmethod
    def _resolve(dtls: RTCDtlsTransport) -> tuple[RTCDtlsTransport, Any, Any]:
        """The UDP socket and address of the nominated ICE pair, when it is a direct (non-TURN) one."""
        pair = getattr(getattr(dtls.transport, "_connection", None), "_nominated", {}).get(1)
        if pair is not None and type(pair.protocol) is aioice.ice.StunProtocol and pair.protocol.transport:
            return dtls, pair.protocol.transport, pair.remote_addr
        return dtls, None, None

    def retransmission(self, packet: RtpPacket, seq: int, timestamp: int, ntp: int) -> bytes | None:
        """``packet`` again as RTX (RFC 4588: original sequence number, then the payload), if RTX was negotiated.
        Without it there is no resending: libsrtp refuses to encrypt a sequence number a second time."""
        if self.rtx_payload_type is None:
            return None
        rtx = RtpPacket(marker=packet.marker, payload_type=0, timestamp=timestamp)
        rtx.payload = seq.to_bytes(2, "big") + packet.payload
        rtx.extensions = packet.extensions
        data = bytearray(self.build(rtx, self.rtx_sequence_number, timestamp, ntp))
        data[1] = data[1] & 0x80 | self.rtx_payload_type
        data[8:12] = self.rtx_ssrc.to_bytes(4, "big")
        self.rtx_sequence_number = (self.rtx_sequence_number + 1) & 0xFFFF
        return bytes(data)


class ForwardedTrack(MediaStreamTrack):
    """A subscriber slot: what one ``RTCRtpSender`` carries, the packets of one :class:`TrackForwarder` at a time.

    For aiortc this is the sender's track, but it never yields a frame (``recv`` waits until the track stops): the
    packets are put on the wire by :meth:`_forward` (see the module docstring). The source can change (a slot
    reused for another site) without renegotiation: sequence numbers and timestamps stay continuous and video
    resumes at a keyframe.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._source: TrackForwarder | None = None
        self._out: _Output | None = None
        self._ended = asyncio.Event()
        self._need_keyframe = kind == "video"
        self.enabled = True  # False: Last-N or audio selection left this slot out for now
        self.on_rtcp: Callable[[ForwardedTrack, Any], None] | None = None  # the subscriber's RR / REMB (adaptation)
        self.pacer: Any = None  # video goes through the subscriber connection's pacer (.pacing.Pacer), if set
        self._need_sync = True  # the next forwarded packet re-bases the sequence number (and timestamp) offsets
        self._switched = True  # ...and the timestamp offset too: the source changed
        self._seq_offset = 0
        self._ts_offset = 0
        self._first_seq = 0  # first sequence number sent since the last re-base
        self._last_seq = random.getrandbits(15)  # newest sequence number sent
        self._last_ts = random.getrandbits(32)  # timestamp of the newest packet sent when the source last changed
        self._last_at: float | None = None  # ...and when that packet came in
        self.packets_sent = 0
        self.bytes_sent = 0  # RTP header and payload, before SRTP
        self.frames_sent = 0
        self.frames_dropped = 0  # video frames dropped while waiting for a keyframe
        self.retransmissions = 0
        self._resent_at = [-1.0] * HISTORY  # when each sequence number (of ours, modulo HISTORY) was last resent
        self.keyframe_requests_received = 0

    @property
    def source(self) -> TrackForwarder | None:
        return self._source

    def bind(self, sender: RTCRtpSender) -> None:
        """Take over ``sender``: learn its parameters when it starts, answer its PLIs and NACKs (hooks 2 to 4)."""
        for name in _SENDER_COUNTERS:
            if not hasattr(sender, name):
                raise RuntimeError(f"aiortc {aiortc.__version__}: RTCRtpSender internals changed ({name})")
        on_keyframe_request(sender, self._keyframe_requested)
        sender._retransmit = self._retransmit  # type: ignore[method-assign,assignment]
        handle_rtcp = getattr(sender, "_handle_rtcp_packet", None)  # (test doubles have no RTCP)
        if handle_rtcp is not None:

            async def observe_rtcp(packet: Any) -> None:
                await handle_rtcp(packet)
                if self.on_rtcp is not None:
                    try:
                        self.on_rtcp(self, packet)
                    except Exception:
                        logger.exception("observing RTCP failed")

            sender._handle_rtcp_packet = observe_rtcp  # type: ignore[method-assign]
        send = sender.send

        async def start(parameters: RTCRtpSendParameters) -> None:
            await send(parameters)
            if self._out is None:
                self._out = _Output(sender, parameters)
                self._restart()
                if self._source is not None:
                    self._source.request_keyframe()

        sender.send = start  # type: ignore[method-assign]

    def set_source(self, source: TrackForwarder | None) -> None:
        if source is self._source:
            return
        old = self._source
        if old is not None:
            old._subscribers.discard(self)
            if old.last_timestamp is not None and not self._need_sync:
                self._last_ts = (old.last_timestamp + self._ts_offset) & 0xFFFFFFFF
                self._last_at = old.last_packet_at
        self._source = source
        self._switched = True
        self._restart()
        if source is not None:
            source._subscribers.add(self)
            if self._out is not None:
                source.request_keyframe()

    @property
    def round_trip(self) -> float | None:
        """aiortc's RTT estimate for this sender (from our sender reports and the subscriber's receiver reports)."""
        out = self._out
        return getattr(out.sender, _RTT_ATTR, None) if out is not None else None

    def set_enabled(self, enabled: bool) -> None:
        """Forward (or stop forwarding) this slot's source; resuming video waits for a keyframe, asked for now."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        if enabled:
            self._restart()
            if self._source is not None and self._out is not None:
                self._source.request_keyframe()

    def _restart(self) -> None:
        """Start again at the next keyframe (video) or packet (audio), continuing this stream's numbering."""
        self._need_keyframe = self.kind == "video"
        self._need_sync = True

    def _keyframe_requested(self) -> None:
        self.keyframe_requests_received += 1
        if self._source is not None:
            self._source.request_keyframe()

    def _forward(self, packet: RtpPacket, decodable: bool, ntp: int) -> None:
        out = self._out
        if out is None or not self.enabled:
            return  # the sender has not started: a late joiner begins at a fresh keyframe, not a backlog
        if self._need_keyframe:
            if not decodable:
                self.frames_dropped += packet.marker
                return
            self._need_keyframe = False
        if self._need_sync:
            self._sync(packet)
        seq = (packet.sequence_number + self._seq_offset) & 0xFFFF
        if (seq - self._last_seq) & 0xFFFF < 0x8000:
            self._last_seq = seq
        elif (seq - self._first_seq) & 0xFFFF >= 0x8000:
            return  # reordered from before the re-base: the subscriber's numbering has no place for it
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        data = out.build(packet, seq, timestamp, ntp)
        if self.pacer is not None and self.kind == "video":
            size = len(packet.payload)
            self.pacer.send(len(data), lambda: out.send(data, size, timestamp, ntp))
        else:
            out.send(data, len(packet.payload), timestamp, ntp)
        self.packets_sent += 1
        self.bytes_sent += len(data)
        self.frames_sent += packet.marker or self.kind == "audio"

    def _sync(self, packet: RtpPacket) -> None:
        self._first_seq = (self._last_seq + 1) & 0xFFFF
        self._seq_offset = (self._first_seq - packet.sequence_number) & 0xFFFF
        if self._switched:
            ts = self._last_ts
            if self._last_at is not None and self._source is not None:
                ts += max(1, round((time.monotonic() - self._last_at) * self._source.clock_rate))
            self._ts_offset = (ts - packet.timestamp) & 0xFFFFFFFF
            self._switched = False
        self._need_sync = False

    async def _retransmit(self, seq: int) -> None:
        """A subscriber's NACK for ``seq`` (its numbering): resend from the publication's history if it is there."""
        out, source = self._out, self._source
        if out is None or source is None or self._need_sync:
            return
        if (seq - self._first_seq) & 0xFFFF >= 0x8000 or (self._last_seq - seq) & 0xFFFF >= 0x8000:
            return  # not sent since the last re-base
        # Receivers repeat a NACK until the packet arrives (aiortc's repeats every missing packet each time it sees
        # a new gap): resending each time would multiply the traffic of a subscriber that is already losing packets.
        now = time.monotonic()
        # ...and a resend needs a round trip to arrive: on a 300 ms link, resending every 100 ms tripled the repair
        # traffic of a site that is losing packets already.
        interval = max(RETRANSMIT_MIN_INTERVAL, 1.2 * (self.round_trip or 0.0))
        if now - self._resent_at[seq % HISTORY] < interval:
            return
        packet = source.packet((seq - self._seq_offset) & 0xFFFF)
        if packet is None:
            return  # lost upstream too: aiortc's receiver has NACKed the publisher, the repair will be forwarded
        self._resent_at[seq % HISTORY] = now
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        data = out.retransmission(packet, seq, timestamp, ntp_now())
        if data is not None and out.transmit(data):
            self.retransmissions += 1
            if self.pacer is not None:
                self.pacer.charge(len(data))  # repairs go at once, and count against the video rate

    async def recv(self) -> Any:
        """What the sender's RTP loop waits on: nothing ever comes, the track only ends."""
        if self.readyState == "live":
            await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self.set_source(None)
            self._ended.set()
