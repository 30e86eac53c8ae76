"""Excel workbooks (XLSX/XLSM) through openpyxl in read-only mode, one text part per sheet.

Each sheet is its own location (`attachment grades.xlsx, sheet 1`) so a roster is counted per
sheet. Sheets are numbered, not named: sheet names can themselves be student names.
"""

from __future__ import annotations

import io
import warnings

from gateway.extract import table
from gateway.extract.base import Context
from gateway.extract.sniff import XLSX
from gateway.extract.zip import open_checked

name = "xlsx"
TYPES = (XLSX,)
_ROWS_PER_CHECK = 2000


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    import openpyxl

    checked = open_checked(data, ctx, location, container=True)
    if checked is None:
        return
    checked.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            for number, sheet in enumerate(book.worksheets, start=1):
                where = f"{location}, sheet {number}"
                if ctx.out_of_time(where):
                    return
                ctx.add_text(_sheet_text(sheet, ctx, where), where, content_type=XLSX)
        finally:
            book.close()


def _sheet_text(sheet: object, ctx: Context, where: str) -> str:
    lines: list[str] = []
    rows = sheet.iter_rows(values_only=True)  # type: ignore[attr-defined]
    for i, line in enumerate(table.render(rows)):
        if i % _ROWS_PER_CHECK == 0 and i and ctx.out_of_time(where):
            break
        lines.append(line)
    return "\n".join(lines)
