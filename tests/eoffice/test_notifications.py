"""Notifications (issue #21): the flow's events become stored Vietnamese sentences with links, for the people
they concern and only those who may see what they are about; read marks, preferences, deadline reminders
once each, escalation, retention. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from eoffice import edxml, notifications, tasks
from eoffice.documents import register_incoming
from eoffice.notifications import Config
from eoffice.registers import local_date
from eoffice.schema.notifications import MailOutbox, Notification
from eoffice.tasks import Assignee
from meetings import notices
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.events import events_since
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload
from tests.eoffice.test_edxml import xml


@pytest.fixture
async def ndb(db: Database) -> AsyncIterator[Database]:
    """The database with notifications installed, as the server wires it (e-mail queued)."""
    notifications.install(db, Config(email=True, base_url="https://vpdt.quangninh.gov.vn"), handlers=notices.HANDLERS)
    yield db


def today() -> dt.date:
    return local_date(utcnow())


async def texts(db: Database, user_id: int) -> list[tuple[str, str, str]]:
    async with db.uow() as uow:
        rows = (await uow.session.scalars(select(Notification).where(Notification.user_id == user_id)
                                          .order_by(Notification.id))).all()
    return [(r.kind, r.text, r.link) for r in rows]


async def registered(db: Database, org: Org, blobs: BlobStore, i: int = 1, **over: object) -> int:
    async with db.uow() as uow:
        pdf = await upload(uow, org["vanthu"], blobs, make_pdf())
        doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(i, **over), upload_ids=[pdf])
        await uow.commit()
        return doc.id


async def test_submission_and_direction_notify_the_people_concerned(ndb: Database, org: Org,
                                                                    blobs: BlobStore) -> None:
    doc_id = await registered(ndb, org, blobs)
    async with ndb.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    summary = "Công văn về việc triển khai chính quyền điện tử (lần 1)"
    assert await texts(ndb, org["lanhdao"].id) == [
        ("document.submitted", f"Nguyễn Thị Lan trình văn bản «{summary}» để đồng chí cho ý kiến chỉ đạo.",
         f"/documents/{doc_id}")]
    # the bell of the leader's open pages hears it, with the unread count
    async with ndb.uow() as uow:
        replay = await events_since(uow.session, f"user:{org['lanhdao'].id}", 0)
    assert [(e["type"], e["data"].get("unread")) for e in replay.events] == [
        ("document.submitted", None), ("notification.new", 1)]
    assert replay.events[1]["data"]["link"] == f"/documents/{doc_id}"

    deadline = today() + dt.timedelta(days=10)
    async with ndb.uow() as uow:
        _, made = await tasks.direct(uow, org["lanhdao"], doc_id, text="Giao Phòng Kinh tế chủ trì, báo cáo trước hạn.",
                                     main=Assignee(unit_id=org.units["KT"].id),
                                     collaborators=[Assignee(user_id=org["chuyenvien2"].id)], deadline=deadline)
        await uow.commit()
    main, collab = made
    due = f"{deadline:%d/%m/%Y}"
    assert await texts(ndb, org["truongphong"].id) == [
        ("task.assigned", f"Đơn vị Phòng Kinh tế được Trần Văn Hùng giao chủ trì xử lý «{summary}», hạn {due}.",
         f"/tasks/{main.id}")]
    assert await texts(ndb, org["chuyenvien2"].id) == [
        ("task.assigned", f"Bạn được Trần Văn Hùng giao phối hợp xử lý «{summary}», hạn {due}.",
         f"/tasks/{collab.id}")]
    assert await texts(ndb, org["chuyenvien"].id) == []  # not assigned: nothing

    # the head passes it down; the handler asks for more time; the leader refuses; the handler returns it
    async with ndb.uow() as uow:
        (child,) = await tasks.pass_down(uow, org["truongphong"], main.id, main_user_id=org["chuyenvien"].id)
        await uow.commit()
    later = deadline - dt.timedelta(days=1)
    async with ndb.uow() as uow:
        req = await tasks.request_extension(uow, org["chuyenvien"], child.id, deadline + dt.timedelta(days=5),
                                            "Chờ số liệu của các xã.")
        await uow.commit()
    assert later < deadline
    got = await texts(ndb, org["chuyenvien"].id)
    assert got == [("task.assigned", f"Bạn được Đỗ Quang Vinh giao chủ trì xử lý «{summary}», hạn {due}.",
                    f"/tasks/{child.id}")]
    (asked,) = [t for t in await texts(ndb, org["truongphong"].id) if t[0] == "task.extension"]
    assert asked == ("task.extension", f"Phạm Thu Hà xin gia hạn nhiệm vụ «{summary}» từ {due} đến "
                     f"{deadline + dt.timedelta(days=5):%d/%m/%Y}.", f"/tasks/{child.id}")
    async with ndb.uow() as uow:
        await tasks.decide_extension(uow, org["truongphong"], req.id, approve=False, note="Hạn đã sát.")
        await uow.commit()
    async with ndb.uow() as uow:
        await tasks.return_task(uow, org["chuyenvien"], child.id, "Không thuộc chức năng của phòng.")
        await uow.commit()
    assert (await texts(ndb, org["chuyenvien"].id))[-1] == (
        "task.extension", f"Đề nghị gia hạn nhiệm vụ «{summary}» không được chấp thuận. Lý do: Hạn đã sát.",
        f"/tasks/{child.id}")
    assert (await texts(ndb, org["truongphong"].id))[-1] == (
        "task.returned", f"Phạm Thu Hà đã trả lại nhiệm vụ «{summary}». Lý do: Không thuộc chức năng của phòng.",
        f"/tasks/{child.id}")
    # e-mail on by default for tasks: queued for users with an address only (these have none)
    async with ndb.uow() as uow:
        assert await uow.session.scalar(select(func.count(MailOutbox.id))) == 0


async def test_a_rolled_back_change_notifies_nobody(ndb: Database, org: Org, blobs: BlobStore) -> None:
    doc_id = await registered(ndb, org, blobs)
    async with ndb.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)  # no commit
    assert await texts(ndb, org["lanhdao"].id) == []


async def test_confidential_document_reaches_only_its_readers(ndb: Database, org: Org, blobs: BlobStore) -> None:
    """A notification addressed to a unit goes to each of its readers who may see the document: the agency's
    second clerk sees its ordinary registered documents, not its confidential ones."""
    normal = await registered(ndb, org, blobs, 1)
    secret = await registered(ndb, org, blobs, 2, confidentiality="mat", summary="Phương án nhân sự (mật)")
    agency = org.units["UBND"].id
    for doc_id in (normal, secret):
        async with ndb.uow() as uow:
            uow.emit(f"unit:{agency}", "document.received", document_id=doc_id, by=org["vanthu"].id)
            await uow.commit()
    got = await texts(ndb, org["vanthu2"].id)
    assert [link for _, _, link in got] == [f"/documents/{normal}"]
    assert all("nhân sự" not in text for _, text, _ in got)
    for name in ("vanthu", "lanhdao", "chuyenvien", "stttt.vanthu"):  # the importer, no grant, other agency
        assert await texts(ndb, org[name].id) == [], name


async def test_confidential_email_keeps_the_title_out(ndb: Database, org: Org, blobs: BlobStore) -> None:
    secret = await registered(ndb, org, blobs, 3, confidentiality="mat", summary="Phương án nhân sự (mật)")
    async with ndb.uow() as uow:
        lead = await uow.session.get(type(org["lanhdao"]), org["lanhdao"].id)
        assert lead is not None
        lead.email = "hung.tv@quangninh.gov.vn"
        await uow.commit()
    async with ndb.uow() as uow:
        await tasks.submit(uow, org["vanthu"], secret, org["lanhdao"].id)
        await uow.commit()
    (stored,) = await texts(ndb, org["lanhdao"].id)
    assert "Phương án nhân sự" in stored[1]  # he may see it: in the app, the sentence is whole
    async with ndb.uow() as uow:
        (mail,) = (await uow.session.scalars(select(MailOutbox))).all()
    assert mail.to_addr == "hung.tv@quangninh.gov.vn"
    assert mail.subject == "[Văn phòng điện tử] Thông báo mới về văn bản mật"
    assert "nhân sự" not in mail.body_text and "nhân sự" not in mail.body_html
    assert f"https://vpdt.quangninh.gov.vn/documents/{secret}" in mail.body_text


async def test_edxml_arrival_notifies_the_agency_clerks(ndb: Database, org: Org, blobs: BlobStore) -> None:
    async with ndb.uow() as uow:
        result = await edxml.import_package(uow, org["vanthu"], blobs, xml(), "cv125.xml")
        await uow.commit()
    assert result.ok and result.document is not None
    assert await texts(ndb, org["vanthu2"].id) == [(
        "document.received", "Văn bản điện tử (edXML) từ Ủy ban nhân dân thị xã Đông Triều đã đến cơ quan: "
        "«Công văn về việc triển khai chính quyền điện tử», số đến 1.", f"/documents/{result.document.id}")]
    assert await texts(ndb, org["vanthu"].id) == []  # who imported it knows


async def test_read_marks_and_preferences(ndb: Database, org: Org, blobs: BlobStore) -> None:
    lead = org["lanhdao"]
    for i in (1, 2, 3):
        doc_id = await registered(ndb, org, blobs, i)
        async with ndb.uow() as uow:
            await tasks.submit(uow, org["vanthu"], doc_id, lead.id)
            await uow.commit()
    async with ndb.uow() as uow:
        rows, unread, total = await notifications.list_for(uow, lead, limit=2)
        assert (len(rows), unread, total) == (2, 3, 3) and rows[0].id > rows[1].id
        older, _, _ = await notifications.list_for(uow, lead, before=rows[1].id)
        assert len(older) == 1
        await notifications.mark_read(uow, lead, rows[0].id)
        await uow.commit()
    async with ndb.uow() as uow:
        unread_rows, unread, _ = await notifications.list_for(uow, lead, unread_only=True)
        assert unread == 2 and rows[0].id not in [r.id for r in unread_rows]
        with pytest.raises(notifications.NotFound):  # somebody else's is not found
            await notifications.mark_read(uow, org["vanthu"], rows[1].id)
        assert await notifications.mark_all_read(uow, lead) == 2
        await uow.commit()
    async with ndb.uow() as uow:
        assert await notifications.unread_count(uow, lead.id) == 0
        events = (await events_since(uow.session, f"user:{lead.id}", 0)).events
    assert [e["data"]["unread"] for e in events if e["type"].startswith("notification.")] == [1, 2, 3, 2, 0]

    # no more in the app for submissions; e-mail instead, held through quiet hours
    async with ndb.uow() as uow:
        lead_row = await uow.session.get(type(lead), lead.id)
        assert lead_row is not None
        lead_row.email = "hung.tv@quangninh.gov.vn"
        prefs = await notifications.set_preferences(uow, lead_row, {"document.submitted": (False, True)},
                                                    (0, 24 * 60 - 1))
        await uow.commit()
    assert prefs["quiet_start"] == "00:00" and prefs["quiet_end"] == "23:59"
    assert {k["kind"]: (k["in_app"], k["email"]) for k in prefs["kinds"]}["document.submitted"] == (False, True)
    doc_id = await registered(ndb, org, blobs, 4)
    async with ndb.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, lead.id)
        await uow.commit()
    assert len(await texts(ndb, lead.id)) == 3
    async with ndb.uow() as uow:
        (mail,) = (await uow.session.scalars(select(MailOutbox))).all()
    assert mail.next_attempt_at > utcnow()  # waits for the quiet hours to end
    with pytest.raises(notifications.Invalid):
        notifications.parse_minute("25:00", "quiet_start")


def test_quiet_hours_rule() -> None:
    assert notifications.in_quiet(23 * 60, 22 * 60, 6 * 60) and notifications.in_quiet(60, 22 * 60, 6 * 60)
    assert not notifications.in_quiet(12 * 60, 22 * 60, 6 * 60) and not notifications.in_quiet(0, 0, 0)
    # 23:00 in Hà Nội is 16:00 UTC; quiet 22:00-06:00: the mail waits until 06:00 the next morning (23:00 UTC)
    at = notifications.quiet_until(dt.datetime(2026, 12, 7, 16, 0, tzinfo=dt.UTC), 22 * 60, 6 * 60)
    assert at == dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)
    noon = dt.datetime(2026, 12, 7, 5, 0, tzinfo=dt.UTC)
    assert notifications.quiet_until(noon, 22 * 60, 6 * 60) == noon


async def test_deadline_reminders_once_each_and_escalation(ndb: Database, org: Org, blobs: BlobStore) -> None:
    doc_id = await registered(ndb, org, blobs)
    deadline = today() + dt.timedelta(days=1)
    async with ndb.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    async with ndb.uow() as uow:
        _, (task,) = await tasks.direct(uow, org["lanhdao"], doc_id, text="Chị Hà xử lý.",
                                        main=Assignee(user_id=org["chuyenvien"].id), deadline=deadline)
        await uow.commit()
    config = Config()
    summary = "Công văn về việc triển khai chính quyền điện tử (lần 1)"

    async def check(day: dt.date) -> int:
        async with ndb.uow() as uow:
            n = await notifications.check_deadlines(uow, config, day, due_days=1, escalate_days=2)
            await uow.commit()
        return n

    assert await check(today() - dt.timedelta(days=1)) == 0  # two days ahead: not yet
    assert await check(today()) == 1
    assert await check(today()) == 0  # once
    due = f"{deadline:%d/%m/%Y}"
    assert (await texts(ndb, org["chuyenvien"].id))[-1] == (
        "task.due", f"Nhiệm vụ «{summary}» đến hạn ngày {due} (còn 1 ngày).", f"/tasks/{task.id}")
    assert await check(deadline + dt.timedelta(days=1)) == 1  # overdue, to the handler
    assert (await texts(ndb, org["chuyenvien"].id))[-1][:2] == (
        "task.overdue", f"Nhiệm vụ «{summary}» đã quá hạn (hạn {due}).")
    assert await texts(ndb, org["truongphong"].id) == []
    leader_before = len(await texts(ndb, org["lanhdao"].id))
    escalated = ("task.overdue", f"Nhiệm vụ «{summary}» giao cho Phạm Thu Hà đã quá hạn 2 ngày (hạn {due}).",
                 f"/tasks/{task.id}")
    # two days overdue: escalated to the head of her unit; he was not given the document, so the leader who
    # assigned it is told instead (a notification never reaches someone who may not open what it is about)
    assert await check(deadline + dt.timedelta(days=2)) == 1
    assert await texts(ndb, org["truongphong"].id) == []
    assert (await texts(ndb, org["lanhdao"].id))[leader_before:] == [escalated]
    assert await check(deadline + dt.timedelta(days=5)) == 0
    # a task done is not reminded
    async with ndb.uow() as uow:
        await tasks.complete(uow, org["chuyenvien"], task.id, result="Đã báo cáo.")
        await uow.commit()
    async with ndb.uow() as uow:
        from eoffice.schema.notifications import TaskReminder

        await uow.session.execute(TaskReminder.__table__.delete())  # type: ignore[attr-defined]
        await uow.commit()
    assert await check(deadline + dt.timedelta(days=5)) == 0


async def test_retention_cleanup(ndb: Database, org: Org, blobs: BlobStore) -> None:
    doc_id = await registered(ndb, org, blobs)
    async with ndb.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    worker = notifications.NotificationWorker(ndb, Config(), keep_days=90)
    assert await worker.tick() == (0, 0)  # new: kept
    assert len(await texts(ndb, org["lanhdao"].id)) == 1
    assert await worker.tick(utcnow() + dt.timedelta(days=91)) == (0, 1)
    assert await texts(ndb, org["lanhdao"].id) == []


async def test_overdue_task_passed_down_escalates_to_the_unit_head(ndb: Database, org: Org,
                                                                   blobs: BlobStore) -> None:
    """The unit's task passed down to a specialist: her head sees the document (the unit's grant) and is told."""
    doc_id = await registered(ndb, org, blobs)
    deadline = today() + dt.timedelta(days=3)
    async with ndb.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        _, (main,) = await tasks.direct(uow, org["lanhdao"], doc_id, text="Phòng Kinh tế chủ trì.",
                                        main=Assignee(unit_id=org.units["KT"].id), deadline=deadline)
        await uow.commit()
    async with ndb.uow() as uow:
        (child,) = await tasks.pass_down(uow, org["truongphong"], main.id, main_user_id=org["chuyenvien2"].id)
        await uow.commit()
    async with ndb.uow() as uow:
        # both tasks are overdue three days later: the head is told of his own (the unit's) task as a handler,
        # and of the specialist's as her head; the assigner of the unit's task hears of it as the escalation
        assert await notifications.check_deadlines(uow, Config(), deadline + dt.timedelta(days=3),
                                                   escalate_days=2) == 4
        await uow.commit()
    head = [t for t in await texts(ndb, org["truongphong"].id) if t[0] == "task.overdue"]
    assert (f"Nhiệm vụ «Công văn về việc triển khai chính quyền điện tử (lần 1)» giao cho Lý Văn Đức đã quá hạn "
            f"3 ngày (hạn {deadline:%d/%m/%Y}).", f"/tasks/{child.id}") in [t[1:] for t in head]
    assert [t[0] for t in await texts(ndb, org["chuyenvien2"].id)] == ["task.assigned", "task.overdue"]
