"""The OpenID Connect login journey in Chromium against a real provider (Debian's Glewlwyd): the SSO button on
our login page, the provider's own login page, back on our home page as the mapped account; then logout ends
our session (a live socket of another tab closes at once) and takes the browser to the provider's logout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.sso_world import PASSWORD, sso_server
from tests.oidc_provider import Provider, running_glewlwyd


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_glewlwyd(tmp_path_factory.mktemp("glewlwyd")) as op:
        yield op


@pytest.fixture(scope="module")
def server(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    for ours in sso_server(provider, tmp_path_factory.mktemp("sso") / "var", scopes="openid"):
        provider.add_user("chuyenvien", PASSWORD, name="Phạm Thu Hà", email="ha.pt@quangninh.gov.vn",
                          grant_clients=[ours.client_id])  # type: ignore[attr-defined]
        yield ours


async def test_sso_login_and_logout_journey(page: Any, context: Any, server: LiveServer, provider: Provider) -> None:
    await page.goto(server + "/login?next=/tasks")
    await page.get_by_role("link", name="Đăng nhập bằng tài khoản một cửa / SSO").click()

    await page.wait_for_url(re.compile("^" + re.escape(provider.url) + r"/login\.html"))  # the provider's page
    await page.locator("#username").fill("chuyenvien")
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#loginbut").click()
    await page.get_by_role("button", name=re.compile("Continue")).click()  # Glewlwyd: go on to the application

    await page.wait_for_url(server + "/tasks")  # back where the login started, logged in as the mapped account
    assert await page.locator(".who").inner_text() == "Phạm Thu Hà"

    other = await context.new_page()  # another tab of the same session, with its live socket
    async with other.expect_websocket() as opened:
        await other.goto(server + "/")
    socket = await opened.value
    assert not socket.is_closed()

    await page.get_by_role("button", name="Đăng xuất").click()
    await page.wait_for_url(re.compile("^" + re.escape(provider.url) + "/"))  # the provider's logout
    assert "end_session" in page.url or "prompt=end_session" in page.url, page.url
    if not socket.is_closed():  # the other tab lost its live access at once (usually before the page got here)
        await socket.wait_for_event("close")

    answer = await context.request.get(server + "/tasks", max_redirects=0)
    assert answer.status == 303 and answer.headers["location"].startswith("/login")  # our session is over
