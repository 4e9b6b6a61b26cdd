"""`eoffice backup`, `restore` and `restore-check` (issue 17): a round trip gives back the same documents,
tasks, votes, audit chain and blob bytes (SQLite and PostgreSQL; local and S3 blobs), a flipped byte or a cut
archive is named and exits non-zero, a non-empty target is refused, and a backup taken while writes go on
restores to a consistent state."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import stat
import tarfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select

import storage.models  # noqa: F401  (every table in Base.metadata)
from eoffice import audit, demo
from eoffice.org import User
from storage import backup, keys
from storage.blobs import BlobStore, open_blob_store
from storage.blobs.s3 import S3BlobStore
from storage.db import Base, Database
from storage.migrate import migrate
from tests.conftest import in_thread, scratch_pg_database
from tests.ops_world import populate
from tests.s3server import bucket_url, s3_client
from web import cli

SECRET = "khóa-bí-mật-sao-lưu-thử-nghiệm"


@pytest.fixture(params=["local", "s3"])
def blob_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _blob_url(request: pytest.FixtureRequest, tmp_path: Path, kind: str, name: str) -> str:
    if kind == "local":
        return f"file://{tmp_path}/{name}"
    return bucket_url(request.getfixturevalue("s3_url"), f"b-{name}-{uuid.uuid4().hex[:16]}")


@contextlib.asynccontextmanager
async def _target_db(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the same kind as ``db_url`` to restore into."""
    if db_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path}/restored/eoffice.db"
        return
    async with scratch_pg_database("eoffice_restore") as url:
        yield url


async def everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order (datetimes as UTC instants)."""
    db = Database(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        async with db.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = (await conn.execute(select(table).order_by(*table.primary_key.columns))).all()
                out[table.name] = [tuple(v.astimezone(dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo else v
                                         for v in r) for r in rows]
    finally:
        await db.dispose()
    return out


async def blob_bytes(store: BlobStore) -> dict[str, bytes]:
    return {k: await store.read(k) async for k in store.keys()}


async def chain(url: str) -> tuple[audit.Verification, audit.Anchor]:
    db = Database(url)
    try:
        async with db.uow(readonly=True) as uow:
            return await audit.verify(uow.session), await audit.anchor(uow.session)
    finally:
        await db.dispose()


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str, blob_url: str,
            *argv: str) -> tuple[int, str]:
    """``eoffice ARGV`` in this process (a thread: it runs its own event loop) against those stores."""
    monkeypatch.setenv("EOFFICE_DATABASE_URL", db_url)
    monkeypatch.setenv("EOFFICE_BLOB_URL", blob_url)
    monkeypatch.setenv("EOFFICE_SECRET_KEY", SECRET)
    capsys.readouterr()
    code = in_thread(cli.main, list(argv))
    out = capsys.readouterr()
    return int(code), out.out + out.err  # type: ignore[call-overload]


async def _drop_bucket(url: str) -> None:
    store = open_blob_store(url)
    if isinstance(store, S3BlobStore):
        client = s3_client(url)

        def drop() -> None:
            if client.bucket_exists(store.bucket):
                for obj in client.list_objects(store.bucket, recursive=True):
                    client.remove_object(store.bucket, str(obj.object_name))
                client.remove_bucket(store.bucket)

        await anyio.to_thread.run_sync(drop)
    await store.close()


# ---------------------------------------------------------------- round trip


async def test_backup_restore_round_trip_gives_back_everything(
        db_url: str, blob_kind: str, tmp_path: Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    keys.register(db_url, SECRET)
    source_blobs_url = _blob_url(request, tmp_path, blob_kind, "source")
    target_blobs_url = _blob_url(request, tmp_path, blob_kind, "target")
    db = Database(db_url)
    source = open_blob_store(source_blobs_url)
    target = open_blob_store(target_blobs_url)
    try:
        facts = await populate(db, source)
        code, out = run_cli(monkeypatch, capsys, db_url, source_blobs_url, "backup", f"{tmp_path}/bk/")
        assert code == 0, out
        (archive,) = (tmp_path / "bk").iterdir()
        assert archive.name.startswith("eoffice-backup-") and archive.suffix == ".tar"
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600 and stat.S_IMODE(archive.parent.stat().st_mode) == 0o700
        assert "KHÔNG có trong bản sao lưu" in out
        with tarfile.open(archive) as tar:
            names = tar.getnames()
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert names[-1] == "manifest.json" and "keys/secret_key" not in names
        counts = manifest["counts"]
        assert counts["documents"] == len(demo.DOCUMENTS) and counts["meeting_poll_ballots"] == 2
        assert manifest["alembic_revision"] and manifest["blobs"]["count"] == len(await blob_bytes(source)) > 0
        for item in manifest["blobs"]["items"]:
            assert item["sha256"] == item["key"] and f"blobs/{item['key']}" in names

        async with _target_db(db_url, tmp_path) as target_url:
            code, out = run_cli(monkeypatch, capsys, target_url, target_blobs_url, "restore", str(archive))
            assert code == 0, out
            assert "Đã khôi phục" in out
            keys.register(target_url, SECRET)
            assert await everything(target_url) == await everything(db_url)
            assert await blob_bytes(target) == await blob_bytes(source)
            (ok, head), (ok_source, head_source) = await chain(target_url), await chain(db_url)
            assert ok.ok and ok_source.ok and ok.checked == ok_source.checked > 0 and head == head_source
            restored = await everything(target_url)
            assert len(restored["documents"]) == len(demo.DOCUMENTS) and restored["tasks"]
            assert len(restored["meeting_poll_ballots"]) == 2
            assert facts["poll_id"] in {r[0] for r in restored["meeting_polls"]}
    finally:
        await db.dispose()
        await source.close()
        await target.close()
        if blob_kind == "s3":
            await _drop_bucket(source_blobs_url)
            await _drop_bucket(target_blobs_url)


# ---------------------------------------------------------------- restore-check


def _flip_byte(archive: Path, member_name: str) -> None:
    with tarfile.open(archive) as tar:
        member = tar.getmember(member_name)
    with open(archive, "r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))


async def test_restore_check_passes_then_names_a_flipped_byte_and_a_cut_archive(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    keys.register(db_url, SECRET)
    blobs_url = f"file://{tmp_path}/blobs"
    db, blobs = Database(db_url), open_blob_store(blobs_url)
    try:
        await populate(db, blobs)
    finally:
        await db.dispose()
        await blobs.close()
    archive = tmp_path / "sao-luu.tar"
    assert run_cli(monkeypatch, capsys, db_url, blobs_url, "backup", str(archive))[0] == 0
    scratch: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        if db_url.startswith("postgresql"):
            scratch = ["--scratch-db", await stack.enter_async_context(scratch_pg_database("eoffice_check"))]
            code, out = run_cli(monkeypatch, capsys, db_url, blobs_url, "restore-check", str(archive))
            assert code == 1 and "--scratch-db" in out  # a PostgreSQL dump needs a scratch database named
            before = await everything(db_url)
            code, out = run_cli(monkeypatch, capsys, db_url, blobs_url, "restore-check", str(archive),
                                "--scratch-db", db_url)  # the live database named by mistake: refused, untouched
            assert code == 1 and "không trống" in out and await everything(db_url) == before
        code, out = run_cli(monkeypatch, capsys, db_url, blobs_url, "restore-check", str(archive), *scratch)
        assert code == 0, out
        assert "mọi kiểm tra đều khớp" in out and "chuỗi băm khớp" in out

        # the audit chain is checked with the server's key: another key is named as the likely cause
        monkeypatch.setenv("EOFFICE_SECRET_KEY", "một-khóa-khác")
        code, out = in_thread(cli.main, ["restore-check", str(archive), *scratch]), capsys.readouterr()  # type: ignore[assignment]
        assert code == 1 and "nhật ký hệ thống sai lệch" in out.err and "khóa bí mật" in out.err  # type: ignore[attr-defined]

        with tarfile.open(archive) as tar:
            blob_member = next(n for n in tar.getnames() if n.startswith("blobs/"))
        flipped = tmp_path / "lat-byte.tar"
        flipped.write_bytes(archive.read_bytes())
        _flip_byte(flipped, blob_member)
        code, out = run_cli(monkeypatch, capsys, db_url, blobs_url, "restore-check", str(flipped), *scratch)
        assert code == 1 and "KHÔNG DÙNG ĐƯỢC" in out and blob_member in out and "đã bị thay đổi" in out

        dump = tmp_path / "lat-byte-csdl.tar"
        dump.write_bytes(archive.read_bytes())
        _flip_byte(dump, "database.sqlite" if db_url.startswith("sqlite") else "database.pgdump")
        code, out = run_cli(monkeypatch, capsys, db_url, blobs_url, "restore-check", str(dump), *scratch)
        assert code == 1 and "database." in out and "đã bị thay đổi" in out

        with tarfile.open(archive) as tar:
            last = tar.getmember("manifest.json")
        for keep in (archive.stat().st_size // 2, last.offset_data + last.size - 10, 100):
            cut = tmp_path / f"cat-{keep}.tar"
            cut.write_bytes(archive.read_bytes()[:keep])
            code, out = run_cli(monkeypatch, capsys, db_url, blobs_url, "restore-check", str(cut), *scratch)
            assert code == 1 and "bị cắt cụt hoặc hỏng" in out, (keep, out)


# ---------------------------------------------------------------- refusing, keys, failures


async def test_restore_refuses_a_non_empty_target_unless_forced(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    keys.register(db_url, SECRET)
    blobs_url = f"file://{tmp_path}/blobs"
    db, blobs = Database(db_url), open_blob_store(blobs_url)
    try:
        await populate(db, blobs)
    finally:
        await db.dispose()
        await blobs.close()
    archive = tmp_path / "sao-luu.tar"
    code, out = run_cli(monkeypatch, capsys, db_url, blobs_url, "backup", "--include-keys", str(archive))
    assert code == 0 and "chứa khóa bí mật" in out
    with tarfile.open(archive) as tar:
        assert tar.extractfile("keys/secret_key").read().decode().strip() == SECRET  # type: ignore[union-attr]
    before = await everything(db_url)

    code, out = run_cli(monkeypatch, capsys, db_url, blobs_url, "restore", str(archive))
    assert code == 1 and "đã có dữ liệu" in out and "--force" in out
    assert await everything(db_url) == before  # nothing touched

    async with _target_db(db_url, tmp_path) as target_url:
        empty_blobs = f"file://{tmp_path}/empty-blobs"
        code, out = run_cli(monkeypatch, capsys, target_url, blobs_url, "restore", str(archive))
        assert code == 1 and "kho tệp đã có tệp" in out and "đã có dữ liệu;" not in out
        # a target database with something in it (here: a migrated schema): refused, then replaced with --force
        await asyncio.to_thread(migrate, target_url)
        code, out = run_cli(monkeypatch, capsys, target_url, empty_blobs, "restore", str(archive))
        assert code == 1 and "cơ sở dữ liệu" in out and "đã có dữ liệu" in out
        code, out = run_cli(monkeypatch, capsys, target_url, empty_blobs, "restore", "--force", str(archive))
        assert code == 0, out
        assert await everything(target_url) == before

    # a new server with a key of its own: --install-keys puts the archive's key in place, keeping the old one
    key_dir = tmp_path / "keys"
    monkeypatch.setenv("EOFFICE_KEY_DIR", str(key_dir))
    monkeypatch.delenv("EOFFICE_SECRET_KEY")
    keys.load_secret_key(tmp_path / "var")  # the new server's own, generated at its first start
    own = (key_dir / "secret_key").read_text()
    async with _target_db(db_url, tmp_path / "moi") as target_url:
        capsys.readouterr()
        monkeypatch.setenv("EOFFICE_DATABASE_URL", target_url)
        monkeypatch.setenv("EOFFICE_BLOB_URL", f"file://{tmp_path}/moi-blobs")
        assert in_thread(cli.main, ["restore", "--install-keys", str(archive)]) == 0, capsys.readouterr()
        assert (key_dir / "secret_key").read_text() == SECRET
        (kept,) = key_dir.glob("secret_key.before-restore-*")
        assert kept.read_text() == own and stat.S_IMODE((key_dir / "secret_key").stat().st_mode) == 0o600


async def test_a_failed_backup_leaves_no_archive(db_url: str, tmp_path: Path) -> None:
    keys.register(db_url, SECRET)
    blobs = open_blob_store(f"file://{tmp_path}/blobs")
    db = Database(db_url)
    try:
        await populate(db, blobs)
        info = await blobs.put_bytes("Báo cáo tình hình kinh tế - xã hội huyện Đông Triều".encode())
        path = blobs.local_path(info.key)
        assert path is not None
        await anyio.Path(path).write_bytes(b"bi hong tren dia")  # the store itself is damaged: refuse, say which blob
        with pytest.raises(backup.BackupError, match=info.key):
            await backup.backup(db_url, blobs, tmp_path / "bk" / "sao-luu.tar")
        assert list((tmp_path / "bk").iterdir()) == []  # no partial file, nothing that looks complete
    finally:
        await db.dispose()
        await blobs.close()


# ---------------------------------------------------------------- consistency under writes


async def test_backup_taken_while_writes_go_on_restores_consistently(db_url: str, tmp_path: Path) -> None:
    keys.register(db_url, SECRET)
    blobs = open_blob_store(f"file://{tmp_path}/blobs")
    db = Database(db_url)
    stop = asyncio.Event()
    written = 0
    progress = asyncio.Condition()

    async def writer() -> None:
        """Uploads (a blob, then the row naming it) and audit entries, as fast as they go."""
        nonlocal written
        async with db.uow() as uow:
            clerk = (await uow.session.scalars(select(User).where(User.username == "vanthu"))).one()
        while not stop.is_set():
            info = await blobs.put_bytes(f"Công văn số {written}/UBND-VP về việc chuyển đổi số".encode())
            async with db.uow() as uow:
                from eoffice import uploads
                await uploads.record_upload(uow, clerk, info, f"cong-van-{written}.pdf")
                await audit.record(uow, clerk, "test.write", "upload", written)
                await uow.commit()
            written += 1
            async with progress:
                progress.notify_all()

    try:
        await populate(db, blobs)
        task = asyncio.create_task(writer())
        async with progress:  # writes are under way before the backup starts
            await asyncio.wait_for(progress.wait_for(lambda: written >= 5), 60)
        result = await backup.backup(db_url, blobs, tmp_path / "bk.tar")
        during = written
        async with progress:  # and went on while and after it ran
            await asyncio.wait_for(progress.wait_for(lambda: written >= during + 5), 60)
        stop.set()
        await task
    finally:
        stop.set()
        await db.dispose()
    counts = result.manifest["counts"]
    assert 5 <= counts["uploads"] - len(demo.DOCUMENTS) < written
    from eoffice.restore_check import restore_check

    async with contextlib.AsyncExitStack() as stack:
        scratch = (await stack.enter_async_context(scratch_pg_database("eoffice_check"))
                   if db_url.startswith("postgresql") else None)
        report = await restore_check(result.path, SECRET, scratch)
    assert report.ok, report.problems  # every referenced blob present, counts equal, the audit chain verifies
    await blobs.close()


async def test_restore_migrates_a_backup_of_an_older_schema(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from storage.migrate import schema_state

    old = f"sqlite+aiosqlite:///{tmp_path}/old/eoffice.db"
    await asyncio.to_thread(migrate, old, "0020")  # a release before the newest migration
    blobs_url = f"file://{tmp_path}/blobs"
    archive = tmp_path / "cu.tar"
    assert run_cli(monkeypatch, capsys, old, blobs_url, "backup", str(archive))[0] == 0
    target = f"sqlite+aiosqlite:///{tmp_path}/new/eoffice.db"
    code, out = run_cli(monkeypatch, capsys, target, f"file://{tmp_path}/new-blobs", "restore", str(archive))
    assert code == 0 and "đã cập nhật lược đồ từ 0020" in out, out
    assert (await schema_state(target)).up_to_date and not (await schema_state(old)).up_to_date
