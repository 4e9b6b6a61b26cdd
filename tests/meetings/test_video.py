"""Video services (SQLite and PostgreSQL): who joins as whom, mutes with audit and events, the floor tied to the
speakers' queue, and the ICE settings."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from eoffice.audit import AuditEntry
from meetings import lifecycle, speakers, video
from meetings.rules import Access
from meetings.sfu.registry import ice_servers_from_env, rtc_ice_servers, with_credentials
from storage.errors import Conflict, Forbidden, Invalid
from tests.meetings.conftest import World, call, run


async def test_identity_follows_the_room_access_rules(world: World) -> None:
    m = await world.meeting(start=True)
    mid, site_id = m["meeting_id"], m["site_id"]
    async with world.db.uow() as uow:
        op = await video.identity(uow, world.operator, mid)
        chair = await video.identity(uow, world.chair, mid)
        member = await video.identity(uow, world.member, mid)
        with pytest.raises(Forbidden):
            await video.identity(uow, world.outsider, mid)
    assert (op.media_id, op.name, op.site_id, op.controller) == (
        f"site:{site_id}", "Điểm cầu thị xã Đông Triều", site_id, False)
    assert (chair.media_id, chair.name, chair.controller) == (f"user:{world.chair.id}", "Trần Văn Hùng", True)
    assert member.media_id == f"user:{world.member.id}" and not member.controller

    await call(world.db, lifecycle.end_meeting, world.chair, mid)
    async with world.db.uow() as uow:
        with pytest.raises(Conflict):
            await video.identity(uow, world.member, mid)


def test_may_mute() -> None:
    chair = Access(user_id=1, state="in_progress", chair=True)
    site = Access(user_id=2, state="in_progress", sites=frozenset({7}))
    assert video.may_mute(chair, "user:1", "site:7", True, False)
    assert video.may_mute(chair, "user:1", "site:7", False, True)
    assert video.may_mute(site, "site:7", "site:7", True, False)
    assert video.may_mute(site, "site:7", "site:7", False, False), "lifts its own mute"
    assert not video.may_mute(site, "site:7", "site:7", False, True), "not the chair's"
    assert not video.may_mute(site, "site:7", "site:8", True, False)


async def test_mute_writes_audit_and_event(world: World) -> None:
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    by_chair, events = await run(world.db, video.set_muted, world.chair, mid, participant=site, kind="audio",
                                 muted=True)
    assert by_chair
    assert [(e["topic"], e["type"], e["data"]) for e in events] == [
        (f"meeting:{mid}", "video.muted", {"participant": site, "kind": "audio", "muted": True, "by_chair": True})]
    with pytest.raises(Forbidden, match="Chủ trì đã tắt micrô"):
        await call(world.db, video.set_muted, world.operator, mid, participant=site, kind="audio", muted=False,
                   imposed=True)
    assert not await call(world.db, video.set_muted, world.operator, mid, participant=site, kind="video",
                          muted=True)
    with pytest.raises(Forbidden):
        await call(world.db, video.set_muted, world.member, mid, participant=site, kind="audio", muted=True)
    with pytest.raises(Invalid):
        await call(world.db, video.set_muted, world.chair, mid, participant=site, kind="screen", muted=True)
    with pytest.raises(Invalid):
        await call(world.db, video.set_muted, world.chair, mid, participant="site:x", kind="audio", muted=True)
    async with world.db.uow() as uow:
        actions = (await uow.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("meeting.video.%")))).all()
    assert actions == ["meeting.video.mute", "meeting.video.mute"]


async def test_mutes_and_the_floor_are_rebuilt_from_the_meetings_record(world: World) -> None:
    """What a media room reopened after everyone left, a restart or in another server process starts from."""
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    assert await call(world.db, video.media_state, mid) == video.MediaState(set(), set(), None)

    await call(world.db, video.set_muted, world.chair, mid, participant=site, kind="audio", muted=True)
    await call(world.db, video.set_muted, world.operator, mid, participant=site, kind="video", muted=True)
    await call(world.db, video.set_muted, world.operator, mid, participant=site, kind="audio", muted=True)
    with pytest.raises(Forbidden, match="Chủ trì đã tắt micrô"):  # known from the record, not from the caller
        await call(world.db, video.set_muted, world.operator, mid, participant=site, kind="audio", muted=False)
    await call(world.db, video.give_floor, world.chair, mid, participant=site)  # ...which opens its microphone
    state = await call(world.db, video.media_state, mid)
    assert state == video.MediaState({(site, "video")}, set(), site)

    await call(world.db, video.set_muted, world.operator, mid, participant=site, kind="video", muted=False)
    await call(world.db, video.set_muted, world.chair, mid, participant=site, kind="audio", muted=False)
    await call(world.db, video.give_floor, world.chair, mid, participant=None)
    assert await call(world.db, video.media_state, mid) == video.MediaState(set(), set(), None)
    other = await world.meeting(start=True)
    assert await call(world.db, video.media_state, other["meeting_id"]) == video.MediaState(set(), set(), None)


async def test_floor_grants_the_waiting_turn(world: World) -> None:
    m = await world.meeting(start=True)
    mid, site_id = m["meeting_id"], m["site_id"]
    req = await call(world.db, speakers.request_floor, world.operator, mid, site_id=site_id)
    (granted, unmuted), events = await run(world.db, video.give_floor, world.chair, mid,
                                           participant=f"site:{site_id}")
    assert granted == req.id and unmuted is False
    types = [e["type"] for e in events]
    assert types == ["speakers.changed", "video.floor"]
    assert events[0]["data"]["speaking"]["site_id"] == site_id
    assert events[1]["data"] == {"participant": f"site:{site_id}", "name": "Điểm cầu thị xã Đông Triều",
                                 "unmuted": False}
    # nobody waiting: the floor moves without touching the queue; None goes back to following the voice
    (granted, _), events = await run(world.db, video.give_floor, world.chair, mid,
                                     participant=f"user:{world.member.id}")
    assert granted is None and [e["type"] for e in events] == ["video.floor"]
    _, events = await run(world.db, video.give_floor, world.chair, mid, participant=None)
    assert events[0]["data"]["participant"] is None
    with pytest.raises(Forbidden):
        await call(world.db, video.give_floor, world.operator, mid, participant=f"site:{site_id}")


def test_ice_servers_from_env() -> None:
    assert ice_servers_from_env({}) == []
    servers = ice_servers_from_env({"EOFFICE_ICE_SERVERS": (
        '[{"urls": "stun:turn.quangninh.gov.vn:3478"},'
        ' {"urls": ["turn:turn.quangninh.gov.vn:3478?transport=udp"], "username": "ecabinet", "credential": "bí-mật"}]'
    )})
    assert servers == [{"urls": ["stun:turn.quangninh.gov.vn:3478"]},
                       {"urls": ["turn:turn.quangninh.gov.vn:3478?transport=udp"], "username": "ecabinet",
                        "credential": "bí-mật"}]
    rtc = rtc_ice_servers(servers)
    assert rtc[1].username == "ecabinet" and rtc[1].credential == "bí-mật"
    # coturn with use-auth-secret: time-limited credentials per session, the secret stays on the server
    shared = ice_servers_from_env({"EOFFICE_ICE_SERVERS": '[{"urls": "turn:10.0.0.5:3478", "secret": "s3cret"}]'})
    (given,) = with_credentials(shared, "site:3", now=1_000_000)
    assert given == {"urls": ["turn:10.0.0.5:3478"], "username": "1043200:site:3",
                     "credential": "h0EAxmb6WOPk9bOwfahD32Q2DIs="}
    assert "secret" not in given
    for bad in ("not json", '[{"username": "x"}]', '[{"urls": "http://example.org"}]', "42"):
        with pytest.raises(ValueError):
            ice_servers_from_env({"EOFFICE_ICE_SERVERS": bad})
