"""CSV and TSV attachments (also `;` and `|` separated), rendered row by row with headers."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable

from gateway.extract import table
from gateway.extract.base import Context
from gateway.mime.charset import decode

name = "csv"
TYPES = ("text/csv", "text/tab-separated-values")

csv.field_size_limit(1 << 24)
_ROWS_PER_CHECK = 2000


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    text = decode(data, charset)
    dialect = _dialect(text)
    rendered = render_plain_table(text, dialect.delimiter)
    if rendered is not None:
        ctx.add_text(rendered, location, content_type="text/csv")
        return
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect)
    lines: list[str] = []
    try:
        for i, line in enumerate(table.render(reader)):
            if i % _ROWS_PER_CHECK == 0 and ctx.out_of_time(location):
                break
            lines.append(line)
    except csv.Error:  # not really CSV after all: the text itself is still inspected
        lines = [text]
    ctx.add_text("\n".join(lines), location, content_type="text/csv")


def render_plain_table(text: str, delimiter: str) -> str | None:
    """`table.render`'s output for the commonest CSV, by whole-text string operations; else None.

    The shape: a header on the first line, then rows with one non-empty cell per column, no
    quotes, single spaces only (an SIS or spreadsheet export, rosters with first/last-name
    columns included). Such a file is checked and rewritten by C-level str methods instead of
    Python work per cell (the per-row loop was a third of a CSV message's inspection time).
    Anything else returns None and takes the csv-module path; tests compare the two.
    """
    d = delimiter
    if '"' in text or "\0" in text:
        return None
    body = text.replace("\r\n", "\n")
    if "\r" in body:
        return None
    header, _, rows = body.partition("\n")
    names = [" ".join(c.split()) for c in header.split(d)]
    width = len(names)
    if width < 2 or not table.is_header(names):
        return None
    labels = table.labels_for(tuple(names))
    heading = " ; ".join(labels.names)
    rows = rows[:-1] if rows.endswith("\n") else rows
    if not rows:
        return heading
    cells = _plain_cells(rows, d, width)
    if cells is None:
        return None
    # One %-format over every cell at once: each row is "\n" + "Label: value ; Label: value".
    row = "\n" + " ; ".join(p.replace("%", "%%") + "%s" for p in labels.prefixes)
    values: Iterable[str] = cells
    if not labels.plain:
        # Split name columns: every cell is filled, so a row's name is its last first-name
        # and last last-name column (table.Labels.line), added as one more "Name:" field.
        columns = [cells[i::width] for i in range(width)]
        names_of = (columns[labels.first[-1]], columns[labels.last[-1]])
        values = itertools.chain.from_iterable(zip(*columns, *names_of, strict=True))
        row += " ; Name: %s %s"
    return heading + row * (len(cells) // width) % tuple(values)


def _plain_cells(rows: str, d: str, width: int) -> list[str] | None:
    """All cells, row after row, when every line has `width` of them and each is non-empty
    and already whitespace-normalised (as `table.render` would make it); else None."""
    # Each line end becomes a cell of its own, a NUL (the text has none): the lines all have
    # `width` cells exactly when those NULs sit at every (width + 1)th place. Two C-level list
    # operations instead of counting the delimiters line by line.
    cells = rows.replace("\n", f"{d}\0{d}").split(d)
    lines = rows.count("\n") + 1
    ends = cells[width::width + 1]
    if len(cells) != (width + 1) * lines - 1 or ends.count("\0") != lines - 1:
        return None
    del cells[width::width + 1]
    # Joined by single spaces: a doubled space or one at either end means an empty cell or
    # one with a space to strip or collapse; any other whitespace (a tab, a no-break space)
    # is not printable. (Other unprintables, e.g. a soft hyphen, only cost the fast path.)
    flat = " ".join(cells)
    if "  " in flat or flat.startswith(" ") or flat.endswith(" ") or not flat.isprintable():
        return None
    return cells


def _dialect(text: str) -> type[csv.Dialect]:
    """The delimiter that appears on every one of the first lines, most often.

    csv.Sniffer did the same job at a quarter of a small CSV message's inspection time; this
    counts the four candidates on at most ten lines.
    """
    lines = _first_lines(text)
    if lines is None:
        sample = text[:_SAMPLE]
        lines = [line for line in sample.splitlines() if line.strip()]
        if len(text) > _SAMPLE and len(lines) > 1:
            lines.pop()  # the last sampled line may be cut short
    best, best_score = ",", 0
    for delimiter in _DELIMITERS:
        score = min((line.count(delimiter) for line in lines[:10]), default=0)
        if score > best_score:
            best, best_score = delimiter, score
    return _DIALECTS[best]


def _first_lines(text: str) -> list[str] | None:
    """The first ten non-empty lines when the first 1 KB holds more than eleven (splitting the
    whole 8 KB sample cost more than the counting); else None."""
    lines = [line for line in text[:1024].splitlines() if line.strip()]
    return lines[:10] if len(lines) > 11 else None  # the 12th may be cut: 11 are whole


class _Excel(csv.excel):
    pass


_SAMPLE = 8192
_DELIMITERS = ",\t;|"
_DIALECTS: dict[str, type[csv.Dialect]] = {
    d: type(f"Delimited{ord(d)}", (_Excel,), {"delimiter": d}) for d in _DELIMITERS}
