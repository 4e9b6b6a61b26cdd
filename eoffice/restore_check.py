"""``eoffice restore-check``: prove a backup archive restores, without touching the live installation.

The archive is restored (``storage.backup.restore``) into a scratch place -- a SQLite file and a blob directory
in a temporary directory, or for a PostgreSQL backup an empty scratch database the operator names -- and then:
the database dump's and every blob's sha256 match the manifest (checked while restoring), every blob of the
manifest is in the scratch store, the row counts per table equal the manifest's, and after migrating to this
code's schema the audit chain verifies (``eoffice.audit.verify``) with the server's key (or the one in the
archive, when it was made with ``--include-keys``). The scratch place is removed (a scratch PostgreSQL
database is emptied) afterwards.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from eoffice import audit
from storage import backup, keys
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import alembic_config, migrate


async def restore_check(archive_file: Path, secret_key: str, scratch_url: str | None = None,
                        progress: backup.Progress = backup._no_progress) -> backup.CheckReport:
    """Raises ``backup.BackupError`` for an archive that cannot be read or restored (truncated, altered
    bytes); returns a report whose ``problems`` say what else does not match."""
    with backup.Archive.open(archive_file) as archive:
        dialect = archive.manifest["dialect"]
    if dialect == "postgresql" and not scratch_url:
        raise backup.BackupError("Bản sao lưu PostgreSQL: cần một cơ sở dữ liệu PostgreSQL trống để thử khôi phục, "
                                 "ví dụ --scratch-db postgresql+asyncpg://eoffice@db/eoffice_check "
                                 "(mọi dữ liệu trong đó sẽ bị xóa sau khi kiểm tra).")
    with tempfile.TemporaryDirectory(prefix="eoffice-restore-check-") as work:
        url = scratch_url if dialect == "postgresql" else f"sqlite+aiosqlite:///{work}/check.db"
        assert url is not None
        # checked before anything is written, and only then emptied again: naming a database in use by mistake
        # is refused and leaves it untouched
        if not await backup.database_is_empty(url):
            raise backup.BackupError(f"Cơ sở dữ liệu thử {make_url(url).render_as_string(hide_password=True)} "
                                     "không trống: chọn một cơ sở dữ liệu trống cho việc kiểm tra.")
        store = open_blob_store(f"file://{work}/blobs")
        try:
            return await _check(archive_file, url, store, secret_key, progress)
        finally:
            await store.close()
            if dialect == "postgresql":
                await backup.pg_clear(make_url(url))


async def _check(archive_file: Path, url: str, store: backup.BlobStore, secret_key: str,
                 progress: backup.Progress) -> backup.CheckReport:
    result = await backup.restore(archive_file, url, store, migrate_to_head=False, progress=progress)
    manifest = result.manifest
    problems = backup.compare_counts(manifest["counts"], result.counts)
    stored = {k async for k in store.keys()}
    absent = [item["key"] for item in manifest["blobs"]["items"] if item["key"] not in stored]
    if absent:
        problems.append(f"{len(absent)} tệp của manifest không có sau khi khôi phục (ví dụ {absent[0]})")
    if set(manifest["alembic_revision"]) != set(_heads(url)):
        await asyncio.to_thread(migrate, url)
    key = result.secret_key or secret_key
    keys.register(url, key)
    db = Database(url)
    try:
        async with db.uow(readonly=True) as uow:
            verification = await audit.verify(uow.session)
    finally:
        await db.dispose()
    if not verification.ok:
        hint = "" if result.secret_key else (" (khóa bí mật đang dùng có đúng là khóa của máy chủ đã sao lưu? "
                                             "xem EOFFICE_KEY_DIR / EOFFICE_SECRET_KEY)")
        problems.append(f"nhật ký hệ thống sai lệch tại mục {verification.broken_at}: {verification.reason}{hint}")
    blobs = manifest["blobs"]
    lines = [
        f"Bản sao lưu {archive_file} tạo lúc {manifest['created_at']} ({manifest['dialect']}, lược đồ "
        f"{', '.join(manifest['alembic_revision']) or '—'}).",
        f"Cơ sở dữ liệu: mã băm khớp; {sum(result.counts.values())} dòng trong {len(result.counts)} bảng"
        + (", khớp manifest." if not backup.compare_counts(manifest["counts"], result.counts) else "."),
        f"Tệp lưu trữ: {blobs['count']} tệp, {blobs['bytes']} byte, sha256 từng tệp khớp.",
        f"Nhật ký hệ thống: {verification.checked} mục" + (", chuỗi băm khớp." if verification.ok else "."),
        "Khóa bí mật: " + ("có trong bản sao lưu." if result.secret_key else "không có trong bản sao lưu "
                                                                            "(đã dùng khóa của máy này)."),
    ]
    return backup.CheckReport(problems, lines)


def _heads(url: str) -> tuple[str, ...]:

    return tuple(ScriptDirectory.from_config(alembic_config(url)).get_heads())


__all__ = ["restore_check"]
