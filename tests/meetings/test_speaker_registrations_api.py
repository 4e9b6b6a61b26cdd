"""Registering to speak with a question before the meeting (#20) over HTTP: the participant sends it from the
meeting's page, the chair reads it there and through the API, a member does not (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from storage.settings import Settings
from tests.meetings.conftest import World
from tests.meetings.test_api import bearer
from web.app import create_app

QUESTION = "Đề nghị Sở Thông tin và Truyền thông báo cáo tiến độ kết nối họp trực tuyến đến cấp xã?"


@pytest.fixture
def api_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


async def test_question_sent_before_the_meeting_reaches_the_chair_only(api_client: TestClient, world: World) -> None:
    c = api_client
    m = await world.meeting(items=2)
    mid, (first, _second) = m["meeting_id"], m["item_ids"]
    chair, member, member2 = [await bearer(world, k) for k in ("chair", "member", "member2")]
    assert "register-form" in c.get(f"/meetings/{mid}", headers=member).text  # the form on the meeting's page
    r = c.post(f"/api/meetings/{mid}/speakers", json={"item_id": first, "note": QUESTION}, headers=member)
    assert r.status_code == 201, r.text
    assert "note" not in r.json() and r.json()["state"] == "waiting"
    assert c.post(f"/api/meetings/{mid}/speakers", json={"note": "x" * 2001}, headers=member2).status_code == 400

    rows = c.get(f"/api/meetings/{mid}/speakers/registrations", headers=chair).json()["registrations"]
    assert [(x["name"], x["note"], x["item_number"], x["early"]) for x in rows] == [("Lê Minh Tuấn", QUESTION, 1, True)]
    assert c.get(f"/api/meetings/{mid}/speakers/registrations", headers=member).status_code == 403
    assert QUESTION in c.get(f"/meetings/{mid}", headers=chair).text
    page = c.get(f"/meetings/{mid}", headers=member).text
    assert QUESTION not in page and "Bạn đã đăng ký phát biểu" in page
    assert QUESTION not in c.get(f"/api/meetings/{mid}", headers=member2).text  # not in the room's snapshot
    rid = r.json()["id"]
    assert c.post(f"/api/meetings/{mid}/speakers/{rid}/withdraw", headers=member).json()["state"] == "withdrawn"
    assert c.get(f"/api/meetings/{mid}/speakers/registrations", headers=chair).json() == {"registrations": []}
