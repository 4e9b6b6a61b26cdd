"""Demo organisation: a province people's committee, two departments, two districts, a commune,
and an account for every role. All demo passwords are DEMO_PASSWORD (printed in the README)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from eoffice import documents, identity, registers, tasks, uploads
from eoffice.org import Role, Unit, UnitKind, User
from storage.db import UnitOfWork, utcnow

DEMO_PASSWORD = "Demo@2026"

# code, name, kind, parent code, is_agency
UNITS = [
    ("UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", UnitKind.PROVINCE, None, True),
    ("VP", "Văn phòng Ủy ban nhân dân tỉnh", UnitKind.OFFICE, "UBND", False),
    ("STTTT", "Sở Thông tin và Truyền thông", UnitKind.DEPARTMENT, "UBND", True),
    ("SNV", "Sở Nội vụ", UnitKind.DEPARTMENT, "UBND", True),
    ("DT", "Ủy ban nhân dân thị xã Đông Triều", UnitKind.DISTRICT, "UBND", True),
    ("VD", "Ủy ban nhân dân huyện Vân Đồn", UnitKind.DISTRICT, "UBND", True),
    ("BK", "Ủy ban nhân dân xã Bình Khê", UnitKind.COMMUNE, "DT", True),
]

# username, full name, title, unit code, roles
USERS = [
    ("admin", "Quản trị hệ thống", "Quản trị viên", "VP", [Role.ADMIN]),
    ("vanthu", "Nguyễn Thị Lan", "Văn thư", "VP", [Role.CLERK]),
    ("lanhdao", "Trần Văn Hùng", "Chủ tịch UBND tỉnh", "UBND", [Role.LEADER]),
    ("phochutich", "Lê Minh Tuấn", "Phó Chủ tịch UBND tỉnh", "UBND", [Role.LEADER]),
    ("chanhvanphong", "Đỗ Quang Vinh", "Chánh Văn phòng", "VP", [Role.LEADER]),
    ("chuyenvien", "Phạm Thu Hà", "Chuyên viên", "VP", [Role.SPECIALIST]),
    ("stttt.vanthu", "Hoàng Thị Mai", "Văn thư Sở", "STTTT", [Role.CLERK]),
    ("dongtrieu.lanhdao", "Vũ Đức Thắng", "Chủ tịch UBND thị xã", "DT", [Role.LEADER]),
    ("binhkhe.congchuc", "Ngô Thị Hương", "Công chức Văn phòng - Thống kê", "BK", [Role.SPECIALIST]),
]


async def is_empty(uow: UnitOfWork) -> bool:
    return not await uow.session.scalar(select(func.count()).select_from(User))


async def load_demo(uow: UnitOfWork) -> list[tuple[str, str, str]]:
    """Create the demo organisation and accounts; the caller commits. Returns (username, name, title)."""
    ids: dict[str, int] = {}
    for code, name, kind, parent, agency in UNITS:
        unit = Unit(code=code, name=name, kind=kind, parent_id=ids.get(parent) if parent else None, is_agency=agency)
        uow.session.add(unit)
        await uow.session.flush()
        ids[code] = unit.id
    created = []
    for username, full_name, title, unit_code, roles in USERS:
        await identity.create_user(uow, None, username=username, full_name=full_name, password=DEMO_PASSWORD,
                                   roles=roles, unit_id=ids[unit_code], title=title)
        created.append((username, full_name, title))
    return created


# ---- incoming documents, so that a fresh server shows a living inbox ---------------------------

# sender, notation, days ago issued, doc type, urgency, summary, body paragraphs, what happens to it:
#   "task:<username>" submitted to the deputy chairman and directed to that person,
#   "unit:<code>" directed to that unit, "submitted" waiting for his direction, "" just registered
DOCUMENTS = [
    ("Sở Thông tin và Truyền thông", "1825/STTTT-CĐS", 3, "cong_van", "khan",
     "Công văn về việc triển khai Nền tảng trao đổi văn bản điện tử giữa các cơ quan nhà nước",
     ["Thực hiện Nghị định số 30/2020/NĐ-CP của Chính phủ về công tác văn thư, Sở Thông tin và Truyền thông "
      "đề nghị Văn phòng Ủy ban nhân dân tỉnh phối hợp kết nối, gửi nhận văn bản điện tử qua Trục liên thông.",
      "Đề nghị các đơn vị rà soát chữ ký số, cập nhật danh mục mã định danh và báo cáo kết quả trước ngày 15."],
     "task:chuyenvien", 7),
    ("Bộ Nội vụ", "4512/BNV-CQĐP", 5, "cong_van", "thuong",
     "Công văn về việc báo cáo số lượng, chất lượng cán bộ, công chức cấp xã năm 2026",
     ["Để phục vụ công tác tổng hợp, Bộ Nội vụ đề nghị Ủy ban nhân dân tỉnh Quảng Ninh báo cáo số lượng, "
      "chất lượng đội ngũ cán bộ, công chức cấp xã theo biểu mẫu kèm theo.",
      "Báo cáo gửi về Bộ Nội vụ (Vụ Chính quyền địa phương) bằng văn bản điện tử."],
     "unit:VP", 2),
    ("Ủy ban nhân dân thị xã Đông Triều", "212/TTr-UBND", 2, "to_trinh", "thuong",
     "Tờ trình về việc phê duyệt Kế hoạch chuyển đổi số thị xã Đông Triều năm 2027",
     ["Ủy ban nhân dân thị xã Đông Triều kính trình Ủy ban nhân dân tỉnh xem xét, phê duyệt Kế hoạch chuyển "
      "đổi số năm 2027 với các chỉ tiêu về dịch vụ công trực tuyến toàn trình và chính quyền số cấp xã."],
     "submitted", None),
    ("Sở Nội vụ", "96/KH-SNV", 1, "ke_hoach", "thuong",
     "Kế hoạch tổ chức Hội nghị tập huấn nghiệp vụ văn thư, lưu trữ năm 2026",
     ["Sở Nội vụ xây dựng kế hoạch tập huấn nghiệp vụ văn thư, lưu trữ cho công chức văn phòng các sở, ngành "
      "và Ủy ban nhân dân cấp huyện, cấp xã, dự kiến tổ chức trong hai ngày tại thành phố Hạ Long."],
     "", None),
    ("Văn phòng Chính phủ", "118/TB-VPCP", 4, "thong_bao", "hoa_toc",
     "Thông báo kết luận của Thủ tướng Chính phủ về đẩy mạnh cải cách thủ tục hành chính",
     ["Thủ tướng Chính phủ yêu cầu các bộ, ngành, địa phương đẩy mạnh cắt giảm, đơn giản hóa thủ tục hành "
      "chính, nâng cao tỷ lệ hồ sơ giải quyết đúng hạn và mức độ hài lòng của người dân, doanh nghiệp."],
     "task:chuyenvien", 1),
]


def demo_pdf(sender: str, notation: str, summary: str, paragraphs: list[str]) -> bytes:
    """A one-page official letter in Vietnamese (Noto Sans: the Base-14 fonts lack Vietnamese)."""
    import pymupdf  # heavy (MuPDF): only the demo loader draws PDFs

    regular, bold = pymupdf.Font("notos"), pymupdf.Font("notosbo")
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    w = pymupdf.TextWriter(page.rect)
    w.fill_textbox(pymupdf.Rect(40, 50, 290, 110), sender.upper(), font=bold, fontsize=11, align=1)
    w.fill_textbox(pymupdf.Rect(40, 95, 290, 120), f"Số: {notation}", font=regular, fontsize=11, align=1)
    w.fill_textbox(pymupdf.Rect(300, 50, 560, 110), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", font=bold, fontsize=10,
                   align=1)
    w.fill_textbox(pymupdf.Rect(300, 68, 560, 110), "Độc lập - Tự do - Hạnh phúc", font=bold, fontsize=11, align=1)
    w.fill_textbox(pymupdf.Rect(60, 140, 535, 200), summary, font=bold, fontsize=12, align=1)
    w.fill_textbox(pymupdf.Rect(60, 215, 535, 700), "\n\n".join(paragraphs), font=regular, fontsize=12)
    w.write_text(page)
    doc.subset_fonts()  # the glyphs used, not the whole Noto Sans (500 KB -> tens of KB)
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return bytes(data)


async def load_demo_documents(uow: UnitOfWork, blobs: Any) -> list[int]:
    """Register DOCUMENTS with their PDFs and send most of them on (submitted, directed into
    tasks), after ``load_demo``; the caller commits. Returns the text-extraction jobs, which the
    server runs at its next start (or the caller's ingest runner)."""
    users = {u.username: u for u in (await uow.session.scalars(select(User))).all()}
    units = {u.code: u for u in (await uow.session.scalars(select(Unit))).all()}
    clerk, deputy = users["vanthu"], users["phochutich"]
    today = registers.local_date(utcnow())
    jobs: list[int] = []
    for i, (sender, notation, ago, doc_type, urgency, summary, body, fate, days) in enumerate(DOCUMENTS):
        info = await blobs.put_bytes(demo_pdf(sender, notation, summary, body), content_type="application/pdf")
        upload = await uploads.record_upload(uow, clerk, info, f"{notation.replace('/', '-')}.pdf")
        doc, new_jobs = await documents.register_incoming(
            uow, clerk, blobs, sender=sender, notation=notation, date_issued=today - dt.timedelta(days=ago),
            doc_type=doc_type, urgency=urgency, summary=summary, signer="", upload_ids=[upload.id],
            due_date=today + dt.timedelta(days=days) if days else None,
            received_at=utcnow() - dt.timedelta(hours=len(DOCUMENTS) - i))
        jobs += new_jobs
        if not fate:
            continue
        await tasks.submit(uow, clerk, doc.id, deputy.id, "Kính trình đồng chí Phó Chủ tịch cho ý kiến chỉ đạo.")
        if fate == "submitted":
            continue
        kind, _, who = fate.partition(":")
        main = {"user_id": users[who].id} if kind == "task" else {"unit_id": units[who].id}
        await tasks.direct(uow, deputy, doc.id, text="Giao nghiên cứu, tham mưu xử lý và báo cáo trước hạn.",
                           main=main, deadline=today + dt.timedelta(days=days or 7))
    return jobs
