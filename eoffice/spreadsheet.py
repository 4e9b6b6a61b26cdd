"""Cells that a spreadsheet would run as formulas (CSV/formula injection), made plain text.

Registers and vote exports carry text typed by people in other agencies (an edXML sender, a
summary, a delegate's name). Excel and LibreOffice treat a CSV cell starting with ``=``, ``+``,
``-``, ``@`` (or a tab/carriage return before one) as a formula, and openpyxl stores a string
starting with ``=`` as a formula cell. Following OWASP's advice, CSV cells get a leading
apostrophe; XLSX cells are typed as strings, so the text shows exactly as written.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value``, with a leading apostrophe when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class CsvWriter:
    """``csv.writer`` whose every text cell goes through ``csv_cell``."""

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def xlsx_text_cells(cells: Iterable[Any]) -> None:
    """Make openpyxl cells that it took for formulas (text starting with ``=``) plain strings."""
    for cell in cells:
        if cell.data_type == "f":
            cell.data_type = "s"
