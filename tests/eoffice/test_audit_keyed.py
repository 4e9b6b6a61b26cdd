"""The keyed audit chain: whoever can write the database cannot rewrite the log consistently.

An attacker with write access to the database (but not the server's secret, kept outside it) alters an
entry and recomputes the plain SHA-256 chain over it and every later entry, and the head: ``eoffice audit
verify`` still fails. Deleting the newest entries and moving the head back leaves a valid chain, which an
anchor exported earlier (``eoffice audit anchor``) catches. Entries written before the keyed chain
(migration 0017) are checked the old way up to a switch-over point that cannot be moved.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from eoffice import audit
from storage import keys
from storage.db import Database
from storage.migrate import migrate

EOFFICE = str(Path(sys.executable).with_name("eoffice"))


def _cli(db_url: str, tmp_path: Path, *args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EOFFICE_DATABASE_URL": db_url, "EOFFICE_VAR_DIR": str(tmp_path / "var"),
           "EOFFICE_SECRET_KEY": secret or keys.secret_for(db_url)}
    return subprocess.run([EOFFICE, "audit", *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(autouse=True)
async def _unprotected(db: Database) -> AsyncIterator[None]:
    """The attacker writes the database directly: the append-only triggers are dropped as they would."""
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        else:
            await conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            await conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
    yield
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


async def _write(db: Database, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        async with db.uow() as uow:
            await audit.record(uow, None, "document.register", "document", i, summary=f"Công văn số {i}/UBND-VX")
            await uow.commit()


async def _rechain_plain(db: Database, from_seq: int) -> None:
    """What an attacker without the key does after changing a row: recompute the plain SHA-256 chain."""
    async with db.uow() as uow:
        entries = (await uow.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq))).all()
        prev = audit.GENESIS
        for e in entries:
            if e.seq >= from_seq:
                e.prev_hash = prev
                e.hash = audit.entry_hash(e, None)
            prev = e.hash
        head = await uow.session.get(audit.AuditHead, 1)
        assert head is not None
        head.hash = prev
        await uow.commit()


async def test_a_row_altered_and_rechained_without_the_key_fails(db: Database, db_url: str, tmp_path: Path) -> None:
    await _write(db, 6)
    ok = _cli(db_url, tmp_path, "verify")
    assert ok.returncode == 0 and "6 mục" in ok.stdout, ok.stderr
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET data = :d WHERE seq = 4"),
                           {"d": json.dumps({"summary": "Công văn đã bị thay nội dung"}, ensure_ascii=False)})
    await _rechain_plain(db, 4)
    # the chain is consistent as a plain hash chain: the old verifier (no key) would have passed it
    async with db.uow() as uow:
        rows = (await uow.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq))).all()
        assert all(r.hash == audit.entry_hash(r, None) for r in rows if r.seq >= 4)
    bad = _cli(db_url, tmp_path, "verify")
    assert bad.returncode == 1 and "mục 4" in bad.stderr and "bị sửa" in bad.stderr, bad.stderr
    # with the wrong secret (a copy of the database checked elsewhere) nothing verifies either
    wrong = _cli(db_url, tmp_path, "verify", secret="không-phải-khóa-của-máy-chủ")
    assert wrong.returncode == 1


async def test_anchor_then_truncate_is_caught(db: Database, db_url: str, tmp_path: Path) -> None:
    await _write(db, 5)
    anchor_file = tmp_path / "neo-nhat-ky.json"
    out = _cli(db_url, tmp_path, "anchor", "--output", str(anchor_file))
    assert out.returncode == 0, out.stderr
    anchor = json.loads(anchor_file.read_text(encoding="utf-8"))
    async with db.uow() as uow:
        last = await uow.session.get(audit.AuditEntry, 5)
        assert last is not None
    assert (anchor["seq"], anchor["hash"]) == (5, last.hash)
    assert dt.datetime.fromisoformat(anchor["at"]) == last.at
    printed = _cli(db_url, tmp_path, "anchor")  # to stdout
    assert printed.returncode == 0 and json.loads(printed.stdout)["hash"] == last.hash

    await _write(db, 2, start=5)  # the log goes on after the anchor
    good = _cli(db_url, tmp_path, "verify", "--anchor", str(anchor_file))
    assert good.returncode == 0 and "7 mục" in good.stdout and "neo 5" in good.stdout, good.stderr

    # an attacker removes the entries from 4 on and moves the head back: the remaining chain is valid ...
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
        head_hash = (await conn.execute(text("SELECT hash FROM audit_log WHERE seq = 3"))).scalar_one()
        await conn.execute(text("UPDATE audit_head SET seq = 3, hash = :h"), {"h": head_hash})
    assert _cli(db_url, tmp_path, "verify").returncode == 0
    # ... but not with the anchor kept elsewhere
    bad = _cli(db_url, tmp_path, "verify", "--anchor", str(anchor_file))
    assert bad.returncode == 1 and "mục 5" in bad.stderr and "cắt bớt" in bad.stderr, bad.stderr

    # an anchor whose entry was replaced (rewritten with the key's help is impossible; a forged hash is not)
    forged = tmp_path / "neo-sai.json"
    forged.write_text(json.dumps({**anchor, "seq": 2, "hash": "ab" * 32}), encoding="utf-8")
    assert _cli(db_url, tmp_path, "verify", "--anchor", str(forged)).returncode == 1
    broken = tmp_path / "hong.json"
    broken.write_text("không phải JSON", encoding="utf-8")
    unreadable = _cli(db_url, tmp_path, "verify", "--anchor", str(broken))
    assert unreadable.returncode == 2 and "tệp neo" in unreadable.stderr


async def test_entries_from_before_the_keyed_chain_are_checked_up_to_a_fixed_point(
        db: Database, db_url: str, tmp_path: Path) -> None:
    """Migration 0017 marks the existing entries as legacy (plain SHA-256); the marker is tagged with the key,
    so an attacker cannot move it forward to pass rewritten entries off as legacy ones."""
    await _write(db, 3)
    # as an old server wrote them: plain hashes, then the migration's switch-over point at the head
    await _rechain_plain(db, 1)
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_head SET legacy_seq = seq, legacy_tag = ''"))
    untagged = _cli(db_url, tmp_path, "verify")
    assert untagged.returncode == 1 and "ranh giới" in untagged.stderr
    await audit.seal_legacy(db)  # what the first start (or `eoffice migrate`) does with the key
    await _write(db, 2, start=3)  # new entries: keyed
    ok = _cli(db_url, tmp_path, "verify")
    assert ok.returncode == 0 and "5 mục" in ok.stdout, ok.stderr
    async with db.uow() as uow:
        e4 = await uow.session.get(audit.AuditEntry, 4)
        assert e4 is not None and e4.hash != audit.entry_hash(e4, None)
        assert e4.hash == audit.entry_hash(e4, audit.chain_key(db_url))

    # the attacker rewrites entry 4 and claims everything is legacy
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET object_id = '999' WHERE seq = 4"))
    await _rechain_plain(db, 4)
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_head SET legacy_seq = 5"))
    moved = _cli(db_url, tmp_path, "verify")
    assert moved.returncode == 1 and "ranh giới" in moved.stderr
    async with db.engine.begin() as conn:  # ... or that there never was a legacy part
        await conn.execute(text("UPDATE audit_head SET legacy_seq = 0, legacy_tag = ''"))
    assert _cli(db_url, tmp_path, "verify").returncode == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_old_database_upgrades_with_its_plain_entries_kept(db: Database, db_url: str, tmp_path: Path) -> None:
    """A database written by the previous version (plain SHA-256 chain) is migrated with `eoffice migrate`:
    its entries stay valid as legacy ones, the switch-over point is tagged, new entries are keyed."""
    old_url = f"sqlite+aiosqlite:///{tmp_path}/cu.db"
    await asyncio.to_thread(migrate, old_url, "0015")
    old = Database(old_url)  # no secret registered for it: written as the old server did, through SQL
    prev = audit.GENESIS
    async with old.engine.begin() as conn:
        for seq in (1, 2, 3):
            row = {"seq": seq, "at": dt.datetime(2026, 11, 20, 8, seq, tzinfo=dt.UTC), "actor_id": None,
                   "actor_name": "vanthu", "action": "document.register", "object_type": "document",
                   "object_id": str(seq), "data": {"summary": f"Công văn số {seq}/UBND-VX"}, "ip": "",
                   "prev_hash": prev}
            prev = audit.row_hash(row, None)
            await conn.execute(text(
                "INSERT INTO audit_log (seq, at, actor_id, actor_name, action, object_type, object_id, data, ip, "
                "prev_hash, hash) VALUES (:seq, :at, NULL, :actor_name, :action, :object_type, :object_id, :data, "
                ":ip, :prev_hash, :hash)"),
                {**row, "at": row["at"].replace(tzinfo=None), "data": json.dumps(row["data"], ensure_ascii=False),
                 "hash": prev})
        await conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 3, :h)"), {"h": prev})
    await old.dispose()

    secret = "bí-mật-máy-chủ-sau-nâng-cấp"
    env = {**os.environ, "EOFFICE_DATABASE_URL": old_url, "EOFFICE_VAR_DIR": str(tmp_path / "var"),
           "EOFFICE_SECRET_KEY": secret}
    up = await asyncio.to_thread(subprocess.run, [EOFFICE, "migrate"], env=env, capture_output=True, text=True,
                                 timeout=120)
    assert up.returncode == 0, up.stderr
    keys.register(old_url, secret)
    upgraded = Database(old_url)
    try:
        async with upgraded.uow() as uow:
            head = await uow.session.get(audit.AuditHead, 1)
            assert head is not None and head.legacy_seq == 3 and head.legacy_tag
            await audit.record(uow, None, "document.register", "document", 4, summary="Công văn số 4/UBND-VX")
            await uow.commit()
        async with upgraded.uow() as uow:
            assert (await audit.verify(uow.session)).ok
            e4 = await uow.session.get(audit.AuditEntry, 4)
            assert e4 is not None and e4.hash == audit.entry_hash(e4, audit.chain_key(old_url))
    finally:
        await upgraded.dispose()
    ok = _cli(old_url, tmp_path, "verify", secret=secret)
    assert ok.returncode == 0 and "4 mục" in ok.stdout, ok.stderr
