"""Per-delegation speaking budgets (tổ đại biểu) and registered questions in the live queue and on the room screen
(#20). Time moves through an injected clock: no sleeping (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pymupdf
import pytest
from starlette.testclient import TestClient

from eoffice import identity
from meetings import lifecycle, minutes, screen, speakers, speaking_budgets
from meetings.schema import Meeting
from storage.errors import Conflict, Forbidden, Invalid
from storage.settings import Settings
from tests.meetings.conftest import World, call, run
from web.app import create_app

T0 = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
QUESTION = "Đề nghị làm rõ nguồn kinh phí chuyển đổi số của thị xã Đông Triều năm 2027"


def at(seconds: int) -> speakers.Clock:
    return lambda: T0 + dt.timedelta(seconds=seconds)


async def _screen(world: World, mid: int) -> dict:
    async with world.db.uow() as uow:
        m = await uow.session.get(Meeting, mid)
        assert m is not None
        return await screen.view(uow, m)


async def test_delegation_budget_counts_its_members_turns(world: World) -> None:
    m = await world.meeting(start=True, items=1)
    mid, seats = m["meeting_id"], m["seats"]
    with pytest.raises(Forbidden):
        await call(world.db, speaking_budgets.save, world.member, mid, name="Tổ 1", budget=600)
    with pytest.raises(Invalid):
        await call(world.db, speaking_budgets.save, world.organiser, mid, name="Tổ 1", budget=10)
    one = await call(world.db, speaking_budgets.save, world.organiser, mid,
                     name="Tổ đại biểu số 1 - thị xã Đông Triều", budget=600)
    two = await call(world.db, speaking_budgets.save, world.chair, mid, name="Tổ đại biểu số 2", budget=None)
    with pytest.raises(Conflict):
        await call(world.db, speaking_budgets.save, world.chair, mid, name="Tổ đại biểu số 2", budget=300,
                   delegation_id=one.id)
    two = await call(world.db, speaking_budgets.save, world.chair, mid, name="Tổ đại biểu số 2", budget=300,
                     delegation_id=two.id)
    assert two.budget == 300
    await call(world.db, speaking_budgets.assign, world.secretary, mid, seats["member"], one.id)
    await call(world.db, speaking_budgets.assign, world.secretary, mid, seats["member2"], two.id)

    a = await call(world.db, speakers.request_floor, world.member, mid)
    await call(world.db, speakers.grant, world.chair, a.id, clock=at(0))
    await call(world.db, speakers.finish, world.chair, a.id, clock=at(200))
    b = await call(world.db, speakers.request_floor, world.member, mid)
    _, events = await run(world.db, speakers.grant, world.chair, b.id, clock=at(300))
    speaking = next(e for e in events if e["type"] == "speakers.changed")["data"]["speaking"]
    # what the countdowns count from: the delegation's budget and what its other turns used
    assert speaking["delegation"] == {"id": one.id, "name": "Tổ đại biểu số 1 - thị xã Đông Triều", "budget": 600,
                                      "used_before": 200}
    shown = (await _screen(world, mid))["speaking"]
    assert shown["delegation"]["used_before"] == 200 and shown["delegation"]["budget"] == 600
    async with world.db.uow() as uow:
        live = await speaking_budgets.usage(uow, mid, now=T0 + dt.timedelta(seconds=350))
    assert [(r["name"], r["used"], r["remaining"], r["count"], r["members"]) for r in live] == [
        ("Tổ đại biểu số 1 - thị xã Đông Triều", 250, 350, 2, 1), ("Tổ đại biểu số 2", 0, 300, 0, 1)]

    # the other delegation's member: their own delegation's budget; a turn from a site belongs to none
    c = await call(world.db, speakers.request_floor, world.member2, mid)
    await call(world.db, speakers.grant, world.chair, c.id, clock=at(800))  # ends b's turn at 800: 500 s
    async with world.db.uow() as uow:
        view = await speakers.queue_view(uow, mid)
        assert view["speaking"]["delegation"]["name"] == "Tổ đại biểu số 2"
        assert view["speaking"]["delegation"]["used_before"] == 0
    await call(world.db, speakers.finish, world.chair, c.id, clock=at(1200))  # 400 s: 100 over its 300
    d = await call(world.db, speakers.request_floor, world.operator, mid, site_id=m["site_id"])
    await call(world.db, speakers.grant, world.chair, d.id, clock=at(1300))
    assert (await _screen(world, mid))["speaking"]["delegation"] is None
    await call(world.db, lifecycle.end_meeting, world.chair, mid)

    _, pdf = await call(world.db, minutes.export_pdf, world.chair, mid)
    text = " ".join("".join(page.get_text() for page in pymupdf.open(stream=pdf, filetype="pdf")).split())
    assert "THỜI GIAN PHÁT BIỂU THEO TỔ ĐẠI BIỂU" in text
    assert ("1. Tổ đại biểu số 1 - thị xã Đông Triều (1 đại biểu): 2 lượt, 11 phút 40 giây / 10 phút 00 giây "
            "được phân bổ, vượt 1 phút 40 giây.") in text
    assert "2. Tổ đại biểu số 2 (1 đại biểu): 1 lượt, 6 phút 40 giây / 5 phút 00 giây được phân bổ, vượt" in text


async def test_registered_question_in_the_chairs_queue_and_on_the_screen(world: World) -> None:
    m = await world.meeting(items=2, confidential_for=["member2"])  # invited, not started
    mid, (open_item, secret_item) = m["meeting_id"], m["item_ids"]
    a = await call(world.db, speakers.request_floor, world.member, mid, item_id=open_item, note=QUESTION)
    b = await call(world.db, speakers.request_floor, world.member2, mid, item_id=secret_item,
                   note="Ý kiến về phương án nhân sự")
    await call(world.db, lifecycle.start_meeting, world.chair, mid)
    async with world.db.uow() as uow:
        assert await speakers.questions(uow, world.chair, mid) == {str(a.id): QUESTION,
                                                                  str(b.id): "Ý kiến về phương án nhân sự"}
        with pytest.raises(Forbidden):
            await speakers.questions(uow, world.member, mid)
    await call(world.db, speakers.grant, world.chair, a.id)
    shown = (await _screen(world, mid))["speaking"]
    assert shown["name"] == "Lê Minh Tuấn" and shown["question"] == QUESTION
    _, events = await run(world.db, speakers.grant, world.chair, b.id)
    assert QUESTION not in str(events)  # the room's events never carry a question
    assert (await _screen(world, mid))["speaking"]["question"] == ""  # about a confidential item: not on the wall
    async with world.db.uow() as uow:  # the finished turn's question leaves the live list
        assert await speakers.questions(uow, world.chair, mid) == {str(b.id): "Ý kiến về phương án nhân sự"}


@pytest.fixture
def app_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


async def _bearer(world: World, key: str) -> dict[str, str]:
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, world.users[key])
        await uow.commit()
    return {"Authorization": f"Bearer {token}"}


async def test_delegations_and_questions_over_http(app_client: TestClient, world: World) -> None:
    m = await world.meeting(start=True, items=1)
    mid, c = m["meeting_id"], app_client
    secretary, member = await _bearer(world, "secretary"), await _bearer(world, "member")
    r = c.post(f"/api/meetings/{mid}/delegations", json={"name": "Tổ đại biểu số 1", "budget": 900}, headers=member)
    assert r.status_code == 403
    r = c.post(f"/api/meetings/{mid}/delegations", json={"name": "Tổ đại biểu số 1", "budget": 900}, headers=secretary)
    assert r.status_code == 201, r.text
    (d,) = r.json()["delegations"]
    r = c.post(f"/api/meetings/{mid}/participants/{m['seats']['member']}/delegation", json={"delegation_id": d["id"]},
               headers=secretary)
    assert r.status_code == 200 and r.json()["seats"][str(m["seats"]["member"])] == d["id"]
    r = c.patch(f"/api/meetings/{mid}/delegations/{d['id']}", json={"name": "Tổ đại biểu số 1", "budget": 1200},
                headers=secretary)
    assert r.status_code == 200 and r.json()["delegations"][0]["budget"] == 1200
    view = c.get(f"/api/meetings/{mid}/delegations", headers=member).json()
    assert view["delegations"][0]["members"] == 1 and not view["may_manage"]
    r = c.post(f"/api/meetings/{mid}/speakers", json={"note": QUESTION}, headers=member)
    assert r.status_code == 201
    assert c.get(f"/api/meetings/{mid}/speakers/questions", headers=member).status_code == 403
    assert c.get(f"/api/meetings/{mid}/speakers/questions", headers=secretary).json()["questions"] == {
        str(r.json()["id"]): QUESTION}
    # the meeting page: the delegations card with a seat's delegation chosen (who manages the meeting)
    from tests.web.conftest import login

    login(c, "thuky")
    page = c.get(f"/meetings/{mid}").text
    assert 'id="delegations-card"' in page and "Tổ đại biểu số 1" in page and "20 phút" in page
    assert f'data-seat-delegation="{m["seats"]["member"]}"' in page
    c.cookies.clear()
    login(c, "phochutich")
    assert 'id="delegations-card"' not in c.get(f"/meetings/{mid}").text
