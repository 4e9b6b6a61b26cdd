"""The `eoffice` command end to end on an embedded database (the README's path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EOFFICE = str(Path(sys.executable).with_name("eoffice"))


def _run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOFFICE_")}
    env["EOFFICE_VAR_DIR"] = str(tmp_path / "var")
    return subprocess.run([EOFFICE, *args], env=env, capture_output=True, text=True, timeout=120, input=stdin)


def test_migrate_demo_user_token_audit(tmp_path: Path) -> None:
    assert _run(tmp_path, "migrate").returncode == 0
    assert (tmp_path / "var" / "eoffice.db").exists()
    demo = _run(tmp_path, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "Demo@2026" in demo.stdout and "Nguyễn Thị Lan" in demo.stdout
    assert "Phiên họp" in demo.stdout  # the demo meeting with its agenda documents
    first = _run(tmp_path, "audit", "verify")
    assert first.returncode == 0, first.stderr
    entries = int(first.stdout.split(":")[1].split("mục")[0])
    again = _run(tmp_path, "demo")
    assert again.returncode == 0 and "bỏ qua" in again.stdout

    added = _run(tmp_path, "user", "add", "dongtrieu.vanthu", "--name", "Đinh Thị Thu", "--role", "clerk",
                 "--unit", "DT", "--password-stdin", stdin="mat-khau-rat-dai\n")
    assert added.returncode == 0, added.stderr
    dup = _run(tmp_path, "user", "add", "dongtrieu.vanthu", "--name", "X", "--password", "mat-khau-rat-dai")
    assert dup.returncode == 2 and "đã tồn tại" in dup.stderr
    bad_unit = _run(tmp_path, "user", "add", "x.y", "--name", "X", "--unit", "KHONGCO", "--password", "12345678")
    assert bad_unit.returncode == 2 and "KHONGCO" in bad_unit.stderr

    token = _run(tmp_path, "token", "create", "dongtrieu.vanthu")
    assert token.returncode == 0 and token.stdout.strip().startswith("eo_")
    missing = _run(tmp_path, "token", "create", "khong.co.ai")
    assert missing.returncode == 2 and "khong.co.ai" in missing.stderr

    verify = _run(tmp_path, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert f"{entries + 2} mục" in verify.stdout  # the account and the token were audited


def test_demo_has_a_living_inbox(tmp_path: Path) -> None:
    import asyncio

    from eoffice import demo, search, tasks
    from eoffice.identity import get_user
    from eoffice.ingest import IngestRunner
    from storage.blobs import open_blob_store
    from storage.db import Database

    assert _run(tmp_path, "migrate").returncode == 0
    out = _run(tmp_path, "demo")
    assert out.returncode == 0 and f"{len(demo.DOCUMENTS)} văn bản đến mẫu" in out.stdout, out.stderr

    async def check() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/var/eoffice.db")
        blobs = open_blob_store(f"file://{tmp_path}/var/blobs")
        runner = IngestRunner(db, blobs)
        try:
            assert await runner.recover() == len(demo.DOCUMENTS)  # as the server does at its start
            await runner.drain()
            async with db.uow(readonly=True) as uow:
                cv, deputy = await get_user(uow, "chuyenvien"), await get_user(uow, "phochutich")
                assert len((await tasks.inbox(uow, cv))["tasks"]) == 2
                assert len((await tasks.inbox(uow, deputy))["submitted"]) == 1
                hits = await search.search(uow, await get_user(uow, "vanthu"), "truc lien thong")  # PDF text
                assert [h.document.notation for h in hits] == ["1825/STTTT-CĐS"]
        finally:
            await runner.stop()
            await blobs.close()
            await db.dispose()

    asyncio.run(check())
