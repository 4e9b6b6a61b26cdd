"""Confidential agenda items stay confidential (issue 14), over the API and the WebSocket hub, on SQLite
and PostgreSQL: polls on them, access that shrinks while people listen, replays of the event log,
substitutes, tasks made from their conclusions, and refused attempts in the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice.audit import AuditEntry
from eoffice.schema.tasks import Task
from meetings import agenda, annotations, attendance, documents, meetings, minutes, room, voting
from storage.errors import Forbidden
from storage.pubsub.memory import MemoryBroker
from storage.settings import Settings
from tests.meetings.conftest import World, call, run
from tests.meetings.test_voting_api import app_client, bearer, receive_until  # noqa: F401 (fixture)
from web.hub import Connection, Hub

POLL_TITLE = "Phê chuẩn phương án nhân sự Sở Nội vụ năm 2027"
ITEM_TITLE = "Phương án nhân sự (mật)"  # conftest's confidential item
SECRET_NOTE = "Ông Nguyễn Văn Bình dự kiến giữ chức Giám đốc Sở"


async def audit_actions(world: World, prefix: str) -> list[AuditEntry]:
    async with world.db.uow() as uow:
        return list((await uow.session.scalars(select(AuditEntry).where(AuditEntry.action.like(prefix + "%"))
                                                .order_by(AuditEntry.seq))).all())


async def check_in(world: World, m: dict[str, Any], *keys: str) -> None:
    async with world.db.uow() as uow:
        chair_seat = await meetings._seat_for(uow, m["meeting_id"], world.chair.id)
        assert chair_seat is not None
        m["seats"]["chair"] = chair_seat.id
    for key in keys:
        await call(world.db, attendance.check_in, world.chair, m["seats"][key])


# ---------------------------------------------------------------- a hub in this process


@contextlib.asynccontextmanager
async def live_hub(world: World) -> AsyncIterator[Hub]:
    broker = MemoryBroker()
    hub = Hub(world.db, broker, replace(Settings(database_url="sqlite://"), ws_queue_size=256))
    world.db.publisher = broker.publish
    room.register(hub)
    annotations.register(hub)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()
        await broker.close()
        world.db.publisher = None


def frames(conn: Connection) -> list[dict[str, Any]]:
    out = []
    while not conn.queue.empty():
        out.append(json.loads(conn.queue.get_nowait()))
    return out


_kept: dict[int, list[dict[str, Any]]] = {}


async def revoked(conn: Connection, topic: str) -> dict[str, Any]:
    """Wait for the hub's ``revoked`` error frame about ``topic`` (the event, not a fixed sleep)."""
    seen: list[dict[str, Any]] = _kept.setdefault(id(conn), [])  # frames read while waiting for another topic
    for _ in range(250):
        seen += frames(conn)
        for f in seen:
            if f.get("type") == "error" and f.get("revoked") and f.get("topic") == topic:
                assert topic not in conn.topics
                return f
        await asyncio.sleep(0.02)
    raise AssertionError(f"{topic} not revoked; got {seen}")


# ---------------------------------------------------------------- polls on a confidential item


async def test_a_poll_on_a_confidential_item_reaches_only_those_who_see_it(app_client: TestClient,  # noqa: F811
                                                                          world: World) -> None:
    c = app_client
    chair, member, member2 = [await bearer(world, k) for k in ("chair", "member", "member2")]
    m = await world.meeting(start=True, confidential_for=["member2"])
    await check_in(world, m, "chair", "member", "member2")
    mid, secret = m["meeting_id"], m["item_ids"][1]
    r = c.post("/api/polls", json={"meeting_id": mid, "title": POLL_TITLE, "method": "yes_no_abstain",
                                   "description": SECRET_NOTE, "item_id": secret}, headers=chair)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]

    with c.websocket_connect("/ws", headers=member) as ws, c.websocket_connect("/ws", headers=member2) as ws2:
        ws.send_json({"op": "subscribe", "topic": f"meeting:{mid}"})
        assert ws.receive_json()["type"] == "subscribed"
        ws2.send_json({"op": "subscribe", "topic": f"meeting:{mid}:item:{secret}"})
        assert ws2.receive_json()["type"] == "subscribed"
        assert c.post(f"/api/polls/{pid}/open", headers=chair).status_code == 200
        opened = receive_until(ws, lambda f: f.get("type") == "poll.changed")
        assert opened["data"]["poll"]["restricted"] is True and opened["data"]["state"] == "open"
        assert POLL_TITLE not in json.dumps(opened, ensure_ascii=False)
        assert SECRET_NOTE not in json.dumps(opened, ensure_ascii=False)
        full = receive_until(ws2, lambda f: f.get("type") == "poll.changed")
        assert full["data"]["poll"]["title"] == POLL_TITLE  # on the item's topic, for those who see it

        # those who may not see the item: the list shows that a poll exists, the detail is refused
        listed = c.get(f"/api/meetings/{mid}/polls", headers=member).json()["polls"]
        assert [p["restricted"] for p in listed] == [True] and POLL_TITLE not in json.dumps(listed, ensure_ascii=False)
        detail = c.get(f"/api/polls/{pid}", headers=member)
        assert detail.status_code == 403 and "mật" in detail.json()["message"]
        assert c.get(f"/api/polls/{pid}/export.csv", headers=member).status_code == 403
        assert c.get(f"/api/polls/{pid}", headers=member2).json()["title"] == POLL_TITLE
        assert c.get(f"/api/meetings/{mid}/polls", headers=member2).json()["polls"][0]["title"] == POLL_TITLE

        # who votes: those who see the item (member2, and the chair who sees everything)
        assert c.get(f"/api/polls/{pid}", headers=chair).json()["eligible"] == 2
        refused = c.post(f"/api/polls/{pid}/votes", json={"choice": "yes"}, headers=member)
        assert refused.status_code == 403 and "nội dung mật" in refused.json()["message"]
        assert c.post(f"/api/polls/{pid}/votes", json={"choice": "yes"}, headers=member2).status_code == 201
        progress = receive_until(ws, lambda f: f.get("type") == "poll.progress")
        assert "tally" not in progress["data"]

    # a confidential document refused, and every refusal in the audit log
    _, version = await call(world.db, documents.add_document, world.organiser, world.blobs, mid,
                            upload_id=await world.upload_pdf(world.organiser, [["Hồ sơ nhân sự"]], "Hồ sơ"),
                            item_id=secret)
    assert c.get(f"/api/meetings/{mid}/versions/{version.id}", headers=member).status_code == 403
    denied = await audit_actions(world, "poll.denied")
    assert [(e.actor_id, e.object_id) for e in denied] == [(world.member.id, str(pid))] * 2
    refusals = [e for e in await audit_actions(world, "poll.vote.refused") if e.actor_id == world.member.id]
    assert [e.data["reason"] for e in refusals] == ["confidential"]
    doc_denied = await audit_actions(world, "meeting.document.denied")
    assert [(e.actor_id, e.data["version_id"]) for e in doc_denied] == [(world.member.id, version.id)]


# ---------------------------------------------------------------- access that shrinks, replays


async def test_an_item_made_confidential_closes_its_topics_and_replays_without_its_content(world: World) -> None:
    m = await world.meeting(start=True, items=2)
    await check_in(world, m, "chair", "member", "member2")
    mid, item = m["meeting_id"], m["item_ids"][1]
    upload = await world.upload_pdf(world.organiser, [["Tờ trình phương án nhân sự"]], "Tờ trình")
    _, version = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=upload,
                            item_id=item)
    poll = await call(world.db, voting.create_poll, world.chair, mid, title=POLL_TITLE, method="yes_no_abstain",
                      item_id=item)
    await call(world.db, voting.open_poll, world.chair, poll.id)
    async with live_hub(world) as hub:
        member, member2 = hub.connect(world.member), hub.connect(world.member2)
        watched = [f"meeting:{mid}:item:{item}", annotations.version_topic(version.id)]
        for t in watched:
            await hub.subscribe(member, t)
            await hub.subscribe(member2, t)
        await call(world.db, agenda.update_item, world.organiser, item, confidential=True,
                   allowed_user_ids=[world.member2.id])
        for t in watched:  # at once, for both topics (the item's and its document's annotations)
            await revoked(member, t)
        assert all(t in member2.topics for t in watched)

        # the log still has the poll's title from before: a late subscriber without access does not get it
        frames(member)
        await hub.subscribe(member, f"meeting:{mid}", since=0)
        got = frames(member)
        assert any(f["type"] == "poll.changed" and f["data"]["poll"]["restricted"] for f in got)
        assert POLL_TITLE not in json.dumps(got, ensure_ascii=False)
        with pytest.raises(Forbidden):
            await hub.subscribe(member, annotations.version_topic(version.id), since=0)
        await hub.subscribe(member2, f"meeting:{mid}", since=0)  # who may see it still does
        assert POLL_TITLE in json.dumps(frames(member2), ensure_ascii=False)


async def test_an_annotation_made_private_again_is_not_replayed(world: World) -> None:
    m = await world.meeting(start=True)
    upload = await world.upload_pdf(world.organiser, [["Báo cáo chuyển đổi số huyện Đông Triều"]], "Báo cáo")
    _, version = await call(world.db, documents.add_document, world.organiser, world.blobs, m["meeting_id"],
                            upload_id=upload, item_id=m["item_ids"][0])
    (a, _), _ = await run(world.db, annotations.create, world.member2, version.id, client_id="tablet-1-0123456789",
                          page=1, kind="note", shape={"at": [100, 120]}, text=SECRET_NOTE, visibility="meeting")
    await call(world.db, annotations.update, world.member2, a.id, revision=1, visibility="private")
    async with live_hub(world) as hub:
        late = hub.connect(world.member)
        await hub.subscribe(late, annotations.version_topic(version.id), since=0)
        got = frames(late)
        assert SECRET_NOTE not in json.dumps(got, ensure_ascii=False)
        assert [f["type"] for f in got[1:]] == ["annotation.hidden", "annotation.hidden"]
        owner = hub.connect(world.member2)  # the owner's own topic still replays it
        await hub.subscribe(owner, annotations.user_topic(world.member2.id), since=0)
        assert SECRET_NOTE in json.dumps(frames(owner), ensure_ascii=False)


# ---------------------------------------------------------------- substitutes


async def test_a_substitute_sees_confidential_items_only_once_approved(app_client: TestClient,  # noqa: F811
                                                                      world: World) -> None:
    c = app_client
    m = await world.meeting(confidential_for=["member2"])
    mid, secret, seat = m["meeting_id"], m["item_ids"][1], m["seats"]["member2"]
    # from another unit (Đông Triều, not the Sở): not approved yet
    await call(world.db, meetings.respond, world.member2, seat, "substitute", substitute_id=world.district2.id)
    sub, chair, member = [await bearer(world, k) for k in ("district2", "chair", "member")]
    agenda_of = lambda h: c.get(f"/api/meetings/{mid}", headers=h).json()["agenda"]  # noqa: E731
    assert agenda_of(sub)[1]["restricted"] is True and ITEM_TITLE not in json.dumps(agenda_of(sub), ensure_ascii=False)
    url = f"/api/meetings/{mid}/participants/{seat}/substitute-approval"
    assert c.post(url, json={"approved": True}, headers=member).status_code == 403
    assert c.post(url, json={"approved": "có"}, headers=chair).status_code == 400
    r = c.post(url, json={"approved": True}, headers=chair)
    assert r.status_code == 200 and r.json()["approved"] is True
    assert agenda_of(sub)[1]["title"] == ITEM_TITLE

    # withdrawn: the substitute's live subscription to the item ends at once
    async with live_hub(world) as hub:
        conn = hub.connect(world.district2)
        await hub.subscribe(conn, f"meeting:{mid}:item:{secret}")
        await call(world.db, meetings.approve_substitute, world.chair, seat, False)
        await revoked(conn, f"meeting:{mid}:item:{secret}")
    assert agenda_of(sub)[1]["restricted"] is True

    # a substitute from the invitee's own unit needs no approval
    await call(world.db, meetings.respond, world.member2, seat, "substitute", substitute_id=world.substitute.id)
    mine = await bearer(world, "substitute")
    assert agenda_of(mine)[1]["title"] == ITEM_TITLE
    assert c.get(f"/api/meetings/{mid}", headers=sub).status_code == 403  # the earlier one has no seat any more


# ---------------------------------------------------------------- tasks from conclusions


async def test_a_task_from_a_confidential_conclusion_names_nothing_confidential(world: World) -> None:
    m = await world.meeting(start=True, confidential_for=["member2"])
    secret = m["item_ids"][1]
    conclusion = await call(world.db, minutes.add_conclusion, world.secretary, secret, text=SECRET_NOTE)
    done, events = await run(world.db, minutes.conclusion_to_task, world.chair, conclusion.id,
                             assignee_id=world.member.id)  # member may not see the item
    async with world.db.uow() as uow:
        task = await uow.session.get(Task, done.task_id)
        assert task is not None
        text = f"{task.title} {task.instruction}"
    assert task.title == minutes.CONFIDENTIAL_TASK_TITLE
    for leak in (SECRET_NOTE, ITEM_TITLE, "Phương án nhân sự"):
        assert leak not in text
        assert leak not in json.dumps(events, ensure_ascii=False)
    # an ordinary item's conclusion keeps its text
    open_item = m["item_ids"][0]
    plain = await call(world.db, minutes.add_conclusion, world.secretary, open_item, text="Giao Sở TTTT báo cáo")
    done = await call(world.db, minutes.conclusion_to_task, world.chair, plain.id, assignee_id=world.member.id)
    async with world.db.uow() as uow:
        task = await uow.session.get(Task, done.task_id)
        assert task is not None and task.title == "Giao Sở TTTT báo cáo"
