"""The daily digest sent by the server at a local hour, once however many processes run."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import replace

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice import digest, identity, tasks
from eoffice.digest import DigestRun, DigestScheduler
from eoffice.org import Role
from storage.db import Database
from storage.events import events_since
from storage.settings import Settings, _digest_hour
from web.app import create_app

UTC = dt.UTC
DEADLINE = dt.date.today() + dt.timedelta(days=2)  # due soon today, overdue a week later
LATER = DEADLINE + dt.timedelta(days=5)


def test_due_day_and_next_run_are_in_ho_chi_minh_time() -> None:
    # 23:30 UTC on 31/12 is 06:30 on 01/01 in Hà Nội: before 7 o'clock, nothing due yet
    assert digest.due_day(dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC), 7) is None
    assert digest.next_run(dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC), 7) == dt.datetime(2027, 1, 1, 0, 0,
                                                                                             tzinfo=UTC)
    # 00:05 UTC = 07:05 local: the day is due; the next run is tomorrow 07:00 local
    assert digest.due_day(dt.datetime(2027, 1, 1, 0, 5, tzinfo=UTC), 7) == dt.date(2027, 1, 1)
    assert digest.next_run(dt.datetime(2027, 1, 1, 0, 5, tzinfo=UTC), 7) == dt.datetime(2027, 1, 2, 0, 0, tzinfo=UTC)
    assert _digest_hour("off") is None and _digest_hour("6") == 6


async def _handler_with_overdue_task(db: Database) -> int:
    async with db.uow() as uow:
        chair = await identity.create_user(uow, None, username="lanhdao", full_name="Trần Văn Hùng",
                                           password="mat-khau-dai", roles=[Role.LEADER])
        handler = await identity.create_user(uow, None, username="chuyenvien", full_name="Phạm Thu Hà",
                                             password="mat-khau-dai", roles=[Role.SPECIALIST])
        await tasks.create_meeting_task(uow, chair, title="Báo cáo tiến độ chuyển đổi số Đông Triều",
                                        instruction="Theo kết luận cuộc họp", assignee={"user_id": handler.id},
                                        deadline=DEADLINE, source={"meeting_id": 1})
        await uow.commit()
    return handler.id


async def test_several_schedulers_send_one_digest_per_day(db: Database) -> None:
    handler = await _handler_with_overdue_task(db)
    others = [Database(db.url) for _ in range(3)]  # as if from other server processes
    try:
        at = dt.datetime.combine(LATER, dt.time(1), UTC)  # 08:00 in Hà Nội
        schedulers = [DigestScheduler(d, 7) for d in [db, *others]]
        results = await asyncio.gather(*(s.tick(at) for s in schedulers))
        assert sorted(results, key=lambda r: r is None) == [1, None, None, None]
        assert await schedulers[0].tick(at) is None  # the same process again: nothing
        before = dt.datetime.combine(LATER, dt.time(23, 30), UTC)  # 06:30 the next day: not yet
        assert await schedulers[1].tick(before) is None
        assert await schedulers[1].tick(before + dt.timedelta(hours=1)) == 1  # 07:30 the next day
    finally:
        for d in others:
            await d.dispose()
    async with db.uow(readonly=True) as uow:
        runs = (await uow.session.scalars(select(DigestRun).order_by(DigestRun.day))).all()
        replay = await events_since(uow.session, f"user:{handler}", 0)
    nxt = LATER + dt.timedelta(days=1)
    assert [(r.day, r.sent) for r in runs] == [(LATER, 1), (nxt, 1)]
    sent = [e["data"]["date"] for e in replay.events if e["type"] == "tasks.digest"]
    assert sent == [LATER.isoformat(), nxt.isoformat()]


async def test_a_failed_send_gives_the_day_back(db: Database) -> None:
    await _handler_with_overdue_task(db)
    at = dt.datetime.combine(LATER, dt.time(1), UTC)

    async def broken(uow: object, today: object = None) -> int:
        raise RuntimeError("mất kết nối")

    mp = pytest.MonkeyPatch()
    mp.setattr(tasks, "send_daily_digests", broken)
    try:
        with pytest.raises(RuntimeError):
            await DigestScheduler(db, 7).tick(at)
    finally:
        mp.undo()
    assert await DigestScheduler(db, 7).tick(at) == 1  # the claim rolled back with the failure


def test_server_sends_the_due_digest_at_startup(settings: Settings) -> None:
    from tests.web.conftest import run

    async def prepare() -> int:
        d = Database(settings.database_url)
        try:
            return await _handler_with_overdue_task(d)
        finally:
            await d.dispose()

    async def runs() -> list[DigestRun]:
        d = Database(settings.database_url)
        try:
            async with d.uow(readonly=True) as uow:
                return list((await uow.session.scalars(select(DigestRun))).all())
        finally:
            await d.dispose()

    run(prepare())
    app = create_app(replace(settings, digest_hour=0))  # 00:00 local: always due by now
    with TestClient(app):
        for _ in range(100):
            if run(runs()):
                break
            time.sleep(0.05)
        assert app.state.workers.digest_scheduler is not None
    (row,) = run(runs())  # type: ignore[misc]
    assert row.sent == 1
