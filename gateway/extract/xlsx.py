"""Excel workbooks (XLSX/XLSM) through calamine (openpyxl as fallback), one part per sheet.

Each sheet is its own location (`attachment grades.xlsx, sheet 1`) so a roster is counted per
sheet. Sheets are numbered, not named: sheet names can themselves be student names.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Sequence

from gateway.extract import table
from gateway.extract.base import Context
from gateway.extract.sniff import XLSX
from gateway.extract.zip import open_checked

name = "xlsx"
TYPES = (XLSX,)
_ROWS_PER_CHECK = 2000


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    checked = open_checked(data, ctx, location, container=True)  # bombs and encryption first
    if checked is None:
        return
    checked.close()
    try:
        import python_calamine  # noqa: PLC0415 - optional: no wheel on some platforms
    except ImportError:  # no wheel for this platform: the slower pure-Python reader
        _extract_openpyxl(data, ctx, location)
        return
    # calamine (Rust) reads a small workbook in ~0.3 ms where openpyxl takes ~7 ms.
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    try:
        for number in range(1, len(book.sheet_names) + 1):
            where = f"{location}, sheet {number}"
            if ctx.out_of_time(where):
                return
            rows = book.get_sheet_by_index(number - 1).iter_rows()
            ctx.add_text(_sheet_text(rows, ctx, where), where, content_type=XLSX)
    finally:
        book.close()


def _extract_openpyxl(data: bytes, ctx: Context, location: str) -> None:
    import openpyxl  # noqa: PLC0415 - slow to import, needed only without calamine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            for number, sheet in enumerate(book.worksheets, start=1):
                where = f"{location}, sheet {number}"
                if ctx.out_of_time(where):
                    return
                rows = sheet.iter_rows(values_only=True)
                ctx.add_text(_sheet_text(rows, ctx, where), where, content_type=XLSX)
        finally:
            book.close()


def _sheet_text(rows: Iterable[Sequence[object]], ctx: Context, where: str) -> str:
    lines: list[str] = []
    for i, line in enumerate(table.render(rows)):
        if i % _ROWS_PER_CHECK == 0 and i and ctx.out_of_time(where):
            break
        lines.append(line)
    return "\n".join(lines)
