"""Corrections (đính chính) and voiding (hủy vào sổ) of registered incoming documents, through the
JSON API, on SQLite and PostgreSQL (issue #22, item 10)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice import identity
from eoffice.audit import AuditEntry
from eoffice.registers import local_date
from storage.db import Database, utcnow
from storage.settings import Settings
from tests.eoffice.conftest import Org, make_org
from tests.web.conftest import run
from web.app import create_app

World = tuple[TestClient, Org, Callable[[str], dict[str, str]], str]

FIELDS = {"sender": "Ủy ban nhân dân thị xã Đông Triều", "notation": "45/UBND-VX", "date_issued": "2026-01-05",
          "doc_type": "to_trinh", "summary": "Công văn về việc triển khai chính quyền điện tử",
          "signer": "Vũ Đức Thắng", "urgency": "thuong", "paper_only": True}


async def _setup(url: str) -> tuple[Org, dict[str, str]]:
    db = Database(url)
    try:
        org = await make_org(db)
        tokens = {}
        async with db.uow() as uow:
            for name, user in org.users.items():
                tokens[name] = await identity.create_token(uow, None, user)
            await uow.commit()
        return org, tokens
    finally:
        await db.dispose()


async def _audit(url: str, action: str) -> list[AuditEntry]:
    db = Database(url)
    try:
        async with db.uow(readonly=True) as uow:
            return list((await uow.session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq))).all())
    finally:
        await db.dispose()


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    org, tokens = run(_setup(settings.database_url))  # type: ignore[misc]

    def as_(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[name]}"}

    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client, org, as_, settings.database_url


def _register(client: TestClient, as_: Callable[[str], dict[str, str]], **more: Any) -> dict[str, Any]:
    r = client.post("/api/documents/incoming", json={**FIELDS, **more}, headers=as_("vanthu"))
    assert r.status_code == 201, r.text
    return dict(r.json()["document"])


def _search(client: TestClient, as_: Callable[[str], dict[str, str]], q: str) -> list[int]:
    r = client.get("/api/search", params={"q": q}, headers=as_("vanthu"))
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["items"]]


def test_a_correction_keeps_the_old_value_and_changes_what_search_finds(world: World) -> None:
    client, _org, as_, url = world
    doc = _register(client, as_)
    assert doc["paper_only"] is True and doc["voided"] is False
    assert _search(client, as_, "chính quyền điện tử") == [doc["id"]]

    r = client.post(f"/api/documents/{doc['id']}/corrections", headers=as_("vanthu"), json={
        "doc_type": "cong_van", "summary": "Công văn về việc chuyển đổi số cấp xã", "date_issued": "2026-01-06",
        "signer": "Vũ Đức Thắng", "reason": "Nhập nhầm loại văn bản và trích yếu"})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["document"]["doc_type"] == "cong_van"
    assert answer["document"]["summary"] == "Công văn về việc chuyển đổi số cấp xã"
    changed = {c["field"]: (c["old_value"], c["new_value"]) for c in answer["corrections"]}
    assert changed == {"doc_type": ("to_trinh", "cong_van"),
                       "summary": ("Công văn về việc triển khai chính quyền điện tử",
                                   "Công văn về việc chuyển đổi số cấp xã"),
                       "date_issued": ("2026-01-05", "2026-01-06")}  # the signer was the same: no change

    view = client.get(f"/api/documents/{doc['id']}", headers=as_("vanthu")).json()
    assert {c["field"] for c in view["corrections"]} == {"doc_type", "summary", "date_issued"}
    assert all(c["reason"] == "Nhập nhầm loại văn bản và trích yếu" for c in view["corrections"])
    assert view["document"]["number"] == doc["number"]

    (entry,) = run(_audit(url, "document.correct"))  # type: ignore[misc]
    assert entry.object_id == str(doc["id"])
    assert entry.data["changes"]["summary"] == {"old": "Công văn về việc triển khai chính quyền điện tử",
                                                "new": "Công văn về việc chuyển đổi số cấp xã"}

    assert _search(client, as_, "chuyen doi so cap xa") == [doc["id"]]  # the new summary, without diacritics
    assert _search(client, as_, "chính quyền điện tử") == []  # not the old one
    r = client.get("/api/search", params={"from": "2026-01-06", "to": "2026-01-06"}, headers=as_("vanthu"))
    assert [h["id"] for h in r.json()["items"]] == [doc["id"]]  # the corrected issue date

    page = client.get(f"/documents/{doc['id']}", headers=as_("vanthu"))
    assert page.status_code == 200 and "Lịch sử đính chính" in page.text


def test_who_may_correct_and_what(world: World) -> None:
    client, _org, as_, _url = world
    doc = _register(client, as_)
    url = f"/api/documents/{doc['id']}/corrections"
    r = client.post(url, headers=as_("lanhdao"), json={"summary": "Trích yếu khác"})
    assert r.status_code == 403, r.text  # a leader is not the clerk
    r = client.post(url, headers=as_("stttt.vanthu"), json={"summary": "Trích yếu khác"})
    assert r.status_code in (403, 404), r.text  # a clerk of another agency
    r = client.post(url, headers=as_("vanthu"), json={"confidentiality": "mat"})
    assert r.status_code == 400 and r.json()["field"] == "confidentiality", r.text
    assert "độ mật" in r.json()["message"]
    r = client.post(url, headers=as_("vanthu"), json={"summary": "  "})
    assert r.status_code == 400 and r.json()["field"] == "summary", r.text
    r = client.post(url, headers=as_("vanthu"), json={"date_issued": None})
    assert r.status_code == 400 and r.json()["field"] == "date_issued", r.text
    r = client.post(url, headers=as_("vanthu2"), json={"notation": "46/UBND-VX"})  # another clerk of the agency
    assert r.status_code == 201, r.text
    assert client.get(f"/api/documents/{doc['id']}", headers=as_("vanthu")).json()["document"]["notation"] \
        == "46/UBND-VX"


def test_void_keeps_the_number_withdraws_open_tasks_and_refuses_corrections(world: World) -> None:
    client, org, as_, url = world
    doc = _register(client, as_)
    assert client.post(f"/api/documents/{doc['id']}/submit", json={"to_user_id": org["lanhdao"].id},
                       headers=as_("vanthu")).status_code == 201
    deadline = (local_date(utcnow()) + dt.timedelta(days=7)).isoformat()
    r = client.post(f"/api/documents/{doc['id']}/direction", headers=as_("lanhdao"), json={
        "text": "Giao Phòng Kinh tế chủ trì tham mưu.", "main": {"unit_id": org.units["KT"].id},
        "deadline": deadline})
    assert r.status_code == 201, r.text
    task_ids = [t["id"] for t in r.json()["tasks"]]

    void_url = f"/api/documents/{doc['id']}/void"
    assert client.post(void_url, headers=as_("lanhdao"), json={"reason": "Nhầm"}).status_code == 403
    r = client.post(void_url, headers=as_("vanthu"), json={"reason": " "})
    assert r.status_code == 400 and r.json()["field"] == "reason", r.text
    r = client.post(void_url, headers=as_("vanthu"), json={"reason": "Vào sổ nhầm văn bản của đơn vị khác"})
    assert r.status_code == 200, r.text
    voided = r.json()
    assert sorted(voided["tasks_withdrawn"]) == sorted(task_ids)
    assert voided["document"]["status"] == "voided" and voided["document"]["status_label"] == "Đã hủy vào sổ"
    assert voided["document"]["number"] == doc["number"]
    for tid in task_ids:
        assert client.get(f"/api/tasks/{tid}", headers=as_("lanhdao")).json()["task"]["status"] == "withdrawn"

    (entry,) = run(_audit(url, "document.void"))  # type: ignore[misc]
    assert entry.data["reason"] == "Vào sổ nhầm văn bản của đơn vị khác" and entry.data["number"] == doc["number"]

    # out of the working list, still found by search and by its status
    listed = client.get("/api/documents", headers=as_("vanthu")).json()
    assert doc["id"] not in [d["id"] for d in listed["items"]]
    listed = client.get("/api/documents", params={"status": "voided"}, headers=as_("vanthu")).json()
    assert [d["id"] for d in listed["items"]] == [doc["id"]]
    assert _search(client, as_, "chính quyền điện tử") == [doc["id"]]

    # no correction, no second void
    r = client.post(f"/api/documents/{doc['id']}/corrections", headers=as_("vanthu"), json={"summary": "Khác"})
    assert r.status_code == 409, r.text
    assert client.post(void_url, headers=as_("vanthu"), json={"reason": "Lần nữa"}).status_code == 409

    # the voided number is never given again
    nxt = _register(client, as_, notation="47/UBND-VX", summary="Công văn về việc cải cách hành chính")
    assert (nxt["number"], nxt["year"]) == (doc["number"] + 1, doc["year"])
    page = client.get(f"/documents/{doc['id']}", headers=as_("vanthu"))
    assert page.status_code == 200 and "Đã hủy vào sổ" in page.text
