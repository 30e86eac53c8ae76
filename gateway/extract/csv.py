"""CSV and TSV attachments (also `;` and `|` separated), rendered row by row with headers."""

from __future__ import annotations

import csv
import io

from gateway.extract import table
from gateway.extract.base import Context
from gateway.extract.text import decode

name = "csv"
TYPES = ("text/csv", "text/tab-separated-values")

csv.field_size_limit(1 << 24)
_ROWS_PER_CHECK = 2000


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    text = decode(data, charset)
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(text))
    lines: list[str] = []
    try:
        for i, line in enumerate(table.render(reader)):
            if i % _ROWS_PER_CHECK == 0 and ctx.out_of_time(location):
                break
            lines.append(line)
    except csv.Error:  # not really CSV after all: the text itself is still inspected
        lines = [text]
    ctx.add_text("\n".join(lines), location, content_type="text/csv")


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=",\t;|")
    except csv.Error:
        return csv.excel_tab if text[:8192].count("\t") > text[:8192].count(",") else csv.excel
