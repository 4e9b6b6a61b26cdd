"""Two people acting on one task at the same moment: the second waits for the first and sees its
result (row locks on PostgreSQL, the write lock on SQLite), instead of both acting on a stale read."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from eoffice import tasks
from eoffice.documents import register_incoming
from eoffice.registers import local_date
from eoffice.schema.tasks import TaskStatus
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.errors import Conflict
from tests.eoffice.conftest import Org, incoming_fields


async def _task_with_request(db: Database, org: Org, blobs: BlobStore) -> tuple[int, int]:
    """A task from the head of unit to a specialist, who asks for more time."""
    deadline = local_date(utcnow()) + dt.timedelta(days=10)
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1))
        await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
        _, (main,) = await tasks.direct(uow, org["lanhdao"], doc.id, text="Phòng Kinh tế chủ trì",
                                        main={"unit_id": org.units["KT"].id}, deadline=deadline)
        (child,) = await tasks.pass_down(uow, org["truongphong"], main.id, main_user_id=org["chuyenvien"].id,
                                         deadline=deadline - dt.timedelta(days=3))
        req = await tasks.request_extension(uow, org["chuyenvien"], child.id, deadline, "Chờ số liệu của các xã")
        await uow.commit()
        return child.id, req.id


async def _race(db: Database, first: Any, second: Any) -> tuple[Any, BaseException | Any]:
    """``first`` runs and holds its transaction; ``second`` starts meanwhile and must wait for its commit."""
    async with db.uow() as uow1:
        done = await first(uow1)

        async def later() -> Any:
            async with db.uow() as uow2:
                out = await second(uow2)
                await uow2.commit()
                return out

        racer = asyncio.create_task(later())
        await asyncio.sleep(0.5)
        assert not racer.done(), "the second change did not wait for the first"
        await uow1.commit()
    try:
        return done, await asyncio.wait_for(racer, 30)
    except Conflict as exc:
        return done, exc


async def test_two_decisions_on_one_extension_request_the_second_sees_the_first(
        db: Database, org: Org, blobs: BlobStore) -> None:
    _task_id, req_id = await _task_with_request(db, org, blobs)
    head = org["truongphong"]
    _, second = await _race(
        db, lambda uow: tasks.decide_extension(uow, head, req_id, approve=True, note="Đồng ý"),
        lambda uow: tasks.decide_extension(uow, head, req_id, approve=False, note="Không đồng ý"))
    assert isinstance(second, Conflict) and "đã được xử lý" in second.message
    async with db.uow(readonly=True) as uow:
        req = await uow.session.get(tasks.ExtensionRequest, req_id)
        assert req is not None and req.status == "approved"


async def test_completing_while_the_assigner_withdraws_is_refused_after_the_withdrawal(
        db: Database, org: Org, blobs: BlobStore) -> None:
    task_id, _ = await _task_with_request(db, org, blobs)
    _, second = await _race(
        db, lambda uow: tasks.withdraw(uow, org["truongphong"], task_id, "Giao lại cho người khác"),
        lambda uow: tasks.complete(uow, org["chuyenvien"], task_id, result="Đã xong báo cáo"))
    assert isinstance(second, Conflict) and "thu hồi" in second.message
    async with db.uow(readonly=True) as uow:
        assert (await tasks.get_task(uow, org["truongphong"], task_id)).status == TaskStatus.WITHDRAWN


@pytest.mark.parametrize("order", ["complete_first", "withdraw_first"])
async def test_withdraw_and_complete_race_ends_in_one_consistent_state(
        db: Database, org: Org, blobs: BlobStore, order: str) -> None:
    task_id, _ = await _task_with_request(db, org, blobs)
    withdraw = lambda uow: tasks.withdraw(uow, org["truongphong"], task_id, "Thu hồi")  # noqa: E731
    complete = lambda uow: tasks.complete(uow, org["chuyenvien"], task_id, result="Đã xong")  # noqa: E731
    first, second = (complete, withdraw) if order == "complete_first" else (withdraw, complete)
    _, outcome = await _race(db, first, second)
    assert isinstance(outcome, Conflict)
    async with db.uow(readonly=True) as uow:
        status = (await tasks.get_task(uow, org["truongphong"], task_id)).status
    assert status == (TaskStatus.DONE if order == "complete_first" else TaskStatus.WITHDRAWN)
