"""Statistics: a task handed back (trả lại) is not its handler's work."""

from __future__ import annotations

import datetime as dt
from typing import Any

from eoffice import stats, tasks
from eoffice.documents import register_incoming
from eoffice.registers import local_date
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from tests.eoffice.conftest import Org, incoming_fields


def _rows(figures: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {r["name"]: (r["received"], r["in_progress"], r["overdue"]) for r in figures["rows"]}


async def test_a_returned_task_is_not_the_handlers_pending_or_overdue_work(db: Database, org: Org,
                                                                          blobs: BlobStore) -> None:
    today = local_date(utcnow())
    cv, cv2, head, leader = org["chuyenvien"], org["chuyenvien2"], org["truongphong"], org["lanhdao"]
    async with db.uow() as uow:
        made = []
        for i in range(3):
            doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(
                i, summary=f"Công văn số {i} về cải cách hành chính tại huyện Đông Triều"))
            await tasks.submit(uow, org["vanthu"], doc.id, leader.id)
            main = {"user_id": cv.id} if i < 2 else {"unit_id": org.units["KT"].id}
            _, (t,) = await tasks.direct(uow, leader, doc.id, text="Xử lý", main=main,
                                         deadline=today + dt.timedelta(days=3))
            made.append(t)
        await uow.commit()
    async with db.uow() as uow:  # the unit's head passes document 2 down to chuyenvien2
        (sub,) = await tasks.pass_down(uow, head, made[2].id, main_user_id=cv2.id)
        sub_id = sub.id
        await uow.commit()
    async with db.uow() as uow:  # both handed back, then their deadlines pass
        await tasks.return_task(uow, cv, made[0].id, "Không thuộc lĩnh vực Phòng Kinh tế phụ trách")
        await tasks.return_task(uow, cv2, sub_id, "Đề nghị giao chuyên viên phụ trách địa bàn")
        for task_id in (made[0].id, made[1].id, sub_id):
            t = await uow.session.get(tasks.Task, task_id)
            assert t is not None
            t.deadline = today - dt.timedelta(days=1)
        await uow.commit()

    period = dict(date_from=today.replace(day=1), date_to=today)
    async with db.uow(readonly=True) as uow:
        people = await stats.statistics(uow, leader, level="person", **period)
        # chuyenvien: document 1 overdue; the returned document 0 is not theirs any more
        # chuyenvien2: the returned sub-task counts nowhere
        assert _rows(people) == {"Phạm Thu Hà": (1, 0, 1)}
        assert people["total"]["received"] == 1 and people["total"]["overdue"] == 1
        units = await stats.statistics(uow, leader, level="unit", **period)
        # Phòng Kinh tế: document 1 (chuyenvien, overdue) and its own task on document 2 (pending)
        assert _rows(units) == {"Phòng Kinh tế": (2, 1, 1)}
        # the agency has still to handle document 0: pending, overdue past its deadline
        agency = await stats.statistics(uow, leader, level="agency", **period)
        assert _rows(agency) == {"Ủy ban nhân dân tỉnh Quảng Ninh": (3, 1, 2)}
        own = await stats.statistics(uow, cv2, level="person", **period)
        assert own["rows"] == [] and own["total"]["received"] == 0

    async with db.uow() as uow:  # the leader gives the returned task to chuyenvien2: theirs from now on
        await tasks.reassign(uow, leader, made[0].id, {"user_id": cv2.id}, "Giao chuyên viên khác")
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        people = await stats.statistics(uow, leader, level="person", **period)
        assert _rows(people) == {"Phạm Thu Hà": (1, 0, 1), "Lý Văn Đức": (1, 0, 1)}


def test_counts_for_handler() -> None:
    assert stats.counts_for_handler(tasks.TaskStatus.OPEN)
    assert stats.counts_for_handler(tasks.TaskStatus.IN_PROGRESS)
    assert stats.counts_for_handler(tasks.TaskStatus.DONE)
    assert not stats.counts_for_handler(tasks.TaskStatus.RETURNED)
    assert not stats.counts_for_handler(tasks.TaskStatus.WITHDRAWN)
