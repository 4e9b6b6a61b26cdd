"""Bad input gets a clear Vietnamese 4xx, never a 500: ids, JSON shape and depth, dates, lengths,
file names, query parameters, multipart, over HTTP and over the WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from eoffice import demo, identity
from storage.db import Database
from storage.settings import Settings
from tests.web.conftest import run
from web.app import create_app

HUGE = "99999999999999999999"  # beyond 64 bits
DEEP_ARRAYS = "[" * 100_000 + "]" * 100_000
DEEP_OBJECTS = '{"a":' * 50_000 + "1" + "}" * 50_000


async def _demo_token(url: str) -> str:
    db = Database(url)
    try:
        async with db.uow() as uow:
            await demo.load_demo(uow)
            token = await identity.create_token(uow, None, await identity.get_user(uow, "vanthu"))
            await uow.commit()
            return token
    finally:
        await db.dispose()


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """A client with the bearer token of the demo clerk (Nguyễn Thị Lan, Văn phòng)."""
    token = str(run(_demo_token(settings.database_url)))
    with TestClient(create_app(settings), raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def vietnamese_4xx(r: object, status: int | None = None) -> dict[str, object]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])  # type: ignore[attr-defined]
    if status is not None:
        assert r.status_code == status, r.text[:300]  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["error"] != "server_error"
    assert not body["message"].isascii(), body  # a Vietnamese sentence, not a library's English
    return body


@pytest.mark.parametrize("ident", [HUGE, str(2**63), str(2**31), "0", "-1", "abc"])
@pytest.mark.parametrize("path", ["/api/documents/{}", "/api/dossiers/{}", "/api/meetings/{}", "/api/polls/{}",
                                  "/api/tasks/{}"])
def test_ids_that_cannot_exist_are_not_found(api: TestClient, path: str, ident: str) -> None:
    vietnamese_4xx(api.get(path.format(ident)), 404)


@pytest.mark.parametrize("ident", [HUGE, str(2**40)])
def test_an_impossible_id_on_a_page_is_a_404_page(api: TestClient, ident: str) -> None:
    r = api.get(f"/documents/{ident}", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert "Traceback" not in r.text and "Không tìm thấy" in r.text


@pytest.mark.parametrize("value", [int(HUGE), 2**40, -1, 0, "abc", True, 1.5, [1], {"a": 1}])
@pytest.mark.parametrize("field", ["assignee_id", "task_id"])
def test_ids_in_json_bodies(api: TestClient, field: str, value: object) -> None:
    r = api.post("/api/dossiers", json={"title": "Hồ sơ thử"})
    assert r.status_code == 201, r.text
    vietnamese_4xx(api.post(f"/api/dossiers/{r.json()['id']}/items", json={field: value, "document_id": value}))


@pytest.mark.parametrize("body", [DEEP_ARRAYS, DEEP_OBJECTS, "[]", '"chuỗi"', "1", "null", "{bad", "\ud800",
                                  '{"name": "a\\u0000b"}', '{"name": "\\ud800"}', "[" * 40 + "]" * 40])
def test_json_bodies_that_are_not_a_storable_object(api: TestClient, body: str) -> None:
    r = api.post("/api/tokens", content=body.encode("utf-8", "surrogatepass"),
                 headers={"Content-Type": "application/json"})
    vietnamese_4xx(r, 400)


def test_a_json_body_over_the_limit_is_refused(api: TestClient) -> None:
    vietnamese_4xx(api.post("/api/tokens", content=b'{"name": "' + b"a" * (3 * 1024 * 1024) + b'"}',
                            headers={"Content-Type": "application/json"}), 413)


@pytest.mark.parametrize("title", ["Đ" * 501, "Hồ sơ " * 200_000])  # over the column; a megabyte
def test_lengths_beyond_the_column(api: TestClient, title: str) -> None:
    body = vietnamese_4xx(api.post("/api/dossiers", json={"title": title}), 400)
    assert "500" in str(body["message"])


@pytest.mark.parametrize("value", ["-0001-01-01", "0000-00-00", "9999-12-31", "0001-01-01", "1800-01-01",
                                   "2026-02-30", "31/12/2026", "9999-12-31T23:59:59"])
def test_absurd_dates(api: TestClient, value: str) -> None:
    vietnamese_4xx(api.get("/api/search", params={"q": "công văn", "from": value}), 400)
    vietnamese_4xx(api.post("/api/meetings", json={"title": "Phiên họp thử", "starts_at": value}), 400)


@pytest.mark.parametrize("params", [{"limit": "-1"}, {"limit": str(10**30)}, {"offset": "abc"}, {"offset": "-5"},
                                    {"limit": "1e3"}])
def test_bad_query_parameters(api: TestClient, params: dict[str, str]) -> None:
    vietnamese_4xx(api.get("/api/documents", params=params), 400)


def test_nul_in_a_query_is_not_a_server_error(api: TestClient) -> None:
    r = api.get("/api/search", params={"q": "công\x00văn"})
    assert r.status_code < 500, r.text


@pytest.mark.parametrize("name", ["bao-cao\r\nSet-Cookie: x=1.pdf", "hoa-don\u202efdp.exe", "tep\x00.pdf",
                                  "\u2066tep.pdf", "../tep.pdf", " "])
def test_file_names_with_control_or_direction_characters(api: TestClient, name: str) -> None:
    r = api.post("/api/files", content=b"%PDF-1.4 noi dung", headers={"X-Filename": quote(name),
                                                                      "Content-Type": "application/pdf"})
    vietnamese_4xx(r, 400)


def test_a_plain_vietnamese_file_name_is_kept(api: TestClient) -> None:
    r = api.post("/api/files", content=b"%PDF-1.4 noi dung", headers={"X-Filename": quote("Báo cáo quý 4.pdf"),
                                                                      "Content-Type": "application/pdf"})
    assert r.status_code == 201 and r.json()["filename"] == "Báo cáo quý 4.pdf"


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=xyz"])
def test_malformed_multipart(api: TestClient, content_type: str) -> None:
    r = api.post("/api/tokens", content=b"--xyz\r\nContent-Disposition: form-data\r\n\r\n",
                 headers={"Content-Type": content_type})
    assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize("frame", [DEEP_ARRAYS, DEEP_OBJECTS, "[]", "{bad", '{"op": "ping", "x": "\\ud800"}'])
def test_websocket_bad_messages_get_an_error_frame_and_the_socket_stays(api: TestClient, frame: str) -> None:
    with api.websocket_connect("/ws") as ws:
        ws.send_text(frame)
        error = ws.receive_json()
        assert error["type"] == "error" and not error["message"].isascii(), error
        ws.send_text(json.dumps({"op": "ping"}))
        assert ws.receive_json() == {"type": "pong"}


@pytest.mark.parametrize("meeting_id", [int(HUGE), 2**40, -1, "1", None])
def test_websocket_command_with_impossible_ids_replies_4xx(api: TestClient, meeting_id: object) -> None:
    with api.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"op": "annotation.create", "id": "r1", "meeting_id": meeting_id,
                                 "version_id": meeting_id, "page": 1}))
        reply = ws.receive_json()
        assert reply["type"] == "reply" and reply["ok"] is False, reply
        assert 400 <= reply["status"] < 500 and not reply["message"].isascii(), reply
