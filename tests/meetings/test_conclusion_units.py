"""Conclusions assigned to an agency or unit (issue 20): stored on the conclusion through the service and the API,
named in the minutes, and the e-office task made from it is the unit's, which its head handles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from eoffice import identity, tasks
from meetings import agenda, attendance, meetings, minutes
from storage.errors import Conflict, Invalid, NotFound
from storage.settings import Settings
from tests.meetings.conftest import World, call
from web.app import create_app


async def _held(world: World) -> tuple[int, int]:
    m = await world.meeting(start=True, items=1)
    await call(world.db, attendance.check_in, world.chair, m["seats"]["member"])
    await call(world.db, agenda.step, world.chair, m["meeting_id"], 1)
    return int(m["meeting_id"]), int(m["item_ids"][0])


async def _shown(world: World, mid: int, item_id: int) -> list[dict]:
    async with world.db.uow() as uow:
        ctx = await meetings.view_context(uow, world.chair, mid)
        view = await minutes.minutes_view(uow, ctx.access, ctx.meeting)
    return list(view["items"][str(item_id)]["conclusions"])


async def test_conclusion_for_a_unit_becomes_the_units_task(world: World) -> None:
    mid, item = await _held(world)
    dt_unit = world.units["DT"]
    due = (dt.date.today() + dt.timedelta(days=15)).isoformat()
    with pytest.raises(Invalid, match="không cả hai"):
        await call(world.db, minutes.add_conclusion, world.secretary, item, text="Giao cả hai",
                   assignee_id=world.member.id, assignee_unit_id=dt_unit.id)
    with pytest.raises(NotFound, match="đơn vị"):
        await call(world.db, minutes.add_conclusion, world.secretary, item, text="Đơn vị không có",
                   assignee_unit_id=999_999)
    c = await call(world.db, minutes.add_conclusion, world.secretary, item, assignee_unit_id=dt_unit.id,
                   text="UBND thị xã Đông Triều rà soát quỹ đất tái định cư", deadline=due)
    assert c.assignee_unit_id == dt_unit.id and c.assignee_id is None
    (shown,) = await _shown(world, mid, item)
    assert shown["assignee"] == "Ủy ban nhân dân thị xã Đông Triều" and shown["assignee_kind"] == "unit"

    # switching to a person clears the unit, and back
    c = await call(world.db, minutes.update_conclusion, world.secretary, c.id, assignee_id=world.member.id)
    assert (c.assignee_id, c.assignee_unit_id) == (world.member.id, None)
    c = await call(world.db, minutes.update_conclusion, world.secretary, c.id, assignee_unit_id=dt_unit.id)
    assert (c.assignee_id, c.assignee_unit_id) == (None, dt_unit.id)

    # no assignee given when assigning: the unit the minutes name
    done = await call(world.db, minutes.conclusion_to_task, world.chair, c.id)
    assert done.task_id and done.assignee_unit_id == dt_unit.id
    async with world.db.uow() as uow:
        task = await tasks.get_task(uow, world.district, done.task_id)  # the unit's head handles it
        assert task.assignee_unit_id == dt_unit.id and task.assignee_user_id is None
        assert str(task.deadline) == due and "quỹ đất tái định cư" in task.title
        assert tasks.handles(world.district, task)
        assert not tasks.handles(world.member, task)
    with pytest.raises(Conflict, match="đã thành nhiệm vụ"):
        await call(world.db, minutes.update_conclusion, world.secretary, c.id, assignee_unit_id=None)



@pytest.fixture
def app_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


async def test_unit_assignee_over_http(app_client: TestClient, world: World) -> None:
    mid, item = await _held(world)
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, world.secretary)
        await uow.commit()
    auth = {"Authorization": f"Bearer {token}"}
    c = app_client
    units = c.get("/api/meetings/directory", headers=auth).json()["units"]
    stt = next(u for u in units if u["id"] == world.units["STTTT"].id)
    r = c.post(f"/api/meetings/{mid}/items/{item}/conclusions", headers=auth,
               json={"text": "Sở Thông tin và Truyền thông triển khai nền tảng họp không giấy",
                     "assignee_unit_id": stt["id"]})
    assert r.status_code == 201 and r.json()["assignee_unit_id"] == stt["id"] and r.json()["assignee_id"] is None
    cid = r.json()["id"]
    bad = c.post(f"/api/meetings/{mid}/items/{item}/conclusions", headers=auth,
                 json={"text": "Hai nơi", "assignee_unit_id": stt["id"], "assignee_id": world.member.id})
    assert bad.status_code == 400
    r = c.patch(f"/api/meetings/{mid}/conclusions/{cid}", headers=auth, json={"assignee_id": world.member2.id})
    assert r.status_code == 200 and (r.json()["assignee_id"], r.json()["assignee_unit_id"]) == (world.member2.id, None)
    r = c.patch(f"/api/meetings/{mid}/conclusions/{cid}", headers=auth, json={"assignee_unit_id": stt["id"]})
    assert r.status_code == 200 and r.json()["assignee_unit_id"] == stt["id"]
    shown = c.get(f"/api/meetings/{mid}", headers=auth).json()["minutes"]["items"][str(item)]["conclusions"]
    assert shown[0]["assignee"] == stt["name"]
    r = c.post(f"/api/meetings/{mid}/conclusions/{cid}/task", headers=auth, json={})
    assert r.status_code == 201 and r.json()["task_id"] and r.json()["assignee_unit_id"] == stt["id"]
    async with world.db.uow() as uow:
        task = await tasks.get_task(uow, world.member2, r.json()["task_id"])  # the Sở's director
        assert task.assignee_unit_id == stt["id"] and tasks.handles(world.member2, task)
