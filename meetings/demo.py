"""A demo meeting for the demo organisation (eoffice.demo): invitations sent, an agenda with a
generated Vietnamese PDF per item (one of them long, to show lazy page loading), a confidential
item, a remote site with its operator.

The integrator calls ``create_demo_meeting(uow, blobs)`` after ``eoffice.demo.load_demo`` (same
unit of work or a later one) and commits. Accounts that are missing are simply left out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from eoffice import uploads
from eoffice.org import Unit, User
from meetings import agenda, documents, meetings, render
from meetings.schema import Meeting
from storage.db import UnitOfWork, utcnow

ORGANISER, CHAIR, SECRETARY = "vanthu", "lanhdao", "chuyenvien"
MEMBERS = ["phochutich", "chanhvanphong"]
SITE_OPERATOR = "dongtrieu.lanhdao"
SITE_UNIT = "DT"
INVITED_UNIT = "STTTT"

AGENDA = [
    ("Báo cáo tình hình kinh tế - xã hội tháng 11 và nhiệm vụ tháng 12", "phochutich", 40, False, 24),
    ("Kế hoạch chuyển đổi số năm 2027 của tỉnh Quảng Ninh", "chanhvanphong", 30, False, 6),
    ("Phương án kiện toàn nhân sự Ban Quản lý dự án", CHAIR, 20, True, 3),
]

PARAGRAPHS = [
    "Ủy ban nhân dân tỉnh Quảng Ninh báo cáo tình hình thực hiện nhiệm vụ phát triển kinh tế - xã hội, "
    "bảo đảm quốc phòng, an ninh; đánh giá những kết quả đạt được, hạn chế và nguyên nhân.",
    "Tổng sản phẩm trên địa bàn tăng trưởng ổn định; thu ngân sách nhà nước đạt và vượt dự toán; "
    "công tác cải cách hành chính, chuyển đổi số được đẩy mạnh ở cả ba cấp tỉnh, huyện, xã.",
    "Thị xã Đông Triều, huyện Vân Đồn và các xã, phường triển khai chính quyền điện tử, "
    "kết nối hệ thống quản lý văn bản và điều hành, họp trực tuyến đến cấp xã.",
    "Đề nghị các sở, ban, ngành và Ủy ban nhân dân các huyện, thị xã, thành phố tập trung chỉ đạo, "
    "hoàn thành các chỉ tiêu năm; rà soát, giải quyết dứt điểm các kiến nghị của cử tri.",
]


def agenda_pdf(title: str, pages: int) -> bytes:
    """A generated agenda document with Vietnamese text (Noto Sans) on ``pages`` pages."""
    body = [[f"Trang {n}/{pages}. " + PARAGRAPHS[(n - 1) % len(PARAGRAPHS)], *PARAGRAPHS] for n in range(1, pages + 1)]
    return render.text_pdf(body, title=title)


async def _users(uow: UnitOfWork, names: list[str]) -> dict[str, User]:
    rows = (await uow.session.scalars(select(User).where(User.username.in_(names)))).all()
    return {u.username: u for u in rows}


async def create_demo_meeting(uow: UnitOfWork, blobs: Any, *, starts_at: dt.datetime | None = None,
                              invite: bool = True) -> Meeting | None:
    """Create the demo meeting; returns None when the demo accounts are not there. The caller commits."""
    users = await _users(uow, [ORGANISER, CHAIR, SECRETARY, SITE_OPERATOR, *MEMBERS])
    if not {ORGANISER, CHAIR, SECRETARY} <= set(users):
        return None
    organiser = users[ORGANISER]
    starts_at = starts_at or (utcnow().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1))
    m = await meetings.create_meeting(
        uow, organiser, title="Phiên họp thường kỳ Ủy ban nhân dân tỉnh tháng 12", starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(hours=3), place="Phòng họp số 1, trụ sở Ủy ban nhân dân tỉnh",
        description="Thảo luận tình hình kinh tế - xã hội, kế hoạch chuyển đổi số và công tác cán bộ.",
        chair_id=users[CHAIR].id, secretary_id=users[SECRETARY].id)
    site_unit = await uow.session.scalar(select(Unit).where(Unit.code == SITE_UNIT))
    if SITE_OPERATOR in users:
        await meetings.add_site(uow, organiser, m.id, name="Điểm cầu thị xã Đông Triều",
                                unit_id=site_unit.id if site_unit else None, operator_id=users[SITE_OPERATOR].id)
    for name in MEMBERS:
        if name in users:
            await meetings.add_participant(uow, organiser, m.id, user_id=users[name].id)
    unit = await uow.session.scalar(select(Unit).where(Unit.code == INVITED_UNIT))
    if unit is not None:
        await meetings.add_participant(uow, organiser, m.id, unit_id=unit.id)
    await meetings.add_participant(uow, organiser, m.id, guest_name="Ông Phạm Văn Khải",
                                   guest_title="Đại biểu Hội đồng nhân dân tỉnh", role="invited")
    for title, presenter, minutes, confidential, pages in AGENDA:
        allowed = [users[n].id for n in (CHAIR, "phochutich") if n in users] if confidential else []
        item = await agenda.add_item(uow, organiser, m.id, title=title, planned_minutes=minutes,
                                     presenter_id=users[presenter].id if presenter in users else None,
                                     confidential=confidential, allowed_user_ids=allowed)
        data = await render.run(agenda_pdf, title, pages)
        info = await blobs.put_bytes(data, content_type="application/pdf")
        upload = await uploads.record_upload(uow, organiser, info, f"{title}.pdf")
        await documents.add_document(uow, organiser, blobs, m.id, upload_id=upload.id, item_id=item.id,
                                     title=title if not confidential else "Tờ trình nhân sự")
    if invite:
        await meetings.send_invitations(uow, organiser, m.id)
    return m
