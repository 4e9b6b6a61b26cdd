"""OpenID Connect login against a real provider (Debian's Glewlwyd), driven without a browser: the mapping to an
existing account, what is refused (state wrong, replayed or from another browser, nonce not ours, a tampered or
foreign ID token, an unknown person without just-in-time creation) and just-in-time creation.
The browser journey is tests/e2e/test_sso_login.py."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import pytest

from eoffice.oidc_client import OidcClient
from storage.errors import Unauthenticated
from tests.e2e.conftest import DEMO_PASSWORD, LiveServer
from tests.e2e.sso_world import CLIENT_SECRET, PASSWORD, authorize, provider_session, query, sso_server, start
from tests.oidc_provider import Provider, running_glewlwyd

KNOWN = "chuyenvien"  # a demo account: Phạm Thu Hà
NEWCOMER = "nguyen.moi"
LEADER = "lanhdao"  # a demo leader: the role the two-factor tests make require it
SAME_EMAIL = "moi.tt"  # NEWCOMER's e-mail (in other letter case) under another provider username


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_glewlwyd(tmp_path_factory.mktemp("glewlwyd")) as op:
        yield op


@pytest.fixture(scope="module")
def server(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from sso_server(provider, tmp_path_factory.mktemp("sso") / "var", scopes="openid")


@pytest.fixture(scope="module")
def jit_server(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from sso_server(provider, tmp_path_factory.mktemp("sso-jit") / "var", scopes="openid", jit_unit="VP",
                          jit_role="specialist")


@pytest.fixture(scope="module")
def mfa_server(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Trusts the provider's second factor: Glewlwyd's ``amr`` for its password login is ["password"], so here
    that counts (a real deployment would list ``otp``, ``hwk``, ``mfa``...)."""
    yield from sso_server(provider, tmp_path_factory.mktemp("sso-mfa") / "var", scopes="openid", mfa_amr="password")


@pytest.fixture(scope="module")
def email_server(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Maps people by the e-mail the provider gives, creating unknown ones in VP."""
    yield from sso_server(provider, tmp_path_factory.mktemp("sso-email") / "var", scopes="openid", match="email",
                          jit_unit="VP")


@pytest.fixture(scope="module")
def people(provider: Provider, server: LiveServer, jit_server: LiveServer, mfa_server: LiveServer,
           email_server: LiveServer) -> None:
    """The provider's people, each having consented to all of our servers; leaders must use two-factor login on
    ``server`` and ``mfa_server`` (set by the administrator's page)."""
    clients = [s.client_id for s in (server, jit_server, mfa_server, email_server)]  # type: ignore[attr-defined]
    provider.add_user(KNOWN, PASSWORD, name="Phạm Thu Hà", email="ha.pt@quangninh.gov.vn", grant_clients=clients)
    provider.add_user(NEWCOMER, PASSWORD, name="Trần Thị Mới", email="moi.tt@quangninh.gov.vn", grant_clients=clients)
    provider.add_user(LEADER, PASSWORD, name="Trần Văn Hùng", email="hung.tv@quangninh.gov.vn", grant_clients=clients)
    # the same person under another name at the provider, with the same e-mail
    provider.add_user(SAME_EMAIL, PASSWORD, name="Trần Thị Mới", email="Moi.TT@quangninh.gov.vn", grant_clients=clients)
    for ours in (server, mfa_server):
        with _admin(ours) as admin:
            page = admin.get("/admin/two-factor").text
            saved = admin.post("/admin/two-factor", data={"csrf_token": _csrf(page), "roles": "leader"})
            assert saved.status_code == 200 and "Đã lưu" in saved.text


@contextlib.contextmanager
def _admin(server: LiveServer) -> Iterator[httpx.Client]:
    """The demo administrator, logged in by password."""
    with _ours(server) as admin:
        form = admin.get("/login").text
        assert admin.post("/login", data={"csrf_token": _csrf(form), "username": "admin", "password": DEMO_PASSWORD,
                                          "next": "/"}).status_code == 303
        yield admin


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def _ours(server: str) -> httpx.Client:
    return httpx.Client(base_url=server, timeout=15, follow_redirects=False)


def _refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 401, (response.status_code, response.text[:300])
    for word in words:
        assert word in response.text, (word, response.text[:2000])


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**query(url), **changes})))


def _login(server: LiveServer, username: str) -> tuple[httpx.Client, httpx.Response]:
    ours = _ours(server)
    with provider_session_for(server, username) as op:
        callback = authorize(op, start(ours))
    return ours, ours.get(callback)


def provider_session_for(server: LiveServer, username: str) -> contextlib.AbstractContextManager[httpx.Client]:
    return provider_session(server.provider, username)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _wired(provider: Provider, server: LiveServer, jit_server: LiveServer, mfa_server: LiveServer,
           email_server: LiveServer, people: None) -> None:
    for ours in (server, jit_server, mfa_server, email_server):
        ours.provider = provider  # type: ignore[attr-defined]


def test_existing_account_logs_in_by_username(server: LiveServer) -> None:
    ours, answer = _login(server, KNOWN)
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text[:500]
    home = ours.get("/")
    assert home.status_code == 200 and "Phạm Thu Hà" in home.text


def test_wrong_state_is_refused(server: LiveServer) -> None:
    ours = _ours(server)
    with provider_session_for(server, KNOWN) as op:
        callback = authorize(op, start(ours))
    _refused(ours.get(_with_query(callback, state="trang-thai-gia-mao")), "mã state không khớp", "đăng nhập lại")
    assert ours.get("/").status_code == 303  # not logged in


def test_state_is_used_once_and_only_by_its_browser(server: LiveServer) -> None:
    ours = _ours(server)
    with provider_session_for(server, KNOWN) as op:
        callback = authorize(op, start(ours))
    with _ours(server) as stranger:  # the same answer in another browser (no pending-login cookie)
        _refused(stranger.get(callback), "mã state không khớp")
    _refused(ours.get(callback), "đã được sử dụng")  # the stranger's try used it up: replays fail too


def test_nonce_not_ours_is_refused(server: LiveServer) -> None:
    ours = _ours(server)
    with provider_session_for(server, KNOWN) as op:
        callback = authorize(op, _with_query(start(ours), nonce="nonce-cua-ke-khac"))
    _refused(ours.get(callback), "nonce không khớp")


def test_unknown_person_is_refused_without_jit(server: LiveServer) -> None:
    _ours_client, answer = _login(server, NEWCOMER)
    _refused(answer, "chưa được cấp quyền", NEWCOMER)


def test_jit_creates_the_account_in_the_configured_unit(jit_server: LiveServer) -> None:
    ours, answer = _login(jit_server, NEWCOMER)
    assert answer.status_code == 303, answer.text[:500]
    home = ours.get("/")
    assert home.status_code == 200 and "Trần Thị Mới" in home.text
    assert "Văn phòng Ủy ban nhân dân tỉnh" in home.text  # the configured unit (VP)
    again, second = _login(jit_server, NEWCOMER)  # the next login finds the account made the first time
    assert second.status_code == 303 and "Trần Thị Mới" in again.get("/").text


def test_mapping_by_email(email_server: LiveServer) -> None:
    first, answer = _login(email_server, NEWCOMER)  # created (the username from preferred_username)
    assert answer.status_code == 303 and "Trần Thị Mới" in first.get("/").text
    second, answer = _login(email_server, SAME_EMAIL)  # another provider name, the same e-mail: the same account
    assert answer.status_code == 303 and "Trần Thị Mới" in second.get("/").text
    with _admin(email_server) as admin:
        users = admin.get("/api/users").json()
    names = [u["username"] for u in (users["users"] if isinstance(users, dict) else users)]
    assert "nguyen.moi" in names and "moi.tt" not in names  # mapped by e-mail, not made twice


def test_our_second_factor_when_the_provider_asserts_none(server: LiveServer) -> None:
    """No amr/acr configured: a leader (whose role requires two-factor login) coming through SSO must enrol
    first, as after a password login."""
    ours, answer = _login(server, LEADER)
    assert answer.status_code == 303 and answer.headers["location"] == "/account/two-factor", answer.text[:300]
    assert ours.get("/", follow_redirects=False).headers["location"] == "/account/two-factor"  # nothing else


def test_provider_mfa_stands_in_for_ours(mfa_server: LiveServer) -> None:
    ours, answer = _login(mfa_server, LEADER)
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text[:300]
    assert "Trần Văn Hùng" in ours.get("/").text


async def test_id_token_checks_against_the_provider(provider: Provider, server: LiveServer) -> None:
    """The ID token's signature (the provider's JWKS), audience and nonce, with a real token from the provider."""
    client = OidcClient(provider.issuer, server.client_id, CLIENT_SECRET, "openid")  # type: ignore[attr-defined]
    redirect = server + "/login/sso/callback"
    try:
        url = await client.authorization_url(redirect, "st-1", "nonce-1", "v" * 64)
        with provider_session(provider, KNOWN) as op:
            code = query(authorize(op, url))["code"]
        id_token = await client.exchange(code, redirect, "v" * 64)
        claims = await client.validate(id_token, "nonce-1")
        assert claims["preferred_username"] == KNOWN and claims["iss"] == provider.issuer

        head, payload, signature = id_token.split(".")
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        body["preferred_username"] = "admin"  # the payload changed, the signature kept
        forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
        with pytest.raises(Unauthenticated, match="chữ ký không đúng"):
            await client.validate(f"{head}.{forged}.{signature}", "nonce-1")
        with pytest.raises(Unauthenticated, match="nonce không khớp"):
            await client.validate(id_token, "nonce-khac")
        other = OidcClient(provider.issuer, "ung-dung-khac", CLIENT_SECRET, "openid")
        try:
            with pytest.raises(Unauthenticated, match="không cấp cho hệ thống này"):
                await other.validate(id_token, "nonce-1")
        finally:
            await other.close()
        with pytest.raises(Unauthenticated, match="không chấp nhận mã xác thực"):  # a code works once
            await client.exchange(code, redirect, "v" * 64)
    finally:
        await client.close()


def test_login_page_offers_sso(server: LiveServer) -> None:
    with _ours(server) as ours:
        page = ours.get("/login?next=/tasks")
    assert "Đăng nhập bằng tài khoản một cửa / SSO" in page.text and 'href="/login/sso?next=/tasks"' in page.text
