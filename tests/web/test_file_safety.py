"""Uploaded files never run script in another user's session (issue 14, critical): the served type comes from the
bytes, every file answer is sandboxed, every page and API answer carries the security headers, and user files can
be served from a separate origin with short-lived signed links."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from starlette.testclient import TestClient

from storage.settings import Settings, _files_origin
from tests.eoffice.conftest import Org, make_pdf
from tests.web.conftest import run
from tests.web.file_world import Api, setup_org
from web import file_response, file_types
from web.app import create_app
from web.file_response import file_headers

HTML = b"<!doctype html><html><body><script>fetch('/api/tokens',{method:'POST'})</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
XHTML = b'<html xmlns="http://www.w3.org/1999/xhtml"><body><script>alert(1)</script></body></html>'
GIF_POLYGLOT = b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00;*/=1;alert(1)//<script>alert(1)</script>"
PDF = make_pdf(["Báo cáo tiến độ"])

FILES = [  # (bytes, name, declared type) -> (served type, disposition)
    (HTML, "bao-cao.html", "text/html", ("application/octet-stream", "attachment")),
    (SVG, "so-do.svg", "image/svg+xml", ("application/octet-stream", "attachment")),
    (XHTML, "trang.xhtml", "application/xhtml+xml", ("application/octet-stream", "attachment")),
    (b"fetch('/api/tokens',{method:'POST'})", "tien-ich.js", "text/javascript",
     ("application/octet-stream", "attachment")),
    (PDF, "to-trinh.html", "text/html", ("application/pdf", "attachment")),  # a PDF renamed .html is a PDF
    (HTML, "to-trinh-gia.pdf", "application/pdf", ("application/octet-stream", "attachment")),  # HTML "as PDF"
    (GIF_POLYGLOT, "anh.gif", "text/html", ("image/gif", "inline")),  # an image, sandboxed, never a page
]


def _assert_sandboxed(headers: Any) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    assert "sandbox" in [d.strip() for d in csp.split(";")], csp
    assert "default-src 'none'" in csp and "script-src" not in csp


def _assert_page_headers(headers: Any) -> None:
    csp = headers["content-security-policy"]
    for directive in ("script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'",
                      "form-action 'self'"):
        assert directive in csp, (directive, csp)
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, Org, Api]]:
    org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as client:
        yield client, org, Api(client, tokens)


def test_served_type_is_decided_from_the_bytes(world: tuple[TestClient, Org, Api]) -> None:
    client, org, api = world
    task = api.task_for_specialist(org)
    urls = api.post_files(task, [(data, name, ctype) for data, name, ctype, _ in FILES])
    for url, (data, name, _ctype, (served, disposition)) in zip(urls, FILES, strict=True):
        r = client.get(url, headers=api.auth("lanhdao"))  # the leader who directed the task opens it
        assert r.status_code == 200, (name, r.text)
        assert r.content == data
        assert r.headers["content-type"] == served, name
        assert r.headers["content-disposition"].startswith(f"{disposition}; filename=\""), name
        _assert_sandboxed(r.headers)
    # the outsider still gets nothing, and the 404 carries the page headers
    r = client.get(urls[0], headers=api.auth("stttt.vanthu"))
    assert r.status_code == 404
    _assert_page_headers(r.headers)


def test_hostile_filename_is_refused_at_upload_and_cleaned_when_served(world: tuple[TestClient, Org, Api]) -> None:
    client, _org, api = world
    # an upload whose name hides its extension (RLO) or smuggles a header (CR LF) is refused with a clear message
    r = client.post("/api/files", content=PDF, headers={
        **api.auth("chuyenvien"), "Content-Type": "application/pdf",
        "X-Filename": quote("báo cáo\u202efdp.exe\r\nX-Evil: 1.pdf")})
    assert r.status_code == 400 and r.json()["field"] == "filename"
    # a name that arrived another way (another agency's package) is cleaned when the file is served
    disposition = file_headers(file_types.sniff(PDF), "báo cáo\u202efdp.exe\r\nX-Evil: 1.pdf")["Content-Disposition"]
    assert "\u202e" not in disposition and "%E2%80%AE" not in disposition
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith('attachment; filename="bao cao')


def test_headers_on_pages_api_and_errors(world: tuple[TestClient, Org, Api]) -> None:
    client, _org, api = world
    for path, status in (("/login", 200), ("/static/js/page.js", 200), ("/khong-co-trang-nay", 404),
                         ("/api/openapi.json", 200)):
        r = client.get(path)
        assert r.status_code == status, path
        _assert_page_headers(r.headers)
    r = client.get("/api/documents", headers=api.auth("vanthu"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    _assert_page_headers(r.headers)
    r = client.get("/api/documents")  # 401 JSON
    assert r.status_code == 401
    _assert_page_headers(r.headers)
    r = client.post("/api/documents/incoming", json={}, headers=api.auth("lanhdao"))  # 403
    assert r.status_code == 403
    _assert_page_headers(r.headers)
    r = client.get("/api/attachments/999999", headers=api.auth("vanthu"))
    assert r.status_code == 404
    _assert_page_headers(r.headers)
    assert "ws://testserver" in client.get("/login").headers["content-security-policy"]


def test_pages_have_no_inline_script(world: tuple[TestClient, Org, Api]) -> None:
    """Every template's <script> either has a src or is JSON data; no inline event handlers."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "web" / "templates"
    for template in root.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "javascript:" not in text, template.name


def test_files_origin_setting_parses() -> None:
    assert _files_origin("") == ""
    assert _files_origin("https://Tep.UBND.gov.vn/") == "https://tep.ubnd.gov.vn"
    for bad in ("tep.ubnd.gov.vn", "ftp://tep", "https://tep/duong-dan", "https://"):
        with pytest.raises(ValueError):
            _files_origin(bad)


class FilesHost:
    """Requests to the files origin through the running app's client (same event loop), with no credentials."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def _url(self, url: str) -> str:
        return url if url.startswith("http") else f"http://tep.testserver{url}"

    def get(self, url: str, **kwargs: Any) -> Any:
        self.client.cookies.clear()  # nothing of the app's origin (a browser would not send it either)
        return self.client.get(self._url(url), **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(self._url(url), **kwargs)


@pytest.fixture
def split_world(settings: Settings) -> Iterator[tuple[TestClient, Org, Api, Settings]]:
    settings = replace(settings, files_origin="http://tep.testserver")
    org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as client:
        yield client, org, Api(client, tokens), settings


def test_separate_files_origin(split_world: tuple[TestClient, Org, Api, Settings],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    client, org, api, settings = split_world
    task = api.task_for_specialist(org)
    html_url, pdf_url = api.post_files(task, [(HTML, "trang.html", "text/html"), (PDF, "bc.pdf", "application/pdf")])

    # the app's own origin never serves the bytes: it checks access, then redirects with a signed token
    r = client.get(pdf_url, headers=api.auth("lanhdao"))
    assert r.status_code == 303 and r.content == b""
    target = urlsplit(r.headers["location"])
    assert (target.scheme, target.netloc, target.path) == ("http", "tep.testserver", pdf_url)
    assert client.get(pdf_url, headers=api.auth("stttt.vanthu")).status_code == 404  # no token for an outsider

    # on the files origin: no cookie, no bearer; the token alone lets that one path through
    fresh = FilesHost(client)
    got = fresh.get(r.headers["location"])
    assert got.status_code == 200 and got.content == PDF and got.headers["content-type"] == "application/pdf"
    _assert_sandboxed(got.headers)
    token = parse_qs(target.query)["t"][0]
    assert fresh.get(f"{html_url}?t={token}").status_code == 404  # a token is bound to its path
    assert fresh.get(f"{pdf_url}?t={token[:-2]}xx").status_code == 404  # tampered
    assert fresh.get(pdf_url).status_code == 404
    assert fresh.get(f"/api/documents?t={token}").status_code == 404  # only file routes, only with a token
    assert fresh.get("/login").status_code == 404
    assert fresh.post(r.headers["location"]).status_code == 404
    # a token signed for someone who may not see the file (or for another blob) gives nothing
    path = urlsplit(pdf_url).path
    outsider = file_response.file_token(settings, org["stttt.vanthu"].id, path, "0" * 64)
    assert fresh.get(path, params={"t": outsider}).status_code == 404
    wrong_blob = file_response.file_token(settings, org["lanhdao"].id, path, "0" * 64)
    assert fresh.get(path, params={"t": wrong_blob}).status_code == 404
    # an HTML file is a sandboxed download there too
    html = fresh.get(client.get(html_url, headers=api.auth("lanhdao")).headers["location"])
    assert html.status_code == 200 and html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment;")
    _assert_sandboxed(html.headers)
    # short-lived: once expired the link is dead
    monkeypatch.setattr(file_response, "FILE_TOKEN_SECONDS", -1)
    assert fresh.get(r.headers["location"]).status_code == 404
    # WebSockets are not served on the files origin
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect("ws://tep.testserver/ws"):
        pass
