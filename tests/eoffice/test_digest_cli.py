"""`eoffice digest`: the daily reminder, through the real command against a real database."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from eoffice import identity, tasks
from eoffice.org import Role
from storage.db import Database
from storage.events import events_since

EOFFICE = str(Path(sys.executable).with_name("eoffice"))


def _digest(db_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EOFFICE_DATABASE_URL": db_url, "EOFFICE_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([EOFFICE, "digest", *args], env=env, capture_output=True, text=True, timeout=60)


async def test_digest_reminds_the_handler_of_an_overdue_task(db: Database, db_url: str, tmp_path: Path) -> None:
    async with db.uow() as uow:
        chair = await identity.create_user(uow, None, username="lanhdao", full_name="Trần Văn Hùng",
                                           password="mat-khau-dai", roles=[Role.LEADER])
        handler = await identity.create_user(uow, None, username="chuyenvien", full_name="Phạm Thu Hà",
                                             password="mat-khau-dai", roles=[Role.SPECIALIST])
        deadline = dt.date.today() + dt.timedelta(days=2)
        await tasks.create_meeting_task(uow, chair, title="Hoàn thiện kế hoạch chuyển đổi số",
                                        instruction="Theo kết luận cuộc họp", assignee={"user_id": handler.id},
                                        deadline=deadline, source={"meeting_id": 1})
        await uow.commit()

    bad = await asyncio.to_thread(_digest, db_url, tmp_path, "--date", "30/12/2026")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr

    later = (deadline + dt.timedelta(days=5)).isoformat()
    done = await asyncio.to_thread(_digest, db_url, tmp_path, "--date", later)
    assert done.returncode == 0, done.stderr
    assert "cho 1 người" in done.stdout
    async with db.uow(readonly=True) as uow:
        replay = await events_since(uow.session, f"user:{handler.id}", 0)
    digest = [e for e in replay.events if e["type"] == "tasks.digest"]
    assert len(digest) == 1 and "1 nhiệm vụ quá hạn" in digest[0]["data"]["message"]

    again = await asyncio.to_thread(_digest, db_url, tmp_path, "--date", later)  # cron twice, or cron + server
    assert again.returncode == 0, again.stderr
    assert "đã được gửi" in again.stdout and "--force" in again.stdout
    forced = await asyncio.to_thread(_digest, db_url, tmp_path, "--date", later, "--force")
    assert forced.returncode == 0 and "cho 1 người" in forced.stdout
    async with db.uow(readonly=True) as uow:
        replay = await events_since(uow.session, f"user:{handler.id}", 0)
    assert len([e for e in replay.events if e["type"] == "tasks.digest"]) == 2  # the first and the forced one
