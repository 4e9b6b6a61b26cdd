"""Written consultation of the committee's members (issue 20), over a real app on SQLite and PostgreSQL:
create, answer, change, refusals (deadline 409, outsiders 403/404, confidential), the legal counting rule
("quá nửa tổng số thành viên" is over ALL members consulted), automatic close at the deadline, the report PDF,
the follow-up task, the live topic's access check."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice import identity, notifications
from eoffice.audit import AuditEntry
from eoffice.org import Role, User
from eoffice.schema.notifications import Notification
from eoffice.signatures import verify_pdf
from eoffice.tasks import Task
from meetings import consultations as svc
from meetings.consultations_live import ConsultationRunner
from storage.settings import Settings
from tests.meetings.conftest import World, password_hash
from tests.meetings.personal_keys import PASSPHRASE, use_personal_keys
from web.app import create_app

NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Đức", "Vũ Thị Hạnh",
         "Đặng Văn Khoa", "Bùi Thị Liên", "Ngô Văn Mạnh"]


@pytest.fixture
def app_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


async def bearer(world: World, user: User) -> dict[str, str]:
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, user)
        await uow.commit()
    return {"Authorization": f"Bearer {token}"}


async def committee(world: World) -> list[User]:
    """Nine members of the provincial People's Committee (leaders of the agency unit)."""
    out = []
    async with world.db.uow() as uow:
        for n, name in enumerate(NAMES):
            u = User(username=f"uyvien{n}", full_name=name, password_hash=password_hash(), title="Ủy viên UBND tỉnh",
                     roles=[str(Role.LEADER)], unit_id=world.units["UBND"].id)
            uow.session.add(u)
            out.append(u)
        await uow.session.flush()
        await uow.commit()
    return out


def soon(seconds: float = 3600) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


def body(**kw: Any) -> dict[str, Any]:
    return {"title": "Lấy ý kiến về dự thảo Quyết định ban hành Quy chế làm việc của UBND tỉnh",
            "deadline": soon(), "questions": [{"text": "Đồng ý ban hành Quyết định theo dự thảo?"}], **kw}


def yes(comment: str = "") -> dict[str, Any]:
    return {"answers": [{"question": 0, "choice": "agree", "comment": comment}]}


def no(comment: str = "") -> dict[str, Any]:
    return {"answers": [{"question": 0, "choice": "disagree", "comment": comment}]}


async def test_create_answer_change_and_result_over_all_members(app_client: TestClient, world: World) -> None:
    c = app_client
    members = await committee(world)
    office = await bearer(world, world.organiser)
    heads = [await bearer(world, m) for m in members]
    outsider = await bearer(world, world.outsider)
    draft = await world.upload_pdf(world.organiser, [["Dự thảo Quy chế làm việc của Ủy ban nhân dân tỉnh"]],
                                   "Dự thảo Quy chế")
    sub = await world.upload_pdf(world.organiser, [["Tờ trình về việc ban hành Quy chế"]], "Tờ trình")

    # only the office (clerk) prepares; bad input is a Vietnamese 400
    assert c.post("/api/consultations", json=body(), headers=heads[0]).status_code == 403
    r = c.post("/api/consultations", json=body(questions=[]), headers=office)
    assert r.status_code == 400 and "câu hỏi" in r.json()["message"]
    r = c.post("/api/consultations", json=body(deadline=soon(-60)), headers=office)
    assert r.status_code == 400 and "tương lai" in r.json()["message"]

    # the whole committee by default: the nine members plus the two leaders of the agency in the world
    r = c.post("/api/consultations", json=body(
        signer_id=world.chair.id, documents=[{"upload_id": draft, "kind": "draft"},
                                              {"upload_id": sub, "kind": "submission"}],
        member_ids=[m.id for m in members]), headers=office)
    assert r.status_code == 201, r.text
    data = r.json()
    cid = data["id"]
    assert data["total"] == 9 and data["answered"] == 0 and data["state"] == "open"
    assert [d["kind"] for d in data["documents"]] == ["draft", "submission"]
    assert len(data["not_answered"]) == 9  # the office sees who has not answered

    # members read the drafts as page images; an outsider neither sees it nor its pages
    doc_id = data["documents"][0]["id"]
    img = c.get(f"/api/consultations/{cid}/documents/{doc_id}/pages/1?w=800", headers=heads[0])
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    meta = c.get(f"/api/consultations/{cid}/documents/{doc_id}", headers=heads[0]).json()
    assert meta["page_count"] == 1 and meta["title"] == "Dự thảo Quy chế" and meta["widths"]
    found = c.get(f"/api/consultations/{cid}/documents/{doc_id}/search?q=quy che", headers=heads[0]).json()
    assert found["total"] >= 1 and found["hits"][0]["page"] == 1
    assert c.get(f"/api/consultations/{cid}/documents/{doc_id}/pages/1/words", headers=heads[0]).status_code == 200
    assert c.get(f"/consultations/{cid}/documents/{doc_id}", headers=heads[0]).status_code == 200
    assert c.get(f"/api/consultations/{cid}/documents/{doc_id}", headers=outsider).status_code == 403
    assert c.get(f"/api/consultations/{cid}", headers=outsider).status_code == 403
    assert c.get(f"/api/consultations/{cid}/documents/{doc_id}/pages/1", headers=outsider).status_code == 403
    assert c.post(f"/api/consultations/{cid}/answers", json=yes(), headers=outsider).status_code == 403
    seen = c.get(f"/api/consultations/{cid}", headers=heads[0]).json()
    assert "members" not in seen and seen["me"]["may_answer"]  # members see counts only while open

    # answers: "other" needs a comment; change of mind is allowed and counted once
    r = c.post(f"/api/consultations/{cid}/answers", json={"answers": [{"question": 0, "choice": "other"}]},
               headers=heads[0])
    assert r.status_code == 400 and "Ý kiến khác" in r.json()["message"]
    assert c.post(f"/api/consultations/{cid}/answers", json={"answers": [{"question": 3, "choice": "agree"}]},
                  headers=heads[0]).status_code == 400
    assert c.post(f"/api/consultations/{cid}/answers", json=no("Cần bổ sung điều khoản chuyển tiếp"),
                  headers=heads[0]).json()["answered"] == 1
    r = c.post(f"/api/consultations/{cid}/answers", json=yes("Nhất trí, đề nghị ban hành sớm"), headers=heads[0])
    assert r.status_code == 200
    assert r.json() == {"ok": True, "answered": 1, "total": 9, "message": "Đã ghi nhận ý kiến."}
    for h in heads[1:4]:
        assert c.post(f"/api/consultations/{cid}/answers", json=yes(), headers=h).status_code == 200
    for h in heads[4:6]:
        r = c.post(f"/api/consultations/{cid}/answers", json=no("Chưa phù hợp thực tế"), headers=h)
        assert r.status_code == 200
    seen = c.get(f"/api/consultations/{cid}", headers=office).json()
    assert seen["answered"] == 6 and len(seen["not_answered"]) == 3
    assert seen["members"][0]["answers"][0]["label"] == "Đồng ý"

    # 4 of 9 agree (6 answered, 4 of them agree = a majority of answers) -> NOT passed: over all members
    r = c.post(f"/api/consultations/{cid}/close", headers=heads[0])
    assert r.status_code == 403
    r = c.post(f"/api/consultations/{cid}/close", headers=office)
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["rule_label"] == "Quá nửa tổng số thành viên"
    assert res["total"] == 9 and res["answered"] == 6
    q = res["questions"][0]
    assert [b["count"] for b in q["bars"]] == [4, 2, 0]
    assert q["passed"] is False and res["passed"] is False and "4/9" in q["headline"]
    assert c.post(f"/api/consultations/{cid}/close", headers=office).status_code == 409
    r = c.post(f"/api/consultations/{cid}/answers", json=yes(), headers=heads[8])
    assert r.status_code == 409 and "hết hạn" in r.json()["message"]

    # the report lists every member with their comment
    r = c.get(f"/api/consultations/{cid}/report.pdf", headers=office)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = "".join(p.get_text() for p in pymupdf.open(stream=r.content, filetype="pdf"))
    for m in members:
        assert m.full_name in text
    assert "Nhất trí, đề nghị ban hành sớm" in text and "Chưa phù hợp thực tế" in text
    assert "BÁO CÁO KẾT QUẢ LẤY Ý KIẾN THÀNH VIÊN" in text

    # the result becomes an e-office task, once
    r = c.post(f"/api/consultations/{cid}/task", json={"assignee_id": world.secretary.id}, headers=office)
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    async with world.db.uow() as uow:
        task = await uow.session.get(Task, task_id)
        assert task is not None and task.assignee_user_id == world.secretary.id
        assert "Quy chế làm việc" in task.title
    assert c.post(f"/api/consultations/{cid}/task", json={"assignee_id": world.secretary.id},
                  headers=office).status_code == 409

    # every write is in the audit log, with Vietnamese labels
    async with world.db.uow() as uow:
        actions = (await uow.session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "consultation"))).all()
    assert {"consultation.create", "consultation.answer", "consultation.answer.change", "consultation.close",
            "consultation.task"} <= set(actions)


async def test_five_of_nine_pass_with_six_answers(app_client: TestClient, world: World) -> None:
    c = app_client
    members = await committee(world)
    office = await bearer(world, world.organiser)
    heads = [await bearer(world, m) for m in members]
    cid = c.post("/api/consultations", json=body(member_ids=[m.id for m in members]), headers=office).json()["id"]
    for h in heads[:5]:
        assert c.post(f"/api/consultations/{cid}/answers", json=yes(), headers=h).status_code == 200
    assert c.post(f"/api/consultations/{cid}/answers", json=no(), headers=heads[5]).status_code == 200
    res = c.post(f"/api/consultations/{cid}/close", headers=office).json()["result"]
    assert res["passed"] is True and res["answered"] == 6
    assert "5/9" in res["questions"][0]["headline"] and "quá nửa tổng số thành viên" in res["questions"][0]["headline"]
    # once closed, each member sees the named answers too
    assert len(c.get(f"/api/consultations/{cid}", headers=heads[8]).json()["members"]) == 9


async def test_deadline_refuses_answers_and_closes_by_itself(app_client: TestClient, world: World,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    c = app_client
    members = await committee(world)
    office = await bearer(world, world.organiser)
    head = await bearer(world, members[0])
    ids = [m.id for m in members[:3]]
    cid = c.post("/api/consultations", json=body(member_ids=ids), headers=office).json()["id"]
    assert c.post(f"/api/consultations/{cid}/answers", json=yes(), headers=head).status_code == 200
    real = svc.clock
    monkeypatch.setattr(svc, "clock", lambda: real() + dt.timedelta(hours=2))
    r = c.post(f"/api/consultations/{cid}/answers", json=no(), headers=head)
    assert r.status_code == 409 and "hết hạn" in r.json()["message"]
    monkeypatch.setattr(svc, "clock", real)

    # a consultation with a short deadline is closed by the background runner, without anyone asking; a member
    # subscribed to its live topic gets the counts (never who answered what) and the close
    cid2 = c.post("/api/consultations", json=body(member_ids=ids, deadline=soon(1.5)), headers=office).json()["id"]
    with c.websocket_connect("/ws", headers=head) as ws:
        ws.send_json({"op": "subscribe", "topic": f"consultation:{cid2}"})
        assert ws.receive_json()["type"] == "subscribed"
        assert c.post(f"/api/consultations/{cid2}/answers", json=yes(), headers=head).status_code == 200
        event = ws.receive_json()
        assert event["type"] == "consultation.progress"
        assert event["data"] == {"state": "open", "answered": 1, "total": 3}
        limit = time.monotonic() + 30
        state = ""
        while time.monotonic() < limit:
            data = c.get(f"/api/consultations/{cid2}", headers=office).json()
            state = data["state"]
            if state == "closed":
                break
            await asyncio.sleep(0.1)
        assert state == "closed"
        event = ws.receive_json()  # published with the close's commit, before the state could be read
        assert event["type"] == "consultation.closed" and event["data"]["passed"] is False
    assert state == "closed" and data["close_reason"] == "deadline"
    assert data["result"]["answered"] == 1 and data["result"]["passed"] is False  # 1 of 3 is not over half


async def test_confidential_is_invisible_to_others(app_client: TestClient, world: World) -> None:
    c = app_client
    members = await committee(world)
    office = await bearer(world, world.organiser)
    signer = await bearer(world, world.chair)
    cid = c.post("/api/consultations", json=body(member_ids=[members[0].id], confidential=True,
                                                 signer_id=world.chair.id), headers=office).json()["id"]
    for who in (members[1], world.outsider, world.member):
        h = await bearer(world, who)
        assert c.get(f"/api/consultations/{cid}", headers=h).status_code == 404
        assert cid not in [x["id"] for x in c.get("/api/consultations", headers=h).json()["consultations"]]
        assert c.post(f"/api/consultations/{cid}/answers", json=yes(), headers=h).status_code == 404
    assert c.get(f"/api/consultations/{cid}", headers=signer).json()["members"][0]["name"] == NAMES[0]
    mine = await bearer(world, members[0])
    assert c.get(f"/api/consultations/{cid}", headers=mine).status_code == 200
    assert c.get("/consultations", headers=mine).status_code == 200
    page = c.get(f"/consultations/{cid}", headers=mine)
    assert page.status_code == 200 and "Nội dung mật" in page.text and "Gửi ý kiến" in page.text

    # the live topic: the member may subscribe, an outsider may not
    async with world.db.uow() as uow:
        assert await svc.authorize(uow, members[0], svc.topic(cid))
        assert not await svc.authorize(uow, members[1], svc.topic(cid))
        assert not await svc.authorize(uow, members[0], "consultation:x")


async def test_progress_events_carry_counts_only(world: World) -> None:
    members = await committee(world)
    async with world.db.uow() as uow:
        c = await svc.create(uow, world.organiser, world.blobs, title="Lấy ý kiến về phương án A hay B",
                             deadline=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
                             questions=[{"text": "Chọn phương án", "kind": "choice",
                                         "options": ["Phương án A", "Phương án B"]}],
                             member_ids=[m.id for m in members[:3]])
        await uow.commit()
    async with world.db.uow() as uow:
        await svc.answer(uow, members[0], c.id, [{"question": 0, "choice": "2", "comment": "Phù hợp hơn"}])
        events = await uow.commit()
    progress = [e for e in events if e["type"] == "consultation.progress"]
    assert progress and progress[0]["topic"] == svc.topic(c.id)
    assert progress[0]["data"] == {"state": "open", "answered": 1, "total": 3}
    async with world.db.uow() as uow:
        await svc.answer(uow, members[1], c.id, [{"question": 0, "choice": "2"}])
        closed = await svc.close(uow, world.organiser, c.id)
        await uow.commit()
    assert closed.result is not None
    q = closed.result["questions"][0]
    assert [b["count"] for b in q["bars"]] == [0, 2] and q["passed"] and "Phương án B" in q["headline"]


@pytest.fixture
def personal_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    return use_personal_keys(tmp_path, monkeypatch, "chutich", "vanthu")


async def test_signer_signs_the_result_report(app_client: TestClient, world: World, personal_keys: list) -> None:
    c = app_client
    members = await committee(world)
    office = await bearer(world, world.organiser)
    signer = await bearer(world, world.chair)
    head = await bearer(world, members[0])
    cid = c.post("/api/consultations", json=body(member_ids=[m.id for m in members[:3]], signer_id=world.chair.id),
                 headers=office).json()["id"]
    assert c.post(f"/api/consultations/{cid}/answers", json=yes("Nhất trí"), headers=head).status_code == 200
    r = c.post(f"/api/consultations/{cid}/sign", json={"passphrase": PASSPHRASE}, headers=signer)
    assert r.status_code == 409 and "chưa kết thúc" in r.json()["message"]
    assert c.post(f"/api/consultations/{cid}/close", headers=office).status_code == 200
    assert c.get(f"/api/consultations/{cid}", headers=signer).json()["may_sign"] is True
    # only the designated signer: the office (with a certificate of its own) and a member are refused
    for other in (office, head):
        r = c.post(f"/api/consultations/{cid}/sign", json={"passphrase": PASSPHRASE}, headers=other)
        assert r.status_code == 403, r.text
    r = c.post(f"/api/consultations/{cid}/sign", json={"passphrase": "sai"}, headers=signer)
    assert r.status_code == 400 and "Sai mật khẩu" in r.json()["message"]
    assert c.get(f"/api/consultations/{cid}/report-signed.pdf", headers=office).status_code == 404
    r = c.post(f"/api/consultations/{cid}/sign", json={"passphrase": PASSPHRASE}, headers=signer)
    assert r.status_code == 201, r.text
    data = r.json()
    assert data["signed"]["file"] == f"/api/consultations/{cid}/report-signed.pdf" and not data["may_sign"]
    assert "Quảng Ninh" in data["signed"]["certificate"]
    r = c.post(f"/api/consultations/{cid}/sign", json={"passphrase": PASSPHRASE}, headers=signer)
    assert r.status_code == 409 and "đã được ký" in r.json()["message"]

    r = c.get(f"/api/consultations/{cid}/report-signed.pdf", headers=head)  # members read the closed result
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    (sig,) = await verify_pdf(r.content, personal_keys)
    assert sig.ok and sig.trusted and not sig.modified_after_signing and "Quảng Ninh" in sig.signer
    with pymupdf.open(stream=r.content, filetype="pdf") as doc:
        text = "".join(p.get_text() for p in doc)
        widgets = [w for p in doc for w in p.widgets() if w.field_type == pymupdf.PDF_WIDGET_TYPE_SIGNATURE]
    assert "BÁO CÁO KẾT QUẢ LẤY Ý KIẾN THÀNH VIÊN" in text and "Nhất trí" in text
    assert widgets and widgets[0].rect.width > 100  # the visible stamp, under «NGƯỜI KÝ»
    assert "/consultations/" in c.get(f"/consultations/{cid}", headers=signer).text
    assert "report-signed.pdf" in c.get(f"/consultations/{cid}", headers=signer).text
    async with world.db.uow() as uow:
        entry = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "consultation.sign"))
    assert entry is not None and entry.actor_id == world.chair.id and entry.object_id == str(cid)
    # filed in a work dossier of the office that prepared it, linked from the consultation for the office only
    assert c.get(f"/api/consultations/{cid}", headers=signer).json()["dossier"] is None
    dossier = c.get(f"/api/consultations/{cid}", headers=office).json()["dossier"]
    assert dossier["title"].startswith("Hồ sơ lấy ý kiến: ")
    assert 'id="c-dossier"' in c.get(f"/consultations/{cid}", headers=office).text
    (f,) = c.get(f"/api/dossiers/{dossier['id']}", headers=office).json()["files"]
    assert c.get(f["url"], headers=office).content == r.content


async def test_unanswered_members_reminded_once_before_the_deadline(world: World,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    members = await committee(world)
    start = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
    now = [start]
    monkeypatch.setattr(svc, "clock", lambda: now[0])
    config = notifications.Config()
    async with world.db.uow() as uow:
        c = await svc.create(uow, world.organiser, world.blobs, title="Lấy ý kiến về Quy chế làm việc",
                             deadline=start + dt.timedelta(hours=48), questions=["Đồng ý ban hành?"],
                             member_ids=[m.id for m in members[:3]])
        await uow.commit()
    async with world.db.uow() as uow:
        await svc.answer(uow, members[0], c.id, yes()["answers"])
        await uow.commit()

    async def remind() -> int:
        async with world.db.uow() as uow:
            sent = await svc.remind_unanswered(uow, config, hours=24)
            await uow.commit()
        return sent

    async def notes(user: User) -> list[Notification]:
        async with world.db.uow() as uow:
            return list((await uow.session.scalars(select(Notification).where(
                Notification.user_id == user.id, Notification.kind == "consultation.due"))).all())

    assert await remind() == 0  # 48 h before: too early
    async with world.db.uow() as uow:
        assert await svc.next_reminder(uow, 24) == start + dt.timedelta(hours=24)
    now[0] = start + dt.timedelta(hours=25)  # 23 h left
    assert await remind() == 2
    assert await remind() == 0  # once each
    now[0] = start + dt.timedelta(hours=47)
    assert await remind() == 0
    assert await notes(members[0]) == []  # answered: left alone
    for m in members[1:3]:
        (n,) = await notes(m)
        assert n.link == f"/consultations/{c.id}" and "chưa trả lời" in n.text and "Quy chế làm việc" in n.text
    async with world.db.uow() as uow:
        assert await svc.next_reminder(uow, 24) is None


async def test_runner_sends_the_reminders(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    members = await committee(world)
    async with world.db.uow() as uow:
        c = await svc.create(uow, world.organiser, world.blobs, title="Lấy ý kiến về kế hoạch chuyển đổi số",
                             deadline=svc.clock() + dt.timedelta(hours=30), questions=["Đồng ý?"],
                             member_ids=[m.id for m in members[:2]])
        await uow.commit()
    real = svc.clock
    monkeypatch.setattr(svc, "clock", lambda: real() + dt.timedelta(hours=7))  # 23 h before the deadline
    runner = ConsultationRunner(world.db, notifications.Config(), remind_hours=24)
    runner.poke()
    try:
        limit = time.monotonic() + 30
        while time.monotonic() < limit:  # wait for the condition, not a fixed time
            if runner.reminded >= 2:
                break
            await asyncio.sleep(0.05)
        assert runner.reminded == 2
    finally:
        await runner.stop()
    async with world.db.uow() as uow:
        rows = (await uow.session.scalars(select(Notification).where(Notification.kind == "consultation.due"))).all()
    assert sorted(n.user_id for n in rows) == sorted(m.id for m in members[:2])
    assert all(n.link == f"/consultations/{c.id}" for n in rows)
