"""The meetings HTTP API and pages over a real app (SQLite and PostgreSQL): clear 4xx refusals,
confidential documents, page images with caching headers, search, minutes PDF."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pymupdf
import pytest
from starlette.testclient import TestClient

from eoffice import identity
from storage.settings import Settings
from tests.meetings.conftest import World
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


async def test_meeting_through_the_api(app_client: TestClient, world: World) -> None:
    c = app_client
    org, chair, member, outsider = [await bearer(world, k) for k in ("organiser", "chair", "member", "outsider")]
    member2 = await bearer(world, "member2")
    r = c.post("/api/meetings", json={"title": "Họp giao ban Văn phòng UBND tỉnh", "starts_at": "2026-12-01T08:00",
                                      "place": "Phòng họp tầng 3", "chair_id": world.chair.id,
                                      "secretary_id": world.secretary.id}, headers=org)
    assert r.status_code == 201, r.text
    m = r.json()
    mid = m["id"]
    assert m["starts_at"] == "2026-12-01T01:00:00+00:00"  # 08:00 in Hà Nội
    assert c.post("/api/meetings", json={"title": "", "starts_at": "x"}, headers=org).status_code == 400
    for body in ({"user_id": world.member.id}, {"user_id": world.member2.id},
                 {"guest_name": "Bà Lê Thị Thu", "guest_title": "Đại biểu HĐND tỉnh", "role": "invited"}):
        assert c.post(f"/api/meetings/{mid}/participants", json=body, headers=org).status_code == 201
    items = [c.post(f"/api/meetings/{mid}/items", json=body, headers=org).json()["id"] for body in (
        {"title": "Tình hình kinh tế - xã hội tháng 11", "presenter_id": world.member.id, "planned_minutes": 30},
        {"title": "Công tác cán bộ", "confidential": True, "allowed_user_ids": [world.member2.id]},
    )]
    pdf = await world.upload_pdf(world.organiser, [["Báo cáo tình hình kinh tế - xã hội huyện Đông Triều"],
                                                   ["Phụ lục số liệu"]], "Báo cáo tháng 11")
    secret = await world.upload_pdf(world.organiser, [["Danh sách nhân sự đề nghị bổ nhiệm"]], "Nhân sự")
    r = c.post(f"/api/meetings/{mid}/documents", json={"upload_id": pdf, "item_id": items[0]}, headers=org)
    assert r.status_code == 201, r.text
    v_open = r.json()["version"]["id"]
    v_secret = c.post(f"/api/meetings/{mid}/documents", json={"upload_id": secret, "item_id": items[1]},
                      headers=org).json()["version"]["id"]

    # a draft is invisible to the members; the state machine refuses clearly
    assert c.get(f"/api/meetings/{mid}", headers=member).status_code == 404
    r = c.post(f"/api/meetings/{mid}/start", headers=chair)
    assert r.status_code == 409 and r.json()["error"] == "conflict" and "Dự thảo" in r.json()["message"]
    assert c.post(f"/api/meetings/{mid}/invite", headers=member).status_code == 404
    assert c.post(f"/api/meetings/{mid}/invite", headers=org).json()["state"] == "invited"
    assert c.post(f"/api/meetings/{mid}/fly", headers=org).status_code == 404

    snap = c.get(f"/api/meetings/{mid}", headers=member).json()
    assert snap["topic"] == f"meeting:{mid}" and snap["seq"] >= 1
    assert [i["title"] for i in snap["agenda"]] == ["Tình hình kinh tế - xã hội tháng 11", "Nội dung mật"]
    assert [d["current_version_id"] for d in snap["documents"]] == [v_open]
    assert c.get(f"/api/meetings/{mid}", headers=outsider).status_code == 403

    # documents: meta, page image (immutable, ETag, 304), words, search, download; confidential refused
    meta = c.get(f"/api/meetings/{mid}/versions/{v_open}", headers=member).json()
    assert meta["page_count"] == 2 and meta["title"] == "Báo cáo tháng 11"
    r = c.get(f"/api/meetings/{mid}/versions/{v_open}/pages/1?w=1000", headers=member)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "immutable" in r.headers["cache-control"] and r.headers["cache-control"].startswith("private")
    assert pymupdf.Pixmap(r.content).width == 1200
    again = c.get(f"/api/meetings/{mid}/versions/{v_open}/pages/1?w=1000",
                  headers={**member, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert c.get(f"/api/meetings/{mid}/versions/{v_open}/pages/3", headers=member).status_code == 404
    words = c.get(f"/api/meetings/{mid}/versions/{v_open}/pages/1/words", headers=member).json()
    assert any(w[4] == "Đông" for w in words["words"])
    hits = c.get(f"/api/meetings/{mid}/versions/{v_open}/search", params={"q": "dong trieu"}, headers=member).json()
    assert hits["total"] == 1 and hits["hits"][0]["page"] == 1
    original = c.get(f"/api/meetings/{mid}/versions/{v_open}/file", headers=member)
    assert original.content.startswith(b"%PDF") and original.headers["content-type"] == "application/pdf"
    assert original.headers["x-content-type-options"] == "nosniff"  # a sandboxed download (web.file_response)
    assert "sandbox" in original.headers["content-security-policy"]
    assert original.headers["content-disposition"].startswith("attachment;")
    assert c.get(f"/api/meetings/{mid}/versions/{v_open}/file",
                 headers={**member, "If-None-Match": original.headers["etag"]}).status_code == 304
    for path in ("", "/pages/1", "/pages/1/words", "/file", "/search?q=a"):
        r = c.get(f"/api/meetings/{mid}/versions/{v_secret}{path}", headers=member)
        assert r.status_code == 403, (path, r.status_code)
        assert "mật" in r.json()["message"]
    assert c.get(f"/api/meetings/{mid}/versions/{v_secret}/pages/1", headers=member2).status_code == 200
    assert c.get(f"/api/meetings/{mid + 1}/versions/{v_open}", headers=member).status_code in (403, 404)

    # the room
    assert c.post(f"/api/meetings/{mid}/current", json={"step": 1}, headers=chair).status_code == 409
    assert c.post(f"/api/meetings/{mid}/start", headers=chair).json()["state"] == "in_progress"
    r = c.post(f"/api/meetings/{mid}/current", json={"step": 1}, headers=member)
    assert r.status_code == 403 and "chủ trì" in r.json()["message"]
    assert c.post(f"/api/meetings/{mid}/current", json={"step": 1}, headers=chair).json()["current_item_id"] == items[0]
    seat = next(p["id"] for p in snap["participants"] if p["user_id"] == world.member.id)
    r = c.post(f"/api/meetings/{mid}/participants/{seat}/check-in", headers=member)
    assert r.json()["quorum"]["present"] == 1
    req = c.post(f"/api/meetings/{mid}/speakers", json={}, headers=member).json()
    assert c.post(f"/api/meetings/{mid}/speakers/{req['id']}/grant", json={"time_limit": 120},
                  headers=chair).json()["state"] == "speaking"
    r = c.put(f"/api/meetings/{mid}/presenter", json={"version_id": v_open, "page": 2, "zoom": 1.25}, headers=member)
    assert r.status_code == 200 and r.json()["page"] == 2  # the item's presenter presents
    secretary = await bearer(world, "secretary")
    assert c.put(f"/api/meetings/{mid}/items/{items[0]}/minutes", json={"text": "Thống nhất số liệu.", "revision": 0},
                 headers=secretary).json()["revision"] == 1
    stale = c.put(f"/api/meetings/{mid}/items/{items[0]}/minutes", json={"text": "Cũ", "revision": 0},
                  headers=secretary)
    assert stale.status_code == 409 and stale.json()["discussion"] == "Thống nhất số liệu."
    due = (dt.date.today() + dt.timedelta(days=25)).isoformat()
    r = c.post(f"/api/meetings/{mid}/items/{items[0]}/conclusions",
               json={"text": "Giao Sở Tài chính rà soát số liệu", "assignee_id": world.member2.id,
                     "deadline": due}, headers=secretary)
    assert r.status_code == 201 and r.json()["deadline"] == due
    task = c.post(f"/api/meetings/{mid}/conclusions/{r.json()['id']}/task", json={}, headers=secretary)
    assert task.status_code == 201 and task.json()["task_id"]
    again = c.post(f"/api/meetings/{mid}/conclusions/{r.json()['id']}/task", json={}, headers=secretary)
    assert again.status_code == 409
    assert c.get(f"/api/meetings/{mid}/minutes.pdf", headers=member).status_code == 403  # a draft
    assert c.post(f"/api/meetings/{mid}/end", headers=chair).json()["state"] == "ended"
    assert c.post(f"/api/meetings/{mid}/minutes/approve", headers=chair).json()["state"] == "approved"
    r = c.get(f"/api/meetings/{mid}/minutes.pdf", headers=member)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = " ".join(pymupdf.open(stream=r.content, filetype="pdf")[0].get_text().split())
    assert "Họp giao ban Văn phòng UBND tỉnh" in text and "Thống nhất số liệu." in text
    assert "Giao Sở Tài chính rà soát số liệu" in text

    # every page of the area renders for a participant
    for path in ("/meetings", f"/meetings/{mid}", f"/meetings/{mid}/room", f"/meetings/{mid}/documents/{v_open}"):
        r = c.get(path, headers=member)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert "Cuộc họp" in r.text
    assert c.get(f"/meetings/{mid}/room", headers=outsider).status_code == 403
    assert c.get(f"/meetings/{mid}/documents/{v_secret}", headers=member).status_code == 403
    assert any(p.startswith("/api/meetings/{meeting_id}") for p in c.get("/api/openapi.json").json()["paths"])


async def test_cookie_requests_need_the_csrf_header(app_client: TestClient, world: World) -> None:
    from tests.web.conftest import login

    login(app_client, "vanthu", "Mật-khẩu-2026")
    body = {"title": "Họp", "starts_at": "2026-12-01T08:00"}
    assert app_client.post("/api/meetings", json=body).status_code == 403
    page = app_client.get("/meetings")
    assert page.status_code == 200 and "Tạo cuộc họp mới" in page.text
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    assert app_client.post("/api/meetings", json=body, headers={"X-CSRF-Token": token}).status_code == 201
