"""X-Request-ID: taken when sane, made when missing or not, returned, and in every log line of the request;
JSON log lines from a real `eoffice serve` with EOFFICE_LOG_FORMAT=json."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from storage.migrate import migrate
from storage.settings import Settings
from tests.conftest import free_port
from web.app import create_app
from web.request_id import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]


async def _logs_something(request: Request) -> PlainTextResponse:
    logging.getLogger("eoffice.test").warning("xử lý yêu cầu của %s", "Nguyễn Văn Ánh")
    return PlainTextResponse("ok")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_ids_taken_made_returned_and_logged(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="eoffice.test")
    app = create_app(settings)
    app.router.routes.insert(0, Route("/_log", _logs_something))  # a handler that logs, as any service may
    with TestClient(app) as c:
        r = c.get("/_log", headers={"X-Request-ID": "lb-7f3a:42.1_x"})
        assert r.headers["x-request-id"] == "lb-7f3a:42.1_x"
        made = c.get("/livez").headers["x-request-id"]
        assert len(made) == 32 and int(made, 16) >= 0
        assert c.get("/livez").headers["x-request-id"] != made  # one per request
        for bad in ("có dấu", "a b", "x" * 129, "id\"}{", ""):
            got = c.get("/livez", headers={"X-Request-ID": bad.encode()}).headers["x-request-id"]
            assert got != bad and len(got) == 32
        assert c.get("/api/meetings/1").headers["x-request-id"]  # refusals carry it too
    [record] = [r for r in caplog.records if r.name == "eoffice.test"]
    assert record.request_id == "lb-7f3a:42.1_x"  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "lb-7f3a:42.1_x" and line["message"] == "xử lý yêu cầu của Nguyễn Văn Ánh"
    assert line["level"] == "WARNING" and line["logger"] == "eoffice.test" and line["ts"].endswith("+00:00")


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL)


async def test_serve_writes_json_log_lines_with_the_request_id(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/var/eoffice.db"
    await asyncio.to_thread(migrate, url)
    port = free_port()
    env = {**os.environ, "EOFFICE_DATABASE_URL": url, "EOFFICE_VAR_DIR": str(tmp_path / "var"),
           "EOFFICE_BLOB_URL": f"file://{tmp_path}/blobs", "EOFFICE_SECRET_KEY": "khóa-thử-nhật-ký",
           "EOFFICE_BROKER_URL": "memory://", "EOFFICE_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}
    log = tmp_path / "server.log"
    server = _serve(env, port, log)
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    r = await http.get("/livez", headers={"X-Request-ID": "kiem-tra-42"})
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, log.read_text()
                    await asyncio.sleep(0.2)
            assert r.headers["x-request-id"] == "kiem-tra-42"
            # a bearer in the query (how a browser's WebSocket carries it) never reaches the log
            await http.get("/livez?token=eo_bi-mat-khong-ghi&x=1")
            await asyncio.sleep(0.5)
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]  # every line is JSON
    access = [x for x in lines if x["logger"] == "uvicorn.access" and "/livez" in x["message"]]
    plain = [x for x in access if '"GET /livez HTTP' in x["message"]]
    assert plain and plain[-1]["request_id"] == "kiem-tra-42", lines
    assert any(x["logger"] == "uvicorn.error" and x["request_id"] == "-" for x in lines)  # outside requests
    assert "eo_bi-mat-khong-ghi" not in log.read_text()
    assert any("/livez?token=***&x=1" in x["message"] for x in access), access
