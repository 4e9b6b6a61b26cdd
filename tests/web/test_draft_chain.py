"""The approval chain of outgoing drafts over HTTP: the API refuses out-of-order steps with 409/403
and a Vietnamese message, and the draft page says whose turn it is and offers only the leaders of
the next level."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from storage.settings import Settings
from tests.eoffice.conftest import Org
from tests.eoffice.test_api import _setup
from tests.web.conftest import csrf_from, login, run
from web.app import create_app


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, Org, dict[str, str]]]:
    org, tokens = run(_setup(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as client:
        yield client, org, tokens


def test_api_refuses_steps_out_of_order(world: tuple[TestClient, Org, dict[str, str]]) -> None:
    client, org, tokens = world

    def post(who: str, url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        r = client.post(url, json=body, headers={"Authorization": f"Bearer {tokens[who]}"})
        return r.status_code, r.json()

    status, body = post("chuyenvien", "/api/drafts", {"doc_type": "cong_van",
                                                     "summary": "Công văn về việc triển khai chính quyền điện tử"})
    assert status == 201
    draft = body["id"]
    status, body = post("chuyenvien", f"/api/drafts/{draft}/send", {"approver_id": org["lanhdao"].id})
    assert status == 409 and "Lãnh đạo Phòng Kinh tế" in str(body), body
    assert post("chuyenvien", f"/api/drafts/{draft}/send", {"approver_id": org["truongphong"].id})[0] == 201
    status, body = post("truongphong", f"/api/drafts/{draft}/approve", {})
    assert status == 409 and "Chưa thể duyệt cuối cùng" in str(body), body
    status, body = post("chuyenvien", f"/api/drafts/{draft}/return", {"comment": "Tôi muốn sửa"})
    assert status == 403 and "Chưa đến lượt bạn" in str(body), body
    assert post("truongphong", f"/api/drafts/{draft}/approve", {"forward_to": org["lanhdao"].id})[0] == 200
    status, body = post("truongphong", f"/api/drafts/{draft}/approve", {"forward_to": org["lanhdao"].id})
    assert status == 403, body
    status, body = post("vanthu", f"/api/drafts/{draft}/issue", {"signer": "Trần Văn Hùng"})
    assert status == 404, body  # nothing to issue before the last approval
    hist = client.get(f"/api/drafts/{draft}/history", headers={"Authorization": f"Bearer {tokens['lanhdao']}"})
    assert hist.json()["chain"]["turn"] == {"who": "approver", "user_id": org["lanhdao"].id, "level": 1}
    assert post("lanhdao", f"/api/drafts/{draft}/approve", {"comment": "Ban hành"})[0] == 200
    assert post("vanthu", f"/api/drafts/{draft}/issue", {"signer": "Trần Văn Hùng"})[0] == 200

    # the agency leader's own draft: sent without an approver, it is approved
    status, body = post("lanhdao", "/api/drafts", {"doc_type": "quyet_dinh", "summary": "Quyết định của Chủ tịch"})
    assert post("lanhdao", f"/api/drafts/{body['id']}/send", {})[0] == 201
    hist = client.get(f"/api/drafts/{body['id']}/history", headers={"Authorization": f"Bearer {tokens['lanhdao']}"})
    assert hist.json()["chain"]["turn"]["who"] == "clerk"


def test_page_shows_whose_turn_and_the_next_levels_leaders(world: tuple[TestClient, Org, dict[str, str]]) -> None:
    client, org, _tokens = world
    login(client, "chuyenvien")
    r = client.post("/outgoing", data={"doc_type": "bao_cao", "summary": "Báo cáo kết quả chuyển đổi số",
                                       "csrf_token": csrf_from(client.get("/outgoing").text)})
    assert r.status_code == 303
    url = r.headers["location"]
    page = client.get(url).text
    assert "Đến lượt bạn: trình Lãnh đạo Phòng Kinh tế." in page
    assert "1. Lãnh đạo Phòng Kinh tế" in page
    assert "2. Lãnh đạo Ủy ban nhân dân tỉnh Quảng Ninh (duyệt cuối cùng)" in page
    select = page.split('name="approver_id"', 1)[1].split("</select>", 1)[0]
    assert "Đỗ Quang Vinh" in select and "Trần Văn Hùng" not in select and "Hoàng Văn Ánh" not in select
    # skipping the head through the form: refused on the page, with the reason
    r = client.post(f"{url}/send", data={"approver_id": org["lanhdao"].id, "csrf_token": csrf_from(page)})
    assert r.status_code == 409 and "theo đúng thứ tự" in r.text
    r = client.post(f"{url}/send", data={"approver_id": org["truongphong"].id, "csrf_token": csrf_from(page)})
    assert r.status_code == 303
    page = client.get(url).text
    assert "Đang chờ Đỗ Quang Vinh duyệt (Lãnh đạo Phòng Kinh tế, bước 1/2)." in page
    assert "Duyệt dự thảo" not in page  # not the author's turn
    draft_id = url.rsplit("/", 1)[1]
    assert f'data-turn-of="{draft_id}">Chờ Đỗ Quang Vinh duyệt<' in client.get("/outgoing").text

    client.cookies.clear()
    login(client, "truongphong")
    assert f'data-turn-of="{draft_id}">Đến lượt bạn duyệt<' in client.get("/outgoing").text
    page = client.get(url).text
    assert "Đến lượt bạn duyệt (Lãnh đạo Phòng Kinh tế, bước 1/2)." in page
    select = page.split('name="forward_to"', 1)[1].split("</select>", 1)[0]
    assert "Trần Văn Hùng" in select and "Hoàng Văn Ánh" not in select
    r = client.post(f"{url}/decision", data={"decision": "approve", "csrf_token": csrf_from(page)})
    assert r.status_code == 409 and "Chưa thể duyệt cuối cùng" in r.text
    r = client.post(f"{url}/decision", data={"decision": "approve", "forward_to": org["lanhdao"].id,
                                             "csrf_token": csrf_from(page)})
    assert r.status_code == 303

    client.cookies.clear()
    login(client, "lanhdao")
    page = client.get(url).text
    assert "Bước duyệt cuối cùng" in page and 'name="forward_to"' not in page
    r = client.post(f"{url}/decision", data={"decision": "approve", "csrf_token": csrf_from(page)})
    assert r.status_code == 303
    assert "chờ văn thư cấp số và phát hành" in client.get(url).text
