"""The pacer of a subscriber's link: video at the rate the link takes, in order; stale video dropped here."""

from __future__ import annotations

import asyncio
import time

import pytest

from meetings.sfu import pacing
from meetings.sfu.client import until
from meetings.sfu.pacing import Pacer


async def test_a_keyframe_burst_leaves_at_the_link_rate_in_order() -> None:
    pacer = Pacer(1_000_000)  # 125 kB/s
    sent: list[tuple[int, float]] = []
    started = time.monotonic()
    for n in range(40):  # a 48 kB keyframe in 1200-byte packets, all at once
        pacer.send(1200, lambda n=n: sent.append((n, time.monotonic())))
    assert len(sent) < 5, "only a small burst goes at once"
    await until(lambda: len(sent) == 40, within=5, what="the whole burst")
    assert [n for n, _ in sent] == list(range(40))
    took = sent[-1][1] - started
    assert 0.3 < took < 0.9, took  # 48 kB at 125 kB/s is 0.38 s (timers on a busy machine come late)
    assert pacer.queued_bytes == 0 and pacer.dropped == 0


async def test_without_a_rate_nothing_waits_and_lifting_the_rate_flushes() -> None:
    sent: list[int] = []
    pacer = Pacer()
    pacer.send(1200, lambda: sent.append(1))
    assert sent == [1]
    pacer.set_rate(100_000)
    for _ in range(10):
        pacer.send(1200, lambda: sent.append(2))
    assert len(sent) < 11
    pacer.set_rate(None)
    assert len(sent) == 11


async def test_video_that_waited_too_long_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pacing, "MAX_DELAY", 0.05)
    pacer = Pacer(100_000)  # 12.5 kB/s: 50 packets of 1200 bytes take almost 5 s
    sent: list[int] = []
    for n in range(50):
        pacer.send(1200, lambda n=n: sent.append(n))
    await asyncio.sleep(0.3)
    assert pacer.dropped > 30 and len(sent) + pacer.dropped + len(pacer._queue) == 50
    assert sent == sorted(sent)
    pacer.close()
