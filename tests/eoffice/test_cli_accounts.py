"""`eoffice user passwd|deactivate|activate|list` and `eoffice token create|list|revoke` end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from eoffice import audit, identity
from storage.db import Database
from tests.eoffice.test_cli import _run

GOOD, NEW = "mat-khau-rat-dai", "Mật-khẩu-mới-2027"


def _db_check(tmp_path: Path, fn) -> object:  # type: ignore[no-untyped-def]
    async def go() -> object:
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/var/eoffice.db")
        try:
            async with db.uow() as uow:
                return await fn(uow)
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_user_and_token_commands(tmp_path: Path) -> None:
    assert _run(tmp_path, "migrate").returncode == 0
    added = _run(tmp_path, "user", "add", "chutich", "--name", "Trần Văn Hùng", "--role", "leader",
                 "--password-stdin", stdin=GOOD + "\n")
    assert added.returncode == 0, added.stderr

    read = _run(tmp_path, "token", "create", "chutich", "--name", "Bảng tin", "--scope", "read",
                "--expires-days", "30")
    assert read.returncode == 0 and read.stdout.strip().startswith("eo_"), read.stderr
    full = _run(tmp_path, "token", "create", "chutich", "--name", "Đồng bộ lịch")
    bad = _run(tmp_path, "token", "create", "chutich", "--expires-days", "0")
    assert bad.returncode == 2 and "Thời hạn" in bad.stderr
    listed = _run(tmp_path, "token", "list", "chutich")
    assert listed.returncode == 0 and "Bảng tin" in listed.stdout and "read" in listed.stdout
    assert "Đồng bộ lịch" in listed.stdout and read.stdout.strip() not in listed.stdout
    first_id = int(listed.stdout.splitlines()[-1].split()[0])  # newest first: the last line is "Bảng tin"
    revoked = _run(tmp_path, "token", "revoke", str(first_id))
    assert revoked.returncode == 0 and f"#{first_id}" in revoked.stdout, revoked.stderr
    again = _run(tmp_path, "token", "revoke", str(first_id))
    assert again.returncode == 2 and "trước đó" in again.stderr
    assert "ĐÃ THU HỒI" in _run(tmp_path, "token", "list", "chutich").stdout

    weak = _run(tmp_path, "user", "passwd", "chutich", "--password-stdin", stdin="12345678\n")
    assert weak.returncode == 2 and "dễ đoán" in weak.stderr
    passwd = _run(tmp_path, "user", "passwd", "chutich", "--password-stdin", stdin=NEW + "\n")
    assert passwd.returncode == 0, passwd.stderr

    async def after_passwd(uow):  # type: ignore[no-untyped-def]
        user = await identity.get_user(uow, "chutich")
        assert identity.check_password(user.password_hash, NEW)
        return (await identity.token_lookup(uow, full.stdout.strip()))[0]

    assert _db_check(tmp_path, after_passwd) is None  # the password change revoked the other token too

    off = _run(tmp_path, "user", "deactivate", "chutich")
    assert off.returncode == 0 and "Đã khóa" in off.stdout, off.stderr
    assert "ĐÃ KHÓA" in _run(tmp_path, "user", "list").stdout
    assert _run(tmp_path, "user", "deactivate", "chutich").returncode == 2
    on = _run(tmp_path, "user", "activate", "chutich")
    assert on.returncode == 0 and "Đã mở khóa" in on.stdout
    assert "hoạt động" in _run(tmp_path, "user", "list").stdout
    assert _run(tmp_path, "user", "activate", "khong.co.ai").returncode == 2

    async def actions(uow):  # type: ignore[no-untyped-def]
        rows = (await uow.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq))).all()
        return [(r.action, r.actor_name, dict(r.data)) for r in rows]

    logged = _db_check(tmp_path, actions)
    names = [a for a, _, _ in logged]  # type: ignore[union-attr]
    for action in ("token.create", "token.revoke", "user.password.reset", "user.deactivate", "user.activate"):
        assert action in names
    text = repr(logged)
    assert NEW not in text and GOOD not in text and read.stdout.strip() not in text
    assert _run(tmp_path, "audit", "verify").returncode == 0
