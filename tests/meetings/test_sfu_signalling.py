"""The signalling state machine: trickle ICE, coalesced renegotiation, protocol errors, loopback ICE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from meetings.sfu import loopback
from meetings.sfu.client import LocalMeeting, SfuClient, until
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.room import rtc_configuration
from meetings.sfu.signalling import SignallingSession
from meetings.sfu.synthetic import PatternTrack, ToneTrack


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


def test_loopback_ice_offers_only_127_0_0_1() -> None:
    assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]
    with loopback_ice():
        pass
    assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"], "nesting restores the outer patch"


def test_without_the_patch_aioice_skips_loopback() -> None:
    assert "127.0.0.1" not in loopback.AIOICE_HOST_ADDRESSES(True, False)


async def test_trickled_candidates_before_the_offer_are_applied(meeting: LocalMeeting) -> None:
    """A browser trickles: the offer carries no candidates and some candidates arrive before it."""
    client = SfuClient()
    await meeting.join("ha-long")  # a viewer
    participant = await meeting.room.join("dong-trieu", client.handle)
    client.send = participant.handle  # direct calls are fine here: the client only sends, never waits on a reply

    client.pub_pc.addTransceiver(PatternTrack(160, 120), direction="sendonly")
    await client.pub_pc.setLocalDescription(await client.pub_pc.createOffer())
    lines = client.pub_pc.localDescription.sdp.splitlines()
    candidates = [line[2:] for line in lines if line.startswith("a=candidate:")]
    stripped = "\r\n".join(line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates")))
    assert candidates

    for candidate in candidates:  # before the offer: must be kept, not rejected
        await participant.handle({"type": "candidate", "pc": "pub", "candidate": candidate, "sdpMid": "0"})
    await participant.handle({"type": "offer", "pc": "pub", "sdp": stripped + "\r\n"})
    await participant.handle({"type": "candidate", "pc": "pub", "candidate": None})
    await until(lambda: client.published.is_set(), what="answer")
    assert client.errors == []

    video = await meeting.receive("ha-long", "dong-trieu", "video")
    await until(lambda: len(video.frames) >= 5, what="video over trickled candidates")
    await meeting.room.leave("dong-trieu")
    await client.close()


async def test_renegotiations_are_serialised_and_coalesced() -> None:
    server = RTCPeerConnection(rtc_configuration())
    client = RTCPeerConnection(rtc_configuration())
    outbox: asyncio.Queue[dict] = asyncio.Queue()
    session = SignallingSession(server, outbox.put, name="sub", extra=lambda: {"tracks": len(server.getTransceivers())})
    try:
        server.addTransceiver(PatternTrack(), direction="sendonly")
        await session.negotiate()
        first = outbox.get_nowait()
        assert first["type"] == "offer" and first["pc"] == "sub" and first["tracks"] == 1

        # three changes while the first offer is unanswered: one follow-up offer, made after the answer
        for _ in range(3):
            server.addTransceiver(ToneTrack(), direction="sendonly")
            await session.negotiate()
        assert outbox.empty() and session.awaiting_answer

        await client.setRemoteDescription(RTCSessionDescription(first["sdp"], "offer"))
        await client.setLocalDescription(await client.createAnswer())
        await session.handle({"type": "answer", "pc": "sub", "sdp": client.localDescription.sdp})
        second = outbox.get_nowait()
        assert second["type"] == "offer" and second["tracks"] == 4
        assert outbox.empty() and session.offers_sent == 2

        # an answer nobody asked for is refused, the pending offer is untouched
        await session.handle({"type": "answer", "pc": "sub", "sdp": client.localDescription.sdp})
        await client.setRemoteDescription(RTCSessionDescription(second["sdp"], "offer"))
        await client.setLocalDescription(await client.createAnswer())
        await session.handle({"type": "answer", "pc": "sub", "sdp": client.localDescription.sdp})
        error = outbox.get_nowait()
        assert error["type"] == "error"  # the first, unexpected answer; the second was accepted
        assert server.signalingState == "stable" and outbox.empty()
    finally:
        await session.close()
        await client.close()


async def test_protocol_errors_are_reported_not_raised(meeting: LocalMeeting) -> None:
    client = await meeting.join("dong-trieu")
    participant = meeting.links["dong-trieu"].participant
    for bad in (
        {"type": "offer", "pc": "sub", "sdp": "v=0"},  # the server offers on sub
        {"type": "answer", "pc": "pub", "sdp": "v=0"},  # the client offers on pub
        {"type": "offer", "pc": "pub", "sdp": ""},
        {"type": "offer", "pc": "pub", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 120\r\na=mid:0\r\n"},
        {"type": "candidate", "pc": "pub", "candidate": "candidate:garbage", "sdpMid": "0"},
        {"type": "dance", "pc": "pub"},
        {"type": "offer", "sdp": "v=0"},
        {"type": "mute", "kind": "smell"},
    ):
        await participant.handle(bad)
    await until(lambda: len(client.errors) == 8, what="eight errors")

    # the session still works afterwards
    await client.publish(PatternTrack(160, 120))
    await until(lambda: client.published.is_set(), what="answer after errors")
