"""Cascade in one process: two SFU rooms (standing for two server processes) joined by a relay leg, the same
:class:`~meetings.sfu.cascade.RelayImport` and relay participant the servers use, signalling through in-process
pipes instead of the internal WebSocket. The two-process version is tests/meetings/test_sfu_cascade_servers.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from meetings.sfu.cascade import RELAY_PREFIX, RelayImport, relay_exports
from meetings.sfu.client import LocalMeeting, Pipe, until
from meetings.sfu.forwarding import on_keyframe_request
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.room import Participant, SfuRoom
from meetings.sfu.synthetic import PatternTrack, ToneTrack


@pytest.fixture(autouse=True)
def _loopback() -> Iterator[None]:
    with loopback_ice():
        yield


class Leg:
    """Room ``target`` receives ``origin``'s own sites' tracks (``target``'s process opened a leg from origin's)."""

    def __init__(self) -> None:
        self.relay: RelayImport | None = None
        self.participant: Participant | None = None
        self.pipes: list[Pipe] = []

    @classmethod
    async def open(cls, origin: SfuRoom, target: SfuRoom, node: str) -> Leg:
        leg = cls()
        joined: asyncio.Future[Participant] = asyncio.get_running_loop().create_future()

        async def to_origin(message: dict) -> None:  # type: ignore[type-arg]
            await (await joined).handle(message)

        up = Pipe(to_origin)
        leg.relay = RelayImport(target, "A", up.send)
        down = Pipe(leg.relay.handle)
        leg.pipes = [up, down]
        leg.participant = await origin.join(RELAY_PREFIX + node, down.send, name=f"Máy chủ {node}", relay=True)
        joined.set_result(leg.participant)
        return leg

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        for pipe in self.pipes:
            await pipe.close()


@pytest.fixture
async def rooms() -> AsyncIterator[tuple[LocalMeeting, LocalMeeting]]:
    a, b = LocalMeeting("họp A"), LocalMeeting("họp B")
    yield a, b
    await b.close()
    await a.close()


async def test_a_track_crosses_the_leg_once_for_three_subscribers(rooms: tuple[LocalMeeting, LocalMeeting]) -> None:
    a, b = rooms
    publisher = await a.join("site:dong-trieu", PatternTrack(160, 120), ToneTrack(0.3))
    await a.join("site:uong-bi")
    for name in ("site:ha-long", "site:cam-pha", "site:mong-cai"):
        await b.join(name)
    leg = await Leg.open(a.room, b.room, "B")
    try:
        assert leg.relay is not None and leg.participant is not None
        # every subscriber on B decodes the publisher's video, and the one on A too
        received = [await b.receive(s, "site:dong-trieu", "video") for s in ("site:ha-long", "site:cam-pha",
                                                                               "site:mong-cai")]
        received.append(await a.receive("site:uong-bi", "site:dong-trieu", "video"))
        await until(lambda: all(len(r.frames) >= 10 for r in received), within=30, what="decoded frames")
        assert {(f.width, f.height) for r in received for f in r.frames} == {(160, 120)}  # type: ignore[union-attr]
        names = {t["name"] for t in b.clients["site:ha-long"].tracks.values()}
        assert names == {"Điểm cầu site:dong-trieu"}

        # once across: one relay participant on A carrying the two tracks, each feeding B's three subscribers
        exports = relay_exports(a.room)
        assert list(exports) == ["B"]
        assert sorted(t["kind"] for t in exports["B"]) == ["audio", "video"]
        video_pub = next(p for p in a.room.participants["site:dong-trieu"].publications if p.kind == "video")
        assert len(video_pub.forwarder.subscribers) == 2  # uong-bi and the leg, not one per subscriber on B
        imported = leg.relay.stats()
        assert sorted((t["participant"], t["kind"]) for t in imported) == [("site:dong-trieu", "audio"),
                                                                           ("site:dong-trieu", "video")]
        assert all(t["subscribers"] == 3 for t in imported)
        assert b.room.participants["site:dong-trieu"].remote

        # a keyframe request from a subscriber on B reaches the publisher on A
        await asyncio.sleep(0.5)  # past the PLI rate limit of the joins
        sender = next(t.sender for t in publisher.pub_pc.getTransceivers() if t.kind == "video")
        asked = []
        on_keyframe_request(sender, lambda: asked.append(1))
        viewer = b.clients["site:ha-long"]
        mid = viewer.mids_from("site:dong-trieu", "video")[0]
        receiver = viewer.transceiver(mid).receiver
        ssrc = receiver.getSynchronizationSources()[0].source
        relay_slot = next(s for s in leg.participant.slots if s.kind == "video")
        before = relay_slot.track.keyframe_requests_received
        await receiver._send_rtcp_pli(ssrc)
        await until(lambda: bool(asked), within=5, what="the PLI at the publisher")
        assert relay_slot.track.keyframe_requests_received > before

        # a mute on the site's own process crosses the leg: B's sites are told
        a.room.set_muted("site:dong-trieu", "audio", True)
        await until(lambda: any(m.get("type") == "muted" and m.get("participant") == "site:dong-trieu"
                                for m in b.clients["site:cam-pha"].messages), what="the mute on B")
        assert ("site:dong-trieu", "audio") in b.room.muted

        # the publisher leaves A: B's subscribers see its tracks end (slots freed) and it leaves B's room
        await a.leave("site:dong-trieu")
        await until(lambda: all(all(t["participant"] is None for t in b.clients[s].tracks.values())
                                for s in ("site:ha-long", "site:cam-pha", "site:mong-cai")),
                    within=10, what="freed slots on B")
        await until(lambda: "site:dong-trieu" not in b.room.participants, what="remote site gone from B")
        assert relay_exports(a.room) == {"B": []}
    finally:
        await leg.close()


async def test_a_relay_never_gets_back_what_it_relayed(rooms: tuple[LocalMeeting, LocalMeeting]) -> None:
    """Legs both ways: each room relays only its own sites' tracks (no loop), and a slot reused on A for another
    site carries that site on B."""
    a, b = rooms
    await a.join("site:dong-trieu", PatternTrack(160, 120))
    await b.join("site:ha-long", PatternTrack(160, 120))
    a_from_b, b_from_a = await Leg.open(b.room, a.room, "A"), await Leg.open(a.room, b.room, "B")
    try:
        seen_on_b = await b.receive("site:ha-long", "site:dong-trieu", "video")
        seen_on_a = await a.receive("site:dong-trieu", "site:ha-long", "video")
        await until(lambda: len(seen_on_a.frames) >= 5 and len(seen_on_b.frames) >= 5, within=30,
                    what="video both ways")
        assert [t["participant"] for t in relay_exports(a.room)["B"]] == ["site:dong-trieu"]
        assert [t["participant"] for t in relay_exports(b.room)["A"]] == ["site:ha-long"]

        await a.leave("site:dong-trieu")
        await until(lambda: "site:dong-trieu" not in b.room.participants, what="site gone from B")
        await a.join("site:cam-pha", PatternTrack(160, 120))  # takes the freed slot on the leg
        later = await b.receive("site:ha-long", "site:cam-pha", "video")
        await until(lambda: len(later.frames) >= 5, within=30, what="the new site's video on B")
        assert [t["participant"] for t in relay_exports(a.room)["B"]] == ["site:cam-pha"]
    finally:
        await b_from_a.close()
        await a_from_b.close()
