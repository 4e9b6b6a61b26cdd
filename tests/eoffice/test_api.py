"""The whole e-office flow through the JSON API, with bearer tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from eoffice import identity
from eoffice.registers import local_date
from storage.db import Database, utcnow
from storage.settings import Settings
from tests.eoffice.conftest import Org, make_org, make_pdf
from tests.web.conftest import run
from web.app import create_app


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


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, Org, dict[str, str]]]:
    org, tokens = run(_setup(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client, org, tokens


def test_flow_through_the_api(world: tuple[TestClient, Org, dict[str, str]]) -> None:
    client, org, tokens = world

    def as_(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[name]}"}

    def upload(name: str, data: bytes, filename: str) -> int:
        r = client.post("/api/files", content=data, headers={**as_(name), "Content-Type": "application/pdf",
                                                              "X-Filename": quote(filename)})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    ref = client.get("/api/eoffice/reference", headers=as_("vanthu")).json()
    assert {"code": "quyet_dinh", "name": "Quyết định", "abbr": "QĐ"} in ref["doc_types"]

    # corrupt PDF: clear error, nothing registered
    bad = upload("vanthu", make_pdf()[:400], "hong.pdf")
    fields = {"sender": "Ủy ban nhân dân thị xã Đông Triều", "notation": "123/UBND-VX", "date_issued": "2026-01-05",
              "doc_type": "cong_van", "summary": "Công văn về việc triển khai chính quyền điện tử",
              "signer": "Vũ Đức Thắng", "urgency": "khan"}
    r = client.post("/api/documents/incoming", json={**fields, "upload_ids": [bad]}, headers=as_("vanthu"))
    assert r.status_code == 400 and "«hong.pdf»" in r.json()["message"], r.text
    assert client.get("/api/documents", headers=as_("vanthu")).json()["total"] == 0

    pdf = upload("vanthu", make_pdf(["Đề nghị các đơn vị triển khai chuyển đổi số cấp xã"] * 3), "cv-123.pdf")
    r = client.post("/api/documents/incoming", json={**fields, "upload_ids": [pdf]}, headers=as_("vanthu"))
    assert r.status_code == 201, r.text
    doc = r.json()["document"]
    assert (doc["number"], doc["page_count"], doc["urgency"]) == (1, 3, "khan")
    r = client.post("/api/documents/incoming", json=fields, headers=as_("vanthu"))  # no file, not "paper only"
    assert r.status_code == 400 and r.json()["field"] == "upload_ids", r.text
    assert "Chỉ có bản giấy" in r.json()["message"]
    r = client.post("/api/documents/incoming", json={**fields, "paper_only": True, "date_issued": None},
                    headers=as_("vanthu"))
    assert r.status_code == 400 and r.json()["field"] == "date_issued", r.text
    r = client.post("/api/documents/incoming", json={**fields, "paper_only": True}, headers=as_("vanthu"))
    assert r.status_code == 409 and r.json()["duplicate_of"] == doc["id"], r.text
    assert client.post("/api/documents/incoming", json=fields, headers=as_("lanhdao")).status_code == 403

    for _ in range(100):  # extraction runs in the background
        detail = client.get(f"/api/documents/{doc['id']}", headers=as_("vanthu")).json()
        if detail["ingest_jobs"][0]["status"] == "done":
            break
        time.sleep(0.05)
    assert detail["ingest_jobs"][0]["progress"] == 100 and detail["attachments"][0]["page_count"] == 3
    att = detail["attachments"][0]["id"]
    hits = client.get("/api/search", params={"q": "chuyen doi so cap xa"}, headers=as_("vanthu")).json()["items"]
    assert [h["id"] for h in hits] == [doc["id"]]

    # not yet in the flow: invisible everywhere to the specialist
    for path in (f"/api/documents/{doc['id']}", f"/api/attachments/{att}", f"/api/attachments/{att}/pages/1.png"):
        assert client.get(path, headers=as_("chuyenvien")).status_code == 404
    assert client.get("/api/search", params={"q": "chuyen doi so"}, headers=as_("chuyenvien")).json()["items"] == []

    u = org.units
    deadline = (local_date(utcnow()) + dt.timedelta(days=7)).isoformat()
    assert client.post(f"/api/documents/{doc['id']}/submit", json={"to_user_id": org["lanhdao"].id},
                       headers=as_("vanthu")).status_code == 201
    inbox = client.get("/api/inbox", headers=as_("lanhdao")).json()
    assert [d["id"] for d in inbox["submitted"]] == [doc["id"]]
    r = client.post(f"/api/documents/{doc['id']}/direction", headers=as_("lanhdao"), json={
        "text": "Giao Phòng Kinh tế chủ trì tham mưu.", "main": {"unit_id": u["KT"].id},
        "informed": [{"user_id": org["chanhvp"].id}], "deadline": deadline})
    assert r.status_code == 201, r.text
    unit_task = r.json()["tasks"][0]["id"]
    r = client.post(f"/api/tasks/{unit_task}/pass-down", headers=as_("truongphong"),
                    json={"main_user_id": org["chuyenvien"].id, "instruction": "Đồng chí Hà xử lý."})
    assert r.status_code == 201, r.text
    task = r.json()["tasks"][0]["id"]
    assert client.get(f"/api/attachments/{att}/pages/1.png?width=200",
                      headers=as_("chuyenvien")).content.startswith(b"\x89PNG")
    assert client.get(f"/api/attachments/{att}", headers=as_("chuyenvien")).content.startswith(b"%PDF")
    report = make_pdf(["Báo cáo tiến độ tổng hợp số liệu"])
    r = client.post(f"/api/tasks/{task}/updates", json={"text": "Đang tổng hợp", "progress": 60,
                                                        "upload_ids": [upload("chuyenvien", report, "tiến độ.pdf")]},
                    headers=as_("chuyenvien"))
    assert r.status_code == 201
    (file_update,) = [u for u in r.json()["updates"] if u["file_url"]]
    got = client.get(file_update["file_url"], headers=as_("truongphong"))  # the assigner sees the task
    assert got.status_code == 200 and got.content == report
    outsider = client.get(file_update["file_url"], headers=as_("stttt.vanthu"))  # another agency's clerk
    assert outsider.status_code == 404
    r = client.post(f"/api/tasks/{task}/extensions", json={"new_deadline": "2099-01-01", "reason": "Chờ số liệu"},
                    headers=as_("chuyenvien"))
    ext = r.json()["id"]
    assert client.post(f"/api/extensions/{ext}/decision", json={"approve": False, "note": "Cần đúng hạn"},
                       headers=as_("truongphong")).json()["status"] == "refused"
    board = client.get("/api/tasks", headers=as_("chuyenvien")).json()
    assert [t["id"] for t in board["items"]] == [task]
    assert client.post(f"/api/tasks/{task}/complete", json={"result": "Đã trình báo cáo"},
                       headers=as_("chuyenvien")).status_code == 200
    assert client.post(f"/api/tasks/{unit_task}/complete", json={"result": "Hoàn thành"},
                       headers=as_("truongphong")).json()["status"] == "done"
    detail = client.get(f"/api/documents/{doc['id']}", headers=as_("chanhvp")).json()  # informed
    assert detail["document"]["status"] == "done"
    assert [c["id"] for c in detail["tasks"][0]["children"]] == [task]

    # outgoing: draft -> head -> leader -> clerk issues; the district receives it
    r = client.post("/api/drafts", headers=as_("chuyenvien"), json={
        "doc_type": "bao_cao", "summary": "Báo cáo kết quả triển khai chính quyền điện tử",
        "recipients": [{"unit_id": u["DT"].id}, "Bộ Nội vụ"]})
    assert r.status_code == 201, r.text
    draft = r.json()["id"]
    assert client.post(f"/api/drafts/{draft}/send", json={"approver_id": org["truongphong"].id},
                       headers=as_("chuyenvien")).status_code == 201
    assert client.post(f"/api/drafts/{draft}/approve", json={"forward_to": org["lanhdao"].id},
                       headers=as_("truongphong")).status_code == 200
    assert client.post(f"/api/drafts/{draft}/approve", json={}, headers=as_("lanhdao")).status_code == 200
    r = client.post(f"/api/drafts/{draft}/issue", json={"signer": "Trần Văn Hùng"}, headers=as_("vanthu"))
    assert r.status_code == 200, r.text
    assert r.json()["document"]["notation"] == "01/BC-UBND"
    assert r.json()["delivered"] == [{"agency_id": u["DT"].id, "number": 1}]
    got = client.get("/api/documents", params={"direction": "in"}, headers=as_("dt.vanthu")).json()["items"]
    assert [(d["notation"], d["sender"]) for d in got] == [("01/BC-UBND", "Ủy ban nhân dân tỉnh Quảng Ninh")]
    assert client.post(f"/api/tasks/{task}/complete", json={"result": "x"},
                       headers=as_("chuyenvien")).status_code == 409

    # dossier, register export, statistics
    r = client.post("/api/dossiers", json={"title": "Hồ sơ chuyển đổi số 2026"}, headers=as_("chuyenvien"))
    dossier = r.json()["id"]
    assert client.post(f"/api/dossiers/{dossier}/items", json={"document_id": doc["id"]},
                       headers=as_("chuyenvien")).status_code == 201
    assert client.post(f"/api/dossiers/{dossier}/close", json={"file_code": "05.KT", "retention": "20"},
                       headers=as_("chuyenvien")).json()["status"] == "closed"
    csv = client.get("/api/registers/export", params={"direction": "in", "format": "csv"}, headers=as_("vanthu"))
    assert csv.status_code == 200 and "123/UBND-VX" in csv.content.decode("utf-8-sig")
    xlsx = client.get("/api/registers/export", params={"direction": "out"}, headers=as_("vanthu"))
    assert xlsx.status_code == 200 and xlsx.content.startswith(b"PK")
    today = local_date(utcnow())
    s = client.get("/api/statistics", params={"from": today.replace(day=1).isoformat(), "to": today.isoformat()},
                   headers=as_("lanhdao")).json()
    assert s["total"]["received"] == 1 and s["total"]["on_time"] == 1 and s["total"]["on_time_rate"] == 100.0
    assert client.get("/api/statistics", params={"from": "2026-01-01", "to": "2026-01-31"},
                      headers=as_("chuyenvien")).status_code == 403
    assert client.get("/api/documents", headers=as_("admin")).json()["total"] == 0
    assert client.get("/api/documents").status_code == 401
