"""Excel workbooks (XLSX/XLSM) through calamine (openpyxl as fallback), one part per sheet.

Each sheet is its own location (`attachment grades.xlsx, sheet 1`) so a roster is counted per
sheet. Sheets are numbered, not named: sheet names can themselves be student names.
"""

from __future__ import annotations

import html
import io
import re
import warnings
import zipfile
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
    with checked:
        masked = _has_digit_masks(checked)
    if masked:  # only openpyxl tells each cell's number format
        _extract_openpyxl(data, ctx, location)
        return
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
                rows = ([_shown(cell) for cell in row] for row in sheet.iter_rows())
                ctx.add_text(_sheet_text(rows, ctx, where), where, content_type=XLSX)
        finally:
            book.close()


# A number format that only pads and punctuates digits, as Excel's "Social Security Number"
# format (`000-00-0000`) or a ZIP code's (`00000`) does: the cell shows 062-95-6288 where its
# value is the number 62956288.
_FORMAT_CODE = re.compile(rb'formatCode="([^"]*)"')
_MASK = re.compile(r"^[0#]+(?:[- /()]*[0#]+)*$")  # no "." or ",": those are decimals


def _has_digit_masks(zf: zipfile.ZipFile) -> bool:
    try:
        styles = zf.read("xl/styles.xml")
    except KeyError:
        return False
    if b'formatCode="0' not in styles and b'formatCode="#' not in styles:
        return False  # no custom format starting with a digit place: the usual workbook
    return any(_mask(m.group(1).decode("utf-8", "replace"))
               for m in _FORMAT_CODE.finditer(styles))


def _mask(code: str) -> str | None:
    code = html.unescape(code).replace("\\", "").replace('"', "")
    return code if code.count("0") >= 2 and _MASK.match(code) else None


def _shown(cell: object) -> object:
    """A cell's value as Excel shows it when its format is a digit mask, else the value."""
    value = getattr(cell, "value", None)
    if type(value) not in (int, float) or (isinstance(value, float) and not value.is_integer()):
        return value
    mask = _mask(getattr(cell, "number_format", "") or "")
    return value if mask is None else apply_mask(int(value), mask)


def apply_mask(number: int, mask: str) -> str:
    """`apply_mask(62956288, "000-00-0000")` → `062-95-6288`: digits fill the mask's places
    from the right, `0` places pad with zeros, extra digits go in front."""
    if number < 0:
        return str(number)
    digits = str(number).zfill(mask.count("0"))
    out: list[str] = []
    i = len(digits)
    for ch in reversed(mask):
        if ch in "0#":
            if i > 0:
                i -= 1
                out.append(digits[i])
        else:
            out.append(ch)
    return digits[:i] + "".join(reversed(out))


def _sheet_text(rows: Iterable[Sequence[object]], ctx: Context, where: str) -> str:
    lines: list[str] = []
    for i, line in enumerate(table.render(rows)):
        if i % _ROWS_PER_CHECK == 0 and i and ctx.out_of_time(where):
            break
        lines.append(line)
    return "\n".join(lines)
