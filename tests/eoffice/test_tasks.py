"""From document to tasks: submission, direction, passing down, progress, return, extension,
completion, inbox, task board, digest."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from eoffice import tasks
from eoffice.documents import get_document, register_incoming
from eoffice.schema.documents import Document, Status
from eoffice.schema.tasks import Task, TaskStatus, deadline_state
from eoffice.tasks import Assignee
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound
from storage.events import events_since
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload


def today() -> dt.date:
    from eoffice.registers import local_date

    return local_date(utcnow())


def test_deadline_state() -> None:
    t = Task(status="open", deadline=dt.date(2026, 3, 10))
    assert deadline_state(t, dt.date(2026, 3, 1)) == "ok"
    assert deadline_state(t, dt.date(2026, 3, 8)) == "due_soon"
    assert deadline_state(t, dt.date(2026, 3, 10)) == "due_soon"
    assert deadline_state(t, dt.date(2026, 3, 11)) == "overdue"
    # done at 23:30 on 10/03 in Hà Nội (16:30 UTC): on time; 00:30 on 11/03: late
    t.status, t.completed_at = "done", dt.datetime(2026, 3, 10, 16, 30, tzinfo=dt.UTC)
    assert deadline_state(t, dt.date(2026, 4, 1)) == "on_time"
    t.completed_at = dt.datetime(2026, 3, 10, 17, 30, tzinfo=dt.UTC)
    assert deadline_state(t, dt.date(2026, 4, 1)) == "late"
    assert deadline_state(Task(status="open", deadline=None), dt.date(2026, 1, 1)) == "none"
    with pytest.raises(Invalid):
        Assignee()
    with pytest.raises(Invalid):
        Assignee(user_id=1, unit_id=2)


async def _registered(db: Database, org: Org, blobs: BlobStore, **over: object) -> int:
    async with db.uow() as uow:
        pdf = await upload(uow, org["vanthu"], blobs, make_pdf())
        doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1, **over), upload_ids=[pdf])
        await uow.commit()
        return doc.id


async def test_full_flow(db: Database, org: Org, blobs: BlobStore) -> None:
    doc_id = await _registered(db, org, blobs)
    deadline = today() + dt.timedelta(days=10)
    u = org.units

    async with db.uow() as uow:
        with pytest.raises(Invalid, match="lãnh đạo"):
            await tasks.submit(uow, org["vanthu"], doc_id, org["chuyenvien"].id)
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id, "Kính trình đồng chí Chủ tịch")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        box = await tasks.inbox(uow, org["lanhdao"])
        assert [d["id"] for d in box["submitted"]] == [doc_id]
        with pytest.raises(NotFound):  # not yet assigned: the specialist cannot see it
            await get_document(uow, org["chuyenvien"], doc_id)
        with pytest.raises(Forbidden):
            await tasks.direct(uow, org["vanthu"], doc_id, text="x", main={"unit_id": u["KT"].id})

    async with db.uow() as uow:
        _, (main, collab) = await tasks.direct(
            uow, org["lanhdao"], doc_id, text="Giao Phòng Kinh tế chủ trì, tham mưu báo cáo trước hạn.",
            main={"unit_id": u["KT"].id}, collaborators=[{"user_id": org["chanhvp"].id}],
            informed=[{"unit_id": u["STTTT"].id}], deadline=deadline)
        await uow.commit()
    assert (main.role, collab.role, main.deadline) == ("main", "collab", deadline)

    async with db.uow() as uow:
        assert (await get_document(uow, org["lanhdao"], doc_id)).status == Status.IN_PROGRESS
        assert (await tasks.inbox(uow, org["lanhdao"]))["submitted"] == []
        # a unit task reaches the unit's leader, not its specialists (until passed down)
        assert [t["id"] for t in (await tasks.inbox(uow, org["truongphong"]))["tasks"]] == [main.id]
        assert (await tasks.inbox(uow, org["chuyenvien"]))["tasks"] == []
        # informed unit: its leader and its clerk see the document, in "informed"
        for name in ("stttt.giamdoc", "stttt.vanthu"):
            assert [d["id"] for d in (await tasks.inbox(uow, org[name]))["informed"]] == [doc_id]
        with pytest.raises(Forbidden):  # informed is not a handler
            await tasks.post_update(uow, org["stttt.giamdoc"], main.id, progress=10)
        with pytest.raises(Invalid, match="trong đơn vị"):
            await tasks.pass_down(uow, org["truongphong"], main.id, main_user_id=org["vanthu"].id)
        with pytest.raises(Invalid, match="sau hạn"):
            await tasks.pass_down(uow, org["truongphong"], main.id, main_user_id=org["chuyenvien"].id,
                                  deadline=deadline + dt.timedelta(days=1))
        child, child2 = await tasks.pass_down(
            uow, org["truongphong"], main.id, main_user_id=org["chuyenvien"].id,
            collaborator_ids=[org["chuyenvien2"].id], instruction="Đồng chí Hà dự thảo báo cáo.",
            deadline=deadline - dt.timedelta(days=3))
        await uow.commit()

    async with db.uow() as uow:
        cv = org["chuyenvien"]
        assert (await get_document(uow, cv, doc_id)).id == doc_id
        with pytest.raises(Forbidden):
            await tasks.post_update(uow, cv, main.id, progress=50)  # the unit task is the head's
        pdf = await upload(uow, cv, blobs, make_pdf(["Dự thảo báo cáo"]), "du-thao.pdf")
        await tasks.post_update(uow, cv, child.id, text="Đã xây dựng dự thảo", progress=40, upload_ids=[pdf])
        await tasks.post_update(uow, org["truongphong"], child.id, text="Bổ sung số liệu quý I")  # a comment
        with pytest.raises(Invalid, match="Hạn mới"):
            await tasks.request_extension(uow, cv, child.id, child.deadline, "Chờ số liệu")  # type: ignore[arg-type]
        req = await tasks.request_extension(uow, cv, child.id, deadline, "Chờ số liệu của các xã")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await tasks.request_extension(uow, cv, child.id, deadline, "Lần nữa")
        with pytest.raises(Forbidden):  # only the assigner decides
            await tasks.decide_extension(uow, org["lanhdao"], req.id, approve=True)
        with pytest.raises(Invalid, match="lý do"):
            await tasks.decide_extension(uow, org["truongphong"], req.id, approve=False)
        await tasks.decide_extension(uow, org["truongphong"], req.id, approve=True, note="Đồng ý")
        await uow.commit()

    async with db.uow() as uow:
        assert (await tasks.get_task(uow, cv, child.id)).deadline == deadline
        with pytest.raises(Invalid, match="lý do"):
            await tasks.return_task(uow, org["chuyenvien2"], child2.id, " ")
        await tasks.return_task(uow, org["chuyenvien2"], child2.id, "Không thuộc lĩnh vực phụ trách")
        await tasks.complete(uow, cv, child.id, result="Đã hoàn thành dự thảo báo cáo")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await tasks.post_update(uow, cv, child.id, progress=90)
        await tasks.complete(uow, org["truongphong"], main.id, result="Đã báo cáo Chủ tịch")
        await uow.commit()
    async with db.uow() as uow:
        # the collaborator's task is still open, but the main one decides the document
        assert (await get_document(uow, org["lanhdao"], doc_id)).status == Status.DONE
        tree = await tasks.task_tree(uow, org["lanhdao"], doc_id)
        assert [t["id"] for t in tree["tasks"]] == [main.id, collab.id]
        assert [c["id"] for c in tree["tasks"][0]["children"]] == [child.id, child2.id]
        assert tree["tasks"][0]["children"][1]["status"] == TaskStatus.RETURNED
        updates = await tasks.task_updates(uow, cv, child.id)
        assert [x.kind for x in updates] == ["progress", "file", "comment", "extension", "complete"]
        assert updates[1].filename == "du-thao.pdf"
        board = await tasks.my_tasks(uow, org["truongphong"], scope="assigned_by_me")
        assert [t.id for t in board] == [child.id, child2.id] or [t.id for t in board] == [child2.id, child.id]
        notes = await events_since(uow.session, f"user:{cv.id}", 0)
        assert [e["type"] for e in notes.events] == ["task.assigned", "task.extension_approved"]
        unit_notes = await events_since(uow.session, f"unit:{u['KT'].id}", 0)
        assert [e["type"] for e in unit_notes.events] == ["task.assigned"]


async def test_overdue_board_and_digest(db: Database, org: Org, blobs: BlobStore) -> None:
    doc_id = await _registered(db, org, blobs)
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        _, (t1,) = await tasks.direct(uow, org["lanhdao"], doc_id, text="Xử lý",
                                      main={"user_id": org["chuyenvien"].id}, deadline=today() + dt.timedelta(days=1))
        await uow.commit()
    async with db.uow() as uow:
        cv = org["chuyenvien"]
        assert [t.id for t in await tasks.my_tasks(uow, cv, state="due_soon")] == [t1.id]
        assert await tasks.my_tasks(uow, cv, state="overdue") == []
        later = today() + dt.timedelta(days=5)
        assert [t["id"] for t in (await tasks.digest(uow, cv, later))["overdue"]] == [t1.id]
        assert await tasks.send_daily_digests(uow, later) == 1
        events = await uow.commit()
    assert [(e["topic"], e["data"]["overdue"]) for e in events] == [(f"user:{cv.id}", [t1.id])]


async def test_document_without_access_cannot_be_directed_or_submitted(db: Database, org: Org,
                                                                       blobs: BlobStore) -> None:
    doc_id = await _registered(db, org, blobs, confidentiality="mat")
    async with db.uow() as uow:
        for name in ("lanhdao", "vanthu2", "admin"):
            with pytest.raises(NotFound):
                await tasks.submit(uow, org[name], doc_id, org["lanhdao"].id)
        with pytest.raises(NotFound):
            await tasks.direct(uow, org["lanhdao"], doc_id, text="x", main={"unit_id": org.units["KT"].id})
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    async with db.uow() as uow:
        await tasks.direct(uow, org["lanhdao"], doc_id, text="x", main={"unit_id": org.units["KT"].id})
        await uow.commit()
        count = len((await uow.session.scalars(select(Document))).all())
    assert count == 1


async def test_assigner_withdraws_and_reassigns(db: Database, org: Org, blobs: BlobStore) -> None:
    doc_id = await _registered(db, org, blobs)
    leader, head, cv, cv2 = org["lanhdao"], org["truongphong"], org["chuyenvien"], org["chuyenvien2"]
    u = org.units
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, leader.id)
        await uow.commit()
    async with db.uow() as uow:
        _, (main,) = await tasks.direct(uow, leader, doc_id, text="Phòng Kinh tế chủ trì tham mưu",
                                        main={"unit_id": u["KT"].id}, deadline=today() + dt.timedelta(days=7))
        await uow.commit()
    async with db.uow() as uow:
        (child,) = await tasks.pass_down(uow, head, main.id, main_user_id=cv.id)
        await uow.commit()

    async with db.uow() as uow:
        with pytest.raises(Forbidden):  # only the assigner takes a task back
            await tasks.withdraw(uow, head, main.id, "Không cần nữa")
        with pytest.raises(Invalid):
            await tasks.reassign(uow, leader, main.id, {"unit_id": u["KT"].id})  # already theirs
        task = await tasks.reassign(uow, leader, main.id, {"user_id": cv2.id}, "Giao trực tiếp chuyên viên Lý Văn Đức")
        await uow.commit()
    assert (task.assignee_user_id, task.assignee_unit_id, task.status) == (cv2.id, None, TaskStatus.OPEN)
    async with db.uow(readonly=True) as uow:
        assert (await uow.session.get(Task, child.id)).status == TaskStatus.WITHDRAWN  # type: ignore[union-attr]
        assert [t.id for t in await tasks.my_tasks(uow, cv2)] == [main.id]
        assert await tasks.digest(uow, cv) == {"overdue": [], "due_soon": []}
        await get_document(uow, cv2, doc_id)  # the new handler sees the document
        to_cv = await events_since(uow.session, f"user:{cv.id}", 0)
        to_cv2 = await events_since(uow.session, f"user:{cv2.id}", 0)
    assert to_cv.events[-1]["type"] == "task.withdrawn" and to_cv.events[-1]["data"]["task_id"] == child.id
    assert to_cv2.events[-1]["type"] == "task.assigned" and to_cv2.events[-1]["data"]["task_id"] == main.id

    async with db.uow() as uow:
        with pytest.raises(Invalid, match="lý do"):
            await tasks.withdraw(uow, leader, main.id, " ")
        await tasks.withdraw(uow, leader, main.id, "Văn bản đã được Ủy ban tỉnh thu hồi")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await tasks.post_update(uow, cv2, main.id, progress=50)
        with pytest.raises(Conflict):
            await tasks.withdraw(uow, leader, main.id, "lần nữa")
        assert await tasks.my_tasks(uow, cv2, state="due_soon") == []
        from eoffice.audit import AuditEntry

        actions = (await uow.session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "task", AuditEntry.object_id == str(main.id)))).all()
    assert "task.reassign" in actions and "task.withdraw" in actions
