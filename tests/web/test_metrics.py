"""/metrics: Prometheus counters move with real requests; a token or the loopback address is required."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace

import httpx
from starlette.testclient import TestClient
from websockets.asyncio.client import connect

from storage.db import Database
from storage.settings import Settings
from tests.conftest import REDIS_URL, require, serving, tcp_open
from tests.web.conftest import add_user, make_token
from tests.web.test_ws import bearer, emit, subscribe
from web.app import create_app


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` of an exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def test_token_required_off_loopback_and_counters_move(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:  # the test client is not on the loopback address
        r = c.get("/metrics")
        assert r.status_code == 403 and "giám sát" in r.json()["message"]
    token = "giam-sat-" + uuid.uuid4().hex
    with TestClient(create_app(replace(settings, metrics_token=token))) as c:
        auth = {"Authorization": f"Bearer {token}"}
        assert c.get("/metrics", headers={"Authorization": "Bearer sai"}).status_code == 403
        before = c.get("/metrics", headers=auth).text
        for _ in range(3):
            assert c.get("/livez").status_code == 200
        assert c.get("/api/meetings/4242").status_code == 401
        r = c.get("/metrics", headers=auth)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert value(text, "eoffice_http_requests_total", method="GET", route="/livez", status="200") == \
            value(before, "eoffice_http_requests_total", method="GET", route="/livez", status="200") + 3
        assert value(text, "eoffice_http_requests_total", method="GET", route="/api/meetings/{meeting_id:int}",
                     status="401") == 1  # the template, not the path
        assert value(text, "eoffice_http_request_duration_seconds_count", method="GET", route="/livez") >= 3
        assert "/api/meetings/4242" not in text
        assert value(text, "eoffice_websocket_connections") == 0


async def test_loopback_websockets_and_the_redis_publisher(settings: Settings) -> None:
    require("Redis", tcp_open("127.0.0.1", 6379), "127.0.0.1:6379")
    mine = replace(settings, broker_url=f"{REDIS_URL}?channel=test:{uuid.uuid4().hex}")
    uid = add_user(mine, "thuky", full_name="Phạm Thị Thu Hà")
    token = make_token(mine, "thuky")
    app = create_app(mine)
    async with serving(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/metrics")).status_code == 200  # loopback: no token needed
        async with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=bearer(token)) as ws:
            await subscribe(ws, f"user:{uid}")
            db = Database(mine.database_url, publisher=app.state.broker.publish)
            try:
                await emit(db, f"user:{uid}", 2)  # through this server's own publisher
            finally:
                await db.dispose()
            await ws.recv()
            text = (await http.get("/metrics")).text
            assert value(text, "eoffice_websocket_connections") == 1
            assert value(text, "eoffice_broker_published_total") >= 2
            assert value(text, "eoffice_broker_publishing_ok") == 1
            assert value(text, "eoffice_broker_publish_queue") == 0
            assert "eoffice_ingest_queue" in text
