"""Two-factor login over HTTP (#18): enrolment with a QR code, confirmation, the code step of the login,
replayed codes refused, recovery codes good once, wrong codes throttled like passwords, roles that require
it (an enrol-only session), the administrator's reset (audited), API tokens unaffected."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from eoffice import audit
from eoffice.org import Role
from eoffice.schema.identity import RecoveryCode, UserTotp
from storage.db import Database
from storage.settings import Settings
from tests.conftest import in_thread
from tests.web.conftest import PASSWORD, add_user, csrf_from, login, make_token, run
from web import cli
from web.app import create_app


@pytest.fixture
def app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(replace(settings, login_max_failures=3))) as main:
        yield main


def browser(app: TestClient) -> TestClient:
    c = TestClient(app.app, base_url="http://testserver", follow_redirects=False)
    c.portal = app.portal
    return c


def logged_in(app: TestClient, username: str) -> TestClient:
    c = browser(app)
    login(c, username)
    return c


def code_at(secret: str, offset_steps: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30 * offset_steps))


def enrol(c: TestClient) -> tuple[str, list[str], str]:
    """Enrol from the account page: the secret shown, its QR code, a first code; returns (secret, recovery codes,
    the code that confirmed)."""
    page = c.get("/account/two-factor")
    assert page.status_code == 200 and "Chưa bật" in page.text
    r = c.post("/account/two-factor/start", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 303
    page = c.get("/account/two-factor")
    match = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert match, page.text
    secret = match.group(1)
    qr = c.get("/account/two-factor/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml") and "<svg" in qr.text
    assert 'xmlns="http://www.w3.org/2000/svg"' in qr.text  # a document an <img> can show
    assert qr.headers["cache-control"] == "no-store"
    wrong = f"{(int(code_at(secret)) + 1) % 1000000:06d}"
    r = c.post("/account/two-factor/confirm", data={"csrf_token": csrf_from(page.text), "code": wrong})
    assert r.status_code == 400 and "Mã xác thực không đúng" in r.text
    first = code_at(secret)
    r = c.post("/account/two-factor/confirm", data={"csrf_token": csrf_from(page.text), "code": first})
    assert r.status_code == 200, r.text
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", r.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes, first


def password_step(c: TestClient, username: str, next_path: str = "/") -> None:
    page = c.get("/login")
    r = c.post("/login", data={"username": username, "password": PASSWORD, "next": next_path,
                               "csrf_token": csrf_from(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/login/code", r.text
    assert "eo_session" not in r.cookies  # no session before the code


def code_step(c: TestClient, code: str) -> object:
    page = c.get("/login/code")
    assert page.status_code == 200, page.text
    return c.post("/login/code", data={"code": code, "csrf_token": csrf_from(page.text)})


async def _rows(url: str, uid: int) -> tuple[UserTotp | None, list[RecoveryCode], list[audit.AuditEntry]]:
    db = Database(url)
    try:
        async with db.uow() as uow:
            totp = await uow.session.get(UserTotp, uid)
            codes = list((await uow.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == uid))).all())
            entries = list((await uow.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq))).all())
            return totp, codes, entries
    finally:
        await db.dispose()


def test_enrol_then_login_with_code_replay_refused_recovery_once(app: TestClient, settings: Settings) -> None:
    uid = add_user(settings, "chanhvanphong", Role.SPECIALIST, full_name="Lê Thị Hồng Nhung")
    c = logged_in(app, "chanhvanphong")
    secret, codes, first = enrol(c)
    totp, stored, entries = run(_rows(settings.database_url, uid))  # type: ignore[misc]
    assert totp is not None and totp.confirmed_at is not None
    assert secret.encode() not in totp.secret_enc  # encrypted at rest
    assert len(stored) == 10 and all(s.code_hash.startswith("$argon2") for s in stored)
    assert not any(code.replace("-", "") in s.code_hash for code in codes for s in stored)
    assert [e for e in entries if e.action == "user.2fa.enable" and e.actor_id == uid]
    assert "Đang bật" in c.get("/account/two-factor").text

    b = browser(app)
    assert b.get("/login/code").headers["location"] == "/login"  # no pending login: back to the password
    password_step(b, "chanhvanphong", "/account")
    assert b.get("/account").status_code == 303  # not logged in yet
    r = code_step(b, first)  # the code just used to confirm the enrolment
    assert r.status_code == 401 and "đã được dùng" in r.text  # type: ignore[attr-defined]
    r = code_step(b, "000000" if code_at(secret, 1) != "000000" else "111111")
    assert r.status_code == 401 and "Mã xác thực không đúng." in r.text  # type: ignore[attr-defined]
    fresh = code_at(secret, 1)  # the next time step (one step of clock drift is accepted)
    r = code_step(b, fresh)
    assert r.status_code == 303 and r.headers["location"] == "/account"  # type: ignore[attr-defined]
    assert b.get("/account").status_code == 200
    assert b.get("/login/code").status_code == 303  # the pending login is used up

    again = browser(app)
    password_step(again, "chanhvanphong")
    r = code_step(again, fresh)  # the same code, in another browser: refused
    assert r.status_code == 401 and "đã được dùng" in r.text  # type: ignore[attr-defined]
    r = code_step(again, codes[3].upper())  # a recovery code, whatever the case
    assert r.status_code == 303 and again.get("/").status_code == 200  # type: ignore[attr-defined]

    third = browser(app)
    password_step(third, "chanhvanphong")
    r = code_step(third, codes[3])  # used once already
    assert r.status_code == 401  # type: ignore[attr-defined]
    _totp, stored, entries = run(_rows(settings.database_url, uid))  # type: ignore[misc]
    assert sum(1 for s in stored if s.used_at is not None) == 1
    logins = [e for e in entries if e.action == "login" and e.actor_id == uid]
    assert [e.data.get("factor") for e in logins][-2:] == ["totp", "recovery"]
    assert "Còn 9 mã khôi phục" in again.get("/account/two-factor").text

    # Disabling needs a code; then the password alone logs in again.
    page = again.get("/account/two-factor")
    r = again.post("/account/two-factor/disable", data={"csrf_token": csrf_from(page.text), "code": "123-456"})
    assert r.status_code == 400
    r = again.post("/account/two-factor/disable", data={"csrf_token": csrf_from(page.text), "code": codes[0]})
    assert r.status_code == 303
    plain = browser(app)
    page = plain.get("/login")
    r = plain.post("/login", data={"username": "chanhvanphong", "password": PASSWORD,
                                   "csrf_token": csrf_from(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_wrong_codes_are_throttled_like_passwords(app: TestClient, settings: Settings) -> None:
    add_user(settings, "phochutich", Role.LEADER, full_name="Đỗ Minh Khôi")
    secret, _codes, _first = enrol(logged_in(app, "phochutich"))
    b = browser(app)
    password_step(b, "phochutich")
    good = code_at(secret, 1)
    wrong = f"{(int(good) + 7) % 1000000:06d}"
    for _ in range(3):  # login_max_failures=3 free failures for one address on one account
        r = code_step(b, wrong)
        assert r.status_code == 401  # type: ignore[attr-defined]
    r = code_step(b, good)  # even the right code waits now
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # type: ignore[attr-defined]
    assert "thử lại sau" in r.text  # type: ignore[attr-defined]
    # ... and so does the password step: entering the password again does not wash the failures away
    page = b.get("/login")
    r = b.post("/login", data={"username": "phochutich", "password": PASSWORD, "csrf_token": csrf_from(page.text)})
    assert r.status_code == 429


def test_required_role_enrol_only_session_admin_reset_tokens_unaffected(app: TestClient, settings: Settings) -> None:
    add_user(settings, "quantri", Role.ADMIN, full_name="Vũ Quốc Bảo")
    uid = add_user(settings, "lanhdao", Role.LEADER, full_name="Trần Văn Hùng")
    token = make_token(settings, "lanhdao")
    admin = logged_in(app, "quantri")
    page = admin.get("/admin/two-factor")
    assert page.status_code == 200 and "Bắt buộc xác thực hai lớp" in page.text
    r = admin.post("/admin/two-factor", data={"csrf_token": csrf_from(page.text), "roles": ["leader", "clerk"]})
    assert r.status_code == 200 and 'value="leader" checked' in r.text
    r = admin.post("/admin/two-factor", data={"csrf_token": csrf_from(page.text), "roles": ["thuky"]})
    assert r.status_code == 400 and "Vai trò không hợp lệ" in r.text

    c = browser(app)
    page = c.get("/login")
    r = c.post("/login", data={"username": "lanhdao", "password": PASSWORD, "next": "/office",
                               "csrf_token": csrf_from(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/account/two-factor"
    assert c.get("/").headers["location"] == "/account/two-factor"  # nothing else until enrolled
    assert c.get("/account").headers["location"] == "/account/two-factor"
    r = c.get("/api/me")
    assert r.status_code == 403 and r.json()["error"] == "two_factor_required"
    enrol_page = c.get("/account/two-factor")
    r = c.post("/account/password", data={"csrf_token": csrf_from(enrol_page.text), "current_password": PASSWORD,
                                          "new_password": "Mới-2027-abc", "confirm_password": "Mới-2027-abc"})
    assert r.status_code == 403 and "bắt buộc xác thực hai lớp" in r.text
    with c.websocket_connect("/ws", headers={"Cookie": f"eo_session={c.cookies['eo_session']}"}) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:  # no live socket for an enrol-only session
            ws.receive_text()
    assert closed.value.code == 4401
    api = app.get("/api/me", headers={"Authorization": f"Bearer {token}"})  # scripts go on
    assert api.status_code == 200 and api.json()["id"] == uid

    secret, _codes, _first = enrol(c)
    assert c.get("/").status_code == 200  # the same session, now whole
    page = c.get("/account/two-factor")
    r = c.post("/account/two-factor/disable", data={"csrf_token": csrf_from(page.text), "code": code_at(secret, 1)})
    assert r.status_code == 403 and "bắt buộc" in r.text  # a required role cannot turn it off

    # The phone is lost: the administrator resets; the next login is sent to enrol again.
    page = admin.get("/admin/users")
    r = admin.post(f"/admin/users/{uid}/two-factor-reset", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 200 and "Đã đặt lại xác thực hai lớp" in r.text
    assert c.get("/").headers["location"] == "/account/two-factor"  # open sessions fall back to enrol-only
    again = browser(app)
    page = again.get("/login")
    r = again.post("/login", data={"username": "lanhdao", "password": PASSWORD, "csrf_token": csrf_from(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/account/two-factor"
    totp, codes, entries = run(_rows(settings.database_url, uid))  # type: ignore[misc]
    assert totp is None and codes == []
    reset = [e for e in entries if e.action == "user.2fa.reset"]
    assert len(reset) == 1 and reset[0].object_id == str(uid) and reset[0].data["had"] is True
    assert next(e for e in entries if e.action == "twofactor.roles").data["roles"] == ["clerk", "leader"]
    specialist = browser(app)
    add_user(settings, "chuyenvien", Role.SPECIALIST, full_name="Ngô Thị Mai")
    login(specialist, "chuyenvien")
    assert specialist.get("/").status_code == 200  # roles not required: nothing changes


def test_a_non_admin_cannot_require_or_reset(app: TestClient, settings: Settings) -> None:
    uid = add_user(settings, "vanthu", Role.CLERK, full_name="Phạm Thị Thu Hà")
    c = logged_in(app, "vanthu")
    page = c.get("/account")
    assert c.get("/admin/two-factor").status_code == 403
    r = c.post("/admin/two-factor", data={"csrf_token": csrf_from(page.text), "roles": ["clerk"]})
    assert r.status_code == 403
    r = c.post(f"/admin/users/{uid}/two-factor-reset", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 403


def test_command_line_roles_and_reset(app: TestClient, settings: Settings, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    uid = add_user(settings, "vanthu", Role.CLERK, full_name="Phạm Thị Thu Hà")
    enrol(logged_in(app, "vanthu"))
    monkeypatch.setenv("EOFFICE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("EOFFICE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("EOFFICE_SECRET_KEY", settings.secret_key)

    def eoffice(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = in_thread(cli.main, list(argv))
        out = capsys.readouterr()
        return int(code), out.out + out.err  # type: ignore[call-overload]

    assert eoffice("user", "two-factor-roles", "--role", "clerk") == (
        0, "Vai trò bắt buộc xác thực hai lớp: clerk\n")
    assert eoffice("user", "two-factor-roles") == (0, "Vai trò bắt buộc xác thực hai lớp: clerk\n")
    code, out = eoffice("user", "two-factor-reset", "khong-co-ai")
    assert code == 2 and "Không có người dùng «khong-co-ai»" in out
    code, out = eoffice("user", "two-factor-reset", "vanthu")
    assert code == 0 and "Đã đặt lại xác thực hai lớp của «vanthu»" in out, out
    totp, codes, entries = run(_rows(settings.database_url, uid))  # type: ignore[misc]
    assert totp is None and codes == []
    reset = [e for e in entries if e.action == "user.2fa.reset"]
    assert len(reset) == 1 and reset[0].actor_id is None
    c = browser(app)  # a clerk now: sent to enrol again
    page = c.get("/login")
    r = c.post("/login", data={"username": "vanthu", "password": PASSWORD, "csrf_token": csrf_from(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/account/two-factor"
    assert eoffice("user", "two-factor-roles", "--role", "") == (0, "Vai trò bắt buộc xác thực hai lớp: không có\n")
