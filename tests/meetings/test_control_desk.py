"""The control desk of a running meeting (#17) over the real app: two tablets on the room's WebSocket shown online,
one closed and shown dropped with its time, an open poll's cast / entitled counts (and nothing of who voted how),
database and broker health (the in-process broker and real Redis), 403 for a member, the page for the chair and
an administrator, its link on the meeting's page (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from eoffice.org import Role
from storage.settings import Settings
from tests.conftest import REDIS_URL, require, tcp_open
from tests.meetings.conftest import World
from tests.meetings.test_api import bearer
from tests.meetings.test_voting_api import live_meeting
from web.app import create_app

POLL_TITLE = "Thông qua Nghị quyết về phát triển du lịch Hạ Long"


@pytest.fixture(params=["memory", "redis"])
def client(request: pytest.FixtureRequest, settings: Settings, world: World) -> Iterator[TestClient]:
    if request.param == "redis":
        require("Redis", tcp_open("127.0.0.1", 6379), "127.0.0.1:6379")
        base = REDIS_URL.rsplit("/", 1)[0]
        settings = dataclasses.replace(settings, broker_url=f"{base}/5?channel=test:{uuid.uuid4().hex}")
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


def wait_for(c: TestClient, url: str, headers: dict[str, str], predicate: Callable[[dict[str, Any]], bool],
             timeout: float = 10.0) -> dict[str, Any]:
    """The desk as soon as ``predicate`` holds (a socket's close reaches the hub a moment after the client's)."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.get(url, headers=headers)
        assert r.status_code == 200, r.text
        if predicate(r.json()):
            return dict(r.json())
        assert time.monotonic() < deadline, f"the desk never showed what was expected: {r.json()}"
        time.sleep(0.02)


def tablet(desk: dict[str, Any], user_id: int) -> dict[str, Any]:
    return next(t for t in desk["tablets"] if t["user_id"] == user_id)


async def test_control_desk(client: TestClient, world: World) -> None:
    c = client
    m = await live_meeting(world)  # started, chair and two members checked in
    mid = m["meeting_id"]
    chair, secretary, member, member2, outsider = [
        await bearer(world, k) for k in ("chair", "secretary", "member", "member2", "outsider")]
    url = f"/api/meetings/{mid}/desk"

    # who may open it: chair, secretary, organiser, an administrator; not a member nor an outsider
    assert c.get(url, headers=member).status_code == 403
    assert c.get(f"/meetings/{mid}/desk", headers=member).status_code == 403
    assert c.get(url, headers=outsider).status_code in (403, 404)
    assert c.get(url, headers=await bearer(world, "organiser")).status_code == 200
    async with world.db.uow() as uow:
        admin = await uow.session.get(type(world.outsider), world.outsider.id)
        assert admin is not None
        admin.roles = [*admin.roles, str(Role.ADMIN)]
        await uow.commit()
    assert c.get(url, headers=outsider).status_code == 200  # now an administrator

    desk = c.get(url, headers=chair).json()
    assert desk["services"]["database"]["ok"] is True and desk["services"]["broker"]["ok"] is True
    assert isinstance(desk["services"]["database"]["ms"], float)
    assert tablet(desk, world.member.id)["status"] == "offline"
    assert desk["sites"][0]["name"] == "Điểm cầu thị xã Đông Triều" and desk["sites"][0]["link"] is None
    assert desk["links"] == [] and desk["polls"] == []

    with c.websocket_connect("/ws", headers=member) as ws1, c.websocket_connect("/ws", headers=member2) as ws2:
        for ws in (ws1, ws2):
            ws.send_json({"op": "subscribe", "topic": f"meeting:{mid}"})
            assert ws.receive_json()["type"] == "subscribed"
        desk = c.get(url, headers=chair).json()
        for who in (world.member, world.member2):
            row = tablet(desk, who.id)
            assert row["status"] == "online" and row["connections"] == 1 and row["dropped_at"] is None
        assert tablet(desk, world.member2.id)["name"] == "Hoàng Đức Thắng"

        before = dt.datetime.now(dt.UTC)
        ws1.close()
        desk = wait_for(c, url, chair, lambda d: tablet(d, world.member.id)["status"] == "dropped")
        dropped = tablet(desk, world.member.id)
        at = dt.datetime.fromisoformat(dropped["dropped_at"])
        assert before - dt.timedelta(seconds=1) <= at <= dt.datetime.now(dt.UTC)
        assert dropped["connections"] == 0
        assert tablet(desk, world.member2.id)["status"] == "online"

        # an open poll: cast / entitled, never the choices or the voters
        body = {"meeting_id": mid, "title": POLL_TITLE, "method": "yes_no_abstain", "quorum_rule": "none"}
        r = c.post("/api/polls", json=body, headers=chair)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert c.post(f"/api/polls/{pid}/open", json={}, headers=secretary).status_code == 200
        eligible = c.get(url, headers=chair).json()["polls"][0]["eligible"]
        assert eligible == 3
        assert c.post(f"/api/polls/{pid}/votes", json={"choice": "yes"}, headers=member2).status_code == 201
        desk = c.get(url, headers=chair).json()
        (poll,) = desk["polls"]
        assert poll["poll_id"] == pid and poll["title"] == POLL_TITLE
        assert poll["cast"] == 1 and poll["eligible"] == eligible and poll["state"] == "open"
        assert "tally" not in poll and "result" not in poll
        text = json.dumps(desk["polls"], ensure_ascii=False)
        assert "yes" not in text and str(world.member2.id) not in text

        # the page: server-rendered, live by polling the same JSON; a link on the meeting's page
        page = c.get(f"/meetings/{mid}/desk", headers=chair)
        assert page.status_code == 200 and "Bàn điều khiển" in page.text and "meeting-desk.js" in page.text
        assert f'href="/meetings/{mid}/desk"' in c.get(f"/meetings/{mid}", headers=chair).text
        assert c.get(f"/meetings/{mid}/desk", headers=outsider).status_code == 200  # the administrator
        assert f'href="/meetings/{mid}/desk"' not in c.get(f"/meetings/{mid}", headers=member).text

    # the member comes back: online again, no longer dropped
    with c.websocket_connect("/ws", headers=member) as ws:
        ws.send_json({"op": "subscribe", "topic": f"meeting:{mid}"})
        assert ws.receive_json()["type"] == "subscribed"
        row = tablet(c.get(url, headers=chair).json(), world.member.id)
        assert row["status"] == "online" and row["dropped_at"] is None
