from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from eoffice import identity
from eoffice.org import Role
from storage.settings import Settings
from tests.eoffice.test_login_throttle import Clock
from tests.web.conftest import PASSWORD, add_user, csrf_from, login, make_token


def test_login_page_is_vietnamese_and_sets_csrf_cookie(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
    cookie = r.headers["set-cookie"]
    assert "eo_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/login")
    assert page.status_code == 200
    assert "Đăng nhập" in page.text and 'lang="vi"' in page.text
    assert "set-cookie" not in page.headers  # the nonce stays the same for the browser's lifetime


def test_login_sets_httponly_samesite_session_and_shows_home(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK, full_name="Nguyễn Thị Lan")
    page = client.get("/login")
    r = client.post("/login", data={"username": "VanThu ", "password": PASSWORD,
                                    "csrf_token": csrf_from(page.text), "next": "/?tab=1"})
    assert r.status_code == 303 and r.headers["location"] == "/?tab=1"
    cookie = r.headers["set-cookie"]
    assert "eo_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = client.get("/")
    assert home.status_code == 200 and "Nguyễn Thị Lan" in home.text and "Văn thư" in home.text


def test_open_redirect_after_login_is_refused(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    page = client.get("/login")
    r = client.post("/login", data={"username": "vanthu", "password": PASSWORD,
                                    "csrf_token": csrf_from(page.text), "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


def test_wrong_password_then_a_short_delay_not_a_lockout(client: TestClient, settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """After the free failures the next attempt waits (429, Retry-After), even with the right password;
    once the delay has passed the right password gets in: no 15-minute lockout."""
    clock = Clock()
    monkeypatch.setattr(identity, "utcnow", clock)
    add_user(settings, "lanhdao", Role.LEADER)
    token = csrf_from(client.get("/login").text)
    for _ in range(settings.login_max_failures):
        r = client.post("/login", data={"username": "lanhdao", "password": "sai-mat-khau", "csrf_token": token})
        assert r.status_code == 401
        assert "Tên đăng nhập hoặc mật khẩu không đúng." in r.text
        assert "eo_session" not in r.headers.get("set-cookie", "")
    r = client.post("/login", data={"username": "lanhdao", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429 and "thử lại sau 1 giây" in r.text and r.headers["retry-after"] == "1"
    assert client.get("/").status_code == 303
    clock.advance(1)
    r = client.post("/login", data={"username": "lanhdao", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303


def test_csrf_missing_or_forged_is_refused(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    client.get("/login")
    r = client.post("/login", data={"username": "vanthu", "password": PASSWORD})
    assert r.status_code == 403 and "tải lại trang" in r.text
    r = client.post("/login", data={"username": "vanthu", "password": PASSWORD, "csrf_token": "0" * 64})
    assert r.status_code == 403
    # A token from another browser (another nonce) is worth nothing here either.
    other = TestClient(client.app, base_url="http://testserver")
    foreign = csrf_from(other.get("/login").text)
    r = client.post("/login", data={"username": "vanthu", "password": PASSWORD, "csrf_token": foreign})
    assert r.status_code == 403
    # Logged in, a JSON POST without the header is refused too.
    login(client, "vanthu")
    assert client.post("/api/tokens", json={"name": "x"}).status_code == 403


def test_csrf_token_in_the_query_string_is_refused(client: TestClient, settings: Settings) -> None:
    """The token goes in the X-CSRF-Token header or the form body, never in a URL (access logs,
    proxies, the Referer of the next page would carry it)."""
    add_user(settings, "vanthu", Role.CLERK)
    login(client, "vanthu")
    token = csrf_from(client.get("/").text)
    # JSON and raw uploads: the query string does not count, the header does
    r = client.post("/api/tokens", params={"csrf_token": token}, json={"name": "Máy quét văn thư"})
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    r = client.post("/api/files", params={"csrf_token": token}, content=b"%PDF-1.7 test",
                    headers={"Content-Type": "application/pdf", "X-Filename": "cong-van.pdf"})
    assert r.status_code == 403
    r = client.post("/api/tokens", json={"name": "Máy quét văn thư"}, headers={"X-CSRF-Token": token})
    assert r.status_code in (200, 201), r.text
    # a form: the query string does not count either (an empty body with the token in the URL),
    # the field in the body does
    r = client.post("/logout", params={"csrf_token": token}, data={"next": "/"})
    assert r.status_code == 403 and "tải lại trang" in r.text
    assert client.get("/api/me").status_code == 200  # still logged in
    r = client.post("/logout", params={"csrf_token": "x"}, data={"csrf_token": token})
    assert r.status_code == 303
    assert client.get("/api/me").status_code == 401


def test_tampered_session_cookie_is_not_a_session(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    login(client, "vanthu")
    assert client.get("/api/me").status_code == 200
    value = client.cookies["eo_session"]
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    client.cookies.set("eo_session", forged)
    r = client.get("/api/me")
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    assert client.get("/").status_code == 303


def test_logout_ends_the_session_on_the_server(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    login(client, "vanthu")
    stolen = client.cookies["eo_session"]
    home = client.get("/")
    r = client.post("/logout", data={"csrf_token": csrf_from(home.text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.set("eo_session", stolen)  # replaying the old cookie does not work
    assert client.get("/api/me").status_code == 401


def test_bearer_token_for_api_without_csrf(client: TestClient, settings: Settings) -> None:
    add_user(settings, "chuyenvien", Role.SPECIALIST, full_name="Phạm Thu Hà")
    token = make_token(settings, "chuyenvien")
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/me", headers=headers)
    assert me.status_code == 200 and me.json()["full_name"] == "Phạm Thu Hà"
    r = client.post("/api/tokens", json={"name": "máy tính bảng"}, headers=headers)
    assert r.status_code == 201 and r.json()["token"].startswith("eo_")
    bad = client.get("/api/me", headers={"Authorization": "Bearer eo_khong-hop-le"})
    assert bad.status_code == 401 and "không hợp lệ" in bad.json()["message"]


def test_api_errors_are_json_and_pages_are_html(client: TestClient, settings: Settings) -> None:
    r = client.get("/api/khong-co")
    assert r.status_code == 404 and r.json()["error"] == "http_error"
    r = client.get("/khong-co", headers={"accept": "text/html"})
    assert r.status_code == 404 and "Không tìm thấy" in r.text


def test_admin_pages_need_the_admin_role(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    add_user(settings, "admin", Role.ADMIN)
    login(client, "vanthu")
    assert client.get("/admin/users").status_code == 403
    client.cookies.clear()
    login(client, "admin")
    page = client.get("/admin/users")
    assert page.status_code == 200
    r = client.post("/admin/users", data={"csrf_token": csrf_from(page.text), "username": "binhkhe.congchuc",
                                          "full_name": "Ngô Thị Hương", "password": "ngan", "roles": "specialist"})
    assert r.status_code == 400 and "ít nhất 8 ký tự" in r.text
    form = {"csrf_token": csrf_from(page.text), "username": "binhkhe.congchuc", "full_name": "Ngô Thị Hương",
            "password": "mat-khau-dai", "roles": "specialist"}
    r = client.post("/admin/users", data=form)
    assert r.status_code == 303
    assert "Ngô Thị Hương" in client.get("/admin/users").text
    audit_page = client.get("/admin/audit?verify=1")
    assert "Chuỗi nhật ký toàn vẹn" in audit_page.text and "user.create" in audit_page.text
