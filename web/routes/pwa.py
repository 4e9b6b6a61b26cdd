"""The installable web app (issue #21): the web manifest, the service worker at the root scope, the favicon.

All three are public (the login page is installable too) and carry nothing about a user. The service worker's
script is ``web/static/js/sw.js`` with its cache's version filled in: a hash of the static files, so each
release that changes one is a new worker that drops the old cache (``asset_version``). It is served with
``Cache-Control: no-cache`` (browsers check it on each navigation) and ``Service-Worker-Allowed: /``; the page CSP
(``web.security_headers``) already has ``worker-src 'self'`` and its ``connect-src 'self'`` covers what the worker
fetches (static files of the same origin).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).resolve().parents[1] / "static"
APP_NAME = "Văn phòng điện tử"
THEME = "#b3261e"  # the header's red (app.css --red)
BACKGROUND = "#f5f3ef"  # the page background (app.css --bg)
ICONS = [
    {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
    {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
    {"src": "/static/icons/icon-maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
]


@functools.cache
def asset_version() -> str:
    """A hash of every static file (names and contents): the service worker's cache name."""
    digest = hashlib.sha256()
    for path in sorted(p for p in STATIC.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(STATIC)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def _worker_script() -> bytes:
    return (
        (STATIC / "js" / "sw.js")
        .read_text(encoding="utf-8")
        .replace("__ASSET_VERSION__", asset_version())
        .encode("utf-8")
    )


def manifest() -> dict[str, object]:
    return {
        "id": "/",
        "name": f"{APP_NAME} — Quản lý văn bản và phòng họp không giấy",
        "short_name": APP_NAME,
        "description": "Quản lý văn bản, giao việc và phòng họp không giấy của cơ quan nhà nước.",
        "lang": "vi",
        "dir": "ltr",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "theme_color": THEME,
        "background_color": BACKGROUND,
        "icons": ICONS,
    }


async def manifest_file(request: Request) -> Response:
    body = json.dumps(manifest(), ensure_ascii=False).encode("utf-8")
    return Response(body, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"})


async def service_worker(request: Request) -> Response:
    return Response(
        _worker_script(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


async def favicon(request: Request) -> Response:
    return FileResponse(
        STATIC / "icons" / "favicon.ico", media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )


routes = [
    Route("/manifest.webmanifest", manifest_file, methods=["GET"]),
    Route("/sw.js", service_worker, methods=["GET"]),
    Route("/favicon.ico", favicon, methods=["GET"]),
]
