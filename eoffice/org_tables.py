"""Organisation tables read from CSV or XLSX files, for ``eoffice org import``.

A table is a CSV file or a worksheet whose first row names its columns. A table with a «Tên đăng
nhập» column lists people (one account a row); any other table lists units. An XLSX workbook may hold
both (two sheets, any names). Column names are matched without case or diacritics («Ma don vi» is
«Mã đơn vị»); English names (code, username, ...) work too. Columns not listed here (STT, Ghi chú)
are skipped with a warning.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eoffice.textfold import fold
from storage.errors import Invalid

UNITS, USERS = "units", "users"

# field -> accepted column names (folded)
UNIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("ma don vi", "ma dinh danh", "ma", "code"),
    "name": ("ten don vi", "ten", "name"),
    "parent": ("don vi cha", "ma don vi cha", "don vi cap tren", "parent"),
    "kind": ("loai", "loai don vi", "cap", "kind"),
    "agency": ("co quan", "co so rieng", "is_agency", "agency"),
    "rank": ("thu tu", "thu tu sap xep", "rank"),
}
USER_COLUMNS: dict[str, tuple[str, ...]] = {
    "username": ("ten dang nhap", "tai khoan", "username"),
    "full_name": ("ho va ten", "ho ten", "full_name", "name"),
    "title": ("chuc vu", "title"),
    "unit": ("don vi", "ma don vi", "unit"),
    "roles": ("vai tro", "quyen", "roles"),
    "email": ("email", "thu dien tu"),
    "phone": ("dien thoai", "so dien thoai", "di dong", "phone"),
    "rank": ("thu tu", "thu tu sap xep", "rank"),
}


HEADER_SEARCH = 10  # rows looked at for the header (titles above it are skipped)
IGNORED = {"stt", "so thu tu", "tt", "ghi chu"}  # a row counter, notes: skipped without a warning


@dataclass
class Row:
    line: int  # the row's number as the spreadsheet shows it (the header is line 1)
    cells: dict[str, str]  # field -> text, stripped ("" for an empty cell)


@dataclass
class Table:
    source: str  # file name, and «sheet» for a workbook
    kind: str  # UNITS | USERS
    headers: dict[str, str]  # field -> the column's name as written in the file
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # column names not understood

    def where(self, row: Row, column: str) -> str:
        """«file: Dòng 7, cột «Đơn vị cha»» for an error message."""
        return f"{self.source}: Dòng {row.line}, cột «{self.headers.get(column, column)}»"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def build_table(source: str, lines: list[list[Any]]) -> Table | None:
    """A table from its rows of cells (the first is the header); None for an empty sheet."""
    rows = [[_text(v) for v in line] for line in lines]
    start = next((i for i, r in enumerate(rows) if any(r)), None)
    if start is None:
        return None
    keys = set(USER_COLUMNS["username"] + UNIT_COLUMNS["code"])
    # the header: the first row naming a key column, below a title («DANH SÁCH ĐƠN VỊ») if any
    start = next((i for i in range(start, min(start + HEADER_SEARCH, len(rows)))
                  if keys & {fold(h) for h in rows[i]}), start)
    header = rows[start]
    folded = [fold(h) for h in header]
    kind = USERS if any(f in USER_COLUMNS["username"] for f in folded) else UNITS
    columns = USER_COLUMNS if kind == USERS else UNIT_COLUMNS
    index: dict[str, int] = {}
    headers: dict[str, str] = {}
    skipped: list[str] = []
    for i, (name, f) in enumerate(zip(header, folded, strict=True)):
        match = next((k for k, names in columns.items() if f in names), None)
        if match is None or match in index:
            if name and f not in IGNORED:
                skipped.append(name)
            continue
        index[match], headers[match] = i, name
    key = "username" if kind == USERS else "code"
    if key not in index:
        wanted = "«Mã đơn vị»" if kind == UNITS else "«Tên đăng nhập»"
        raise Invalid(f"{source}: Dòng {start + 1}: thiếu cột {wanted} (dòng đầu phải là tên các cột).")
    table = Table(source, kind, headers, skipped=skipped)
    for n, r in enumerate(rows[start + 1:], start + 2):
        if not any(r):
            continue
        table.rows.append(Row(n, {k: (r[i] if i < len(r) else "") for k, i in index.items()}))
    return table


def _csv_lines(data: bytes, source: str) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid(f"{source}: tệp CSV phải được lưu với bảng mã UTF-8.") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)  # Excel in Vietnamese locales saves with ";"
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _xlsx_tables(data: bytes, source: str) -> list[Table]:
    from openpyxl import load_workbook  # heavy (openpyxl): only an .xlsx file needs it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise Invalid(f"{source}: không đọc được tệp XLSX ({exc}).") from None
    try:
        tables = [build_table(f"{source} «{sheet.title}»", [list(r) for r in sheet.iter_rows(values_only=True)])
                  for sheet in book.worksheets]
    finally:
        book.close()
    return [t for t in tables if t is not None]


def read_tables(path: Path) -> list[Table]:
    """The tables of a .csv or .xlsx file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Invalid(f"Không đọc được tệp {path}: {exc.strerror}.") from None
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _xlsx_tables(data, path.name)
    if suffix == ".csv":
        table = build_table(path.name, _csv_lines(data, path.name))  # type: ignore[arg-type]
        return [table] if table else []
    raise Invalid(f"{path.name}: chỉ nhận tệp .csv hoặc .xlsx.")
