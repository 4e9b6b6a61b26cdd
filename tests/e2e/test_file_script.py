"""An uploaded HTML or SVG file never runs script in the session of the leader who opens it (issue 14, critical).

The attacker (the specialist the task was given to) posts a progress report with an HTML file, an SVG file and a
GIF/script polyglot. Their script does what the security review's did: reads the CSRF token from a page and creates
an API token for whoever opens it (synchronous XHR, so it is done before the document's load event), and marks
itself (``localStorage`` and a request to ``/pwned-...``). The leader (lanhdao) opens each file in Chromium: by
navigating to it, and from an app page in an ``<iframe>``, an ``<img>`` and an ``<object>``. A positive control
first shows the payload does create a token when it is allowed to run on the app's origin.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import DEMO_PASSWORD, LiveServer, login

pytestmark = pytest.mark.e2e

STEAL = (
    "try{var x=new XMLHttpRequest();x.open('GET','/',false);x.send();"
    "var c=/name=\"csrf-token\" content=\"([^\"]+)\"/.exec(x.responseText)[1];"
    "var y=new XMLHttpRequest();y.open('POST','/api/tokens',false);"
    "y.setRequestHeader('Content-Type','application/json');y.setRequestHeader('X-CSRF-Token',c);"
    "y.send('{\"name\":\"pwned\"}');}catch(e){}"
    "try{localStorage.setItem('pwned','{kind}')}catch(e){}"
    "new Image().src='/pwned-{kind}';"
)
HTML = f"<!doctype html><html><body><h1>Báo cáo</h1><script>{STEAL.replace('{kind}', 'html')}</script></body></html>"
SVG = ('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" '
       f'onload="{STEAL.replace("{kind}", "svg-onload").replace(chr(34), "&quot;")}">'
       f'<script>{STEAL.replace("{kind}", "svg")}</script><rect width="10" height="10"/></svg>')
GIF = ("GIF89a/*\x01\x00\x01\x00\x00\x00\x00;*/=1;" + STEAL.replace("{kind}", "gif")
       + f"//<script>{STEAL.replace('{kind}', 'gif-html')}</script>")


def _bearer(server: LiveServer, username: str) -> str:
    """An API token for ``username``, made through the login form and POST /api/tokens (as a user would)."""
    import re

    with httpx.Client(base_url=server, timeout=60) as c:
        page = c.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": csrf})
        assert r.status_code == 303, r.text
        # the CSRF token is bound to the session: read the one the logged-in pages carry
        home = c.get("/").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', home).group(1)  # type: ignore[union-attr]
        r = c.post("/api/tokens", json={"name": "e2e"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def _pwned_tokens(server: LiveServer) -> int:
    with sqlite3.connect(server.var_dir / "eoffice.db") as db:
        return int(db.execute("select count(*) from api_tokens where name = 'pwned'").fetchone()[0])


def _attack(server: LiveServer) -> dict[str, str]:
    """A task from lanhdao to chuyenvien, and chuyenvien's report carrying the three files: their URLs by kind."""
    tokens = {name: _bearer(server, name) for name in ("vanthu", "lanhdao", "chuyenvien")}
    with httpx.Client(base_url=server, timeout=30) as c:
        def call(name: str, path: str, **kw: Any) -> Any:
            r = c.post(path, headers={"Authorization": f"Bearer {tokens[name]}", **kw.pop("headers", {})}, **kw)
            assert r.status_code == 201, r.text
            return r.json()

        def upload(name: str, data: bytes, filename: str, ctype: str) -> int:
            return int(call(name, "/api/files", content=data,
                            headers={"Content-Type": ctype, "X-Filename": quote(filename)})["id"])

        import pymupdf

        pdf = pymupdf.open()
        pdf.new_page().insert_text((72, 72), "Cong van")
        doc = call("vanthu", "/api/documents/incoming", json={
            "sender": "Ủy ban nhân dân thị xã Đông Triều", "notation": "99/UBND-VP", "date_issued": "2026-01-05",
            "doc_type": "cong_van", "summary": "Công văn về việc báo cáo tiến độ chuyển đổi số",
            "signer": "Vũ Đức Thắng", "urgency": "thuong",
            "upload_ids": [upload("vanthu", pdf.tobytes(), "cv.pdf", "application/pdf")]})
        doc_id = doc["document"]["id"]
        me = c.get("/api/me", headers={"Authorization": f"Bearer {tokens['chuyenvien']}"}).json()
        lead = c.get("/api/me", headers={"Authorization": f"Bearer {tokens['lanhdao']}"}).json()
        call("vanthu", f"/api/documents/{doc_id}/submit", json={"to_user_id": lead["id"]})
        task = call("lanhdao", f"/api/documents/{doc_id}/direction", json={
            "text": "Đồng chí Hà tổng hợp, báo cáo.", "main": {"user_id": me["id"]}})["tasks"][0]["id"]
        files = {"html": (HTML.encode(), "bao-cao.html", "text/html"),
                 "svg": (SVG.encode(), "so-do.svg", "image/svg+xml"),
                 "gif": (GIF.encode("latin-1"), "anh.gif", "text/html")}
        ids = [upload("chuyenvien", data, name, ctype) for data, name, ctype in files.values()]
        updates = call("chuyenvien", f"/api/tasks/{task}/updates",
                       json={"text": "Báo cáo tiến độ", "progress": 50, "upload_ids": ids})["updates"]
    by_name = {u["filename"]: u["file_url"] for u in updates if u.get("file_url")}
    return {kind: server + by_name[name] for kind, (_d, name, _t) in files.items()}


async def test_uploaded_html_and_svg_never_run_script(page: Any, live_server: LiveServer) -> None:
    urls = _attack(live_server)
    markers: list[str] = []
    page.context.on("request", lambda r: markers.append(r.url) if "/pwned-" in r.url else None)
    await login(page, live_server, "lanhdao")

    # positive control: the very payload, given an app-origin page that runs it, does steal a token
    await page.route(live_server + "/control-page", lambda route: route.fulfill(
        status=200, content_type="text/html", body=HTML))
    await page.goto(live_server + "/control-page")
    assert _pwned_tokens(live_server) == 1 and any("/pwned-html" in m for m in markers)
    assert await page.evaluate("localStorage.getItem('pwned')") == "html"
    await page.evaluate("localStorage.removeItem('pwned')")
    await page.unroute(live_server + "/control-page")
    markers.clear()

    # 1. opened directly: HTML and SVG are downloads, never documents of the app's origin
    for kind in ("html", "svg"):
        async with page.expect_download() as info:
            with pytest.raises(Exception, match=r"Download is starting|ERR_ABORTED"):
                await page.goto(urls[kind])
        download = await info.value
        assert download.suggested_filename in ("bao-cao.html", "so-do.svg")
    # the polyglot is shown as what its bytes are, an image, in a sandboxed document
    response = await page.goto(urls["gif"])
    assert response.headers["content-type"] == "image/gif"
    assert "sandbox" in response.headers["content-security-policy"]
    await page.wait_for_load_state("load")

    # 2. embedded in an app page. An <iframe> of an HTML/SVG file turns into a download too (attachment);
    # an <iframe> of the image is refused (frame-ancestors 'none'); <img> of HTML/SVG does not decode (served as
    # octet-stream); <object> is refused by the page CSP (object-src 'none').
    await page.goto(live_server + "/")
    for kind in ("html", "svg"):
        async with page.expect_download() as info:
            await page.evaluate("""(url) => {
              const f = document.createElement("iframe"); f.src = url; document.body.append(f);
            }""", urls[kind])
        assert (await info.value).url == urls[kind]
    results = await page.evaluate("""async (items) => {
      const out = [];
      for (const [tag, url] of items) {
        const el = document.createElement(tag);
        if (tag === "object") el.data = url; else el.src = url;
        const done = new Promise((resolve) => {
          for (const e of ["load", "error"]) el.addEventListener(e, () => resolve(e), { once: true });
          document.addEventListener("securitypolicyviolation", (ev) => {
            if (ev.blockedURI === url) resolve("csp:" + ev.effectiveDirective);
          });
        });
        document.body.append(el);
        out.push(await done);
      }
      return out;
    }""", [["img", urls["html"]], ["img", urls["svg"]], ["img", urls["gif"]], ["iframe", urls["gif"]],
           ["object", urls["html"]], ["object", urls["svg"]], ["object", urls["gif"]]])
    assert results[:3] == ["error", "error", "load"], results
    assert results[3] == "load", results  # the frame's error page: Chromium shows no content of a refused frame
    assert set(results[4:]) <= {"error", "csp:object-src"}, results  # blocked before any request is made
    frame = page.frames[-1]
    assert frame.url != urls["gif"] or await frame.evaluate("document.body ? document.body.innerHTML : ''") == ""

    # 3. nothing ran anywhere: no token was created, no marker request, nothing in the app's storage
    assert _pwned_tokens(live_server) == 1  # only the control's
    assert markers == []
    assert await page.evaluate("localStorage.getItem('pwned')") is None
