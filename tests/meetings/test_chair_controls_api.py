"""The chair's controls of the video conference through the real server: mute every microphone at once (but the
floor holder's and the chair's own), and giving the floor opens that site's microphone and sends it its cue.

Raising a hand is the speakers' queue (``meetings.speakers``, tested in test_speaker_registrations_api.py and
test_room.py): giving the floor grants a waiting turn, see ``meetings.video.give_floor``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import websockets

from meetings import video
from meetings.sfu.client import until
from meetings.sfu.synthetic import ToneTrack
from tests.meetings.conftest import World
from tests.meetings.test_video_media import _loopback, db_url, joined, server, token  # noqa: F401 (fixtures)


def roster_entry(state: dict[str, Any], media_id: str) -> dict[str, Any]:
    return next((r for r in state.get("roster", []) if r["id"] == media_id), {})


async def test_mute_all_and_the_floor_opens_the_microphone(server: str, world: World) -> None:  # noqa: F811
    m = await world.meeting(start=True)
    mid, site = m["meeting_id"], f"site:{m['site_id']}"
    chair_tok, op_tok, member_tok = [await token(world, k) for k in ("chair", "operator", "member")]
    me, member_id = f"user:{world.chair.id}", f"user:{world.member.id}"
    events: list[dict[str, Any]] = []
    chair_http = httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {chair_tok}"})
    member_http = httpx.AsyncClient(base_url=f"http://{server}", headers={"Authorization": f"Bearer {member_tok}"})
    async with chair_http, member_http:
        assert (await member_http.get(f"/api/meetings/{mid}")).status_code == 200  # registers the room's topics
        hub = await websockets.connect(f"ws://{server}/ws?token={member_tok}")
        await hub.send(json.dumps({"op": "subscribe", "topic": f"meeting:{mid}"}))
        assert json.loads(await hub.recv())["type"] == "subscribed"

        async def listen() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for text in hub:
                    events.append(json.loads(text))

        listener = asyncio.ensure_future(listen())
        try:
            async with joined(server, mid, op_tok, ToneTrack(0.2)) as op, \
                    joined(server, mid, member_tok, ToneTrack(0.2)) as member, \
                    joined(server, mid, chair_tok, ToneTrack(0.2)) as chair:
                await until(lambda: len(chair.state.get("roster", [])) == 3, what="three in the room")
                r = await chair_http.post(f"/api/meetings/{mid}/video/floor", json={"participant": site})
                assert r.status_code == 200 and r.json()["unmuted"] is False, r.text

                # a delegate may not; the chair mutes everyone but the floor holder (the site) and the chair
                r = await member_http.post(f"/api/meetings/{mid}/video/mute-all")
                assert r.status_code == 403
                r = await chair_http.post(f"/api/meetings/{mid}/video/mute-all")
                assert r.status_code == 200, r.text
                assert r.json()["muted"] == [member_id]
                await until(lambda: roster_entry(member.state, member_id).get("imposed", {}).get("audio") is True,
                            what="the delegate's microphone muted by the chair")
                assert roster_entry(member.state, site)["muted"]["audio"] is False
                assert roster_entry(member.state, me)["muted"]["audio"] is False
                await until(lambda: any(e.get("type") == "video.muted_all" for e in events), what="the event")
                # imposed: the delegate cannot open it again
                await member.ws.send(json.dumps({"type": "mute", "kind": "audio", "muted": False}))
                await until(lambda: any("Chủ trì đã tắt micrô" in e for e in member.client.errors), what="refusal")
                room_muted = {(member_id, "audio")}
                async with world.db.uow(readonly=True) as uow:
                    state = await video.media_state(uow, mid)
                assert room_muted <= state.muted and room_muted <= state.imposed, "kept in the meeting's record"

                # giving the delegate the floor opens the microphone and cues the delegate's page
                r = await chair_http.post(f"/api/meetings/{mid}/video/floor", json={"participant": member_id})
                assert r.status_code == 200 and r.json()["unmuted"] is True, r.text
                await until(lambda: roster_entry(member.state, member_id).get("muted", {}).get("audio") is False,
                            what="the microphone opened")
                await until(lambda: any(x.get("type") == "floor" for x in member.client.messages), what="the cue")
                # the site had the floor before (its cue then), not this time
                assert [x["participant"] for x in op.client.messages if x.get("type") == "floor"] == [site]
                await until(lambda: any(e.get("type") == "video.floor" and e["data"]["unmuted"] for e in events),
                            what="video.floor with unmuted")
                assert any(e.get("type") == "video.muted" and e["data"]["participant"] == member_id
                           and e["data"]["muted"] is False for e in events)
                async with world.db.uow(readonly=True) as uow:
                    state = await video.media_state(uow, mid)
                assert (member_id, "audio") not in state.muted and state.floor == member_id
        finally:
            await hub.close()
            await asyncio.wait_for(listener, 5)
