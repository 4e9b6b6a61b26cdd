"""The notification centre through the app (issue #21): the JSON API (list, unread filter, paging, mark one and
all read, preferences), the list page with its CSRF-protected forms, the account page's section, the bell's
count changing live over the WebSocket, and the e-mail worker of the app delivering to a real SMTP server.
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import update
from starlette.testclient import TestClient
from websockets.asyncio.client import connect

from eoffice.org import User
from storage.db import Database
from storage.settings import Settings
from tests.conftest import free_port
from tests.eoffice.test_mail import Inbox
from tests.web.conftest import csrf_from, login, run
from tests.web.file_world import Api, setup_org, wait_until
from tests.web.test_ws import bearer, recv, running_server, subscribe
from web.app import create_app

TITLE = "Công văn về việc triển khai chính quyền điện tử"


def notes(c: Any, api: Api, name: str, query: str = "") -> dict[str, Any]:
    r = c.get(f"/api/notifications{query}", headers=api.auth(name))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_api_list_read_and_read_all(settings: Settings) -> None:
    org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        api = Api(c, tokens)
        task = api.task_for_specialist(org)
        mine = notes(c, api, "chuyenvien")
        assert mine["unread"] == 1 and mine["total"] == 1 and mine["next_before"] is None
        (n,) = mine["notifications"]
        assert n["kind"] == "task.assigned" and n["link"] == f"/tasks/{task}" and n["read_at"] is None
        assert n["text"].startswith(f"Bạn được Đỗ Quang Vinh giao chủ trì xử lý «{TITLE}», hạn ")
        # the leader: the submission; the head of unit KT: the unit's task
        assert [x["kind"] for x in notes(c, api, "lanhdao")["notifications"]] == ["document.submitted"]
        assert [x["kind"] for x in notes(c, api, "truongphong")["notifications"]] == ["task.assigned"]
        assert notes(c, api, "chuyenvien2")["total"] == 0

        # somebody else's notification is not found; a bad page size is a Vietnamese 400
        r = c.post(f"/api/notifications/{n['id']}/read", headers=api.auth("truongphong"))
        assert r.status_code == 404 and r.json()["message"] == "Không tìm thấy thông báo."
        r = c.get("/api/notifications?limit=1000", headers=api.auth("chuyenvien"))
        assert r.status_code == 400 and "limit" in r.json()["message"]
        assert c.get("/api/notifications").status_code == 401

        r = c.post(f"/api/notifications/{n['id']}/read", headers=api.auth("chuyenvien"))
        assert r.status_code == 200 and r.json() == {"unread": 0}
        assert notes(c, api, "chuyenvien", "?unread=1")["notifications"] == []
        assert notes(c, api, "chuyenvien")["notifications"][0]["read_at"] is not None

        # the handler asks for more time three times, refused each time: the assigner gets one per request
        for days in (9, 10, 11):
            r = api.post("chuyenvien", f"/api/tasks/{task}/extensions",
                         {"new_deadline": _days(days), "reason": "Chờ số liệu của các xã."})
            assert r.status_code == 201, r.text
            r = api.post("truongphong", f"/api/extensions/{r.json()['id']}/decision",
                         {"approve": False, "note": "Không gia hạn."})
            assert r.status_code == 200, r.text
        head = notes(c, api, "truongphong", "?limit=2")
        assert head["unread"] == 4 and head["total"] == 4 and len(head["notifications"]) == 2
        rest = notes(c, api, "truongphong", f"?limit=2&before={head['next_before']}")
        ids = [x["id"] for x in head["notifications"] + rest["notifications"]]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
        r = c.post("/api/notifications/read-all", headers=api.auth("truongphong"))
        assert r.status_code == 200 and r.json() == {"marked": 4, "unread": 0}
        assert notes(c, api, "truongphong")["unread"] == 0

        # preferences through the API: e-mail for extensions off, quiet hours over midnight
        r = c.put("/api/notifications/preferences", headers=api.auth("truongphong"), json={
            "kinds": {"task.extension": {"in_app": True, "email": False}}, "quiet_start": "21:30",
            "quiet_end": "07:00"})
        assert r.status_code == 200, r.text
        prefs = c.get("/api/notifications/preferences", headers=api.auth("truongphong")).json()
        assert {k["kind"]: (k["in_app"], k["email"]) for k in prefs["kinds"]}["task.extension"] == (True, False)
        assert (prefs["quiet_start"], prefs["quiet_end"]) == ("21:30", "07:00")


def _days(n: int) -> str:
    import datetime as dt

    from eoffice.registers import local_date
    from storage.db import utcnow

    return (local_date(utcnow()) + dt.timedelta(days=n)).isoformat()


def test_pages_bell_list_open_and_preferences(settings: Settings) -> None:
    org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        api = Api(c, tokens)
        task = api.task_for_specialist(org)
        login(c, "chuyenvien")
        home = c.get("/")
        assert 'id="bell"' in home.text and 'href="/notifications"' in home.text
        page = c.get("/notifications")
        assert page.status_code == 200 and "1 chưa đọc / 1 thông báo" in page.text
        assert f"giao chủ trì xử lý «{TITLE}»" in page.text
        (nid,) = re.findall(r'action="/notifications/(\d+)/open"', page.text)
        assert c.post(f"/notifications/{nid}/open", data={}).status_code == 403  # no CSRF token: refused
        r = c.post(f"/notifications/{nid}/open", data={"csrf_token": csrf_from(page.text)})
        assert r.status_code == 303 and r.headers["location"] == f"/tasks/{task}"  # opened, and read
        assert "0 chưa đọc / 1 thông báo" in c.get("/notifications").text
        r = c.post("/notifications/999999/open", data={"csrf_token": csrf_from(page.text)})
        assert r.status_code == 404

        account = c.get("/account")
        assert "Cách nhận thông báo" in account.text and 'name="email:task.assigned"' in account.text
        form = {"csrf_token": csrf_from(account.text), "in_app:task.assigned": "1", "email:meeting": "1",
                "quiet_start": "22:00", "quiet_end": "06:30"}
        r = c.post("/account/notifications", data=form)
        assert r.status_code == 303, r.text
        prefs = c.get("/api/notifications/preferences", headers=api.auth("chuyenvien")).json()
        chosen = {k["kind"]: (k["in_app"], k["email"]) for k in prefs["kinds"]}
        assert chosen["task.assigned"] == (True, False) and chosen["meeting"] == (False, True)
        assert (prefs["quiet_start"], prefs["quiet_end"]) == ("22:00", "06:30")
        r = c.post("/account/notifications", data={**form, "quiet_start": "25:61"})
        assert r.status_code == 400 and "Giờ phải có dạng HH:MM" in r.text

        r = c.put("/api/notifications/preferences", headers=api.auth("chuyenvien"),
                  json={"kinds": {"task.due": {"in_app": False, "email": True}}})
        assert r.status_code == 200
        assert {k["kind"]: k["email"] for k in r.json()["kinds"]}["task.due"] is True
        r = c.put("/api/notifications/preferences", headers=api.auth("chuyenvien"),
                  json={"kinds": {"khong.co": {"in_app": True}}})
        assert r.status_code == 400 and r.json()["message"].startswith("Loại thông báo không hợp lệ")
        r = c.put("/api/notifications/preferences", headers=api.auth("chuyenvien"), json={"quiet_start": "7h"})
        assert r.status_code == 400 and r.json()["field"] == "quiet_start"


async def test_bell_count_changes_live_over_the_websocket(settings: Settings) -> None:
    org, tokens = await setup_org(settings.database_url)
    async with running_server(settings) as server:
        http = server.url.replace("ws://", "http://").removesuffix("/ws")
        async with httpx.AsyncClient(base_url=http) as c, \
                connect(server.url, additional_headers=bearer(tokens["lanhdao"])) as ws:
            await subscribe(ws, f"user:{org['lanhdao'].id}")
            api = Api(c, tokens)
            r = await c.post("/api/documents/incoming", headers=api.auth("vanthu"), json={
                "sender": "Ủy ban nhân dân thị xã Đông Triều", "notation": "78/UBND-VX", "date_issued": "2026-01-05",
                "doc_type": "cong_van", "summary": TITLE, "signer": "Vũ Đức Thắng", "paper_only": True})
            assert r.status_code == 201, r.text
            doc = r.json()["document"]["id"]
            r = await c.post(f"/api/documents/{doc}/submit", headers=api.auth("vanthu"),
                             json={"to_user_id": org["lanhdao"].id})
            assert r.status_code == 201, r.text
            new = await _next(ws, "notification.new")
            assert new["data"]["unread"] == 1 and new["data"]["link"] == f"/documents/{doc}"
            assert new["data"]["text"] == f"Nguyễn Thị Lan trình văn bản «{TITLE}» để đồng chí cho ý kiến chỉ đạo."
            r = await c.post(f"/api/notifications/{new['data']['id']}/read", headers=api.auth("lanhdao"))
            assert r.status_code == 200
            read = await _next(ws, "notification.read")
            assert read["data"]["unread"] == 0


async def _next(ws: Any, type_: str) -> dict[str, Any]:
    while True:
        message = await recv(ws)
        if message.get("type") == type_:
            return message


def test_the_apps_mail_worker_delivers_after_the_commit(settings: Settings) -> None:
    from aiosmtpd.controller import Controller

    box, port = Inbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
        run(_set_email(settings.database_url, org["chuyenvien"].id, "ha.pt@quangninh.gov.vn"))
        mail_settings = replace(settings, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                                smtp_from="vpdt@quangninh.gov.vn", public_url="https://vpdt.quangninh.gov.vn")
        with TestClient(create_app(mail_settings), base_url="http://testserver", follow_redirects=False) as c:
            task = Api(c, tokens).task_for_specialist(org)
            wait_until(lambda: len(box.messages) >= 1, timeout=20)
        (msg,) = box.messages
        assert msg["To"] == "ha.pt@quangninh.gov.vn"
        assert msg["Subject"].startswith(f"[Văn phòng điện tử] Bạn được Đỗ Quang Vinh giao chủ trì xử lý «{TITLE}»")
        body = msg.get_body(("plain",))
        assert body is not None and f"https://vpdt.quangninh.gov.vn/tasks/{task}" in body.get_content()
    finally:
        controller.stop()


async def _set_email(url: str, user_id: int, address: str) -> None:
    db = Database(url)
    try:
        async with db.uow() as uow:
            await uow.session.execute(update(User).where(User.id == user_id).values(email=address))
            await uow.commit()
    finally:
        await db.dispose()
