"""Login by a bind to a real OpenLDAP slapd through the HTTP login form, the server's own directory sync loop, and an
account disabled in the directory losing its session and live sockets at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ldap3
import pyotp
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from eoffice import audit, identity, two_factor
from eoffice.org import User
from eoffice.schema.identity import LoginAttempt
from storage.db import Database
from storage.settings import Settings
from tests.eoffice.test_ldap_directory import ENABLED, ldap_settings
from tests.ldap_server import PERSON_PW, Slapd, running_slapd
from tests.web.conftest import PASSWORD, add_user, csrf_from, run
from tests.web.test_accounts import browser, closed_with, cookie, still_open
from web.app import create_app
from web.services import workers

WRONG = "Tên đăng nhập hoặc mật khẩu không đúng."


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    with running_slapd(tmp_path) as server:
        yield server


async def _count_users(url: str) -> int:
    db = Database(url)
    try:
        async with db.uow(readonly=True) as uow:
            return int(await uow.session.scalar(select(func.count()).select_from(User)) or 0)
    finally:
        await db.dispose()


@pytest.fixture
def app(settings: Settings, slapd: Slapd) -> Iterator[TestClient]:
    """The app with the directory configured and its sync loop on: the first sync runs at start."""
    configured = replace(
        ldap_settings(settings, slapd), ldap_sync_seconds=3600, login_max_failures=3, ws_heartbeat_seconds=2.0
    )
    with TestClient(create_app(configured)) as main:
        deadline = time.monotonic() + 30
        while run(_count_users(settings.database_url)) < ENABLED:  # the loop's first pass, at start
            assert time.monotonic() < deadline, "the directory sync loop did not create the accounts"
            time.sleep(0.05)
        yield main


def post_login(c: TestClient, username: str, password: str) -> object:
    page = c.get("/login")
    return c.post("/login", data={"username": username, "password": password, "csrf_token": csrf_from(page.text)})


async def _failures(url: str, username: str) -> tuple[int, list[str]]:
    db = Database(url)
    try:
        async with db.uow(readonly=True) as uow:
            n = await uow.session.scalar(
                select(func.count())
                .select_from(LoginAttempt)
                .where(LoginAttempt.username == username, LoginAttempt.success.is_(False))
            )
            entries = (
                await uow.session.scalars(select(audit.AuditEntry).where(audit.AuditEntry.action == "login.failed"))
            ).all()
            return int(n or 0), [str(e.data.get("username")) for e in entries]
    finally:
        await db.dispose()


def test_bind_login_through_the_form_and_failures_leak_nothing(app: TestClient, settings: Settings) -> None:
    c = browser(app)
    r = post_login(c, "giamdoc.snv", PERSON_PW)
    assert r.status_code == 303 and r.headers["location"] == "/", getattr(r, "text", "")
    home = c.get("/")
    assert home.status_code == 200 and "Phạm Thu Hà" in home.text

    wrong = post_login(browser(app), "giamdoc.snv", "Sai-mat-khau-1")
    unknown = post_login(browser(app), "khong.ton.tai", "Sai-mat-khau-1")
    empty = post_login(browser(app), "chutich", "")  # LDAP would take it as an anonymous bind
    for r in (wrong, unknown, empty):
        assert r.status_code == 401 and WRONG in r.text  # type: ignore[attr-defined]
    assert "Sai-mat-khau-1" not in wrong.text  # type: ignore[attr-defined]
    # someone in the directory but disabled there (never created here): the same answer
    disabled = post_login(browser(app), "nghihuu.snv", PERSON_PW)
    assert disabled.status_code == 401 and WRONG in disabled.text  # type: ignore[attr-defined]
    count, audited = run(_failures(settings.database_url, "giamdoc.snv"))  # type: ignore[misc]
    assert count == 1 and {"giamdoc.snv", "khong.ton.tai", "chutich"} <= set(audited)

    # a local account keeps its local password; the throttle counts directory failures like the others
    add_user(settings, "quantri.local", full_name="Vũ Quốc Bảo")
    assert post_login(browser(app), "quantri.local", PASSWORD).status_code == 303  # type: ignore[attr-defined]
    statuses = []
    for _ in range(8):  # wrong passwords until the delay holds (each doubles it: the machine's speed does not matter)
        statuses.append(post_login(browser(app), "giamdoc.snv", "Sai-mat-khau-2").status_code)  # type: ignore[attr-defined]
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}, statuses
    throttled = post_login(browser(app), "giamdoc.snv", PERSON_PW)  # the right password waits too
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers  # type: ignore[attr-defined]


async def _enrol(url: str, username: str) -> str:
    db = Database(url)
    try:
        async with db.uow() as uow:
            user = await identity.get_user(uow, username)
            secret = await two_factor.start_enrolment(uow, user)
            await uow.commit()
        async with db.uow() as uow:
            user = await identity.get_user(uow, username)
            await two_factor.confirm_enrolment(uow, user, pyotp.TOTP(secret).now())
            await uow.commit()
        return secret
    finally:
        await db.dispose()


def test_second_factor_still_applies_after_a_bind(app: TestClient, settings: Settings) -> None:
    secret = str(run(_enrol(settings.database_url, "chutich")))
    c = browser(app)
    r = post_login(c, "chutich", PERSON_PW)
    assert r.status_code == 303 and r.headers["location"] == "/login/code"  # type: ignore[attr-defined]
    assert "eo_session" not in r.cookies  # type: ignore[attr-defined]
    page = c.get("/login/code")
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: the one enrolment used is spent
    r = c.post("/login/code", data={"code": code, "csrf_token": csrf_from(page.text)})
    assert r.status_code == 303 and "eo_session" in c.cookies
    assert c.get("/").status_code == 200


def test_disabled_in_the_directory_loses_its_session_and_sockets_at_once(app: TestClient, slapd: Slapd) -> None:
    c = browser(app)
    assert post_login(c, "ketoan.stc", PERSON_PW).status_code == 303  # type: ignore[attr-defined]
    with c.websocket_connect("/ws", headers=cookie(c)) as ws:
        still_open(ws)
        admin = slapd.admin()
        admin.modify(
            f"uid=ketoan.stc,{slapd.unit_dn('Sở Tài chính')}", {"employeeType": [(ldap3.MODIFY_ADD, ["disabled"])]}
        )
        admin.unbind()
        syncer = workers(app.app).directory_sync  # type: ignore[arg-type]
        assert syncer is not None
        result = app.portal.call(syncer.tick)  # type: ignore[union-attr]
        assert [ch.line() for ch in result.plan.changes] == ["- khóa tài khoản ketoan.stc"]
        assert closed_with(ws) == 4401
    assert c.get("/").status_code == 303  # back to the login page
    r = post_login(browser(app), "ketoan.stc", PERSON_PW)
    assert r.status_code == 401  # type: ignore[attr-defined]
