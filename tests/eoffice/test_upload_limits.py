"""Uploads never attached: a per-user quota on them (413, nothing stored), and their removal after
the keeping time by the server's cleaner and by `eoffice uploads clean`, keeping every blob a row
still names (content-addressed blobs are shared). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from eoffice import upload_limits
from eoffice.documents import register_incoming
from eoffice.uploads import Upload
from storage.blobs import BlobStore, open_blob_store
from storage.db import Database, utcnow
from storage.settings import Settings
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload
from tests.eoffice.test_api import _setup
from tests.web.conftest import run
from web.app import create_app

EOFFICE = str(Path(sys.executable).with_name("eoffice"))


def _blob_files(settings: Settings) -> set[str]:
    root = Path(settings.blob_url.removeprefix("file://"))
    return {p.name for p in root.rglob("*") if p.is_file() and len(p.name) == 64}


@pytest.fixture
def quota_world(settings: Settings) -> Iterator[tuple[TestClient, Settings, dict[str, str]]]:
    one = len(make_pdf(["Công văn số 1 của Ủy ban nhân dân huyện Đông Triều"]))
    settings = dataclasses.replace(settings, upload_quota=int(one * 2.5), upload_keep_hours=24)
    _org, tokens = run(_setup(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client, settings, tokens


def test_unattached_uploads_past_the_quota_are_refused_and_nothing_is_stored(
        quota_world: tuple[TestClient, Settings, dict[str, str]]) -> None:
    client, settings, tokens = quota_world

    def post(name: str, data: bytes, **headers: str) -> object:
        return client.post("/api/files", content=data, headers={
            "Authorization": f"Bearer {tokens[name]}", "Content-Type": "application/pdf",
            "X-Filename": quote("công văn.pdf"), **headers})

    pdfs = [make_pdf([f"Công văn số {i} của Ủy ban nhân dân huyện Đông Triều"]) for i in range(1, 5)]
    ids = []
    for data in pdfs[:2]:
        r = post("vanthu", data)
        assert r.status_code == 201, r.text  # type: ignore[attr-defined]
        ids.append(r.json()["id"])  # type: ignore[attr-defined]
    before = _blob_files(settings)
    r = post("vanthu", pdfs[2])  # declared length past what is left: refused before reading
    assert r.status_code == 413  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["reason"] == "quota" and "hạn mức" in body["message"] and "chưa đính kèm" in body["message"]

    def chunks() -> Iterator[bytes]:  # no declared length: cut off as soon as it passes the quota
        yield pdfs[2]

    r = client.post("/api/files", content=chunks(), headers={
        "Authorization": f"Bearer {tokens['vanthu']}", "Content-Type": "application/pdf", "X-Filename": "cv.pdf"})
    assert r.status_code == 413 and r.json()["reason"] == "quota", r.text
    assert _blob_files(settings) == before  # nothing partly stored
    assert post("chuyenvien", pdfs[2]).status_code == 201  # another user has a quota of their own

    fields = {"sender": "Ủy ban nhân dân thị xã Đông Triều", "notation": "7/UBND-VX", "date_issued": "2026-01-05",
              "doc_type": "cong_van", "summary": "Công văn về việc triển khai chính quyền điện tử",
              "signer": "Vũ Đức Thắng"}
    r = client.post("/api/documents/incoming", json={**fields, "upload_ids": ids[:1]},
                    headers={"Authorization": f"Bearer {tokens['vanthu']}"})
    assert r.status_code == 201, r.text
    assert post("vanthu", pdfs[3]).status_code == 201  # attaching one made room again


async def _uploaded_at(db: Database, upload_id: int, when: dt.datetime) -> None:
    async with db.uow() as uow:
        row = await uow.session.get(Upload, upload_id)
        assert row is not None
        row.created_at = when
        await uow.commit()


async def _ids(db: Database) -> set[int]:
    async with db.uow(readonly=True) as uow:
        return set((await uow.session.scalars(select(Upload.id))).all())


async def test_old_unattached_uploads_are_removed_and_shared_blobs_kept(db: Database, org: Org,
                                                                       blobs: BlobStore) -> None:
    clerk, other = org["vanthu"], org["chuyenvien"]
    lone, attached, shared = (make_pdf([f"Tệp {n} của huyện Đông Triều"]) for n in ("lẻ", "đã đính kèm", "dùng chung"))
    now = utcnow()
    async with db.uow() as uow:
        old_lone = await upload(uow, clerk, blobs, lone)
        old_attached = await upload(uow, clerk, blobs, attached)
        same_as_attached = await upload(uow, other, blobs, attached)  # the same bytes, never attached by `other`
        old_shared = await upload(uow, clerk, blobs, shared)
        new_shared = await upload(uow, other, blobs, shared)  # the same bytes, uploaded just now
        await uow.commit()
    async with db.uow() as uow:
        await register_incoming(uow, clerk, blobs, **incoming_fields(1), upload_ids=[old_attached])
        await uow.commit()
    for upload_id in (old_lone, old_attached, same_as_attached, old_shared):
        await _uploaded_at(db, upload_id, now - dt.timedelta(hours=30))
    async with db.uow(readonly=True) as uow:
        assert await upload_limits.unattached_bytes(uow, clerk.id, None) == len(lone) + len(shared)

    clock = [now]
    cleaner = upload_limits.UploadCleaner(db, blobs, keep_hours=24, clock=lambda: clock[0])
    done = await cleaner.tick()
    assert (done.uploads, done.blobs, done.bytes) == (2, 1, len(lone))  # old_lone's row and blob, old_shared's row
    # same_as_attached stays: its blob is an attachment's, so it costs nothing and counts as attached
    assert await _ids(db) == {old_attached, same_as_attached, new_shared}
    assert not await blobs.exists(sha256(lone).hexdigest())
    assert await blobs.exists(sha256(attached).hexdigest())  # an attachment names it
    assert await blobs.exists(sha256(shared).hexdigest())  # a recent upload names it

    assert (await cleaner.tick()).uploads == 0  # nothing more is due now
    clock[0] = now + dt.timedelta(hours=25)  # a day later the recent one is due too
    done = await cleaner.tick()
    assert (done.uploads, done.blobs) == (1, 1) and await _ids(db) == {old_attached, same_as_attached}
    assert not await blobs.exists(sha256(shared).hexdigest())
    assert await blobs.exists(sha256(attached).hexdigest())


async def test_the_server_runs_the_cleaner_and_the_cli_cleans_too(db: Database, db_url: str, org: Org,
                                                                  tmp_path: Path) -> None:
    blob_url = f"file://{tmp_path}/blobs"
    blobs = open_blob_store(blob_url)
    try:
        async with db.uow() as uow:
            fresh = await upload(uow, org["vanthu"], blobs, make_pdf(["Tệp mới"]))
            old = await upload(uow, org["vanthu"], blobs, make_pdf(["Tệp cũ"]))
            await uow.commit()
        await _uploaded_at(db, old, utcnow() - dt.timedelta(hours=3))
    finally:
        await blobs.close()

    env = {**os.environ, "EOFFICE_DATABASE_URL": db_url, "EOFFICE_BLOB_URL": blob_url,
           "EOFFICE_VAR_DIR": str(tmp_path / "var")}
    bad = await asyncio.to_thread(subprocess.run, [EOFFICE, "uploads", "clean", "--hours", "0"], env=env,
                                  capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "lớn hơn 0" in bad.stderr
    done = await asyncio.to_thread(subprocess.run, [EOFFICE, "uploads", "clean", "--hours", "2"], env=env,
                                   capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Đã xóa 1 tệp tải lên" in done.stdout and await _ids(db) == {fresh}

    settings = Settings(database_url=db_url, blob_url=blob_url, secret_key="k" * 32, upload_keep_hours=0.0001)
    with TestClient(create_app(settings)):  # started with the server: one pass at once
        for _ in range(500):
            if not await _ids(db):
                break
            await asyncio.sleep(0.02)
    assert await _ids(db) == set()
    async with db.uow(readonly=True) as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Upload)) == 0
