"""Bad input gets a clear Vietnamese 4xx, never a 500: ids, JSON shape and depth, dates, lengths,
file names, query parameters, multipart, over HTTP and over the WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from eoffice import identity
from eoffice.org import Role, Unit, UnitKind
from storage.db import Database
from storage.errors import Conflict
from storage.settings import Settings
from tests.web.conftest import run
from web.app import create_app
from web.errors import as_app_error

HUGE = "99999999999999999999"  # beyond 64 bits
DEEP_ARRAYS = "[" * 100_000 + "]" * 100_000
DEEP_OBJECTS = '{"a":' * 50_000 + "1" + "}" * 50_000


async def _demo_token(url: str) -> str:
    db = Database(url)
    try:
        async with db.uow() as uow:  # one agency and one clerk-leader: enough for every route tried here
            agency = Unit(code="UBND", name="Ủy ban nhân dân huyện Đông Triều", kind=UnitKind.PROVINCE, is_agency=True)
            uow.session.add(agency)
            await uow.session.flush()
            user = await identity.create_user(uow, None, username="vanthu", full_name="Nguyễn Thị Lan",
                                              password="Mật-khẩu-2026", roles=[Role.CLERK, Role.LEADER],
                                              unit_id=agency.id)
            token = await identity.create_token(uow, None, user)
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


def test_ids_that_cannot_exist_are_not_found(api: TestClient) -> None:
    for path in ["/api/documents/{}", "/api/dossiers/{}", "/api/meetings/{}", "/api/polls/{}", "/api/tasks/{}"]:
        for ident in [HUGE, str(2**63), str(2**31), "0", "-1", "abc"]:
            vietnamese_4xx(api.get(path.format(ident)), 404)


def test_an_impossible_id_on_a_page_is_a_404_page(api: TestClient) -> None:
    for ident in [HUGE, str(2**40)]:
        r = api.get(f"/documents/{ident}", headers={"Accept": "text/html"})
        assert r.status_code == 404
        assert "Traceback" not in r.text and "Không tìm thấy" in r.text


def test_ids_in_json_bodies(api: TestClient) -> None:
    r = api.post("/api/dossiers", json={"title": "Hồ sơ thử"})
    assert r.status_code == 201, r.text
    for value in [int(HUGE), 2**40, -1, 0, "abc", True, 1.5, [1], {"a": 1}]:
        vietnamese_4xx(api.post(f"/api/dossiers/{r.json()['id']}/items", json={"task_id": value}))
        vietnamese_4xx(api.post(f"/api/dossiers/{r.json()['id']}/items", json={"document_id": value}))
        vietnamese_4xx(api.post("/api/meetings/1/items/order", json={"item_ids": value}))


def test_json_bodies_that_are_not_a_storable_object(api: TestClient) -> None:
    for body in [DEEP_ARRAYS, DEEP_OBJECTS, "[]", '"chuỗi"', "1", "null", "{bad", "\ud800",
                 '{"name": "a\\u0000b"}', '{"name": "\\ud800"}', "[" * 40 + "]" * 40]:
        r = api.post("/api/tokens", content=body.encode("utf-8", "surrogatepass"),
                     headers={"Content-Type": "application/json"})
        vietnamese_4xx(r, 400)


def test_a_json_body_over_the_limit_is_refused(api: TestClient) -> None:
    vietnamese_4xx(api.post("/api/tokens", content=b'{"name": "' + b"a" * (3 * 1024 * 1024) + b'"}',
                            headers={"Content-Type": "application/json"}), 413)


def test_lengths_beyond_the_column(api: TestClient) -> None:
    """Services cut titles to their column (500); a megabyte is refused by the body limit or cut, never a 500."""
    for title in ["Đ" * 501, "Phiên họp " * 100_000]:
        r = api.post("/api/meetings", json={"title": title, "starts_at": "2026-12-20T08:00"})
        assert r.status_code < 500, r.text[:200]
        if r.status_code == 201:
            assert len(r.json()["title"]) <= 500


async def test_a_string_longer_than_its_column_is_invalid_on_every_database(db: Database) -> None:
    from eoffice.schema.dossiers import Dossier
    from storage.errors import Invalid

    async with db.uow() as uow:
        agency = Unit(code="UBND", name="Ủy ban nhân dân huyện Đông Triều", kind=UnitKind.PROVINCE, is_agency=True)
        uow.session.add(agency)
        await uow.session.flush()
        uow.session.add(Dossier(agency_id=agency.id, title="Hồ sơ " + "Đ" * 500, year=2026))
        with pytest.raises(Invalid, match="tối đa 500"):
            await uow.session.flush()


def test_absurd_dates(api: TestClient) -> None:
    for value in ["-0001-01-01", "0000-00-00", "9999-12-31", "0001-01-01", "1800-01-01", "2026-02-30",
                  "31/12/2026", "9999-12-31T23:59:59"]:
        vietnamese_4xx(api.get("/api/search", params={"q": "công văn", "from": value}), 400)
        vietnamese_4xx(api.post("/api/meetings", json={"title": "Phiên họp thử", "starts_at": value}), 400)


def test_bad_query_parameters(api: TestClient) -> None:
    for params in [{"limit": "-1"}, {"limit": str(10**30)}, {"offset": "abc"}, {"offset": "-5"}, {"limit": "1e3"}]:
        vietnamese_4xx(api.get("/api/documents", params=params), 400)
    r = api.get("/api/search", params={"q": "công\x00văn"})
    assert r.status_code < 500, r.text


def test_file_names_with_control_or_direction_characters(api: TestClient) -> None:
    for name in ["bao-cao\r\nSet-Cookie: x=1.pdf", "hoa-don\u202efdp.exe", "tep\x00.pdf", "\u2066tep.pdf",
                 "../tep.pdf", " "]:
        r = api.post("/api/files", content=b"%PDF-1.4 noi dung", headers={"X-Filename": quote(name),
                                                                          "Content-Type": "application/pdf"})
        vietnamese_4xx(r, 400)

    r = api.post("/api/files", content=b"%PDF-1.4 noi dung", headers={"X-Filename": quote("Báo cáo quý 4.pdf"),
                                                                      "Content-Type": "application/pdf"})
    assert r.status_code == 201 and r.json()["filename"] == "Báo cáo quý 4.pdf"
    for content_type in ["multipart/form-data", "multipart/form-data; boundary=xyz"]:  # malformed multipart
        r = api.post("/api/tokens", content=b"--xyz\r\nContent-Disposition: form-data\r\n\r\n",
                     headers={"Content-Type": content_type})
        assert 400 <= r.status_code < 500, r.text


def test_websocket_bad_messages_get_an_error_frame_and_the_socket_stays(api: TestClient) -> None:
    with api.websocket_connect("/ws") as ws:
        for frame in [DEEP_ARRAYS, DEEP_OBJECTS, "[]", "{bad", '{"op": "ping", "x": "\\ud800"}']:
            ws.send_text(frame)
            error = ws.receive_json()
            assert error["type"] == "error" and not error["message"].isascii(), error
            ws.send_text(json.dumps({"op": "ping"}))
            assert ws.receive_json() == {"type": "pong"}


def test_websocket_command_with_impossible_ids_replies_4xx(api: TestClient) -> None:
    with api.websocket_connect("/ws") as ws:
        for meeting_id in [int(HUGE), 2**40, -1, "1", None]:
            ws.send_text(json.dumps({"op": "annotation.create", "id": "r1", "meeting_id": meeting_id,
                                     "version_id": meeting_id, "page": 1}))
            reply = ws.receive_json()
            assert reply["type"] == "reply" and reply["ok"] is False, reply
            assert 400 <= reply["status"] < 500 and not reply["message"].isascii(), reply


def test_a_constraint_the_database_refuses_is_a_409_not_a_500() -> None:
    raced = IntegrityError("INSERT INTO consultation_answers ...", {}, Exception("UNIQUE constraint failed"))
    known = as_app_error(raced, {"consultation_id": 3})
    assert isinstance(known, Conflict) and known.status == 409 and "thử lại" in known.message
