"""Synthetic media for tests and benchmarks: a moving test pattern, a tone with settable loudness, and tracks that
replay pre-encoded packets (so a benchmark's publishers cost no encoding)."""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import av
import numpy as np
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack, VideoStreamTrack

SAMPLE_RATE = 48000


class PatternTrack(VideoStreamTrack):
    """A moving colour gradient at 30 fps (motion keeps the encoder producing real delta frames)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.frames = 0
        self._x = np.arange(width, dtype=np.uint16)[None, :]
        self._y = np.arange(height, dtype=np.uint16)[:, None]

    def image(self, n: int) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:, :, 0] = (self._x + n * 4) % 256
        img[:, :, 1] = (self._y * 2 + n) % 256
        img[:, :, 2] = ((self._x + self._y) // 2 + n * 2) % 256
        return img

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.image(self.frames), format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        self.frames += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A 440 Hz tone in 20 ms mono frames at 48 kHz; ``amplitude`` 0 gives silence and can change while running."""

    kind = "audio"

    def __init__(self, amplitude: float = 0.5, frequency: float = 440.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.frequency = frequency
        self._start: float | None = None
        self._timestamp = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples = int(AUDIO_PTIME * SAMPLE_RATE)
        if self._start is None:
            self._start = time.time()
        else:
            self._timestamp += samples
            await asyncio.sleep(self._start + self._timestamp / SAMPLE_RATE - time.time())
        t = (self._timestamp + np.arange(samples)) / SAMPLE_RATE
        pcm = (self.amplitude * 32767 * np.sin(2 * math.pi * self.frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


def encode_vp8(frames: int, width: int, height: int, *, bitrate: int = 500_000, gop: int = 60) -> list[bytes]:
    """Encode ``frames`` of the test pattern with libvpx (realtime settings like aiortc's), a keyframe every
    ``gop`` frames so a replay loop can be joined."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, 30)
    codec.framerate = fractions.Fraction(30, 1)
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "end-usage": "cbr"}
    pattern = PatternTrack(width, height)
    out: list[bytes] = []
    for n in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern.image(n), format="bgr24").reformat(format="yuv420p")
        frame.pts = n
        if n % gop == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out[:frames]


def encode_opus(packets: int, *, seed: int = 1) -> list[bytes]:
    """Opus packets (20 ms) of noise-modulated speech-like tone: every packet differs, like real speech."""
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate = 32000
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.time_base = fractions.Fraction(1, SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    samples = 960
    out: list[bytes] = []
    for n in range(packets + 10):
        t = (n * samples + np.arange(samples)) / SAMPLE_RATE
        envelope = 0.3 + 0.2 * math.sin(n / 10)
        pcm = envelope * np.sin(2 * math.pi * 220 * t) + 0.05 * rng.standard_normal(samples)
        frame = av.AudioFrame.from_ndarray((pcm * 32767 * 0.5).astype(np.int16).reshape(1, -1), "s16", "mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = n * samples
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        out.extend(bytes(p) for p in codec.encode(frame))
    return out[:packets]


class ReplayTrack(MediaStreamTrack):
    """Sends pre-encoded frames in a loop at a fixed rate, as ``av.Packet`` (aiortc's sender packs them as they are).

    The loop must start with a keyframe; :meth:`request_keyframe` jumps back to it, as an encoder honours a PLI.
    ``on_sent(index, data)`` is called as each packet is handed to the sender, for latency measurements.
    """

    def __init__(self, kind: str, payloads: list[bytes], *, rate: float, clock_rate: int, on_sent=None) -> None:
        super().__init__()
        self.kind = kind
        self._payloads = payloads
        self._interval = 1.0 / rate
        self._step = round(clock_rate / rate)
        self._time_base = fractions.Fraction(1, clock_rate)
        self._start: float | None = None
        self._index = 0
        self._offset = 0
        self._restart = False
        self.on_sent = on_sent

    def request_keyframe(self) -> None:
        self._restart = True

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            await asyncio.sleep(max(0.0, self._start + self._index * self._interval - loop.time()))
        if self._restart:
            self._restart = False
            self._offset = -self._index % len(self._payloads)
        data = self._payloads[(self._index + self._offset) % len(self._payloads)]
        packet = av.Packet(data)
        packet.pts = self._index * self._step
        packet.time_base = self._time_base
        if self.on_sent is not None:
            self.on_sent(self._index, data)
        self._index += 1
        return packet
