"""ICE restart in the SFU room (aiortc clients on loopback): a site asks for new connections after a network change
and keeps its place, its mutes and the floor; media flows both ways again on the new connections."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from meetings.sfu.client import LocalMeeting, until
from meetings.sfu.loopback import loopback_ice
from meetings.sfu.synthetic import PatternTrack, ToneTrack


@pytest.fixture(autouse=True)
def _loopback() -> Iterator[None]:
    with loopback_ice():
        yield


@pytest.fixture
async def meeting() -> AsyncIterator[LocalMeeting]:
    m = LocalMeeting("Họp trực tuyến: điểm cầu đổi mạng")
    try:
        yield m
    finally:
        await m.close()


async def test_a_restarted_site_keeps_its_place_mutes_and_floor(meeting: LocalMeeting) -> None:
    for site in ("ha-long", "mong-cai", "uong-bi"):
        await meeting.join(site, PatternTrack(160, 120), ToneTrack(0.2))
    meeting.room.set_muted("mong-cai", "audio", True)
    meeting.room.floor = "mong-cai"
    seen = await meeting.receive("ha-long", "mong-cai", "video")
    await until(lambda: len(seen.frames) >= 5, what="mong-cai's picture before the restart")
    client = meeting.clients["mong-cai"]
    old_pub, old_sub = client.pub_pc, client.sub_pc
    order = list(meeting.room.participants)
    mids = meeting.clients["ha-long"].mids_from("mong-cai", "video")
    offers = meeting.clients["ha-long"].sub_pc.remoteDescription.sdp.count("m=video")

    await client.restart()
    await until(lambda: client.pub_pc is not old_pub and old_pub.connectionState == "closed", what="new connections")
    await until(lambda: "mong-cai" in meeting.room.participants
                and len(meeting.room.participants["mong-cai"].publications) == 2, within=20, what="publications")

    # the others see it again, on the slot they already had (no renegotiation for them)
    again = meeting.clients["ha-long"]
    await until(lambda: again.mids_from("mong-cai", "video") == mids, what="the same slot again")
    before = len(seen.frames)
    await until(lambda: len(seen.frames) >= before + 5, within=20, what="mong-cai's picture after the restart")
    assert again.sub_pc.remoteDescription.sdp.count("m=video") == offers
    # and it sees the others on its new sub connection
    mine = await meeting.receive("mong-cai", "uong-bi", "video")
    await until(lambda: len(mine.frames) >= 5, within=20, what="uong-bi's picture at the restarted site")
    assert client.sub_pc is not old_sub and old_sub.connectionState == "closed"

    # same participant (the roster's order is the media room's, tests/meetings/test_turn_relay.py), still muted
    # by id, still holding the floor
    assert sorted(meeting.room.participants) == sorted(order)
    assert ("mong-cai", "audio") in meeting.room.muted
    audio = next(p for p in meeting.room.participants["mong-cai"].publications if p.kind == "audio")
    assert audio.muted
    assert meeting.room.floor == "mong-cai"
    assert client.restarts == 1 and client.errors == []
