"""The installable web app in headless Chromium (issue #21): the manifest is valid and Chromium finds no
installability error (its own check, over the DevTools protocol), the icons decode at their sizes, the service
worker activates and controls the page and caches nothing but static files; with notifications allowed for the
site, a task assigned in another browser becomes a system notification (the service worker registration's
getNotifications: Vietnamese title and sentence, the task's link), and opening it goes to the task."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    CHROMIUM_ARGS,
    DEFAULT_TIMEOUT_MS,
    LOCALE,
    TIMEZONE,
    VIEWPORT,
    LiveServer,
    login,
    new_context,
)
from tests.e2e.test_office_journey import _select_containing

pytestmark = pytest.mark.e2e

SUMMARY = "Tờ trình về việc phê duyệt Kế hoạch chuyển đổi số thị xã Đông Triều năm 2027"  # the demo's, submitted
NOTIFICATIONS_JS = """async (needle) => {
  const reg = await navigator.serviceWorker.ready;
  return (await reg.getNotifications()).filter((n) => n.body.includes(needle))
    .map((n) => ({ title: n.title, body: n.body, link: n.data && n.data.link, tag: n.tag }));
}"""
CACHED_URLS_JS = """async () => {
  const out = [];
  for (const key of await caches.keys()) {
    const cache = await caches.open(key);
    for (const request of await cache.keys()) out.push([key, request.url]);
  }
  return out;
}"""


async def assign_task(browser: Any, live_server: LiveServer, deadline: str) -> None:
    """The deputy chairman directs the demo's submitted document to Phạm Thu Hà (chuyenvien), in his own browser."""
    from playwright.async_api import expect

    ctx = await new_context(browser)
    leader = await ctx.new_page()
    await login(leader, live_server, "phochutich")
    await leader.goto(live_server + "/documents")
    await leader.locator("#h-direct").locator("xpath=..").get_by_text(SUMMARY).click()
    await leader.fill("textarea[name=text]", "Giao chị Hà chủ trì tham mưu, báo cáo trước hạn.")
    await _select_containing(leader, "select[name=main]", "Phạm Thu Hà")
    await leader.fill("#direct input[name=deadline]", deadline)
    async with leader.expect_navigation():
        await leader.get_by_role("button", name="Chỉ đạo và giao việc").click()
    await expect(leader.locator(".alert-ok")).to_have_text("Đã cho ý kiến chỉ đạo và giao việc.")
    await ctx.close()


async def controlled_page(ctx: Any, live_server: LiveServer, username: str) -> Any:
    """A logged-in page once the service worker is active and controls it."""
    page = await ctx.new_page()
    await login(page, live_server, username)
    assert await page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.state)") == "activated"
    if not await page.evaluate("!!navigator.serviceWorker.controller"):
        await page.reload()
    assert await page.evaluate("!!navigator.serviceWorker.controller")
    return page


async def profile(browser: Any, path: Path) -> Any:
    """A persistent (not incognito) profile with notifications allowed: Chromium does not offer to install an app
    from an incognito window, so its installability check needs one."""
    ctx = await browser.browser_type.launch_persistent_context(
        str(path),
        executable_path=shutil.which("chromium"),
        args=CHROMIUM_ARGS,
        headless=True,
        locale=LOCALE,
        timezone_id=TIMEZONE,
        viewport=VIEWPORT,
        has_touch=True,
        permissions=["notifications"],
    )
    ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
    return ctx


async def test_installable_app_and_system_notification(browser: Any, live_server: LiveServer, tmp_path: Path) -> None:
    from playwright.async_api import expect

    ctx = await profile(browser, tmp_path / "profile")
    page = await controlled_page(ctx, live_server, "chuyenvien")

    # the manifest, as Chromium reads it, and Chromium's own installability check
    cdp = await ctx.new_cdp_session(page)
    got = await cdp.send("Page.getAppManifest")
    assert got["url"] == live_server + "/manifest.webmanifest" and got["errors"] == [], got["errors"]
    assert (await cdp.send("Page.getInstallabilityErrors"))["installabilityErrors"] == []
    manifest = await (await page.request.get(live_server + "/manifest.webmanifest")).json()
    assert manifest["short_name"] == "Văn phòng điện tử" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:  # decoded by the browser at the declared size
        size = await page.evaluate(
            """(src) => new Promise((ok, fail) => {
          const img = new Image(); img.onload = () => ok(`${img.naturalWidth}x${img.naturalHeight}`);
          img.onerror = () => fail(new Error(src)); img.src = src; })""",
            icon["src"],
        )
        assert size == icon["sizes"], icon
    assert (
        await page.evaluate("fetch('/favicon.ico').then((r) => r.ok && r.headers.get('content-type'))")
        == "image/x-icon"
    )

    # pages and the API went through the worker's scope: only /static/ files are in its cache
    await page.goto(live_server + "/tasks")
    await page.evaluate("fetch('/api/notifications?limit=1').then((r) => r.json())")
    cached = await page.evaluate(CACHED_URLS_JS)
    assert cached, "static files are cached"
    for key, url in cached:
        assert re.fullmatch(r"eoffice-static-[0-9a-f]{16}", key) and url.startswith(live_server + "/static/"), url

    # the account page's button asks the permission (granted for this profile) and says so
    await page.goto(live_server + "/account#device-notifications")
    state = page.locator("#notify-state")
    await expect(state).to_have_text("Đã bật thông báo trên thiết bị này.")
    await page.get_by_role("button", name="Bật thông báo trên thiết bị này").click()
    await expect(state).to_have_text("Đã bật thông báo trên thiết bị này.")
    await expect(page.get_by_role("button", name="Bật thông báo trên thiết bị này")).to_be_enabled()

    # a task assigned in another browser: a system notification, shown through the service worker
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "online")
    await assign_task(browser, live_server, "2027-03-31")
    await page.wait_for_function(f"({NOTIFICATIONS_JS})({SUMMARY!r}).then((ns) => ns.length > 0)")
    (shown,) = await page.evaluate(NOTIFICATIONS_JS, SUMMARY)
    assert shown["title"] == "Nhiệm vụ giao cho tôi (chủ trì, phối hợp)"
    assert shown["body"] == f"Bạn được Lê Minh Tuấn giao chủ trì xử lý «{SUMMARY}», hạn 31/03/2027."
    assert re.fullmatch(r"/tasks/\d+", shown["link"]) and shown["tag"].startswith("eoffice-")

    # opening it: the service worker's click handler (a script cannot click a system notification)
    (worker,) = ctx.service_workers
    await worker.evaluate(
        """async (needle) => {
      const ns = await self.registration.getNotifications();
      await self.eofficeOpenNotification(ns.find((n) => n.body.includes(needle)));
    }""",
        SUMMARY,
    )
    await expect(page).to_have_url(live_server + shown["link"])
    await expect(page.locator("body")).to_contain_text(SUMMARY)
    assert await page.evaluate(NOTIFICATIONS_JS, SUMMARY) == []  # closed once opened
    await ctx.close()
