"""Snapshots of the e-office's hub topics (eoffice.live) through a real server and WebSocket
clients: a client whose ``since`` is older than the retained log gets the document's (or the
unit's) state built from the database, filtered by what that user may see; a user who may not see
it cannot subscribe at all. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from eoffice import identity, tasks
from eoffice.documents import register_incoming
from eoffice.registers import local_date
from storage import events
from storage.db import Database, utcnow
from storage.settings import Settings
from tests.eoffice.conftest import Org, incoming_fields, make_org
from tests.web.test_ws import Server, bearer, emit, recv, running_server, subscribe
from web import ws_protocol

LOG = 5  # events the log keeps per topic


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with running_server(replace(settings, event_log_size=LOG), ws_protocol.PROTOCOL) as running:
        yield running


async def _tokens(db: Database, org: Org, *names: str) -> dict[str, str]:
    async with db.uow() as uow:
        out = {n: await identity.create_token(uow, None, org[n]) for n in names}
        await uow.commit()
    return out


async def _snapshot(ws: ClientConnection, topic: str, since: int) -> dict[str, Any]:
    await subscribe(ws, topic, since=since)
    message = await recv(ws)
    assert message["type"] == "snapshot" and message["topic"] == topic, message
    return dict(message["data"])


async def _refused(ws: ClientConnection, topic: str) -> str:
    await ws.send(json.dumps({"op": "subscribe", "topic": topic, "since": 0}))
    message = await recv(ws)
    assert message["type"] == "error" and message["topic"] == topic, message
    return str(message["message"])


async def test_document_snapshot_is_the_readers_view(server: Server) -> None:
    db = server.db
    org = await make_org(db)
    clerk, leader = org["vanthu"], org["lanhdao"]
    deadline = local_date(utcnow()) + dt.timedelta(days=10)
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(  # type: ignore[arg-type]
            31, summary="Công văn về việc triển khai chính quyền điện tử cấp xã", confidentiality="mat"))
        await tasks.submit(uow, clerk, doc.id, leader.id, "Kính trình đồng chí Chủ tịch")
        _, (task,) = await tasks.direct(uow, leader, doc.id, text="Giao Phòng Kinh tế chủ trì",
                                        main={"unit_id": org.units["KT"].id}, deadline=deadline)
        await uow.commit()
    topic = f"document:{doc.id}"
    await emit(db, topic, LOG + 3)  # more than the log keeps after seq 1
    tokens = await _tokens(db, org, "vanthu", "truongphong", "vanthu2", "chuyenvien")

    async with connect(server.url, additional_headers=bearer(tokens["truongphong"])) as ws:
        snap = await _snapshot(ws, topic, since=1)
    assert snap["document"]["id"] == doc.id and snap["document"]["status"] == "in_progress"
    assert snap["document"]["summary"] == "Công văn về việc triển khai chính quyền điện tử cấp xã"
    assert [(s["to_user_id"], s["note"]) for s in snap["submissions"]] == [(leader.id, "Kính trình đồng chí Chủ tịch")]
    assert [d["text"] for d in snap["directions"]] == ["Giao Phòng Kinh tế chủ trì"]
    (node,) = snap["tasks"]
    assert (node["id"], node["assignee_unit_id"], node["deadline"], node["children"]) == (
        task.id, org.units["KT"].id, deadline.isoformat(), [])
    assert snap["ingest_jobs"] == [] and snap["attachments"] == [] and "draft" not in snap

    # a mật document: another clerk of the agency and a specialist who was given nothing may not listen
    for name in ("vanthu2", "chuyenvien"):
        async with connect(server.url, additional_headers=bearer(tokens[name])) as ws:
            assert "không có quyền" in await _refused(ws, topic)
    async with db.uow(readonly=True) as uow:
        last = await events.last_seq(uow.session, topic)
    async with connect(server.url, additional_headers=bearer(tokens["vanthu"])) as ws:  # within the log: a replay
        await subscribe(ws, topic, since=last - 2)
        assert [(await recv(ws))["seq"] for _ in range(2)] == [last - 1, last]


async def test_outgoing_draft_snapshot_carries_its_chain(server: Server) -> None:
    from eoffice import outgoing

    db = server.db
    org = await make_org(db)
    cv, head = org["chuyenvien"], org["truongphong"]
    async with db.uow() as uow:
        draft = await outgoing.create_draft(uow, cv, None, doc_type="cong_van",  # type: ignore[arg-type]
                                            summary="Công văn đôn đốc báo cáo chuyển đổi số")
        await outgoing.send_for_approval(uow, cv, draft.id, head.id)
        await uow.commit()
    topic = f"document:{draft.id}"
    await emit(db, topic, LOG + 2)
    tokens = await _tokens(db, org, "chuyenvien")
    async with connect(server.url, additional_headers=bearer(tokens["chuyenvien"])) as ws:
        snap = await _snapshot(ws, topic, since=0)
    assert snap["document"]["status"] == "in_review"
    assert snap["draft"]["chain"]["turn"] == {"who": "approver", "user_id": head.id, "level": 0}
    assert [s["status"] for s in snap["draft"]["steps"]] == ["pending"]


async def test_unit_snapshot_counts_what_each_listener_may_see(server: Server) -> None:
    db = server.db
    org = await make_org(db)
    clerk, leader = org["vanthu"], org["lanhdao"]
    ubnd, kt = org.units["UBND"], org.units["KT"]
    today = local_date(utcnow())
    async with db.uow() as uow:
        ordinary, _ = await register_incoming(uow, clerk, None, **incoming_fields(1))  # type: ignore[arg-type]
        secret, _ = await register_incoming(uow, clerk, None,  # type: ignore[arg-type]
                                            **incoming_fields(2, confidentiality="mat"))
        handled, _ = await register_incoming(uow, clerk, None, **incoming_fields(3))  # type: ignore[arg-type]
        await tasks.submit(uow, clerk, handled.id, leader.id)
        _, (task,) = await tasks.direct(uow, leader, handled.id, text="Phòng Kinh tế tham mưu",
                                        main={"unit_id": kt.id}, informed=[{"unit_id": kt.id}],
                                        deadline=today + dt.timedelta(days=1))
        await uow.commit()
    for unit in (ubnd, kt):
        await emit(db, f"unit:{unit.id}", LOG + 2)
    tokens = await _tokens(db, org, "vanthu", "vanthu2", "truongphong", "chuyenvien")

    # the unit head: the task given to the unit, due soon, and the document sent to it for information
    async with connect(server.url, additional_headers=bearer(tokens["truongphong"])) as ws:
        snap = await _snapshot(ws, f"unit:{kt.id}", since=0)
        assert "không có quyền" in await _refused(ws, f"unit:{ubnd.id}")  # not a leader of the agency itself
    assert snap["unit_id"] == kt.id
    assert [t["id"] for t in snap["tasks"]] == [task.id] and snap["tasks"][0]["deadline_state"] == "due_soon"
    assert [d["id"] for d in snap["informed"]] == [handled.id]
    assert snap["counts"] == {"open_tasks": 1, "overdue": 0, "due_soon": 1, "informed": 1, "to_issue": 0,
                              "registered": 0}

    # the agency's clerks: registered documents waiting to be submitted, each as they may see them
    async with connect(server.url, additional_headers=bearer(tokens["vanthu"])) as ws:
        mine = await _snapshot(ws, f"unit:{ubnd.id}", since=1)
    async with connect(server.url, additional_headers=bearer(tokens["vanthu2"])) as ws:
        theirs = await _snapshot(ws, f"unit:{ubnd.id}", since=1)
    assert [d["id"] for d in mine["registered"]] == [secret.id, ordinary.id] and mine["counts"]["registered"] == 2
    assert [d["id"] for d in theirs["registered"]] == [ordinary.id] and theirs["counts"]["registered"] == 1

    async with connect(server.url, additional_headers=bearer(tokens["chuyenvien"])) as ws:  # a specialist
        assert "không có quyền" in await _refused(ws, f"unit:{kt.id}")
