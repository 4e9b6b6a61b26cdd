"""`eoffice audit verify` through the real command, against a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from eoffice import audit
from storage import keys
from storage.db import Database

EOFFICE = str(Path(sys.executable).with_name("eoffice"))


def _verify(db_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EOFFICE_DATABASE_URL": db_url, "EOFFICE_VAR_DIR": str(tmp_path / "var"),
           "EOFFICE_SECRET_KEY": keys.secret_for(db_url)}  # the server's secret, as the test's writes used
    return subprocess.run([EOFFICE, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(autouse=True)
async def _protect_again(db: Database) -> AsyncIterator[None]:
    """The PostgreSQL database is shared by the whole run: put the guard back for the next tests."""
    yield
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


async def _unprotect(db: Database) -> None:
    """Only someone with direct database access can alter the log: drop the append-only guard as they would."""
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        else:
            await conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            await conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")


async def _write(db: Database, n: int) -> None:
    for i in range(n):
        async with db.uow() as uow:
            await audit.record(uow, None, "document.register", "document", i, summary=f"Công văn số {i}/UBND-VX")
            await uow.commit()


async def test_verify_passes_then_reports_an_altered_row(db: Database, db_url: str, tmp_path: Path) -> None:
    await _write(db, 5)
    ok = _verify(db_url, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "5 mục" in ok.stdout
    await _unprotect(db)
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET actor_name = 'ke-gian' WHERE seq = 3"))
    bad = _verify(db_url, tmp_path)
    assert bad.returncode == 1
    assert "mục 3" in bad.stderr and "bị sửa" in bad.stderr


async def test_verify_reports_a_deleted_row(db: Database, db_url: str, tmp_path: Path) -> None:
    await _write(db, 4)
    await _unprotect(db)
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    bad = _verify(db_url, tmp_path)
    assert bad.returncode == 1 and "mục 2" in bad.stderr and "xóa" in bad.stderr


async def test_verify_reports_a_deleted_last_row(db: Database, db_url: str, tmp_path: Path) -> None:
    await _write(db, 3)
    await _unprotect(db)
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    bad = _verify(db_url, tmp_path)
    assert bad.returncode == 1 and "mục 3" in bad.stderr
