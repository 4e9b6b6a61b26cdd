"""The polls HTTP API over a real app (SQLite and PostgreSQL): clear 4xx refusals, live progress over /ws,
results, CSV, the voting page."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from eoffice import identity
from meetings import attendance
from storage.settings import Settings
from tests.meetings.conftest import World, call
from web.app import create_app


@pytest.fixture
def app_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


async def bearer(world: World, key: str) -> dict[str, str]:
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, world.users[key])
        await uow.commit()
    return {"Authorization": f"Bearer {token}"}


async def live_meeting(world: World) -> dict[str, Any]:
    m = await world.meeting(start=True)
    async with world.db.uow() as uow:
        from meetings.meetings import _seat_for

        chair_seat = await _seat_for(uow, m["meeting_id"], world.chair.id)
        assert chair_seat is not None
        m["seats"]["chair"] = chair_seat.id
    for key in ("chair", "member", "member2"):
        await call(world.db, attendance.check_in, world.chair, m["seats"][key])
    return m


def receive_until(ws: Any, predicate: Any, limit: int = 50, timeout: float = 30.0) -> dict[str, Any]:
    """The first message that satisfies ``predicate``; a message that never comes fails within ``timeout`` seconds
    (TestClient's own receive waits forever, which turns a lost event into a suite-wide time-out)."""

    async def next_message() -> Any:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()

    for _ in range(limit):
        message = ws.portal.call(next_message)
        ws._raise_on_close(message)
        msg = json.loads(message.get("text") or message["bytes"].decode())
        if predicate(msg):
            return msg
    raise AssertionError("expected message not received")


async def test_poll_through_the_api(app_client: TestClient, world: World) -> None:
    c = app_client
    chair, member, member2, outsider, secretary = [await bearer(world, k) for k in
                                                   ("chair", "member", "member2", "outsider", "secretary")]
    m = await live_meeting(world)
    mid = m["meeting_id"]

    body = {"meeting_id": mid, "title": "Thông qua Nghị quyết về phát triển du lịch Hạ Long",
            "method": "yes_no_abstain", "majority": "absolute", "base": "present"}
    assert c.post("/api/polls", json=body, headers=member).status_code == 403
    assert c.post("/api/polls", json={**body, "method": "bỏ phiếu"}, headers=chair).json()["field"] == "method"
    assert c.post("/api/polls", json={**body, "colour": "đỏ"}, headers=chair).status_code == 400
    r = c.post("/api/polls", json=body, headers=chair)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["state"] == "draft"
    assert c.get(f"/api/polls/{pid}", headers=member).status_code == 404  # drafts are the chair's business
    assert c.get(f"/api/meetings/{mid}/polls", headers=member).json()["polls"] == []
    assert c.get(f"/api/meetings/{mid}/polls", headers=outsider).status_code == 403

    with c.websocket_connect("/ws", headers=member2) as ws:
        ws.send_json({"op": "subscribe", "topic": f"meeting:{mid}"})
        assert ws.receive_json()["type"] == "subscribed"
        r = c.post(f"/api/polls/{pid}/open", json={"duration_seconds": 120}, headers=secretary)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "open" and r.json()["eligible"] == 3 and r.json()["closes_at"]
        opened = receive_until(ws, lambda m: m.get("type") == "poll.changed")
        assert opened["data"]["poll"]["state"] == "open" and opened["data"]["poll"]["result"] is None

        r = c.post(f"/api/polls/{pid}/votes", json={"choice": "yes"}, headers=member)
        assert r.status_code == 201, r.text
        assert r.json() | {"message": ""} == {"ok": True, "poll_id": pid, "participant_id": m["seats"]["member"],
                                              "cast": 1, "eligible": 3, "changed": False, "message": ""}
        progress = receive_until(ws, lambda m: m.get("type") == "poll.progress")
        assert progress["data"]["cast"] == 1 and progress["data"]["eligible"] == 3
        assert "tally" not in progress["data"]

        dup = c.post(f"/api/polls/{pid}/votes", json={"choice": "no"}, headers=member)
        assert dup.status_code == 409 and dup.json()["error"] == "conflict" and "đã được bỏ" in dup.json()["message"]
        bad = c.post(f"/api/polls/{pid}/votes", json={"choice": ["yes"]}, headers=chair)
        assert bad.status_code == 400 and bad.json()["field"] == "choice"
        assert c.post(f"/api/polls/{pid}/votes", json={}, headers=chair).status_code == 400
        assert c.post(f"/api/polls/{pid}/votes", json={"choice": "yes"}, headers=outsider).status_code == 403
        assert c.post(f"/api/polls/{pid}/votes", json={"choice": "yes"}, headers=secretary).status_code == 403
        assert c.post(f"/api/polls/{pid}/votes", content=b"{", headers=chair).status_code == 400

        assert c.post(f"/api/polls/{pid}/votes", json={"choice": "no"}, headers=chair).status_code == 201
        voters = c.get(f"/api/polls/{pid}/voters", headers=chair).json()
        assert [v["name"] for v in voters["not_voted"]] == ["Hoàng Đức Thắng"]
        assert c.get(f"/api/polls/{pid}/voters", headers=member).status_code == 403
        rc = c.post(f"/api/polls/{pid}/roll-call", json={"votes": [{"participant_id": m["seats"]["member2"],
                                                                    "choice": "yes"}]}, headers=chair)
        assert rc.status_code == 201, rc.text

        mine = c.get(f"/api/polls/{pid}", headers=member).json()
        assert mine["me"][0]["voted"] and mine["me"][0]["choice"] == {"v": "yes"}

        r = c.post(f"/api/polls/{pid}/close", headers=chair)
        assert r.status_code == 200 and r.json()["result"]["passed"] is True
        closed = receive_until(ws, lambda m: m.get("type") == "poll.changed" and m["data"]["state"] == "closed")
        assert closed["data"]["poll"]["result"]["counts"] == {"yes": 2, "no": 1, "abstain": 0}
    late = c.post(f"/api/polls/{pid}/votes", json={"choice": "yes"}, headers=member2)
    assert late.status_code == 409 and "đã kết thúc" in late.json()["message"]
    assert c.post(f"/api/polls/{pid}/close", headers=chair).status_code == 409
    assert c.post(f"/api/polls/{pid}/publish", headers=member).status_code == 403
    assert c.post(f"/api/polls/{pid}/publish", headers=chair).json()["state"] == "published"
    assert c.post(f"/api/polls/{pid}/fly", headers=chair).status_code == 404

    csv = c.get(f"/api/polls/{pid}/export.csv", headers=chair)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "Lê Minh Tuấn" in csv.text and "Tán thành" in csv.text and "Giơ tay / điểm danh" in csv.text
    rerun = c.post(f"/api/polls/{pid}/rerun", headers=chair)
    assert rerun.status_code == 201 and rerun.json()["rerun_of_id"] == pid

    page = c.get(f"/meetings/{mid}/polls", headers=member)
    assert page.status_code == 200 and "data-voting-panel" in page.text and "/static/js/voting.js" in page.text
    assert "Biểu quyết" in page.text
    spec = c.get("/api/openapi.json").json()
    assert "/api/polls/{poll_id}/votes" in spec["paths"] and "/api/polls" in spec["paths"]


async def test_countdown_closes_the_poll_by_itself(app_client: TestClient, world: World) -> None:
    c = app_client
    chair, member = await bearer(world, "chair"), await bearer(world, "member")
    m = await live_meeting(world)
    pid = c.post("/api/polls", json={"meeting_id": m["meeting_id"], "title": "Biểu quyết nhanh",
                                     "method": "yes_no", "quorum_rule": "none"}, headers=chair).json()["id"]
    assert c.post(f"/api/polls/{pid}/open", headers=chair).status_code == 200
    assert c.post(f"/api/polls/{pid}/votes", json={"choice": "yes"}, headers=member).status_code == 201
    from sqlalchemy import update

    from meetings.schema import Poll
    from storage.db import utcnow

    async with world.db.uow() as uow:  # a countdown that ends one second from now
        import datetime as dt

        await uow.session.execute(update(Poll).where(Poll.id == pid).values(
            closes_at=utcnow() + dt.timedelta(seconds=1)))
        await uow.commit()
    r = c.post(f"/api/polls/{pid}/countdown", json={"seconds": 3}, headers=chair)  # pokes the runner
    assert r.status_code == 400  # 3 s is below the minimum: the runner still knows the 1 s one
    c.get(f"/api/polls/{pid}", headers=chair)
    deadline = time.monotonic() + 10
    state = "open"
    while time.monotonic() < deadline and state == "open":
        await asyncio.sleep(0.2)
        state = c.get(f"/api/polls/{pid}", headers=chair).json()["state"]
    view = c.get(f"/api/polls/{pid}", headers=chair).json()
    assert view["state"] == "closed" and view["close_reason"] == "timer" and view["result"]["ballots"] == 1
    late = c.post(f"/api/polls/{pid}/votes", json={"choice": "no"}, headers=chair)
    assert late.status_code == 409


async def test_proxies_and_weights_api(app_client: TestClient, world: World) -> None:
    c = app_client
    chair, member2, organiser = [await bearer(world, k) for k in ("chair", "member2", "organiser")]
    m = await world.meeting(start=True)
    mid = m["meeting_id"]
    base = f"/api/meetings/{mid}/voting-rights"
    r = c.post(base + "/proxies", json={"grantor_id": m["seats"]["member2"], "holder_id": m["seats"]["member"],
                                        "note": "Giấy ủy quyền ngày 01/12/2026"}, headers=member2)
    assert r.status_code == 201, r.text
    assert c.put(base + f"/weights/{m['seats']['member']}", json={"weight": 2}, headers=organiser).status_code == 200
    assert c.put(base + f"/weights/{m['seats']['member']}", json={"weight": -1}, headers=organiser).status_code == 400
    rows = {x["participant_id"]: x for x in c.get(base, headers=chair).json()["rights"]}
    assert rows[m["seats"]["member2"]]["proxy_holder_id"] == m["seats"]["member"]
    assert rows[m["seats"]["member"]]["weight"] == 2
    assert c.delete(base + f"/proxies/{m['seats']['member2']}", headers=chair).status_code == 200
    assert c.delete(base + f"/proxies/{m['seats']['member2']}", headers=chair).status_code == 404


async def session_cookie(world: World, key: str, settings: Settings) -> tuple[dict[str, str], str]:
    """A tablet's browser session: the cookie header, and the raw token (to end the session)."""
    from web.auth import SESSION_COOKIE, signer

    async with world.db.uow() as uow:
        token = await identity.start_session(uow, world.users[key], 1)
        await uow.commit()
    return {"Cookie": f"{SESSION_COOKIE}={signer(settings).sign(token).decode()}"}, token


def command(ws: Any, frame: dict[str, Any]) -> dict[str, Any]:
    ws.send_json(frame)
    return receive_until(ws, lambda m: m.get("type") in ("reply", "error"))


async def test_vote_over_the_meeting_websocket(app_client: TestClient, world: World, settings: Settings) -> None:
    """The ``vote`` command: answered after the commit with the client's id, the same checks as HTTP, and
    refused once the session the socket was opened with has ended."""
    c = app_client
    chair, member2 = await bearer(world, "chair"), await bearer(world, "member2")
    member_cookie, member_token = await session_cookie(world, "member", settings)
    m = await live_meeting(world)
    mid = m["meeting_id"]
    pid = c.post("/api/polls", json={"meeting_id": mid, "title": "Thông qua Đề án chuyển đổi số tỉnh Quảng Ninh",
                                     "method": "yes_no_abstain", "quorum_rule": "none"}, headers=chair).json()["id"]

    with c.websocket_connect("/ws", headers=member_cookie) as ws, c.websocket_connect("/ws", headers=member2) as ws2:
        ws.send_json({"op": "subscribe", "topic": f"meeting:{mid}"})
        assert ws.receive_json()["type"] == "subscribed"
        early = command(ws, {"op": "vote", "id": "t-0", "poll_id": pid, "choice": "yes"})
        assert early["ok"] is False and early["status"] == 404  # a draft does not exist for delegates
        assert c.post(f"/api/polls/{pid}/open", headers=chair).status_code == 200

        ws.send_json({"op": "vote", "id": "t-1", "poll_id": pid, "choice": "yes"})
        seen: dict[str, dict[str, Any]] = {}
        while len(seen) < 2:  # the reply, and the progress event (which may come first: it is sent at the commit)
            msg = ws.receive_json()
            if msg.get("type") in ("reply", "poll.progress"):
                seen[msg["type"]] = msg
        r = seen["reply"]
        assert r["type"] == "reply" and r["op"] == "vote" and r["id"] == "t-1" and r["ok"] is True, r
        assert r["data"] | {"message": ""} == {"poll_id": pid, "participant_id": m["seats"]["member"], "cast": 1,
                                               "eligible": 3, "changed": False, "message": ""}
        assert seen["poll.progress"]["data"]["cast"] == 1

        dup = command(ws, {"op": "vote", "id": 2, "poll_id": pid, "choice": "no"})
        assert dup["id"] == 2 and dup["ok"] is False and dup["status"] == 409 and "đã được bỏ" in dup["message"]
        bad = command(ws2, {"op": "vote", "id": "t-3", "poll_id": pid, "choice": ["có"]})
        assert bad["ok"] is False and bad["status"] == 400 and bad["field"] == "choice"
        assert command(ws2, {"op": "vote", "id": "t-4", "poll_id": pid})["field"] == "choice"
        assert command(ws2, {"op": "vote", "id": "t-5", "poll_id": "một", "choice": "yes"})["field"] == "poll_id"
        no_id = command(ws2, {"op": "vote", "poll_id": pid, "choice": "yes"})
        assert no_id["type"] == "error" and no_id["op"] == "vote"
        r2 = command(ws2, {"op": "vote", "id": "t-6", "poll_id": pid, "choice": "abstain"})
        assert r2["ok"] is True and r2["data"]["cast"] == 2

        # logging out ends what the socket may do, even though it stays open for live events
        async with world.db.uow() as uow:
            await identity.end_session(uow, world.member, member_token)
            await uow.commit()
        rc = c.post(f"/api/polls/{pid}/roll-call", json={"votes": [
            {"participant_id": m["seats"]["chair"], "choice": "no"}]}, headers=chair)
        assert rc.status_code == 201
        cookie2, token2 = await session_cookie(world, "member", settings)
    with c.websocket_connect("/ws", headers=cookie2) as ws3:
        async with world.db.uow() as uow:
            await identity.end_session(uow, world.member, token2)
            await uow.commit()
        gone = command(ws3, {"op": "vote", "id": "t-7", "poll_id": pid, "choice": "no"})
        assert gone["ok"] is False and gone["status"] == 401

    closed = c.post(f"/api/polls/{pid}/close", headers=chair).json()
    assert closed["result"]["counts"] == {"yes": 1, "no": 1, "abstain": 1}
    from sqlalchemy import select

    from eoffice import audit

    async with world.db.uow() as uow:
        entries = (await uow.session.scalars(select(audit.AuditEntry).where(
            audit.AuditEntry.object_type == "poll").order_by(audit.AuditEntry.seq))).all()
        assert (await audit.verify(uow.session)).ok
    assert [e.action for e in entries if e.action != "poll.vote.refused"] == [
        "poll.create", "poll.open", "poll.vote", "poll.vote", "poll.roll_call", "poll.close"]
    # refused casts are audited too: who, why, never the choice
    refused = [e for e in entries if e.action == "poll.vote.refused"]
    assert [(e.actor_id, e.data["reason"]) for e in refused] == [
        (world.member.id, "already_voted"), (world.member2.id, "malformed"), (world.member.id, "logged_out")]
    assert all(set(e.data) == {"meeting_id", "reason", "participant_id"} for e in refused)
