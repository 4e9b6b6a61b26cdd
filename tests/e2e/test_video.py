"""Video in the meeting room, in two headless Chromium tablets with fake cameras, through the real server: the chair
and a remote site (điểm cầu) see each other's video (frames decoded, from ``getStats``), the chair mutes the site,
and a dropped video connection comes back without reloading the page.

The server runs with ``EOFFICE_TEST_MEDIA_LOOPBACK=1`` (its ICE agents offer 127.0.0.1, which Chromium reaches with
``--allow-loopback-in-peer-connection``); no ICE servers. Media is kept small (320x240, 15 fps): the machine is
shared."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from eoffice.org import User
from meetings import lifecycle, meetings
from storage.db import Database
from tests.conftest import require
from tests.e2e.conftest import CHROMIUM_ARGS, LiveServer, login, new_context, save_artifacts_if_failed, start_server

pytestmark = pytest.mark.e2e

WEBRTC_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
SMALL = ("window.EOFFICE_VIDEO_CONSTRAINTS = "
         "{width: {ideal: 320}, height: {ideal: 240}, frameRate: {ideal: 15, max: 15}};")
SITE = "Điểm cầu thị xã Đông Triều"

FRAMES_DECODED = """() => {
  const pc = window.eofficeVideo && window.eofficeVideo.sub;
  if (!pc) return 0;
  return pc.getStats().then((stats) => {
    let n = 0;
    stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") n += s.framesDecoded || 0; });
    return n;
  });
}"""


@pytest.fixture(scope="module")
def video_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EOFFICE_TEST_MEDIA_LOOPBACK", "1")  # passed on to the server (EOFFICE_TEST_*)
        yield from start_server(tmp_path_factory.mktemp("video") / "var")


@pytest.fixture
async def webrtc_browser(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    executable = shutil.which("chromium")
    require("Chromium", executable is not None, "Debian's `chromium` is not on PATH")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS + WEBRTC_ARGS)
        try:
            yield browser
        finally:
            await save_artifacts_if_failed(request.node, browser)
            await browser.close()


async def live_meeting(var_dir: Path) -> int:
    """A meeting in progress in the server's database: chaired by lanhdao, with Đông Triều's site."""
    db = Database(f"sqlite+aiosqlite:///{var_dir}/eoffice.db")
    try:
        async with db.uow() as uow:
            users = {u.username: u for u in (await uow.session.scalars(select(User))).all()}
            m = await meetings.create_meeting(
                uow, users["vanthu"], title="Họp trực tuyến với các điểm cầu về chuyển đổi số",
                starts_at=dt.datetime.now(dt.UTC), chair_id=users["lanhdao"].id,
                secretary_id=users["chuyenvien"].id)
            await meetings.add_site(uow, users["vanthu"], m.id, name=SITE, operator_id=users["dongtrieu.lanhdao"].id)
            await meetings.add_participant(uow, users["vanthu"], m.id, user_id=users["phochutich"].id)
            await meetings.send_invitations(uow, users["vanthu"], m.id)
            await uow.commit()
        async with db.uow() as uow:
            await lifecycle.start_meeting(uow, users["lanhdao"], m.id)
            await uow.commit()
        return m.id
    finally:
        await db.dispose()


async def until_frames(page: Any, more_than: int = 0, within: float = 30.0) -> int:
    deadline = asyncio.get_running_loop().time() + within
    n = 0
    while asyncio.get_running_loop().time() < deadline:
        n = await page.evaluate(FRAMES_DECODED)
        if n > more_than:
            return int(n)
        await asyncio.sleep(0.5)
    raise AssertionError(f"no video frames decoded (framesDecoded={n}, wanted > {more_than})")


async def join_video(browser: Any, server: str, username: str, mid: int) -> Any:
    from playwright.async_api import expect

    ctx = await new_context(browser)
    await ctx.add_init_script(SMALL)
    page = await ctx.new_page()
    await login(page, server, username)
    await page.goto(f"{server}/meetings/{mid}/room")
    await expect(page.locator("#video")).to_have_attribute("data-video", "idle")
    await page.get_by_role("button", name="Tham gia video").click()
    await expect(page.locator("#video")).to_have_attribute("data-video", "live", timeout=30_000)
    return page


async def test_chair_and_site_see_each_other(webrtc_browser: Any, video_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await live_meeting(video_server.var_dir)
    chair = await join_video(webrtc_browser, video_server, "lanhdao", mid)
    started = time.monotonic()
    site = await join_video(webrtc_browser, video_server, "dongtrieu.lanhdao", mid)

    assert await until_frames(chair) > 0
    assert await until_frames(site) > 0
    first_frames = time.monotonic() - started
    await expect(chair.locator(".video-tile figcaption", has_text=SITE)).to_be_visible()
    await expect(site.locator(".video-tile figcaption", has_text="Trần Văn Hùng")).to_be_visible()
    await expect(chair.locator(".video-main .video-name")).to_have_text(SITE)
    box = await chair.get_by_role("button", name=f"Tắt micrô của {SITE}").bounding_box()
    assert box and box["height"] >= 44, "touch targets"

    # the chair mutes the site's camera: the site's own button shows it, and cannot lift it
    await chair.get_by_role("button", name=f"Tắt camera của {SITE}").click()
    await expect(site.get_by_role("button", name="Bật camera")).to_be_disabled()
    await expect(chair.locator('.video-tile[data-participant^="site:"]')).to_have_class(re.compile(r"\bno-video\b"))
    await chair.get_by_role("button", name=f"Bật camera của {SITE}").click()
    await expect(site.get_by_role("button", name="Tắt camera")).to_be_enabled()

    # the chair's panel shows each site's link (loss, round trip, bitrate); the site has no such panel
    await chair.locator("#video-links summary").click()
    row = chair.locator('#video-links tr[data-participant^="site:"]')
    await expect(row.locator("th")).to_have_text(SITE)
    await expect(row.locator('[data-field="rtt"]')).to_have_text(re.compile(r"^\d+ ms$"), timeout=30_000)
    await expect(row.locator('[data-field="loss"]')).to_have_text(re.compile(r"^\d+(\.\d)? %$"))
    await expect(row.locator('[data-field="bitrate"]')).to_have_text(re.compile(r"^\d+ kbit/s$"))
    await expect(site.locator("#video-links")).to_have_count(0)
    await chair.locator("#video-links summary").click()  # folded again: the panel is small

    # a dropped media connection: a new session, same page (no reload), video again
    await site.evaluate("window.__stillHere = true")
    dropped = time.monotonic()
    await site.evaluate("window.eofficeVideo.room.session.ws.close()")
    await expect(site.locator("#video")).to_have_attribute("data-video", "reconnecting")
    await expect(site.locator("#video .video-status")).to_have_text("Mất kết nối video, đang kết nối lại…")
    await expect(site.locator("#video")).to_have_attribute("data-video", "live", timeout=30_000)
    assert await until_frames(site) > 0
    back = time.monotonic() - dropped
    assert await until_frames(chair, more_than=0) > 0
    assert await site.evaluate("window.__stillHere === true"), "the page was not reloaded"
    print(f"video e2e: second site logs in, opens the room, joins, frames decoded both ways {first_frames:.2f} s; "
          f"media socket dropped to frames decoded again {back:.2f} s")

    for page in (chair, site):
        await page.get_by_role("button", name="Rời video").click()
        await page.context.close()


async def test_outsider_is_refused(webrtc_browser: Any, video_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await live_meeting(video_server.var_dir)
    ctx = await new_context(webrtc_browser)
    page = await ctx.new_page()
    await login(page, video_server, "stttt.vanthu")
    code = await page.evaluate("""(mid) => new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws/meetings/${mid}/media`);
      ws.onclose = (e) => resolve(e.code);
    })""", mid)
    assert code == 4403
    await expect(page.locator("#video")).to_have_count(0)  # not on a room page
    await ctx.close()
