"""The room screen (#20) over a real app: the signed link made, shown and reset by the chair or secretary; the page,
its state and the presented page opened by the link alone; a confidential item and its documents kept off the wall;
poll counts without voters; the live socket following the room and closed once the link is reset
(SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from meetings import documents, voting
from storage.settings import Settings
from tests.meetings.conftest import World, call, cast_one
from tests.meetings.test_api import bearer
from tests.meetings.test_voting_api import receive_until
from web.app import create_app

SECRET_TITLE = "Phương án nhân sự (mật)"


@pytest.fixture
def client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


def token_of(url: str) -> str:
    return url.rsplit("/screen/", 1)[1]


async def test_signed_link_state_pages_and_confidential_items(client: TestClient, world: World) -> None:
    c = client
    m = await world.meeting(start=True, items=2, confidential_for=["member2"])
    mid, (open_item, secret_item) = m["meeting_id"], m["item_ids"]
    chair, secretary, member = [await bearer(world, k) for k in ("chair", "secretary", "member")]
    pdf = await world.upload_pdf(world.organiser, [["Báo cáo chuyển đổi số huyện Đông Triều"], ["Phụ lục"]], "Báo cáo")
    hidden = await world.upload_pdf(world.organiser, [["Danh sách nhân sự đề nghị bổ nhiệm"]], "Hồ sơ nhân sự")
    _, v_open = await call(
        world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=pdf, item_id=open_item
    )
    _, v_secret = await call(
        world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=hidden, item_id=secret_item
    )

    # only the chair and the secretary make, see and reset the link
    assert c.get(f"/api/meetings/{mid}/screen", headers=chair).json() == {"url": None}
    assert c.post(f"/api/meetings/{mid}/screen", headers=member).status_code == 403
    assert c.get(f"/api/meetings/{mid}/screen", headers=member).status_code == 403
    r = c.post(f"/api/meetings/{mid}/screen", headers=secretary)
    assert r.status_code == 201 and r.json()["url"].startswith("http://testserver/screen/")
    url = r.json()["url"]
    token = token_of(url)
    assert c.get(f"/api/meetings/{mid}/screen", headers=chair).json()["url"] == url
    page = c.get(f"/meetings/{mid}", headers=chair)
    assert url in page.text  # a copyable link on the meeting's page
    assert url not in c.get(f"/meetings/{mid}", headers=member).text

    # the link alone opens the screen: no session, nothing to change
    r = c.get(f"/screen/{token}")
    assert r.status_code == 200 and "Họp UBND tỉnh thường kỳ tháng 12" in r.text
    assert r.headers["cache-control"] == "private, no-store"
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (forged, f"{mid + 1}.{token.split('.', 1)[1]}", "x"):
        assert c.get(f"/screen/{bad}/state").status_code == 404

    # the current item, the presented page and the quorum follow the room
    c.post(f"/api/meetings/{mid}/participants/{m['seats']['member']}/check-in", headers=member)
    c.post(f"/api/meetings/{mid}/participants/{m['seats']['member2']}/check-in", headers=secretary)
    c.post(f"/api/meetings/{mid}/current", json={"item_id": open_item}, headers=chair)
    assert c.post(f"/api/meetings/{mid}/presenter", json={}, headers=chair).status_code == 200
    c.put(f"/api/meetings/{mid}/presenter", json={"version_id": v_open.id, "page": 2}, headers=chair)
    state = c.get(f"/screen/{token}/state").json()
    assert state["item"]["title"].startswith("Nội dung 1") and state["item"]["number"] == 1
    assert state["presenter"] == {**state["presenter"], "version_id": v_open.id, "page": 2, "page_count": 2}
    assert state["quorum"]["present"] == 2 and state["quorum"]["entitled"] >= 3
    assert c.get(f"/screen/{token}/versions/{v_open.id}").json()["page_count"] == 2
    image = c.get(f"/screen/{token}/versions/{v_open.id}/pages/2?w=1600")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert c.get(f"/screen/{token}/versions/{v_secret.id}/pages/1").status_code == 404  # not presented

    # a confidential item: «Nội dung mật», nothing of its title or documents, even while presented
    c.post(f"/api/meetings/{mid}/current", json={"item_id": secret_item}, headers=chair)
    c.put(f"/api/meetings/{mid}/presenter", json={"version_id": v_secret.id, "page": 1}, headers=chair)
    state = c.get(f"/screen/{token}/state").json()
    assert state["item"] == {**state["item"], "title": "Nội dung mật", "confidential": True}
    assert state["presenter"] is None
    wall = json.dumps(state, ensure_ascii=False) + c.get(f"/screen/{token}").text
    assert "nhân sự" not in wall and SECRET_TITLE not in wall
    for path in ("", "/pages/1"):
        assert c.get(f"/screen/{token}/versions/{v_secret.id}{path}").status_code == 404

    # a poll on that item shows only that there is one; a secret ballot on an open item shows counts, no voters
    restricted = await call(
        world.db,
        voting.create_poll,
        world.chair,
        mid,
        title="Biểu quyết bổ nhiệm",
        method="yes_no",
        item_id=secret_item,
        quorum_rule="none",
    )
    await call(world.db, voting.open_poll, world.chair, restricted.id)
    state = c.get(f"/screen/{token}/state").json()
    assert state["poll"] == {"id": restricted.id, "state": "open", "restricted": True, "title": "Nội dung mật"}
    await call(world.db, voting.close_poll, world.chair, restricted.id)
    ballot = await call(
        world.db,
        voting.create_poll,
        world.chair,
        mid,
        title="Thông qua báo cáo chuyển đổi số",
        method="yes_no_abstain",
        secret=True,
        item_id=open_item,
        quorum_rule="none",
    )
    await call(world.db, voting.open_poll, world.chair, ballot.id)
    async with world.db.uow() as uow:
        await cast_one(uow, world.member, ballot.id, "yes")
        await uow.commit()
    state = c.get(f"/screen/{token}/state").json()
    poll = state["poll"]
    assert poll["id"] == ballot.id and poll["cast"] == 1 and poll["secret"] and "tally" not in poll
    assert world.member.full_name not in json.dumps(poll, ensure_ascii=False)

    # reset: the old link stops at once, the new one works
    new_url = c.post(f"/api/meetings/{mid}/screen", headers=chair).json()["url"]
    assert new_url != url
    assert c.get(f"/screen/{token}").status_code == 404
    assert c.get(f"/screen/{token}/versions/{v_open.id}/pages/2").status_code == 404
    assert c.get(f"/screen/{token_of(new_url)}/state").status_code == 200
    assert c.delete(f"/api/meetings/{mid}/screen", headers=chair).status_code == 204
    assert c.get(f"/screen/{token_of(new_url)}/state").status_code == 404


async def test_live_socket_follows_the_room_and_closes_when_the_link_is_reset(client: TestClient, world: World) -> None:
    c = client
    m = await world.meeting(start=True, items=2, confidential_for=["member2"])
    mid, (open_item, secret_item) = m["meeting_id"], m["item_ids"]
    chair = await bearer(world, "chair")
    token = token_of(c.post(f"/api/meetings/{mid}/screen", headers=chair).json()["url"])

    with pytest.raises(WebSocketDisconnect) as refused, c.websocket_connect("/ws/screen/1.abcdefabcdefabcdef.00") as ws:
        ws.receive_json()
    assert refused.value.code == 4401

    with c.websocket_connect(f"/ws/screen/{token}") as ws:
        first = receive_until(ws, lambda msg: msg.get("type") == "snapshot")
        assert first["data"]["item"] is None
        c.post(f"/api/meetings/{mid}/current", json={"item_id": open_item}, headers=chair)
        moved = receive_until(ws, lambda msg: msg.get("type") == "snapshot" and msg["data"]["item"] is not None)
        assert moved["data"]["item"]["title"].startswith("Nội dung 1")
        c.post(f"/api/meetings/{mid}/current", json={"item_id": secret_item}, headers=chair)
        moved = receive_until(
            ws, lambda msg: msg.get("type") == "snapshot" and msg["data"]["item"]["id"] == secret_item
        )
        assert moved["data"]["item"]["title"] == "Nội dung mật"
        assert SECRET_TITLE not in json.dumps(moved, ensure_ascii=False)

        c.post(f"/api/meetings/{mid}/screen", headers=chair)  # reset
        with pytest.raises(WebSocketDisconnect) as closed:
            receive_until(ws, lambda msg: False)
        assert closed.value.code == 4401
