"""Minutes: live editing with revisions, conclusions, approval, and the PDF read back with PyMuPDF."""

from __future__ import annotations

import datetime as dt

import pymupdf
import pytest

from meetings import agenda, attendance, lifecycle, meetings, minutes
from storage.errors import Conflict, Forbidden, Invalid
from tests.meetings.conftest import World, call, cast_one, run


def pdf_text(data: bytes) -> str:
    doc = pymupdf.open(stream=data, filetype="pdf")
    try:
        return "\n".join(page.get_text() for page in doc)
    finally:
        doc.close()


async def _held_meeting(world: World) -> dict:
    m = await world.meeting(start=True, items=2, confidential_for=["member2"])
    mid, (first, secret) = m["meeting_id"], m["item_ids"]
    await call(world.db, attendance.check_in, world.chair, m["seats"]["member"])
    await call(world.db, attendance.check_in, world.member2, m["seats"]["member2"])
    await call(world.db, agenda.step, world.chair, mid, 1)
    return {**m, "first": first, "secret": secret}


async def test_live_minutes_with_revisions(world: World) -> None:
    m = await _held_meeting(world)
    row, events = await run(world.db, minutes.save_discussion, world.secretary, m["first"],
                            text="Đồng chí Lê Minh Tuấn đề nghị bổ sung kinh phí.", revision=0)
    assert row.revision == 1 and events[0]["type"] == "minutes.changed"
    assert "kinh phí" not in str(events)  # ids only on the room topic
    with pytest.raises(Conflict) as stale:
        await call(world.db, minutes.save_discussion, world.chair, m["first"], text="Bản cũ", revision=0)
    assert stale.value.details["revision"] == 1 and "kinh phí" in stale.value.details["discussion"]
    await call(world.db, minutes.save_discussion, world.chair, m["first"], text=row.discussion + " Chủ trì đồng ý.",
               revision=1)
    with pytest.raises(Forbidden):
        await call(world.db, minutes.save_discussion, world.member, m["first"], text="x", revision=2)
    c = await call(world.db, minutes.add_conclusion, world.secretary, m["first"],
                   text="Giao Sở Thông tin và Truyền thông hoàn thiện kế hoạch.", assignee_id=world.member2.id,
                   deadline="2026-12-31")
    assert c.deadline == dt.date(2026, 12, 31)
    with pytest.raises(Invalid):
        await call(world.db, minutes.add_conclusion, world.secretary, m["first"], text="x", deadline="31/12")
    async with world.db.uow() as uow:
        ctx = await meetings.view_context(uow, world.member, m["meeting_id"])
        assert (await minutes.minutes_view(uow, ctx.access, ctx.meeting))["readable"] is False  # a draft
        ctx = await meetings.view_context(uow, world.chair, m["meeting_id"])
        view = await minutes.minutes_view(uow, ctx.access, ctx.meeting)
        item = view["items"][str(m["first"])]
        assert item["revision"] == 2 and item["conclusions"][0]["assignee"] == "Hoàng Đức Thắng"


async def test_approval_and_pdf(world: World) -> None:
    m = await _held_meeting(world)
    mid = m["meeting_id"]
    await call(world.db, minutes.save_discussion, world.secretary, m["first"],
               text="Các đại biểu thống nhất lộ trình chuyển đổi số của huyện Đông Triều.", revision=0)
    await call(world.db, minutes.add_conclusion, world.secretary, m["first"],
               text="Thông qua kế hoạch; Văn phòng hoàn thiện, trình ký trước ngày 15/12.",
               assignee_id=world.secretary.id, deadline="2026-12-15")
    await call(world.db, minutes.save_discussion, world.secretary, m["secret"],
               text="Thảo luận phương án bổ nhiệm ông Nguyễn Văn Quyết.", revision=0)
    await call(world.db, minutes.add_conclusion, world.secretary, m["secret"], text="Đồng ý bổ nhiệm lại.")
    with pytest.raises(Conflict, match="sau khi cuộc họp kết thúc"):
        await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    await call(world.db, lifecycle.end_meeting, world.chair, mid)
    with pytest.raises(Forbidden):
        await call(world.db, minutes.approve, world.secretary, mid, world.blobs)
    approved, events = await run(world.db, minutes.approve, world.chair, mid, world.blobs)
    assert approved.minutes_state == "approved" and approved.minutes_blob_key
    assert events[-1]["type"] == "minutes.state"
    with pytest.raises(Conflict, match="đã được phê duyệt"):
        await call(world.db, minutes.save_discussion, world.secretary, m["first"], text="Sửa", revision=1)

    full = pdf_text(await world.blobs.read(approved.minutes_blob_key))
    for expected in ("BIÊN BẢN", "Số: 01/BB-UBND", "Họp UBND tỉnh thường kỳ tháng 12",
                     "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                     "ỦY BAN NHÂN DÂN TỈNH QUẢNG NINH", "Chủ trì: Trần Văn Hùng", "Thư ký: Nguyễn Thị Lan",
                     "Lê Minh Tuấn", "Hoàng Đức Thắng", "có mặt", "vắng mặt", "Ông Phan Văn Khải",
                     "Điểm cầu thị xã Đông Triều", "lộ trình chuyển đổi số của huyện Đông Triều",
                     "Thông qua kế hoạch", "giao Nguyễn Thị Lan, hạn 15/12/2026", "Phương án nhân sự (mật)",
                     "bổ nhiệm ông Nguyễn Văn Quyết", "Cuộc họp kết thúc vào", "THƯ KÝ", "CHỦ TRÌ", "Nơi nhận:"):
        assert expected in " ".join(full.split()), expected
    assert "Có mặt 2/4 thành viên" in full and "chưa đủ túc số" in full

    # a participant reads the approved minutes without the confidential item's content
    async with world.db.uow() as uow:
        _, data = await minutes.export_pdf(uow, world.member, mid)
    theirs = " ".join(pdf_text(data).split())
    assert "lộ trình chuyển đổi số" in theirs and "Nguyễn Văn Quyết" not in theirs
    assert "Nội dung mật: không hiển thị trong bản này" in theirs
    async with world.db.uow() as uow:
        with pytest.raises(Forbidden):
            await minutes.export_pdf(uow, world.outsider, mid)

    await call(world.db, minutes.reopen, world.chair, mid, reason="Bổ sung ý kiến")
    await call(world.db, minutes.save_discussion, world.secretary, m["first"], text="Bổ sung.", revision=1)
    async with world.db.uow() as uow:
        with pytest.raises(Forbidden, match="chưa được phê duyệt"):
            await minutes.export_pdf(uow, world.member, mid)
        _, draft = await minutes.export_pdf(uow, world.secretary, mid)
    assert "DỰ THẢO" in pdf_text(draft)


async def test_vote_results_in_the_minutes(world: World) -> None:
    from meetings import voting

    m = await _held_meeting(world)
    mid = m["meeting_id"]
    async with world.db.uow() as uow:
        chair_seat = (await meetings._seat_for(uow, mid, world.chair.id)).id
    await call(world.db, attendance.check_in, world.chair, chair_seat)  # 3 of 4: the quorum to vote
    open_poll = await call(world.db, voting.create_poll, world.chair, mid, item_id=m["first"],
                           title="Thông qua Kế hoạch chuyển đổi số năm 2027", method="yes_no_abstain")
    secret_poll = await call(world.db, voting.create_poll, world.chair, mid, item_id=m["secret"],
                             title="Bổ nhiệm lại ông Nguyễn Văn Quyết", method="yes_no", secret=True)
    for poll in (open_poll, secret_poll):
        await call(world.db, voting.open_poll, world.chair, poll.id)
        # on the confidential item only those who may see it vote (member2 and the chair)
        voter = world.member if poll is open_poll else world.chair
        await call(world.db, cast_one, voter, poll.id, "yes")
        await call(world.db, cast_one, world.member2, poll.id, "yes")
        await call(world.db, voting.close_poll, world.chair, poll.id)
    await call(world.db, lifecycle.end_meeting, world.chair, mid)
    await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    async with world.db.uow() as uow:
        _, chair_copy = await minutes.export_pdf(uow, world.chair, mid)
        _, member_copy = await minutes.export_pdf(uow, world.member, mid)
    full, theirs = (" ".join(pdf_text(d).split()) for d in (chair_copy, member_copy))
    assert "Kết quả biểu quyết:" in full
    assert "Thông qua Kế hoạch chuyển đổi số năm 2027" in full and "Tán thành: 2 phiếu" in full
    # each result says the rule it was counted under and the outcome, not a bare "thông qua"
    assert "Điều kiện thông qua: Đa số thường." in full
    assert "Kết quả: Được thông qua: 2 tán thành, 0 không tán thành, nhiều hơn số không tán thành." in full
    assert "Bổ nhiệm lại ông Nguyễn Văn Quyết" in full and "phiếu kín" in full
    assert "Thông qua Kế hoạch chuyển đổi số năm 2027" in theirs
    assert "Nguyễn Văn Quyết" not in theirs  # the confidential item's poll goes with the item


async def test_a_result_the_chair_has_not_published_stays_out_of_the_minutes(world: World) -> None:
    """A poll whose result is shown only once published ("published" visibility) is closed but not published:
    nobody's minutes show its result, and the chair cannot approve minutes that would go without it."""
    from meetings import voting

    m = await _held_meeting(world)
    mid = m["meeting_id"]
    async with world.db.uow() as uow:
        chair_seat = (await meetings._seat_for(uow, mid, world.chair.id)).id
    await call(world.db, attendance.check_in, world.chair, chair_seat)
    title = "Thông qua Đề án sắp xếp đơn vị hành chính cấp xã"
    poll = await call(world.db, voting.create_poll, world.chair, mid, item_id=m["first"], title=title,
                      method="yes_no", visibility="published")
    await call(world.db, voting.open_poll, world.chair, poll.id)
    await call(world.db, cast_one, world.member, poll.id, "yes")
    await call(world.db, cast_one, world.member2, poll.id, "no")
    await call(world.db, voting.close_poll, world.chair, poll.id)
    async with world.db.uow() as uow:
        assert (await voting.get_poll(uow, world.member, poll.id))["result"] is None
        assert await voting.poll_results_for_meeting(uow, mid) == []
        drafts = [" ".join(pdf_text((await minutes.export_pdf(uow, who, mid))[1]).split())
                  for who in (world.chair, world.secretary)]
    for text in drafts:
        assert title not in text and "Không tán thành: 1 phiếu" not in text
    await call(world.db, lifecycle.end_meeting, world.chair, mid)
    with pytest.raises(Conflict, match="chưa công bố kết quả") as refused:
        await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    assert title in refused.value.message

    await call(world.db, voting.publish_poll, world.chair, poll.id)  # after the meeting, still the chair's call
    await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    async with world.db.uow() as uow:
        _, member_copy = await minutes.export_pdf(uow, world.member, mid)
    text = " ".join(pdf_text(member_copy).split())
    assert title in text and "Tán thành: 1 phiếu" in text and "Không tán thành: 1 phiếu" in text


async def test_conclusion_becomes_a_task_and_its_progress_shows(world: World) -> None:
    from eoffice import tasks

    m = await _held_meeting(world)
    mid = m["meeting_id"]
    c = await call(world.db, minutes.add_conclusion, world.secretary, m["first"],
                   text="Sở Thông tin và Truyền thông hoàn thiện Kế hoạch chuyển đổi số, trình UBND tỉnh",
                   assignee_id=world.member2.id, deadline=(dt.date.today() + dt.timedelta(days=20)).isoformat())
    with pytest.raises(Forbidden):
        await call(world.db, minutes.conclusion_to_task, world.member, c.id)
    with pytest.raises(Invalid, match="quá khứ"):
        await call(world.db, minutes.conclusion_to_task, world.secretary, c.id, deadline="2020-01-01")
    done, events = await run(world.db, minutes.conclusion_to_task, world.secretary, c.id)
    assert done.task_id is not None
    note = next(e for e in events if e["topic"] == f"user:{world.member2.id}")
    assert note["type"] == "task.assigned" and note["data"]["task_id"] == done.task_id
    assert any(e["type"] == "conclusions.changed" and e["topic"] == f"meeting:{mid}" for e in events)
    with pytest.raises(Conflict, match="đã thành nhiệm vụ"):
        await call(world.db, minutes.conclusion_to_task, world.secretary, c.id)
    with pytest.raises(Conflict):
        await call(world.db, minutes.remove_conclusion, world.secretary, c.id)
    async with world.db.uow() as uow:  # the assignee sees it among their e-office tasks
        task = await tasks.get_task(uow, world.member2, done.task_id)
        assert task.document_id is None and "Kế hoạch chuyển đổi số" in task.title
        assert "Họp UBND tỉnh thường kỳ tháng 12" in task.instruction
    await call(world.db, tasks.post_update, world.member2, done.task_id, text="Đã có dự thảo lần 1", progress=40)
    async with world.db.uow() as uow:
        ctx = await meetings.view_context(uow, world.chair, mid)
        shown = (await minutes.minutes_view(uow, ctx.access, ctx.meeting))["items"][str(m["first"])]["conclusions"][0]
    assert shown["task"]["progress"] == 40 and shown["task"]["status"] == "in_progress"
    assert shown["task"]["status_label"] == "Đang xử lý"
    # to a unit, with a deadline given at that moment
    c2 = await call(world.db, minutes.add_conclusion, world.secretary, m["first"],
                    text="Đông Triều triển khai thí điểm")
    unit_task = await call(world.db, minutes.conclusion_to_task, world.chair, c2.id,
                           assignee_unit_id=world.units["DT"].id,
                           deadline=(dt.date.today() + dt.timedelta(days=30)).isoformat())
    async with world.db.uow() as uow:
        task = await tasks.get_task(uow, world.district, unit_task.task_id)  # the district's leader handles it
        assert task.assignee_unit_id == world.units["DT"].id
