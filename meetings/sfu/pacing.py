"""Audio ahead of video on a subscriber's link: video packets leave at the rate the link can take, audio at once.

A publisher's keyframe is tens of kilobytes sent in one burst; forwarded as it comes, it fills the small queue in
front of a commune's 1-2 Mbit/s link and the packets behind it (audio among them) are dropped. The pacer of one
subscriber connection lets video out at ``rate`` (its estimate less its audio, set by the adaptation loop) with a
burst of ``BURST`` seconds' worth; audio never waits for it. Video that waited longer than ``MAX_DELAY`` is dropped
here rather than late on the link (the subscriber NACKs it or asks for a keyframe); the rate is never set below
what the chosen videos send, so this is only a safety net.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

BURST = 0.02  # seconds of the rate sent back to back
MIN_BURST_BYTES = 3000  # two full packets
MAX_DELAY = 1.0  # seconds a video packet may wait here


class Pacer:
    def __init__(self, rate_bps: float | None = None) -> None:
        self.rate_bps = rate_bps  # None: no pacing
        self._queue: deque[tuple[float, int, Callable[[], None]]] = deque()
        self._tokens = 0.0
        self._at = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self.queued_bytes = 0
        self.dropped = 0
        self.paced = 0

    def set_rate(self, rate_bps: float | None) -> None:
        self.rate_bps = rate_bps
        if rate_bps is None:
            self._flush()

    def send(self, size: int, transmit: Callable[[], None]) -> None:
        """Put ``transmit`` (one video packet of ``size`` bytes) on the wire now or when the rate allows."""
        if self.rate_bps is None:
            transmit()
            return
        self._refill()
        if not self._queue and self._tokens >= 0:
            self._tokens -= size
            transmit()
            return
        self._queue.append((time.monotonic(), size, transmit))
        self.queued_bytes += size
        self.paced += 1
        self._schedule()

    def charge(self, size: int) -> None:
        """``size`` bytes went out without waiting (a retransmission): the video behind it waits for them."""
        if self.rate_bps is not None:
            self._refill()
            self._tokens -= size

    def _capacity(self) -> float:
        return max(MIN_BURST_BYTES, (self.rate_bps or 0) / 8 * BURST)

    def _refill(self) -> None:
        now = time.monotonic()
        if self.rate_bps is not None:
            self._tokens = min(self._capacity(), self._tokens + (now - self._at) * self.rate_bps / 8)
        self._at = now

    def _schedule(self) -> None:
        if self._timer is not None or not self._queue or self.rate_bps is None:
            return
        wait = max(0.002, -self._tokens * 8 / self.rate_bps) if self._tokens < 0 else 0.002
        self._timer = asyncio.get_running_loop().call_later(wait, self._drain)

    def _drain(self) -> None:
        self._timer = None
        if self.rate_bps is None:
            self._flush()
            return
        self._refill()
        now = time.monotonic()
        while self._queue and self._tokens >= 0:
            queued_at, size, transmit = self._queue.popleft()
            self.queued_bytes -= size
            if now - queued_at > MAX_DELAY:
                self.dropped += 1
                continue
            self._tokens -= size
            transmit()
        self._schedule()

    def _flush(self) -> None:
        while self._queue:
            _, size, transmit = self._queue.popleft()
            self.queued_bytes -= size
            transmit()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self.queued_bytes = 0
