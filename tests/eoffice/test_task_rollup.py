"""Issue #22, items 8 and 9: who may take a task (pickers and the services' refusal), progress rolled
up from the tasks passed down, the unit head's one-step confirmation with the sub-results, and
statistics counting documents once and the rolled-up completion as done."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from eoffice import stats, tasks
from eoffice.documents import register_incoming
from eoffice.org import Unit, User
from eoffice.registers import local_date
from eoffice.schema.documents import Document, Status
from eoffice.schema.tasks import Task, TaskStatus, TaskUpdate
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.errors import Invalid
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload


def today() -> dt.date:
    return local_date(utcnow())


async def ranked(db: Database, org: Org) -> None:
    """Ranks that differ from the names' order: Phòng Kinh tế before the Văn phòng, and in it the
    head, then Phạm Thu Hà, then Lý Văn Đức."""
    async with db.uow() as uow:
        for code, rank in (("KT", 1), ("VP", 2)):
            unit = await uow.session.get(Unit, org.units[code].id)
            assert unit is not None
            unit.rank = rank
        for name, rank in (("truongphong", 1), ("chuyenvien", 5), ("chuyenvien2", 9)):
            user = await uow.session.get(User, org[name].id)
            assert user is not None
            user.rank = rank
        await uow.commit()


async def directed(db: Database, org: Org, blobs: BlobStore, i: int = 1, **direction: object) -> tuple[int, list[int]]:
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(
            i, summary=f"Công văn số {i} về chuyển đổi số tại thị xã Đông Triều"))
        await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
        kwargs: dict[str, object] = {"text": "Phòng Kinh tế chủ trì tham mưu.", "main": {"unit_id": org.units["KT"].id},
                                     "deadline": today() + dt.timedelta(days=5), **direction}
        _, made = await tasks.direct(uow, org["lanhdao"], doc.id, **kwargs)  # type: ignore[arg-type]
        await uow.commit()
        return doc.id, [t.id for t in made]


async def test_direction_candidates_are_handlers_grouped_by_unit_and_rank(db: Database, org: Org) -> None:
    await ranked(db, org)
    async with db.uow(readonly=True) as uow:
        leader = await uow.session.get(User, org["lanhdao"].id)
        assert leader is not None
        groups = await tasks.direction_candidates(uow, leader)
        shape = [(g.unit.code, g.unit_option, [p.username for p in g.people]) for g in groups]
        # the agency itself is no option; Đông Triều has no leader to handle a unit task; the Sở is
        # an option as a unit, its people are its own; no admin, clerk or the leader himself
        assert shape == [("KT", True, ["truongphong", "chuyenvien", "chuyenvien2"]), ("VP", True, ["chanhvp"]),
                         ("STTTT", True, [])]
        head = await uow.session.get(User, org["truongphong"].id)
        assert head is not None
        shape = [(g.unit.code, g.unit_option, [p.username for p in g.people])
                 for g in await tasks.direction_candidates(uow, head)]
        # a unit head directing: within his unit only, not the unit itself, not himself, never the chairman
        assert shape == [("KT", False, ["chuyenvien", "chuyenvien2"])]


async def test_direction_refuses_who_cannot_take_the_role(db: Database, org: Org, blobs: BlobStore) -> None:
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1))
        await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
        await uow.commit()
    cases = [({"user_id": org["vanthu"].id}, [], "main", "Nguyễn Thị Lan"),
             ({"user_id": org["admin"].id}, [], "main", "Quản trị hệ thống"),
             ({"user_id": org["lanhdao"].id}, [], "main", "chính mình"),
             ({"unit_id": org.units["DT"].id}, [], "main", "Ủy ban nhân dân thị xã Đông Triều"),
             ({"unit_id": org.units["UBND"].id}, [], "main", "không thể nhận nhiệm vụ chủ trì"),
             ({"unit_id": org.units["KT"].id}, [{"user_id": org["vanthu2"].id}], "collaborators", "phối hợp")]
    for main, collab, field, words in cases:
        async with db.uow() as uow:
            with pytest.raises(Invalid) as err:
                await tasks.direct(uow, org["lanhdao"], doc.id, text="Giao xử lý", main=main, collaborators=collab)
            assert err.value.details["field"] == field and words in err.value.message, (main, err.value.message)


async def test_pass_down_refuses_the_head_himself_clerks_and_others(db: Database, org: Org, blobs: BlobStore) -> None:
    async with db.uow() as uow:
        vp_clerk = await uow.session.get(User, org["vanthu2"].id)
        assert vp_clerk is not None
        vp_clerk.unit_id = org.units["KT"].id  # a clerk working in the unit
        await uow.commit()
    _doc, (unit_task,) = await directed(db, org, blobs)
    for uid, field, words in ((org["truongphong"].id, "main_user_id", "chính mình"),
                              (org["vanthu2"].id, "main_user_id", "Trịnh Thị Ngọc"),
                              (org["lanhdao"].id, "main_user_id", "trong đơn vị")):
        async with db.uow() as uow:
            with pytest.raises(Invalid) as err:
                await tasks.pass_down(uow, org["truongphong"], unit_task, main_user_id=uid)
            assert err.value.details["field"] == field and words in err.value.message
    async with db.uow() as uow:
        with pytest.raises(Invalid) as err:
            await tasks.pass_down(uow, org["truongphong"], unit_task, main_user_id=org["chuyenvien"].id,
                                  collaborator_ids=[org["vanthu2"].id])
        assert err.value.details["field"] == "collaborator_ids"
        task = await uow.session.get(Task, unit_task)
        assert task is not None
        assert [u.username for u in await tasks.pass_down_candidates(uow, org["truongphong"], task)] == \
            sorted(["chuyenvien", "chuyenvien2"], key=lambda n: org[n].full_name)


def test_rolled_up_progress_is_the_mean_of_live_children() -> None:
    def t(status: str, progress: int) -> Task:
        return Task(status=status, progress=progress)

    assert tasks.rolled_up_progress([]) is None
    assert tasks.rolled_up_progress([t("withdrawn", 80)]) is None
    assert tasks.rolled_up_progress([t("in_progress", 100), t("open", 0)]) == 50
    assert tasks.rolled_up_progress([t("done", 0), t("returned", 0), t("in_progress", 33)]) == 66
    assert tasks.rolled_up_progress([t("in_progress", 99), t("done", 100)]) == 99  # 100 only when all are


async def test_progress_rolls_up_and_the_head_confirms_in_one_step(db: Database, org: Org, blobs: BlobStore) -> None:
    doc_id, (unit_task,) = await directed(db, org, blobs)
    head, cv, cv2 = org["truongphong"], org["chuyenvien"], org["chuyenvien2"]
    async with db.uow() as uow:
        main, collab = await tasks.pass_down(uow, head, unit_task, main_user_id=cv.id, collaborator_ids=[cv2.id])
        await uow.commit()
    async with db.uow() as uow:
        await tasks.post_update(uow, cv, main.id, progress=100, text="Đã dự thảo xong báo cáo")
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        parent = await uow.session.get(Task, unit_task)
        assert parent is not None and (parent.progress, parent.status) == (50, TaskStatus.IN_PROGRESS)
    async with db.uow() as uow:  # a head completing before the sub-tasks are done must still write a result
        with pytest.raises(Invalid, match="còn 2 nhiệm vụ giao lại"):
            await tasks.complete(uow, head, unit_task, result="")
    async with db.uow() as uow:
        pdf = await upload(uow, cv, blobs, make_pdf(["Báo cáo kết quả chuyển đổi số"]), "bao-cao-kt.pdf")
        await tasks.complete(uow, cv, main.id, result="Báo cáo số 45/BC-KT", upload_ids=[pdf])
        await tasks.complete(uow, cv2, collab.id, result="Đã góp ý số liệu")
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        parent = await uow.session.get(Task, unit_task)
        assert parent is not None and parent.progress == 100 and parent.status == TaskStatus.IN_PROGRESS
        kids = [await uow.session.get(Task, main.id), await uow.session.get(Task, collab.id)]
        last = max(t.completed_at for t in kids if t is not None and t.completed_at is not None)
    async with db.uow() as uow:  # one step: no retyping
        done = await tasks.complete(uow, head, unit_task, result="")
        await uow.commit()
    assert done.status == TaskStatus.DONE and done.completed_at == last
    assert done.result.startswith("Kết quả của cấp dưới:")
    assert "Phạm Thu Hà (chủ trì): Báo cáo số 45/BC-KT" in done.result
    assert "Lý Văn Đức (phối hợp): Đã góp ý số liệu" in done.result
    async with db.uow(readonly=True) as uow:
        files = [u for u in await tasks.task_updates(uow, head, unit_task) if u.kind == "file"]
        assert [(f.filename, f.user_id) for f in files] == [("bao-cao-kt.pdf", cv.id)]
        assert (await tasks.update_file(uow, org["lanhdao"], files[0].id)).blob_key == files[0].blob_key
        doc = await uow.session.get(Document, doc_id)
        assert doc is not None and doc.status == Status.DONE


async def test_statistics_count_documents_once_and_the_rolled_up_completion(db: Database, org: Org,
                                                                           blobs: BlobStore) -> None:
    kt, vp = org.units["KT"], org.units["VP"]
    # document 1: the unit chủ trì, one of its specialists and the Văn phòng phối hợp (3 tasks), directed twice
    doc1, (unit_task, c1, _c2) = await directed(db, org, blobs, 1, collaborators=[
        {"user_id": org["chuyenvien"].id}, {"unit_id": vp.id}])
    async with db.uow() as uow:
        await tasks.direct(uow, org["lanhdao"], doc1, text="Bổ sung: báo cáo trước hạn.", main={"unit_id": kt.id})
        (child,) = await tasks.pass_down(uow, org["truongphong"], unit_task, main_user_id=org["chuyenvien2"].id)
        await uow.commit()
    period = dict(date_from=today().replace(day=1), date_to=today())
    async with db.uow(readonly=True) as uow:
        agency = await stats.statistics(uow, org["lanhdao"], level="agency", **period)
        assert agency["total"]["received"] == 1 and agency["rows"][0]["in_progress"] == 1
        units = await stats.statistics(uow, org["lanhdao"], level="unit", **period)
        assert {r["name"]: r["received"] for r in units["rows"]} == {kt.name: 1, vp.name: 1}
        assert units["total"]["received"] == 1
    async with db.uow() as uow:  # the specialist finishes: the unit's task counts done before the head confirms
        await tasks.complete(uow, org["chuyenvien2"], child.id, result="Đã xong")
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        units = await stats.statistics(uow, org["lanhdao"], level="unit", **period)
        kt_row = next(r for r in units["rows"] if r["name"] == kt.name)
        # the second direction's task of Phòng Kinh tế is still open: the document stays in progress for it
        assert (kt_row["received"], kt_row["in_progress"]) == (1, 1)
    async with db.uow() as uow:
        second = await uow.session.scalar(select(Task.id).where(
            Task.document_id == doc1, Task.parent_id.is_(None), Task.role == "main", Task.id != unit_task))
        assert second is not None
        await tasks.withdraw(uow, org["lanhdao"], second, "Trùng với chỉ đạo trước")
        await tasks.complete(uow, org["chuyenvien"], c1, result="Đã phối hợp")  # the unit's other task on it
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        agency = await stats.statistics(uow, org["lanhdao"], level="agency", **period)
        assert (agency["total"]["received"], agency["total"]["on_time"]) == (1, 1)
        units = await stats.statistics(uow, org["lanhdao"], level="unit", **period)
        kt_row = next(r for r in units["rows"] if r["name"] == kt.name)
        assert (kt_row["received"], kt_row["on_time"], kt_row["in_progress"]) == (1, 1, 0)
        parent = await uow.session.get(Task, unit_task)
        assert parent is not None and parent.status == TaskStatus.IN_PROGRESS and parent.progress == 100
        assert await uow.session.scalar(select(TaskUpdate.id).where(TaskUpdate.task_id == unit_task,
                                                                          TaskUpdate.kind == "complete")) is None
