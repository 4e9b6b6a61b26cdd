"""The installable app's public files and the Web Push API through the app (issue #21): the manifest (Vietnamese
names, icons that load at their declared sizes), the service worker at the root with its headers and the page
CSP, the favicon; subscribing needs a session's CSRF token, is refused while Web Push is off, is per user; and
the app's own sender delivers a task assignment to a local push service, decrypted there. SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import re
import struct
from dataclasses import replace

from starlette.testclient import TestClient

from storage.settings import Settings
from tests.push_receiver import Browser, Receiver, check_vapid
from tests.web.conftest import login, run
from tests.web.file_world import Api, setup_org, wait_until
from web.app import create_app


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def csrf_meta(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


def test_manifest_service_worker_and_icons_are_public_and_valid(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        r = c.get("/manifest.webmanifest")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/manifest+json")
        manifest = json.loads(r.content.decode("utf-8"))
        assert manifest["short_name"] == "Văn phòng điện tử" and manifest["lang"] == "vi"
        assert manifest["start_url"] == "/" and manifest["scope"] == "/" and manifest["display"] == "standalone"
        assert manifest["theme_color"] == "#b3261e"
        purposes = set()
        for icon in manifest["icons"]:
            got = c.get(icon["src"])
            assert got.status_code == 200 and got.headers["content-type"] == "image/png", icon
            width, height = (int(x) for x in icon["sizes"].split("x"))
            assert png_size(got.content) == (width, height)
            purposes.add((icon["sizes"], icon["purpose"]))
        assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= purposes

        sw = c.get("/sw.js")
        assert sw.status_code == 200 and sw.headers["content-type"].startswith("text/javascript")
        assert sw.headers["cache-control"] == "no-cache" and sw.headers["service-worker-allowed"] == "/"
        assert "worker-src 'self'" in sw.headers["content-security-policy"]
        assert "__ASSET_VERSION__" not in sw.text and re.search(r'const VERSION = "[0-9a-f]{16}"', sw.text)
        assert 'url.pathname.startsWith("/static/")' in sw.text  # only static files are cached

        ico = c.get("/favicon.ico")
        assert ico.status_code == 200 and ico.headers["content-type"] == "image/x-icon"
        assert ico.content[:4] == b"\x00\x00\x01\x00"

        page = c.get("/login").text  # every page: the manifest, the theme colour and the worker's registration
        assert '<link rel="manifest" href="/manifest.webmanifest">' in page
        assert '<meta name="theme-color" content="#b3261e">' in page and "/static/js/sw-register.js" in page


def test_subscribing_needs_csrf_and_push_enabled_and_is_per_user(settings: Settings) -> None:
    _org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    browser = Browser("https://fcm.googleapis.com/fcm/send/thiet-bi-cua-chi-ha")
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        api = Api(c, tokens)
        assert c.get("/api/push/key", headers=api.auth("chuyenvien")).json() == {"enabled": False, "public_key": ""}
        r = api.post("chuyenvien", "/api/push/subscriptions", browser.subscription())
        assert r.status_code == 409 and "chưa bật thông báo đẩy" in r.json()["message"]

    with TestClient(
        create_app(replace(settings, push_enabled=True)), base_url="http://testserver", follow_redirects=False
    ) as c:
        api = Api(c, tokens)
        key = c.get("/api/push/key", headers=api.auth("chuyenvien")).json()
        assert key["enabled"] is True and len(key["public_key"]) == 87  # a P-256 point, base64url
        login(c, "chuyenvien")
        account = c.get("/account").text
        assert "Bật thông báo trên thiết bị này" in account and f'data-push-key="{key["public_key"]}"' in account
        assert 'name="push:task.due"' in account
        r = c.post("/api/push/subscriptions", json=browser.subscription())
        assert r.status_code == 403 and r.json()["error"] == "csrf"
        csrf = {"X-CSRF-Token": csrf_meta(account)}
        bad = {**browser.subscription(), "keys": {"p256dh": "khong-phai-khoa", "auth": "x"}}
        assert c.post("/api/push/subscriptions", json=bad, headers=csrf).status_code == 400
        for elsewhere in (
            "http://127.0.0.1:6379/",
            "https://10.0.0.5/push",
            "http://fcm.googleapis.com/fcm/send/x",
            "https://fcm.googleapis.com.example.org/x",
        ):  # not a push service: no request forgery
            r = c.post("/api/push/subscriptions", json={**browser.subscription(), "endpoint": elsewhere}, headers=csrf)
            assert r.status_code == 400 and "dịch vụ thông báo đẩy" in r.json()["message"], elsewhere
        r = c.post("/api/push/subscriptions", json=browser.subscription(), headers=csrf)
        assert r.status_code == 200 and r.json() == {"ok": True, "subscriptions": 1}
        prefs = c.get("/api/notifications/preferences").json()
        assert prefs["push_enabled"] is True and prefs["push_subscriptions"] == 1
        assert all(k["push"] for k in prefs["kinds"])
        r = api.post("truongphong", "/api/push/unsubscribe", {"endpoint": browser.endpoint})
        assert r.status_code == 404  # somebody else's browser
        r = c.post("/api/push/unsubscribe", json={"endpoint": browser.endpoint}, headers=csrf)
        assert r.status_code == 200 and r.json() == {"ok": True, "subscriptions": 0}
        r = c.put(
            "/api/notifications/preferences",
            json={"kinds": {"task.due": {"in_app": True, "push": False}}},
            headers=csrf,
        )
        assert r.status_code == 200
        assert [k["push"] for k in r.json()["kinds"] if k["kind"] == "task.due"] == [False]


def test_the_apps_sender_delivers_an_assignment_to_the_push_service(settings: Settings) -> None:
    org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    service = Receiver()
    browser = Browser(f"{service.origin}/wpush/may-tinh-bang")
    app_settings = replace(
        settings,
        push_enabled=True,
        push_subject="mailto:vpdt@quangninh.gov.vn",
        push_hosts=("127.0.0.1",),
        public_url="https://vpdt.quangninh.gov.vn",
    )
    try:
        with TestClient(create_app(app_settings), base_url="http://testserver", follow_redirects=False) as c:
            api = Api(c, tokens)
            r = api.post("chuyenvien", "/api/push/subscriptions", browser.subscription())
            assert r.status_code == 200, r.text
            public_key = c.get("/api/push/key", headers=api.auth("chuyenvien")).json()["public_key"]
            task = api.task_for_specialist(org)
            wait_until(lambda: service.received, timeout=15)
        (req,) = service.received
        assert check_vapid(req.headers, public_key, service.origin)["sub"] == "mailto:vpdt@quangninh.gov.vn"
        message = json.loads(browser.decrypt(req.body))
        assert message["title"] == "Nhiệm vụ giao cho tôi (chủ trì, phối hợp)"
        assert message["body"].startswith("Bạn được Đỗ Quang Vinh giao chủ trì xử lý «Công văn về việc triển khai")
        assert message["link"] == f"/tasks/{task}"
        assert message["url"] == f"https://vpdt.quangninh.gov.vn/tasks/{task}"
    finally:
        service.close()
