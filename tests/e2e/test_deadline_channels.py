"""Issue #21's done criterion, in one journey against a real server: a task deadline produces an in-app
notification, a system notification in Chromium, an e-mail received by a test SMTP server (aiosmtpd) and a Web
Push message decrypted by a local push service.

The server runs with e-mail to the test SMTP server, Web Push on, and deadlines checked every second; Phạm Thu Hà
(chuyenvien) has an e-mail address and a phone number (``eoffice org import``). Her browser allows notifications
and its service worker is active. Chromium's own PushManager would subscribe at Google's push service, which a
test cannot reach: her Web Push subscription is the local push service's, given to the server through the same
API call the account page makes after ``pushManager.subscribe`` (``POST /api/push/subscriptions`` with the
session's CSRF token). The deputy chairman assigns her a task due tomorrow; the reminder "đến hạn" then arrives
on all four channels with the same Vietnamese sentence and the task's link.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port
from tests.e2e.conftest import LiveServer, login, new_context, start_server
from tests.e2e.test_installable_app import NOTIFICATIONS_JS, SUMMARY, assign_task
from tests.eoffice.test_mail import Inbox
from tests.push_receiver import Browser, Receiver, check_vapid

pytestmark = pytest.mark.e2e

PUBLIC_URL = "https://vpdt.quangninh.gov.vn"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def push_service() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def channels_server(tmp_path_factory: pytest.TempPathFactory, smtp: tuple[Inbox, int]) -> Iterator[LiveServer]:
    var_dir = tmp_path_factory.mktemp("channels") / "var"
    people = var_dir.parent / "nguoi-dung.csv"
    people.write_text(
        "Tên đăng nhập,Email,Điện thoại\nchuyenvien,ha.pt@quangninh.gov.vn,0912 345 678\n", encoding="utf-8"
    )
    env = {
        "EOFFICE_SMTP_HOST": "127.0.0.1",
        "EOFFICE_SMTP_PORT": str(smtp[1]),
        "EOFFICE_SMTP_STARTTLS": "0",
        "EOFFICE_SMTP_FROM": "vpdt@quangninh.gov.vn",
        "EOFFICE_PUSH_ENABLED": "1",
        "EOFFICE_PUSH_HOSTS": "127.0.0.1",
        "EOFFICE_PUSH_SUBJECT": "mailto:vpdt@quangninh.gov.vn",
        "EOFFICE_PUBLIC_URL": PUBLIC_URL,
        "EOFFICE_NOTIFY_CHECK_SECONDS": "1",
        "EOFFICE_MAIL_RETRY_SECONDS": "1",
    }
    yield from start_server(var_dir, env_extra=env, steps=[["org", "import", str(people)]])


async def eventually(check: Callable[[], Any], seconds: float = 20.0) -> Any:
    """The first truthy value of ``check()``, polled for at most ``seconds`` (the receivers' threads fill them)."""
    end = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.05)
    return value


async def test_a_task_deadline_reaches_all_four_channels(
    browser: Any, channels_server: LiveServer, smtp: tuple[Inbox, int], push_service: Receiver
) -> None:
    from playwright.async_api import expect

    server = channels_server
    inbox, _ = smtp
    ctx = await new_context(browser, permissions=["notifications"])
    page = await ctx.new_page()
    await login(page, server, "chuyenvien")
    assert await page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.state)") == "activated"
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "online")

    # her Web Push subscription: the local push service's (see the module docstring), given as the page does
    device = Browser(f"{push_service.origin}/wpush/v2/may-tinh-bang-cua-chi-ha")
    answer = await page.evaluate(
        """async (sub) => {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch("/api/push/subscriptions", { method: "POST", body: JSON.stringify(sub),
        headers: { "content-type": "application/json", "X-CSRF-Token": csrf } });
      return [r.status, await r.json()];
    }""",
        device.subscription(),
    )
    assert answer == [200, {"ok": True, "subscriptions": 1}]
    vapid_key = (await (await page.request.get(server + "/api/push/key")).json())["public_key"]

    tomorrow = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + dt.timedelta(days=1)
    await assign_task(browser, server, tomorrow.isoformat())
    sentence = f"Nhiệm vụ «{SUMMARY}» đến hạn ngày {tomorrow:%d/%m/%Y} (còn 1 ngày)."

    # 1. in the app: stored for her, with the task's link, and counted by the bell
    async def due_note() -> dict[str, Any] | None:
        listed = await (await page.request.get(server + "/api/notifications?limit=100")).json()
        return next((n for n in listed["notifications"] if n["kind"] == "task.due" and n["text"] == sentence), None)

    end = time.monotonic() + 20
    while (note := await due_note()) is None:
        assert time.monotonic() < end, "no in-app reminder"
        await asyncio.sleep(0.2)
    link = note["link"]
    assert re.fullmatch(r"/tasks/\d+", link)
    await expect(page.locator("#bell")).not_to_have_attribute("data-unread", "0")

    # 2. a system notification in Chromium, through the service worker
    await page.wait_for_function(f"({NOTIFICATIONS_JS})({sentence!r}).then((ns) => ns.length > 0)")
    (shown,) = await page.evaluate(NOTIFICATIONS_JS, sentence)
    assert shown == {"title": "Nhiệm vụ sắp đến hạn", "body": sentence, "link": link, "tag": f"eoffice-{note['id']}"}

    # 3. the e-mail, received by the SMTP server
    mail = await eventually(lambda: next((m for m in inbox.messages if sentence in str(m["Subject"])), None))
    assert mail["Subject"] == f"[Văn phòng điện tử] {sentence}" and mail["To"] == "ha.pt@quangninh.gov.vn"
    plain = mail.get_body(("plain",))
    assert plain is not None and f"{PUBLIC_URL}{link}" in plain.get_content()

    # 4. the Web Push message: signed with the server's VAPID key, decrypted with the subscription's keys
    def pushed() -> dict[str, Any] | None:
        for req in list(push_service.received):
            message = json.loads(device.decrypt(req.body))
            if message["body"] == sentence:
                check_vapid(req.headers, vapid_key, push_service.origin)
                return dict(message)
        return None

    message = await eventually(pushed)
    assert message == {
        "id": note["id"],
        "title": "Nhiệm vụ sắp đến hạn",
        "body": sentence,
        "link": link,
        "url": f"{PUBLIC_URL}{link}",
    }
    await ctx.close()
