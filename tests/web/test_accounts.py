"""Accounts over HTTP: own password, administrators' reset/deactivate/activate, tokens (scope, expiry,
revocation), CSRF bound to the session, ``__Host-`` cookies, audit entries, and live sockets closed at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from eoffice import audit, identity
from eoffice.org import Role
from storage.db import Database, utcnow
from storage.settings import Settings
from tests.web.conftest import PASSWORD, add_user, csrf_from, login, make_token, run
from web.app import create_app

NEW = "Họp-HĐND-2027"


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return replace(settings, ws_heartbeat_seconds=2.0)  # a socket that is not closed fails in seconds, not hangs


@pytest.fixture
def app(app_settings: Settings) -> Iterator[TestClient]:
    """One running app (one lifespan: database engine, hub, broker) that every "browser" below talks to."""
    with TestClient(create_app(app_settings)) as main:
        yield main


def browser(app: TestClient) -> TestClient:
    """Another browser (its own cookies) on the running app, in its event loop (asyncpg needs that)."""
    c = TestClient(app.app, base_url="http://testserver", follow_redirects=False)
    c.portal = app.portal
    return c


def logged_in(app: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    c = browser(app)
    login(c, username, password)
    return c


def csrf(c: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": csrf_from(c.get("/account").text)}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(c: TestClient) -> dict[str, str]:
    return {"Cookie": f"eo_session={c.cookies['eo_session']}"}


def closed_with(ws: object) -> int:
    """Read frames until the server closes the socket; its close code (pings come every 2 s meanwhile)."""
    for _ in range(20):
        try:
            ws.receive_text()  # type: ignore[attr-defined]
        except WebSocketDisconnect as exc:
            return exc.code
    raise AssertionError("the socket was not closed")


def still_open(ws: object) -> None:
    ws.send_json({"op": "ping"})  # type: ignore[attr-defined]
    for _ in range(5):
        if json.loads(ws.receive_text())["type"] == "pong":  # type: ignore[attr-defined]
            return
    raise AssertionError("no pong")


async def _entries(url: str) -> list[audit.AuditEntry]:
    db = Database(url)
    try:
        async with db.uow() as uow:
            return list((await uow.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq))).all())
    finally:
        await db.dispose()


def test_change_own_password_ends_other_sessions_tokens_and_their_sockets(app: TestClient, settings: Settings) -> None:
    uid = add_user(settings, "chutich", Role.LEADER, full_name="Trần Văn Hùng")
    token = make_token(settings, "chutich")
    here, there = logged_in(app, "chutich"), logged_in(app, "chutich")
    headers = csrf(here)
    r = here.post("/api/account/password", json={"current_password": "sai-roi-1", "new_password": NEW},
                  headers=headers)
    assert r.status_code == 400 and r.json()["message"] == "Mật khẩu hiện tại không đúng."
    r = here.post("/api/account/password", json={"current_password": PASSWORD, "new_password": "abcdefgh"},
                  headers=headers)
    assert r.status_code == 400 and "quá dễ đoán" in r.json()["message"]
    r = here.post("/api/account/password", json={"current_password": PASSWORD, "new_password": "chutich-2026"},
                  headers=headers)
    assert r.status_code == 400 and "tên đăng nhập" in r.json()["message"]
    with here.websocket_connect("/ws", headers=cookie(here)) as mine, \
            there.websocket_connect("/ws", headers=cookie(there)) as other, \
            here.websocket_connect("/ws", headers=bearer(token)) as api:
        still_open(mine)
        r = here.post("/api/account/password", json={"current_password": PASSWORD, "new_password": NEW},
                      headers=headers)
        assert r.status_code == 204, r.text
        assert closed_with(other) == 4401 and closed_with(api) == 4401
        still_open(mine)  # the session that made the change goes on
    assert here.get("/api/me").json()["id"] == uid
    assert there.get("/api/me").status_code == 401
    assert here.get("/api/me", headers=bearer(token)).status_code == 401
    fresh = browser(app)
    page = fresh.get("/login")
    r = fresh.post("/login", data={"username": "chutich", "password": PASSWORD, "csrf_token": csrf_from(page.text)})
    assert r.status_code == 401
    login(fresh, "chutich", NEW)
    entry = [e for e in run(_entries(settings.database_url)) if e.action == "user.password.change"][-1]
    assert entry.actor_id == uid and entry.data["tokens_revoked"] == 1 and entry.data["sessions_ended"] == 1
    assert PASSWORD not in json.dumps(entry.data, ensure_ascii=False) and NEW not in json.dumps(entry.data)


def test_change_password_page(app: TestClient, settings: Settings) -> None:
    add_user(settings, "thuky", full_name="Phạm Thị Thu Hà")
    c = logged_in(app, "thuky")
    page = c.get("/account")
    assert page.status_code == 200 and "Đổi mật khẩu" in page.text and "Mã truy cập API" in page.text
    form = {"csrf_token": csrf_from(page.text), "current_password": PASSWORD, "new_password": NEW,
            "confirm_password": NEW + "x"}
    r = c.post("/account/password", data=form)
    assert r.status_code == 400 and "không khớp" in r.text
    r = c.post("/account/password", data={**form, "confirm_password": NEW})
    assert r.status_code == 303 and r.headers["location"] == "/account?done=password"
    assert "Đã đổi mật khẩu" in c.get(r.headers["location"]).text


def test_admin_deactivates_then_reactivates(app: TestClient, settings: Settings) -> None:
    uid = add_user(settings, "daibieu", full_name="Lê Thị Hồng")
    add_user(settings, "quantri", Role.ADMIN)
    token = make_token(settings, "daibieu")
    user, admin = logged_in(app, "daibieu"), logged_in(app, "quantri")
    assert user.post(f"/api/users/{uid}/deactivate", headers=csrf(user)).status_code == 403
    with user.websocket_connect("/ws", headers=cookie(user)) as ws, \
            user.websocket_connect("/ws", headers=bearer(token)) as api:
        still_open(ws)
        r = admin.post(f"/api/users/{uid}/deactivate", headers=csrf(admin))
        assert r.status_code == 204, r.text
        assert closed_with(ws) == 4401 and closed_with(api) == 4401
    assert user.get("/api/me").status_code == 401
    assert user.get("/api/me", headers=bearer(token)).status_code == 401
    c = browser(app)
    form = {"username": "daibieu", "password": PASSWORD, "csrf_token": csrf_from(c.get("/login").text)}
    r = c.post("/login", data=form)
    assert r.status_code == 401 and "đã bị khóa" in r.text
    assert admin.post(f"/api/users/{uid}/deactivate", headers=csrf(admin)).status_code == 409
    me = admin.get("/api/me").json()["id"]
    assert admin.post(f"/api/users/{me}/deactivate", headers=csrf(admin)).json()["message"] == \
        "Không thể tự khóa tài khoản của chính mình."
    assert admin.post("/api/users/99999999999999999999/deactivate", headers=csrf(admin)).status_code == 400
    users = {u["username"]: u for u in admin.get("/api/users").json()["users"]}
    assert users["daibieu"]["active"] is False
    assert admin.post(f"/api/users/{uid}/activate", headers=csrf(admin)).status_code == 204
    login(browser(app), "daibieu")
    assert user.get("/api/me", headers=bearer(token)).status_code == 401  # no old token comes back
    actions = [(e.action, e.actor_name, e.object_id) for e in run(_entries(settings.database_url))]
    assert ("user.deactivate", "quantri", str(uid)) in actions and ("user.activate", "quantri", str(uid)) in actions


def test_admin_resets_a_password_from_the_page(app: TestClient, settings: Settings) -> None:
    uid = add_user(settings, "daibieu", full_name="Lê Thị Hồng")
    add_user(settings, "quantri", Role.ADMIN)
    user, admin = logged_in(app, "daibieu"), logged_in(app, "quantri")
    page = admin.get("/admin/users")
    assert "Đặt lại mật khẩu" in page.text and "Khóa tài khoản" in page.text
    token = csrf_from(page.text)
    r = admin.post(f"/admin/users/{uid}/password", data={"csrf_token": token, "password": "123"})
    assert r.status_code == 400 and "ít nhất 8 ký tự" in r.text
    r = admin.post(f"/admin/users/{uid}/password", data={"csrf_token": token, "password": NEW})
    assert r.status_code == 200 and "Đã đặt lại mật khẩu" in r.text
    assert user.get("/api/me").status_code == 401
    login(browser(app), "daibieu", NEW)
    r = admin.post(f"/admin/users/{uid}/deactivate", data={"csrf_token": token})
    assert r.status_code == 200 and "Đã khóa tài khoản" in r.text and "Mở khóa tài khoản" in r.text
    entry = [e for e in run(_entries(settings.database_url)) if e.action == "user.password.reset"][-1]
    assert entry.actor_name == "quantri" and entry.object_id == str(uid) and NEW not in json.dumps(entry.data)


def test_tokens_scope_expiry_list_and_revoke(app: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    add_user(settings, "khac")
    c = logged_in(app, "vanthu")
    h = csrf(c)
    r = c.post("/api/tokens", json={"name": "Máy quét văn thư", "scope": "read", "expires_days": 30}, headers=h)
    assert r.status_code == 201
    read = r.json()["token"]
    full = c.post("/api/tokens", json={"name": "Đồng bộ"}, headers=h).json()["token"]
    assert c.post("/api/tokens", json={"scope": "admin"}, headers=h).status_code == 400
    assert c.post("/api/tokens", json={"expires_days": 0}, headers=h).json()["field"] == "expires_days"
    listed = c.get("/api/tokens").json()["tokens"]
    assert [t["name"] for t in listed] == ["Đồng bộ", "Máy quét văn thư"]
    assert listed[1]["scope"] == "read" and listed[1]["expires_at"] and listed[0]["expires_at"] is None
    assert read not in json.dumps(listed) and identity.sha256(read) not in json.dumps(listed)
    # read: GET/HEAD only
    assert c.get("/api/me", headers=bearer(read)).status_code == 200
    r = c.post("/api/tokens", json={}, headers=bearer(read))
    assert r.status_code == 403 and r.json()["error"] == "read_only_token"
    assert "chỉ được phép đọc" in r.json()["message"]
    assert c.post("/api/tokens", json={}, headers=bearer(full)).status_code == 201
    with c.websocket_connect("/ws", headers=bearer(read)) as ws:  # may follow topics, not send commands
        ws.send_json({"op": "annotation.create", "id": "c1"})
        reply = ws.receive_json()
        assert reply["type"] == "reply" and reply["ok"] is False and reply["status"] == 403
        assert "chỉ được phép đọc" in reply["message"]
    # another user cannot see or revoke them
    other = logged_in(app, "khac")
    assert other.delete(f"/api/tokens/{listed[0]['id']}", headers=csrf(other)).status_code == 404
    with c.websocket_connect("/ws", headers=bearer(full)) as ws:
        still_open(ws)
        assert c.delete(f"/api/tokens/{listed[0]['id']}", headers=h).status_code == 204
        assert closed_with(ws) == 4401
    assert c.get("/api/me", headers=bearer(full)).status_code == 401
    assert c.delete(f"/api/tokens/{listed[0]['id']}", headers=h).status_code == 409
    assert c.delete("/api/tokens/abc", headers=h).status_code == 400
    run(_expire(settings.database_url, identity.sha256(read)))
    assert c.get("/api/me", headers=bearer(read)).status_code == 401
    actions = [e.action for e in run(_entries(settings.database_url))]
    assert "token.revoke" in actions and actions.count("token.create") == 3


async def _expire(url: str, token_hash: str) -> None:
    db = Database(url)
    try:
        async with db.uow() as uow:
            await uow.session.execute(update(identity.ApiToken).where(identity.ApiToken.token_hash == token_hash)
                                      .values(expires_at=utcnow()))
            await uow.commit()
    finally:
        await db.dispose()


def test_token_page_creates_shows_once_and_revokes(app: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    c = logged_in(app, "vanthu")
    token = csrf_from(c.get("/account").text)
    r = c.post("/account/tokens", data={"csrf_token": token, "name": "Máy quét", "scope": "read",
                                        "expires_days": "7"})
    assert r.status_code == 201 and "chỉ hiển thị một lần" in r.text and "eo_" in r.text
    page = c.get("/account")
    assert "Máy quét" in page.text and "Chỉ đọc" in page.text and "eo_" not in page.text
    tid = c.get("/api/tokens").json()["tokens"][0]["id"]
    r = c.post(f"/account/tokens/{tid}/revoke", data={"csrf_token": token})
    assert r.status_code == 303 and "Đã thu hồi" in c.get("/account").text


def test_logout_closes_that_sessions_sockets_only(app: TestClient, settings: Settings) -> None:
    add_user(settings, "daibieu", full_name="Lê Thị Hồng")
    one, two = logged_in(app, "daibieu"), logged_in(app, "daibieu")
    with one.websocket_connect("/ws", headers=cookie(one)) as ws1, \
            two.websocket_connect("/ws", headers=cookie(two)) as ws2:
        still_open(ws1)
        token = csrf_from(one.get("/").text)
        assert one.post("/logout", data={"csrf_token": token}).status_code == 303
        assert closed_with(ws1) == 4401
        still_open(ws2)


def test_csrf_token_of_another_session_is_refused(app: TestClient, settings: Settings) -> None:
    """An attacker who plants their own nonce cookie (from a sibling subdomain, say) and sends the CSRF
    token of their own session gains nothing: the token is bound to the session too."""
    add_user(settings, "nannhan", full_name="Lê Thị Hồng")
    add_user(settings, "tancong", full_name="Kẻ Tấn Công")
    victim, attacker = logged_in(app, "nannhan"), logged_in(app, "tancong")
    attacker_token = csrf_from(attacker.get("/account").text)
    victim.cookies.set("eo_csrf", attacker.cookies["eo_csrf"])
    r = victim.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": attacker_token})
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    own = csrf_from(victim.get("/account").text)
    assert victim.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": own}).status_code == 201


def test_secure_cookies_use_the_host_prefix(settings: Settings) -> None:
    add_user(settings, "thuky", full_name="Phạm Thị Thu Hà")
    secure = replace(settings, secure_cookies=True)
    with TestClient(create_app(secure), base_url="https://testserver", follow_redirects=False) as c:
        page = c.get("/login")
        first = page.headers["set-cookie"]
        assert first.startswith("__Host-eo_csrf=") and "Secure" in first and "Path=/" in first
        assert "domain" not in first.lower()
        r = c.post("/login", data={"username": "thuky", "password": PASSWORD, "csrf_token": csrf_from(page.text)})
        assert r.status_code == 303
        session = r.headers["set-cookie"]
        assert session.startswith("__Host-eo_session=") and "Secure" in session and "Path=/" in session
        assert "domain" not in session.lower()
        assert c.get("/api/me").status_code == 200
        r = c.post("/logout", data={"csrf_token": csrf_from(c.get("/").text)})
        assert r.status_code == 303 and r.headers["set-cookie"].startswith('__Host-eo_session=""')
        assert c.get("/api/me").status_code == 401
