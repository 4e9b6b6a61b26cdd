"""Registers exported with the columns of Decree 30/2020/NĐ-CP (Phụ lục IV), as CSV or XLSX.

Rows are the documents of the actor's agency register that the actor may see: a clerk gets the
whole ordinary register; the confidential register only lists what they were granted.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import anyio
from sqlalchemy import select

from eoffice import access, doctypes, registers, spreadsheet
from eoffice.org import Role, Unit, User
from eoffice.registers import AGENCY_TZ, CONFIDENTIAL_SERIES, Direction, register_title
from eoffice.schema.documents import Document, Status
from eoffice.schema.tasks import Task, TaskRole
from storage.db import UnitOfWork
from storage.errors import Forbidden, Invalid

INCOMING_COLUMNS = ["Ngày đến", "Số đến", "Tác giả", "Số, ký hiệu", "Ngày tháng", "Tên loại và trích yếu nội dung",
                    "Đơn vị hoặc người nhận", "Ký nhận", "Ghi chú"]
OUTGOING_COLUMNS = ["Số, ký hiệu văn bản", "Ngày tháng văn bản", "Tên loại và trích yếu nội dung văn bản",
                    "Người ký", "Nơi nhận văn bản", "Đơn vị, người nhận bản lưu", "Số lượng bản", "Ngày chuyển",
                    "Ký nhận", "Ghi chú"]


def _d(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(AGENCY_TZ).date()
    return value.strftime("%d/%m/%Y")


def _type_and_summary(doc: Document) -> str:
    t = doctypes.BY_CODE.get(doc.doc_type)
    return f"{t.name} {doc.summary}" if t and t != doctypes.CONG_VAN else doc.summary


def _notes(doc: Document) -> str:
    parts = []
    if doc.status == Status.VOIDED:  # the number stays in the register, marked
        parts.append(f"Đã hủy vào sổ: {doc.void_reason}" if doc.void_reason else "Đã hủy vào sổ")
    if doc.confidential:
        parts.append(doctypes.CONFIDENTIALITY_LABELS[doctypes.Confidentiality(doc.confidentiality)])
    if doc.urgency != doctypes.Urgency.NORMAL:
        parts.append(doctypes.URGENCY_LABELS[doctypes.Urgency(doc.urgency)])
    return ", ".join(parts)


async def register_rows(uow: UnitOfWork, actor: User, direction: str, year: int, confidential: bool = False
                        ) -> tuple[str, list[str], list[list[Any]]]:
    """(title, columns, rows) of the actor's agency register."""
    if direction not in (Direction.IN, Direction.OUT):
        raise Invalid("Chiều sổ không hợp lệ.")
    if not actor.has_role(Role.CLERK, Role.LEADER):
        raise Forbidden("Chỉ văn thư và lãnh đạo được xuất sổ đăng ký.")
    agency = await registers.agency_of(uow, actor.unit_id)
    viewer = await access.viewer_for(uow, actor)
    level = Document.confidentiality != "thuong" if confidential else Document.confidentiality == "thuong"
    q = select(Document).where(
        Document.agency_id == agency.id, Document.direction == direction, Document.year == year,
        Document.number.is_not(None), level, access.visible(viewer),
        # the agency's own series: documents of units merged into it keep their old registers (eoffice.org_merge)
        Document.register_id.in_(select(registers.Register.id).where(registers.Register.agency_id == agency.id)))
    # outgoing numbers run per type: the register lists each series in order
    q = q.order_by(Document.doc_type, Document.number) if direction == Direction.OUT else q.order_by(Document.number)
    docs = (await uow.session.scalars(q)).all()
    title = f"{register_title(direction, CONFIDENTIAL_SERIES if confidential else '', year)} — {agency.name}"
    if direction == Direction.IN:
        handlers = await _handlers(uow, [d.id for d in docs])
        rows = [[_d(d.received_at), d.number, d.sender, d.notation, _d(d.date_issued), _type_and_summary(d),
                 handlers.get(d.id, ""), "", _notes(d)] for d in docs]
        return title, INCOMING_COLUMNS, rows
    units = {u.id: u.name for u in (await uow.session.scalars(select(Unit))).all()}
    rows = []
    for d in docs:
        rec = "; ".join(units.get(r["unit_id"], "") if "unit_id" in r else r.get("name", "") for r in d.recipients)
        rows.append([d.notation, _d(d.date_issued), _type_and_summary(d), d.signer, rec,
                     units.get(d.unit_id or 0, ""), "", _d(d.updated_at), "", _notes(d)])
    return title, OUTGOING_COLUMNS, rows


async def _handlers(uow: UnitOfWork, doc_ids: list[int]) -> dict[int, str]:
    if not doc_ids:
        return {}
    tasks = (await uow.session.scalars(select(Task).where(
        Task.document_id.in_(doc_ids), Task.parent_id.is_(None), Task.role == TaskRole.MAIN))).all()
    users = {u.id: u.full_name for u in (await uow.session.scalars(
        select(User).where(User.id.in_({t.assignee_user_id for t in tasks if t.assignee_user_id})))).all()}
    units = {u.id: u.name for u in (await uow.session.scalars(
        select(Unit).where(Unit.id.in_({t.assignee_unit_id for t in tasks if t.assignee_unit_id})))).all()}
    out: dict[int, list[str]] = {}
    for t in tasks:
        name = users.get(t.assignee_user_id or 0) or units.get(t.assignee_unit_id or 0, "")
        out.setdefault(t.document_id or 0, []).append(name)
    return {k: "; ".join(v) for k, v in out.items()}


def to_csv(title: str, columns: list[str], rows: list[list[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens Vietnamese text correctly."""
    buf = io.StringIO()
    w = spreadsheet.CsvWriter(buf)
    w.writerow(columns)
    w.writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode()


def to_xlsx(title: str, columns: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook  # heavy (openpyxl): only an .xlsx export needs it
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # (as above)
    from openpyxl.styles import Alignment, Font  # (as above)

    wb = Workbook()
    ws = wb.active
    ws.title = "Sổ đăng ký"
    ws.append([title.upper()])
    ws["A1"].font = Font(bold=True, size=13)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(columns))
    ws.append(columns)
    ws.append([f"({i})" for i in range(1, len(columns) + 1)])
    for cell in ws[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, horizontal="center", vertical="center")
    for row in rows:
        # control characters a client stored (a summary pasted with a form feed) cannot go in a worksheet
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row])
        spreadsheet.xlsx_text_cells(ws[ws.max_row])
    widths = {0: 14, 1: 12}
    for i in range(len(columns)):
        ws.column_dimensions[chr(ord("A") + i)].width = widths.get(i, 28)
    ws.freeze_panes = "A4"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def export_register(uow: UnitOfWork, actor: User, *, direction: str, year: int, fmt: str = "xlsx",
                          confidential: bool = False) -> tuple[str, bytes]:
    """(filename, bytes) of the register in ``csv`` or ``xlsx``."""
    title, columns, rows = await register_rows(uow, actor, direction, year, confidential)
    name = f"so-van-ban-{'den' if direction == Direction.IN else 'di'}{'-mat' if confidential else ''}-{year}"
    if fmt == "csv":
        return name + ".csv", to_csv(title, columns, rows)
    if fmt == "xlsx":
        return name + ".xlsx", await anyio.to_thread.run_sync(to_xlsx, title, columns, rows)
    raise Invalid("Định dạng xuất phải là csv hoặc xlsx.", field="format")
