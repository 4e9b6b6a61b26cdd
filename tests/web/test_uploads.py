from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from sqlalchemy import func, select
from starlette.testclient import TestClient

from eoffice.org import Role
from eoffice.uploads import Upload
from storage.db import Database
from storage.settings import Settings
from tests.conftest import free_port
from tests.web.conftest import add_user, make_token, run
from web.app import create_app


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def _count_uploads(url: str) -> int:
    db = Database(url)
    try:
        async with db.uow() as uow:
            return int(await uow.session.scalar(select(func.count()).select_from(Upload)) or 0)
    finally:
        await db.dispose()


def test_upload_within_limit_is_stored(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    headers = {"Authorization": f"Bearer {make_token(settings, 'vanthu')}",
               "X-Filename": "C%C3%B4ng%20v%C4%83n%20123.pdf", "Content-Type": "application/pdf"}
    body = b"%PDF-1.7 " + os.urandom(50_000)
    r = client.post("/api/files", content=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "Công văn 123.pdf" and r.json()["size"] == len(body)
    assert run(_count_uploads(settings.database_url)) == 1


def test_upload_over_limit_is_413_and_nothing_is_stored(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK)
    headers = {"Authorization": f"Bearer {make_token(settings, 'vanthu')}", "X-Filename": "lon.pdf"}
    too_big = b"x" * (settings.upload_limit + 1)
    r = client.post("/api/files", content=too_big, headers=headers)
    assert r.status_code == 413 and "vượt quá giới hạn" in r.json()["message"]

    # Without a Content-Length (chunked), the stream is cut off as soon as it passes the limit.
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(settings.upload_limit // 65536 + 2):
            yield b"y" * 65536

    r = client.post("/api/files", content=chunks(), headers=headers)
    assert r.status_code == 413
    blob_root = Path(settings.blob_url.removeprefix("file://"))
    assert [p for p in _stored_files(blob_root) if "tmp" not in p.parts] == []
    assert _stored_files(blob_root / "tmp") == []
    assert run(_count_uploads(settings.database_url)) == 0


def test_s3_down_gives_503_and_writes_nothing(settings: Settings) -> None:
    down = replace(settings, blob_url=f"s3://eoffice-test?endpoint=127.0.0.1:{free_port()}&access_key=a&secret_key=b")
    with TestClient(create_app(down)) as client:
        add_user(down, "vanthu", Role.CLERK)
        headers = {"Authorization": f"Bearer {make_token(down, 'vanthu')}", "X-Filename": "a.pdf"}
        r = client.post("/api/files", content=b"%PDF-1.7 test", headers=headers)
        assert r.status_code == 503
        assert "không phản hồi" in r.json()["message"]
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["checks"]["blobs"]["ok"] is False and health.json()["checks"]["database"]["ok"] is True
    assert run(_count_uploads(down.database_url)) == 0


def test_healthz_and_openapi(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    assert {k for k, v in health.json()["checks"].items() if v["ok"]} == {"database", "blobs", "broker"}
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "post" in spec["paths"]["/api/files"] and "413" in spec["paths"]["/api/files"]["post"]["responses"]
    assert spec["paths"]["/api/me"]["get"]["summary"] == "The logged-in user."
    assert all(p.startswith("/api/") for p in spec["paths"])
