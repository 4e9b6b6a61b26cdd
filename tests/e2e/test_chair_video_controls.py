"""The chair's video controls in Chromium. Recording: the chair records from the room page, every page of the room (a
site in the video, a delegate's tablet that never joined it) shows the red "Đang ghi hình" badge until the chair
stops, and the files are listed on the meeting's page for download. Mute all, and the floor that opens a site's
microphone with its cue."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import test_video
from tests.e2e.conftest import LiveServer, login, new_context
from tests.e2e.test_video import SITE, join_video, live_meeting, until_frames

pytestmark = pytest.mark.e2e
video_server = test_video.video_server  # the same fixtures (a server with loopback media, Chromium with fake media)
webrtc_browser = test_video.webrtc_browser


async def test_everyone_sees_the_meeting_is_recorded(webrtc_browser: Any, video_server: LiveServer) -> None:
    from playwright.async_api import expect

    mid = await live_meeting(video_server.var_dir)
    chair = await join_video(webrtc_browser, video_server, "lanhdao", mid)
    site = await join_video(webrtc_browser, video_server, "dongtrieu.lanhdao", mid)
    ctx = await new_context(webrtc_browser)
    tablet = await ctx.new_page()
    await login(tablet, video_server, "phochutich")
    await tablet.goto(f"{video_server}/meetings/{mid}/room")
    await expect(tablet.locator("#video")).to_have_attribute("data-video", "idle")
    assert await until_frames(chair) > 0 and await until_frames(site) > 0

    badge = "Đang ghi hình"
    for page in (chair, site, tablet):
        await expect(page.get_by_role("status").filter(has_text=badge)).to_be_hidden()
    await expect(site.get_by_role("button", name="Ghi hình")).to_be_hidden()  # not the site's to decide
    record = chair.get_by_role("button", name="Ghi hình")
    box = await record.bounding_box()
    assert box and box["height"] >= 44, "touch targets"
    await record.click()
    for page in (chair, site, tablet):
        await expect(page.get_by_role("status").filter(has_text=badge)).to_be_visible(timeout=15_000)
    frames = await until_frames(chair)
    await until_frames(chair, more_than=frames + 30)  # a couple of seconds of video recorded
    await chair.get_by_role("button", name="Dừng ghi hình").click()
    for page in (chair, site, tablet):
        await expect(page.get_by_role("status").filter(has_text=badge)).to_be_hidden(timeout=15_000)

    await chair.goto(f"{video_server}/meetings/{mid}")
    card = chair.locator("#recordings-card")
    await expect(card.get_by_role("heading", name="Bản ghi hình cuộc họp")).to_be_visible()
    rows = card.locator("tbody tr")
    assert await rows.count() >= 3, await card.inner_text()  # both sites' sound, and video
    await expect(card.locator("tbody tr", has_text="Âm thanh").first).to_be_visible()
    await expect(card.locator("tbody tr", has_text="Hình ảnh").first).to_be_visible()
    async with chair.expect_download() as info:
        await card.get_by_role("link", name="Tải về").first.click()
    download = await info.value
    assert download.suggested_filename.endswith(".webm")
    for page in (site, tablet):
        await page.context.close()
    await chair.context.close()


async def test_mute_all_then_the_floor_opens_the_sites_microphone(webrtc_browser: Any,
                                                                  video_server: LiveServer) -> None:
    """The chair's "Tắt micrô tất cả" (the site cannot open its microphone again), then "Trao lời" to the site: its
    microphone opens and its page shows "Mời phát biểu"."""
    from playwright.async_api import expect

    mid = await live_meeting(video_server.var_dir)
    chair = await join_video(webrtc_browser, video_server, "lanhdao", mid)
    site = await join_video(webrtc_browser, video_server, "dongtrieu.lanhdao", mid)
    await expect(chair.get_by_role("button", name=f"Tắt micrô của {SITE}")).to_be_visible(timeout=30_000)
    await expect(site.get_by_role("button", name="Tắt micrô tất cả")).to_be_hidden()
    await chair.get_by_role("button", name="Tắt micrô tất cả").click()
    await expect(site.get_by_role("button", name="Bật micrô")).to_be_disabled()
    await expect(chair.get_by_role("button", name="Tắt micrô", exact=True)).to_be_enabled()  # the chair's own
    await chair.get_by_role("button", name=f"Trao lời cho {SITE}").click()
    await expect(site.locator("#room-alert")).to_contain_text("Mời phát biểu")
    await expect(site.get_by_role("button", name="Tắt micrô", exact=True)).to_be_enabled()
    for page in (chair, site):
        await page.context.close()
