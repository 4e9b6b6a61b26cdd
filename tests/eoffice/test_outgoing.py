"""Outgoing documents, dossiers, register export, statistics, search."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from eoffice import audit, dossiers, export, outgoing, search, stats, tasks
from eoffice.documents import get_document, register_incoming
from eoffice.ingest import IngestRunner
from eoffice.registers import local_date
from eoffice.schema.documents import Document, Status
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload


async def test_draft_approval_chain_issue_and_internal_delivery(db: Database, org: Org, blobs: BlobStore) -> None:
    cv, head, leader, clerk = org["chuyenvien"], org["truongphong"], org["lanhdao"], org["vanthu"]
    u = org.units
    async with db.uow() as uow:
        v1 = await upload(uow, cv, blobs, make_pdf(["Dự thảo lần 1: Quyết định thành lập tổ công tác"]), "qd-v1.pdf")
        doc = await outgoing.create_draft(
            uow, cv, blobs, doc_type="quyet_dinh", summary="Quyết định thành lập Tổ công tác chuyển đổi số",
            recipients=[{"unit_id": u["STTTT"].id}, {"unit_id": u["DT"].id}, "Bộ Thông tin và Truyền thông"],
            upload_id=v1)
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Invalid, match="lãnh đạo"):
            await outgoing.send_for_approval(uow, cv, doc.id, org["chuyenvien2"].id)
        await outgoing.send_for_approval(uow, cv, doc.id, head.id, "Kính trình trưởng phòng")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(NotFound):
            await outgoing.approve(uow, leader, doc.id)  # not sent to them: they cannot even see it
        with pytest.raises(Invalid, match="ý kiến"):
            await outgoing.return_draft(uow, head, doc.id, "")
        await outgoing.return_draft(uow, head, doc.id, "Bổ sung căn cứ pháp lý")
        await uow.commit()
    async with db.uow() as uow:
        v2 = await upload(uow, cv, blobs, make_pdf(["Dự thảo lần 2, đã bổ sung căn cứ"]), "qd-v2.pdf")
        await outgoing.add_version(uow, cv, blobs, doc.id, upload_id=v2, note="Đã bổ sung căn cứ")
        await outgoing.send_for_approval(uow, cv, doc.id, head.id)
        await uow.commit()
    async with db.uow() as uow:
        await outgoing.approve(uow, head, doc.id, comment="Đồng ý, trình lãnh đạo", forward_to=leader.id)
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(NotFound):  # not approved yet: the clerk does not even see the draft
            await outgoing.issue(uow, clerk, doc.id, signer="Trần Văn Hùng")
    async with db.uow() as uow:
        await outgoing.approve(uow, leader, doc.id, comment="Ban hành")
        await uow.commit()
    async with db.uow() as uow:
        assert [d.id for d in await outgoing.drafts(uow, clerk)] == [doc.id]  # waiting for a number
        with pytest.raises(Forbidden):
            await outgoing.issue(uow, leader, doc.id, signer="Trần Văn Hùng")
        today = local_date(utcnow())
        for wrong in (today + dt.timedelta(days=1), dt.date(today.year - 1, 12, 31)):  # tomorrow, last year
            with pytest.raises(Invalid, match=f"trong năm {today.year}") as refused:
                await outgoing.issue(uow, clerk, doc.id, signer="Trần Văn Hùng", date_issued=wrong)
            assert refused.value.details.get("field") == "date_issued"
        issued, copies, jobs = await outgoing.issue(uow, clerk, doc.id, signer="Trần Văn Hùng")
        await uow.commit()
    year = local_date(utcnow()).year
    assert issued.notation == "01/QĐ-UBND" and issued.status == Status.ISSUED and issued.year == year
    assert sorted(c.agency_id for c in copies) == [u["STTTT"].id, u["DT"].id]
    assert all(c.number == 1 and c.notation == "01/QĐ-UBND" and c.source_document_id == issued.id for c in copies)
    assert len(jobs) == 3  # the issued PDF and both copies get their text extracted
    runner = IngestRunner(db, blobs)
    runner.submit(jobs)
    await runner.drain()
    await runner.stop()  # the extraction worker process

    async with db.uow() as uow:
        hist = await outgoing.history(uow, cv, doc.id)
        assert [v["version"] for v in hist["versions"]] == [1, 2]
        assert [(s["status"], s["comment"]) for s in hist["steps"]] == [
            ("returned", "Bổ sung căn cứ pháp lý"), ("approved", "Đồng ý, trình lãnh đạo"), ("approved", "Ban hành")]
        # the recipient agency's clerk finds it in their register and by its text, without retyping
        stttt = org["stttt.vanthu"]
        copy = next(c for c in copies if c.agency_id == u["STTTT"].id)
        got = await get_document(uow, stttt, copy.id)
        assert (got.direction, got.sender, got.status) == ("in", "Ủy ban nhân dân tỉnh Quảng Ninh", "registered")
        assert [h.document.id for h in await search.search(uow, stttt, "da bo sung can cu")] == [copy.id]
        with pytest.raises(NotFound):
            await get_document(uow, stttt, issued.id)  # the sender's own copy stays theirs
        # a second Quyết định is number 02, a công văn starts its own series with the drafting unit
        d2 = await outgoing.create_draft(uow, cv, blobs, doc_type="cong_van", summary="Công văn đôn đốc báo cáo")
        await outgoing.send_for_approval(uow, cv, d2.id, head.id)
        await outgoing.approve(uow, head, d2.id, forward_to=leader.id)
        await outgoing.approve(uow, leader, d2.id)
        d2, _, _ = await outgoing.issue(uow, clerk, d2.id, signer="Trần Văn Hùng")
        await uow.commit()
    assert d2.notation == "01/UBND-KT"


async def test_dossiers(db: Database, org: Org, blobs: BlobStore) -> None:
    cv = org["chuyenvien"]
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1))
        await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
        _, (task,) = await tasks.direct(uow, org["lanhdao"], doc.id, text="Xử lý", main={"user_id": cv.id})
        other, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(2, confidentiality="mat"))
        d = await dossiers.open_dossier(uow, cv, "Hồ sơ triển khai chính quyền điện tử năm 2026")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Invalid):
            await dossiers.close_dossier(uow, cv, d.id, file_code="01.KT", retention="10")  # empty
        await dossiers.file_document(uow, cv, d.id, doc.id)
        await dossiers.file_task(uow, cv, d.id, task.id)
        with pytest.raises(Conflict):
            await dossiers.file_document(uow, cv, d.id, doc.id)
        with pytest.raises(NotFound):  # cannot file what one cannot see
            await dossiers.file_document(uow, cv, d.id, other.id)
        with pytest.raises(NotFound):  # somebody else's dossier
            await dossiers.file_document(uow, org["chuyenvien2"], d.id, doc.id)
        with pytest.raises(Invalid, match="bảo quản"):
            await dossiers.close_dossier(uow, cv, d.id, file_code="01.KT", retention="mãi mãi")
        await dossiers.close_dossier(uow, cv, d.id, file_code="01.KT", retention="10")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Conflict, match="đóng"):
            await dossiers.file_document(uow, cv, d.id, doc.id)
        c = await dossiers.contents(uow, cv, d.id)
        assert c["dossier"]["retention_label"] == "10 năm" and c["dossier"]["status"] == "closed"
        assert [x["id"] for x in c["documents"]] == [doc.id] and [t["id"] for t in c["tasks"]] == [task.id]
        d2 = await dossiers.open_dossier(uow, cv, "Hồ sơ khác")
        await dossiers.file_document(uow, cv, d2.id, doc.id)
        with pytest.raises(Conflict, match="đã dùng"):
            await dossiers.close_dossier(uow, cv, d2.id, file_code="01.KT", retention="vinh_vien")


async def test_register_export_csv_and_xlsx(db: Database, org: Org, blobs: BlobStore) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        for i in range(1, 4):
            await register_incoming(uow, clerk, blobs, **incoming_fields(i, urgency="hoa_toc" if i == 2 else "thuong"))
        secret, _ = await register_incoming(uow, clerk, blobs, **incoming_fields(9, confidentiality="tuyet_mat"))
        await tasks.submit(uow, clerk, secret.id, org["lanhdao"].id)
        await tasks.direct(uow, org["lanhdao"], secret.id, text="x", main={"unit_id": org.units["KT"].id})
        await uow.commit()
    year = local_date(utcnow()).year
    async with db.uow() as uow:
        name, data = await export.export_register(uow, clerk, direction="in", year=year, fmt="csv")
        assert name == f"so-van-ban-den-{year}.csv" and data.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert rows[0] == export.INCOMING_COLUMNS
        assert [r[1] for r in rows[1:]] == ["1", "2", "3"] and rows[2][8] == "Hỏa tốc"
        assert rows[1][2] == "Ủy ban nhân dân thị xã Đông Triều" and rows[1][3] == "1/UBND-VX"
        name, data = await export.export_register(uow, clerk, direction="in", year=year, fmt="xlsx",
                                                  confidential=True)
        ws = load_workbook(io.BytesIO(data)).active
        assert ws["A1"].value.startswith("SỔ ĐĂNG KÝ VĂN BẢN MẬT ĐẾN")
        assert [c.value for c in ws[2]] == export.INCOMING_COLUMNS
        assert ws.max_row == 4 and ws["G4"].value == "Phòng Kinh tế" and ws["I4"].value == "Tuyệt mật"
        # another clerk of the agency: the ordinary register, but nothing of the confidential one
        _, data = await export.export_register(uow, org["vanthu2"], direction="in", year=year, fmt="csv",
                                               confidential=True)
        assert len(list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))) == 1
        with pytest.raises(Forbidden):
            await export.export_register(uow, org["chuyenvien"], direction="in", year=year)


async def test_statistics(db: Database, org: Org, blobs: BlobStore) -> None:
    today = local_date(utcnow())
    cv, cv2 = org["chuyenvien"], org["chuyenvien2"]
    async with db.uow() as uow:
        made = []
        for i in range(5):
            doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(i))
            await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
            who = cv if i < 3 else cv2
            _, (t,) = await tasks.direct(uow, org["lanhdao"], doc.id, text="Xử lý", main={"user_id": who.id},
                                         deadline=today + dt.timedelta(days=3))
            made.append(t)
        await uow.commit()
    async with db.uow() as uow:  # taken back by the leader: counted nowhere, not even as overdue
        await tasks.withdraw(uow, org["lanhdao"], made[4].id, "Văn bản đã được thu hồi")
        await uow.commit()
    async with db.uow() as uow:
        await tasks.complete(uow, cv, made[0].id, result="Xong")
        await tasks.complete(uow, cv, made[1].id, result="Xong")
        t = await uow.session.get(tasks.Task, made[1].id)
        assert t is not None
        t.deadline = today - dt.timedelta(days=1)  # finished after its deadline
        t2 = await uow.session.get(tasks.Task, made[3].id)
        assert t2 is not None
        t2.deadline = today - dt.timedelta(days=1)  # overdue
        t3 = await uow.session.get(tasks.Task, made[4].id)
        assert t3 is not None
        t3.deadline = today - dt.timedelta(days=1)  # would be overdue, were it not withdrawn
        await uow.commit()
    async with db.uow() as uow:
        s = await stats.statistics(uow, org["lanhdao"], date_from=today.replace(day=1), date_to=today)
        assert s["total"] == {"received": 4, "on_time": 1, "late": 1, "in_progress": 1, "overdue": 1,
                              "on_time_rate": 50.0}
        people = await stats.statistics(uow, org["lanhdao"], date_from=today.replace(day=1), date_to=today,
                                        level="person")
        assert [(r["name"], r["received"], r["overdue"]) for r in people["rows"]] == [
            ("Lý Văn Đức", 1, 1), ("Phạm Thu Hà", 3, 0)]
        units = await stats.statistics(uow, org["lanhdao"], date_from=today.replace(day=1), date_to=today,
                                       level="unit")
        assert [(r["name"], r["received"]) for r in units["rows"]] == [("Phòng Kinh tế", 4)]
        own = await stats.statistics(uow, cv, date_from=today.replace(day=1), date_to=today, level="person")
        assert [r["name"] for r in own["rows"]] == ["Phạm Thu Hà"]
        with pytest.raises(Forbidden):
            await stats.statistics(uow, cv, date_from=today, date_to=today)
        assert stats.bucket("done", None, utcnow(), today) == "on_time"


async def test_search_is_diacritics_insensitive_ranked_and_filtered(db: Database, org: Org, blobs: BlobStore) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        a, _ = await register_incoming(uow, clerk, blobs, **incoming_fields(
            123, summary="Công văn triển khai chính quyền điện tử", notation="123/UBND-VX"))
        b, _ = await register_incoming(uow, clerk, blobs, **incoming_fields(
            5, summary="Kế hoạch triển khai chính quyền điện tử và chuyển đổi số, triển khai chính quyền số",
            doc_type="ke_hoach", sender="Sở Thông tin và Truyền thông", date_issued=dt.date(2026, 1, 20)))
        c, _ = await register_incoming(uow, clerk, blobs, **incoming_fields(7, summary="Báo cáo tình hình kinh tế"))
        await uow.commit()
    async with db.uow() as uow:
        ids = lambda hits: [h.document.id for h in hits]  # noqa: E731
        assert set(ids(await search.search(uow, clerk, "cong van trien khai"))) == {a.id}
        assert set(ids(await search.search(uow, clerk, "TRIỂN KHAI chính quyền"))) == {a.id, b.id}
        assert ids(await search.search(uow, clerk, "123/UBND-VX")) == [a.id]
        assert ids(await search.search(uow, clerk, "bao cao kinh te")) == [c.id]
        assert await search.search(uow, clerk, "ngân sách") == []
        f = search.Filters(doc_type="ke_hoach")
        assert ids(await search.search(uow, clerk, "trien khai", f)) == [b.id]
        assert ids(await search.search(uow, clerk, "", search.Filters(sender="so thong tin"))) == [b.id]
        f = search.Filters(date_from=dt.date(2026, 1, 10), date_to=dt.date(2026, 1, 31))
        assert ids(await search.search(uow, clerk, "trien khai", f)) == [b.id]
        # b repeats the words: ranked first for them
        assert ids(await search.search(uow, clerk, "trien khai chinh quyen"))[0] == b.id
        assert (await uow.session.scalar(select(Document.id).where(Document.id == a.id))) == a.id


async def test_draft_version_files_follow_the_drafts_access(db: Database, org: Org, blobs: BlobStore) -> None:
    cv, head = org["chuyenvien"], org["truongphong"]
    async with db.uow() as uow:
        doc = await outgoing.create_draft(uow, cv, blobs, doc_type="ke_hoach",
                                          summary="Kế hoạch chuyển đổi số huyện Đông Triều")  # no file yet
        v2 = await upload(uow, cv, blobs, make_pdf(["Dự thảo kế hoạch chuyển đổi số"]), "ke-hoach-v2.pdf")
        await outgoing.add_version(uow, cv, blobs, doc.id, upload_id=v2, note="Kèm dự thảo")
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        hist = await outgoing.history(uow, cv, doc.id)
        first, second = hist["versions"]
        assert first["file_url"] is None and second["file_url"] == f"/api/draft-versions/{second['id']}/file"
        v = await outgoing.version_file(uow, cv, second["id"])
        assert v.filename == "ke-hoach-v2.pdf" and (await blobs.read(v.blob_key or "")).startswith(b"%PDF")
        with pytest.raises(NotFound):  # a version without a file
            await outgoing.version_file(uow, cv, first["id"])
        with pytest.raises(NotFound):  # not sent to the head of unit yet: they cannot see it
            await outgoing.version_file(uow, head, second["id"])
        with pytest.raises(NotFound):
            await outgoing.version_file(uow, cv, 10_000)
    async with db.uow() as uow:
        await outgoing.send_for_approval(uow, cv, doc.id, head.id)
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        assert (await outgoing.version_file(uow, head, second["id"])).id == second["id"]


# ---- the approval chain: specialist -> unit head -> agency leader, in order -----------------------

async def _audit_of(uow, doc_id: int) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    rows = (await uow.session.scalars(select(audit.AuditEntry).where(
        audit.AuditEntry.object_type == "document", audit.AuditEntry.object_id == str(doc_id),
        audit.AuditEntry.action.like("draft.%")).order_by(audit.AuditEntry.seq))).all()
    return [(r.action, r.data) for r in rows]


async def test_chain_is_followed_in_order(db: Database, org: Org, blobs: BlobStore) -> None:
    cv, head, leader, clerk = org["chuyenvien"], org["truongphong"], org["lanhdao"], org["vanthu"]
    kt, ubnd = org.units["KT"], org.units["UBND"]
    async with db.uow() as uow:
        doc = await outgoing.create_draft(uow, cv, blobs, doc_type="cong_van",
                                          summary="Công văn về việc triển khai chính quyền điện tử")
        await uow.commit()
    async with db.uow() as uow:
        chain = (await outgoing.history(uow, cv, doc.id))["chain"]
        assert [lv["label"] for lv in chain["levels"]] == [
            "Lãnh đạo Phòng Kinh tế", "Lãnh đạo Ủy ban nhân dân tỉnh Quảng Ninh"]
        assert chain["turn"] == {"who": "author", "user_id": cv.id}
        assert chain["next"]["unit_id"] == kt.id and chain["candidates"] == [head.id]
        # the specialist cannot skip the unit head, nor send it to another unit's leader
        with pytest.raises(Conflict, match="Lãnh đạo Phòng Kinh tế theo đúng thứ tự"):
            await outgoing.send_for_approval(uow, cv, doc.id, leader.id)
        with pytest.raises(Conflict, match="Phòng Kinh tế"):
            await outgoing.send_for_approval(uow, cv, doc.id, org["chanhvp"].id)
        with pytest.raises(Invalid, match="Cần chọn người duyệt"):
            await outgoing.send_for_approval(uow, cv, doc.id, None)
        await outgoing.send_for_approval(uow, cv, doc.id, head.id, "Kính trình trưởng phòng")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(NotFound):  # the leader: not their turn yet, they do not even see it
            await outgoing.approve(uow, leader, doc.id)
        with pytest.raises(Forbidden, match="Chưa đến lượt"):  # the author sees it but does not decide
            await outgoing.approve(uow, cv, doc.id)
        # the unit head cannot give the final approval: the agency's leader is still to come
        with pytest.raises(Conflict, match=r"Chưa thể duyệt cuối cùng.*Ủy ban nhân dân tỉnh Quảng Ninh"):
            await outgoing.approve(uow, head, doc.id, comment="Đồng ý")
        with pytest.raises(Conflict, match="không vượt cấp hoặc trình ngược"):
            await outgoing.approve(uow, head, doc.id, forward_to=org["chanhvp"].id)
        with pytest.raises(Invalid, match="lãnh đạo"):
            await outgoing.approve(uow, head, doc.id, forward_to=cv.id)
        chain = (await outgoing.history(uow, head, doc.id))["chain"]
        assert chain["turn"] == {"who": "approver", "user_id": head.id, "level": 0}
        assert [lv["state"] for lv in chain["levels"]] == ["pending", "waiting"]
        assert chain["candidates"] == [leader.id]
        await outgoing.approve(uow, head, doc.id, comment="Đồng ý, trình lãnh đạo", forward_to=leader.id)
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Forbidden, match="Chưa đến lượt"):  # the head has had their turn
            await outgoing.approve(uow, head, doc.id, forward_to=leader.id)
        with pytest.raises(Forbidden, match="Chưa đến lượt"):
            await outgoing.return_draft(uow, head, doc.id, "Xin rút lại")
        with pytest.raises(NotFound):  # the clerk: nothing to issue before the chain is complete
            await outgoing.issue(uow, clerk, doc.id, signer="Trần Văn Hùng")
        with pytest.raises(Conflict, match="bước duyệt cuối cùng"):  # nobody above the agency's leaders
            await outgoing.approve(uow, leader, doc.id, forward_to=org["stttt.giamdoc"].id)
        chain = (await outgoing.history(uow, leader, doc.id))["chain"]
        assert [lv["state"] for lv in chain["levels"]] == ["approved", "pending"]
        assert chain["next"] is None and chain["candidates"] == []
        await outgoing.approve(uow, leader, doc.id, comment="Ban hành")
        await uow.commit()
    async with db.uow() as uow:
        chain = (await outgoing.history(uow, cv, doc.id))["chain"]
        assert chain["turn"] == {"who": "clerk", "unit_id": ubnd.id}
        assert [lv["state"] for lv in chain["levels"]] == ["approved", "approved"]
        issued, _, _ = await outgoing.issue(uow, clerk, doc.id, signer="Trần Văn Hùng")
        assert issued.status == Status.ISSUED
        # every step is in the audit trail with its place in the chain (refusals changed nothing)
        trail = await _audit_of(uow, doc.id)
        assert [(a, d.get("step"), d.get("of"), d.get("final"), d.get("level")) for a, d in trail] == [
            ("draft.create", None, None, None, None),
            ("draft.send", 1, 2, None, kt.id),
            ("draft.approve", None, None, False, kt.id),
            ("draft.send", 2, 2, None, ubnd.id),
            ("draft.approve", None, None, True, ubnd.id),
        ]


async def test_return_restarts_the_chain_from_the_first_level(db: Database, org: Org, blobs: BlobStore) -> None:
    cv, head, leader = org["chuyenvien"], org["truongphong"], org["lanhdao"]
    async with db.uow() as uow:
        doc = await outgoing.create_draft(uow, cv, blobs, doc_type="to_trinh",
                                          summary="Tờ trình kinh phí chuyển đổi số")
        await outgoing.send_for_approval(uow, cv, doc.id, head.id)
        await outgoing.approve(uow, head, doc.id, forward_to=leader.id)
        await uow.commit()
    async with db.uow() as uow:
        await outgoing.return_draft(uow, leader, doc.id, "Đề nghị làm rõ nguồn kinh phí")
        await uow.commit()
    async with db.uow() as uow:
        chain = (await outgoing.history(uow, cv, doc.id))["chain"]
        assert chain["turn"]["who"] == "author" and [lv["state"] for lv in chain["levels"]] == ["waiting", "waiting"]
        with pytest.raises(Conflict):  # the head approved the previous round, not this one
            await outgoing.send_for_approval(uow, cv, doc.id, leader.id)
        await outgoing.send_for_approval(uow, cv, doc.id, head.id)
        await uow.commit()
    async with db.uow() as uow:
        trail = await _audit_of(uow, doc.id)
        assert [a for a, _ in trail][-2:] == ["draft.return", "draft.send"]
        assert trail[-2][1]["level"] == org.units["UBND"].id


async def test_chain_skips_levels_at_or_below_the_author(db: Database, org: Org, blobs: BlobStore) -> None:
    head, leader, clerk = org["truongphong"], org["lanhdao"], org["vanthu"]
    async with db.uow() as uow:
        # the unit head's draft starts above their unit
        by_head = await outgoing.create_draft(uow, head, blobs, doc_type="bao_cao", summary="Báo cáo của Phòng Kinh tế")
        chain = (await outgoing.history(uow, head, by_head.id))["chain"]
        assert [lv["unit_id"] for lv in chain["levels"]] == [org.units["UBND"].id]
        await outgoing.send_for_approval(uow, head, by_head.id, leader.id)
        await outgoing.approve(uow, leader, by_head.id)
        # the agency leader's own draft has no level left: sending it approves it, for the clerk to issue
        by_leader = await outgoing.create_draft(uow, leader, blobs, doc_type="quyet_dinh",
                                                summary="Quyết định của Chủ tịch Ủy ban nhân dân tỉnh")
        assert (await outgoing.history(uow, leader, by_leader.id))["chain"]["levels"] == []
        with pytest.raises(Conflict, match="trình là duyệt"):
            await outgoing.send_for_approval(uow, leader, by_leader.id, head.id)
        step = await outgoing.send_for_approval(uow, leader, by_leader.id, None, "Ban hành")
        assert (step.approver_id, step.status) == (leader.id, "approved")
        await uow.commit()
    async with db.uow() as uow:
        assert {d.id for d in await outgoing.drafts(uow, clerk)} == {by_head.id, by_leader.id}
        issued, _, _ = await outgoing.issue(uow, clerk, by_leader.id, signer="Trần Văn Hùng")
        assert issued.status == Status.ISSUED
        trail = await _audit_of(uow, by_leader.id)
        assert [(a, d.get("final")) for a, d in trail] == [
            ("draft.create", None), ("draft.send", None), ("draft.approve", True)]
        # a unit whose head is vacant is skipped (the clerk's office, Văn phòng, without its chánh văn phòng);
        # the agency's level never is
        vp_draft = await outgoing.create_draft(uow, clerk, blobs, doc_type="thong_bao", summary="Thông báo lịch họp")
        assert [lv["unit_id"] for lv in (await outgoing.history(uow, clerk, vp_draft.id))["chain"]["levels"]] == [
            org.units["VP"].id, org.units["UBND"].id]
        chanhvp = await uow.session.get(type(org["chanhvp"]), org["chanhvp"].id)
        assert chanhvp is not None
        chanhvp.active = False
        await uow.session.flush()
        assert [lv["unit_id"] for lv in (await outgoing.history(uow, clerk, vp_draft.id))["chain"]["levels"]] == [
            org.units["UBND"].id]


async def test_two_decisions_at_once_make_one_step(db: Database, org: Org, blobs: BlobStore) -> None:
    """A double click on 'Duyệt và trình tiếp': the draft's row lock (PostgreSQL) or the serialised
    writers (SQLite) let exactly one through; the other is told the draft has moved on."""
    cv, head, leader = org["chuyenvien"], org["truongphong"], org["lanhdao"]
    async with db.uow() as uow:
        doc = await outgoing.create_draft(uow, cv, blobs, doc_type="cong_van", summary="Công văn khẩn")
        await outgoing.send_for_approval(uow, cv, doc.id, head.id)
        await uow.commit()

    async def decide() -> str:
        try:
            async with db.uow() as uow:
                await outgoing.approve(uow, head, doc.id, forward_to=leader.id)
                await asyncio.sleep(0.05)  # hold the lock while the other one arrives
                await uow.commit()
        except (Conflict, Forbidden) as exc:
            return type(exc).__name__
        return "ok"

    results = sorted(await asyncio.gather(decide(), decide()))
    assert results[1] == "ok" and results[0] in ("Conflict", "Forbidden")
    async with db.uow() as uow:
        steps = (await outgoing.history(uow, cv, doc.id))["steps"]
        assert [(s["approver_id"], s["status"]) for s in steps] == [(head.id, "approved"), (leader.id, "pending")]
