"""Two-factor login through the real pages (#18), in headless Chromium against a real server process: the
clerk enrols from her account page (QR code shown, secret readable), keeps her recovery codes, logs out, and
logs in again with her password then a code from the authenticator."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyotp
import pytest

from tests.e2e.conftest import DEMO_PASSWORD, LiveServer, login

pytestmark = pytest.mark.e2e


def _code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30 * offset_steps))


async def test_clerk_enrols_and_logs_in_with_a_code(page: Any, live_server: LiveServer) -> None:
    from playwright.async_api import expect

    await login(page, live_server, "vanthu")
    await page.goto(live_server + "/account")
    await page.get_by_role("link", name="Quản lý xác thực hai lớp").click()
    await expect(page.locator("h1")).to_contain_text("Xác thực hai lớp")
    await page.get_by_role("button", name="Bắt đầu bật xác thực hai lớp").click()

    qr = page.get_by_role("img", name="Mã QR để thêm tài khoản vào ứng dụng xác thực")
    await expect(qr).to_be_visible()
    # The SVG really loaded: wait for the image's own load event rather than sampling it once, because
    # "visible" is true as soon as the <img> has its box, before the bytes arrive on a busy machine.
    width = await qr.evaluate(
        """img => img.complete ? img.naturalWidth : new Promise(done => {
            img.addEventListener("load", () => done(img.naturalWidth), {once: true});
            img.addEventListener("error", () => done(0), {once: true});
        })"""
    )
    assert width > 100
    secret = (await page.locator("#totp-secret").text_content() or "").strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)

    first = _code(secret)
    await page.get_by_label("Mã 6 chữ số trên ứng dụng").fill(first)
    await page.get_by_role("button", name="Xác nhận và bật").click()
    await expect(page.get_by_text("Đã bật xác thực hai lớp")).to_be_visible()
    await expect(page.locator("#recovery-codes li")).to_have_count(10)

    await page.get_by_role("button", name="Đăng xuất").click()
    await login(page, live_server, "vanthu", DEMO_PASSWORD)
    await expect(page).to_have_url(live_server + "/login/code")
    await expect(page.locator("h1")).to_contain_text("Xác thực hai lớp")

    # The code that confirmed the enrolment cannot be replayed; the next one logs her in.
    await page.get_by_label("Mã xác thực").fill(first)
    await page.get_by_role("button", name="Xác nhận").click()
    await expect(page.get_by_text("đã được dùng")).to_be_visible()
    await page.get_by_label("Mã xác thực").fill(_code(secret, 1))
    await page.get_by_role("button", name="Xác nhận").click()
    await expect(page).to_have_url(live_server + "/")
    await expect(page.locator("body")).to_contain_text("Nguyễn Thị Lan")
