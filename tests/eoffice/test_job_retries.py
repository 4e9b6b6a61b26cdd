"""Background jobs and outages (issue 17): a text extraction whose S3 (SeaweedFS) or database (PostgreSQL) is
briefly unreachable is queued again with a back-off and succeeds once the service is back; a failure that is not
an outage ends the job at once; administrators see failed jobs (``eoffice jobs list``, /admin/jobs) with their error,
attempts and next retry, and run them again (``eoffice jobs retry``, the page's button: CSRF, audited).

The outages are real: the blob store and the database are reached through a TCP relay on loopback that the test
cuts (connections reset, new ones refused) and restores, in front of the real services."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice import jobs
from eoffice.audit import AuditEntry
from eoffice.documents import register_incoming
from eoffice.ingest import IngestRunner
from eoffice.job_retry import RetryPolicy
from eoffice.schema.documents import Attachment, IngestJob, IngestStatus
from storage import keys
from storage.blobs import open_blob_store
from storage.db import Database
from storage.errors import Forbidden, Unavailable
from storage.migrate import migrate
from storage.settings import Settings
from tests.conftest import free_port, scratch_pg_database
from tests.eoffice.conftest import PASSWORD, VN_TEXT, Org, incoming_fields, make_org, make_pdf, upload
from tests.s3server import bucket_url, s3_client
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(base=0.3, max_delay=1.0, max_attempts=20)


class Relay:
    """A TCP relay 127.0.0.1:port -> target that can be cut (every connection reset, new ones refused)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()


@contextlib.asynccontextmanager
async def relay_to(host: str, port: int) -> AsyncIterator[Relay]:
    relay = Relay((host, port))
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


async def until(what: str, check: Any, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _job(db: Database, job_id: int) -> IngestJob:
    async with db.uow(readonly=True) as uow:
        job = await uow.session.get(IngestJob, job_id)
        assert job is not None
        return job


async def _register(db: Database, org: Org, blobs: Any, pages: list[str] | None = None) -> tuple[int, list[int]]:
    async with db.uow() as uow:
        up = await upload(uow, org["vanthu"], blobs, make_pdf(pages), "ke-hoach-chuyen-doi-so.pdf")
        doc, job_ids = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1), upload_ids=[up])
        await uow.commit()
    return doc.id, job_ids


def _s3_endpoint(url: str) -> tuple[str, int]:
    endpoint = url.split("endpoint=", 1)[1].split("&", 1)[0]
    host, port = endpoint.rsplit(":", 1)
    return host, int(port)


async def test_s3_down_the_extraction_is_retried_with_backoff_and_succeeds(db: Database, org: Org, s3_url: str) -> None:
    bucket = f"jobs-{uuid.uuid4().hex[:10]}"
    real = bucket_url(s3_url, bucket)
    await asyncio.to_thread(s3_client(real).make_bucket, bucket)
    async with relay_to(*_s3_endpoint(s3_url)) as relay:
        host, port = _s3_endpoint(s3_url)
        blobs = open_blob_store(real.replace(f"endpoint={host}:{port}", f"endpoint=127.0.0.1:{relay.port}"))
        runner = IngestRunner(db, blobs, processes=0, retry=FAST)
        try:
            doc_id, (job_id,) = await _register(db, org, blobs)
            await relay.cut()  # S3 goes away before the extraction reads the file
            runner.start()
            runner.submit([job_id])

            async def retrying() -> bool:
                job = await _job(db, job_id)
                return job.status == IngestStatus.QUEUED and job.attempts >= 2 and job.next_attempt_at is not None

            await until("the job to be queued again after failed attempts", retrying)
            job = await _job(db, job_id)
            assert "lưu trữ" in job.error.lower() or "s3" in job.error.lower(), job.error
            async with db.uow(readonly=True) as uow:
                listed = {j.key: j for j in await jobs.problem_jobs(uow, org["admin"])}
                with pytest.raises(Forbidden):
                    await jobs.problem_jobs(uow, org["vanthu"])
            view = listed[f"ingest-{job_id}"]
            assert view.status == "retrying" and view.attempts >= 2 and view.next_attempt_at is not None
            assert view.subject == f"Văn bản #{doc_id}, tệp «ke-hoach-chuyen-doi-so.pdf»"

            await relay.start()  # S3 is back: the next retry succeeds, nobody did anything

            async def done() -> bool:
                return (await _job(db, job_id)).status == IngestStatus.DONE

            await until("the job to succeed once S3 is back", done, 30)
            async with db.uow(readonly=True) as uow:
                text = (
                    await uow.session.scalars(select(Attachment.text).where(Attachment.document_id == doc_id))
                ).one()
                assert VN_TEXT[:40] in text
                assert await jobs.problem_jobs(uow, org["admin"]) == []
        finally:
            await runner.stop()
            await blobs.close()


async def test_database_down_the_job_is_run_again_when_it_is_back(tmp_path: Path) -> None:
    async with scratch_pg_database("eoffice_jobs") as url:
        await asyncio.to_thread(migrate, url)
        keys.register(url, "khóa-thử-nghiệm-tác-vụ-nền")
        direct = Database(url)
        blobs = open_blob_store(f"file://{tmp_path}/blobs")
        org = await make_org(direct)
        doc_id, (job_id,) = await _register(direct, org, blobs)
        async with relay_to("127.0.0.1", 5432) as relay:
            relayed = url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
            keys.register(relayed, "khóa-thử-nghiệm-tác-vụ-nền")
            db = Database(relayed)
            runner = IngestRunner(db, blobs, processes=0, retry=FAST)
            try:
                await relay.cut()  # PostgreSQL unreachable (for the runner) when the job is handed over
                runner.start()
                runner.submit([job_id])
                await asyncio.wait_for(runner.drain(), 30)  # it could not even read the job
                assert (await _job(direct, job_id)).status == IngestStatus.QUEUED
                await relay.start()

                async def done() -> bool:
                    return (await _job(direct, job_id)).status == IngestStatus.DONE

                await until("the job to run once the database is back", done, 30)
                async with direct.uow(readonly=True) as uow:
                    text = (
                        await uow.session.scalars(select(Attachment.text).where(Attachment.document_id == doc_id))
                    ).one()
                    assert VN_TEXT[:40] in text
            finally:
                await runner.stop()
                await db.dispose()
        await direct.dispose()
        await blobs.close()


async def _failed_job(db: Database, org: Org, blobs: Any) -> tuple[int, int, str]:
    """A job that failed for good: its file vanished from the store (not an outage: no retry)."""
    doc_id, (job_id,) = await _register(db, org, blobs)
    async with db.uow(readonly=True) as uow:
        key = (await uow.session.scalars(select(Attachment.blob_key).where(Attachment.document_id == doc_id))).one()
    data = await blobs.read(key)
    await blobs.delete(key)
    runner = IngestRunner(db, blobs, processes=0, retry=FAST)
    try:
        runner.submit([job_id])
        await runner.drain()
    finally:
        await runner.stop()
    job = await _job(db, job_id)
    assert job.status == IngestStatus.FAILED and job.attempts == 1 and job.next_attempt_at is None
    await blobs.put_bytes(data, content_type="application/pdf")  # the administrator puts the file back
    return doc_id, job_id, key


def test_an_unreachable_store_is_transient_a_corrupt_file_is_not() -> None:
    policy = RetryPolicy(base=10, max_delay=60, max_attempts=3)
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    assert policy.next_attempt(Unavailable("S3"), 1, now) == now + dt.timedelta(seconds=10)
    assert policy.next_attempt(Unavailable("S3"), 2, now) == now + dt.timedelta(seconds=20)
    assert policy.next_attempt(ConnectionRefusedError(111, "refused"), 2, now) is not None
    assert policy.next_attempt(Unavailable("S3"), 3, now) is None  # the last attempt
    assert policy.next_attempt(ValueError("tệp hỏng"), 1, now) is None
    assert policy.delay(9) == dt.timedelta(seconds=60)


async def test_jobs_cli_lists_and_retries(db_url: str, db: Database, org: Org, tmp_path: Path) -> None:
    blobs = open_blob_store(f"file://{tmp_path}/blobs")
    try:
        _doc, job_id, _key = await _failed_job(db, org, blobs)
    finally:
        await blobs.close()
    env = {
        **os.environ,
        "EOFFICE_DATABASE_URL": db_url,
        "EOFFICE_SECRET_KEY": keys.secret_for(db_url),
        "EOFFICE_BLOB_URL": f"file://{tmp_path}/blobs",
        "EOFFICE_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(ROOT),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "web.cli", "jobs", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = await asyncio.to_thread(cli, "list")
    assert listed.returncode == 0, listed.stderr
    assert f"ingest-{job_id}" in listed.stdout and "Lỗi, chờ chạy lại thủ công" in listed.stdout
    assert "lỗi:" in listed.stdout
    assert (await asyncio.to_thread(cli, "retry")).returncode == 2  # neither an id nor --all
    bad = await asyncio.to_thread(cli, "retry", "ingest-999999")
    assert bad.returncode != 0 and "ingest-999999" in bad.stderr
    again = await asyncio.to_thread(cli, "retry", f"ingest-{job_id}")
    assert again.returncode == 0 and "Đã xếp 1 tác vụ" in again.stdout, again.stderr
    job = await _job(db, job_id)
    assert job.status == IngestStatus.QUEUED and job.attempts == 0 and job.next_attempt_at is not None
    async with db.uow(readonly=True) as uow:
        entry = (await uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "job.retry"))).one()
    assert entry.object_id == f"ingest-{job_id}" and entry.actor_id is None


def _login(client: TestClient, username: str) -> str:
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    home = client.get("/admin/jobs")
    found = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    return found.group(1) if found else ""


async def test_admin_page_lists_failed_jobs_and_retries_one(
    db_url: str, db: Database, org: Org, tmp_path: Path
) -> None:
    blobs = open_blob_store(f"file://{tmp_path}/blobs")
    try:
        doc_id, job_id, _key = await _failed_job(db, org, blobs)
    finally:
        await blobs.close()
    settings = Settings(
        database_url=db_url,
        blob_url=f"file://{tmp_path}/blobs",
        broker_url="memory://",
        secret_key=keys.secret_for(db_url),
        digest_hour=None,
        job_retry_seconds=0.3,
    )
    app = create_app(settings)
    loop = asyncio.get_running_loop()

    def browse() -> tuple[str, int, str, int, str]:
        with TestClient(app) as client:
            assert client.get("/admin/jobs", follow_redirects=False).status_code in (302, 303)  # log in first
            _login(client, "vanthu")
            assert client.get("/admin/jobs").status_code == 403
        with TestClient(app) as client:
            csrf = _login(client, "admin")
            page = client.get("/admin/jobs")
            forged = client.post("/admin/jobs/retry", data={"job": f"ingest-{job_id}"})  # no CSRF token
            retried = client.post("/admin/jobs/retry", data={"job": f"ingest-{job_id}", "csrf_token": csrf})

            deadline = time.monotonic() + 30  # the server's runner takes it at once (its retry loop was woken)
            while asyncio.run_coroutine_threadsafe(_job(db, job_id), loop).result(30).status != IngestStatus.DONE:
                assert time.monotonic() < deadline, "the retried job did not run"
                time.sleep(0.1)
            after = client.get("/admin/jobs").text
            return page.text, forged.status_code, retried.text, retried.status_code, after

    page, forged, retried, status, after = await asyncio.to_thread(browse)
    assert f'data-job="ingest-{job_id}"' in page and "Lỗi, chờ chạy lại thủ công" in page
    assert f"Văn bản #{doc_id}" in page and "Chạy lại tất cả (1)" in page
    assert forged == 403
    assert status == 200 and "Đã xếp 1 tác vụ chạy lại." in retried
    assert "Không có tác vụ nền nào" in after
    async with db.uow(readonly=True) as uow:
        entry = (await uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "job.retry"))).one()
        assert entry.actor_name and entry.object_id == f"ingest-{job_id}"
        text = (await uow.session.scalars(select(Attachment.text).where(Attachment.document_id == doc_id))).one()
    assert VN_TEXT[:40] in text
