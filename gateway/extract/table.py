"""Rows and columns → text where each value stands next to its column header.

A spreadsheet cell "524-61-3378" under a column headed "SSN" is an SSN with its keyword; a
"Student ID" column identifies the numbers under it; a "Grade" column makes the row record
content. Rendering each row as `Header: value; Header: value` gives the detectors exactly that
context through their ordinary keyword proximity, with no table-specific detector code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

_CAMEL = re.compile(r"([a-z0-9])([A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NUMBERISH = re.compile(r"^[\s\d.,:/$%+()#-]*$")
_FIRST = re.compile(r"^(first|given)[ _-]?name$|^first$", re.IGNORECASE)
_LAST = re.compile(r"^(last|family|sur)[ _-]?name$|^last$|^surname$", re.IGNORECASE)


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def label_words(label: str) -> str:
    """`student_id`, `StudentID`, `stu-num` → `student id`, `Student ID`, `stu num`.

    SIS exports name columns in code style; the detectors' keywords are whole words, so the
    label is split into words for them (the value under it then has its keyword).
    """
    return " ".join(_CAMEL.sub(r"\1 \2", label).replace("_", " ").replace("-", " ").split())


def is_header(cells: Sequence[str]) -> bool:
    """A header row: at least two labels and no number-like values."""
    filled = [c for c in cells if c]
    return len(filled) >= 2 and not any(_NUMBERISH.match(c) for c in filled)


def render(rows: Iterable[Sequence[object]]) -> Iterable[str]:
    """Yield one line per row; the first header-looking row labels the rows below it."""
    labels: Labels | None = None
    rows = iter(rows)
    for raw in rows:
        cells = _cells(raw)
        if not any(cells):
            continue
        if is_header(cells):
            labels = labels_for(tuple(cells))
            yield " ; ".join(labels.names)
            break
        yield " ; ".join(c for c in cells if c)
    if labels is None:
        return
    # Below the header: the per-row loop is most of a table's inspection time, so the usual
    # row (every cell filled, as many as there are labels, no split name columns) is joined
    # straight from the prefixes, with no method call or per-cell test.
    prefixes, width, simple = labels.prefixes, len(labels.prefixes), labels.plain
    for raw in rows:
        cells = [" ".join(v.split()) if type(v) is str else cell_text(v) for v in raw]
        if simple and len(cells) == width and all(cells):
            yield " ; ".join([p + v for p, v in zip(prefixes, cells, strict=True)])
        elif any(cells):
            yield labels.line(cells)


def _cells(raw: Sequence[object]) -> list[str]:
    # Most cells are already text (every CSV cell is): normalise those inline.
    return [" ".join(v.split()) if type(v) is str else cell_text(v) for v in raw]


def labels_for(names: tuple[str, ...]) -> Labels:
    """`Labels` for a header row, remembered for the header rows seen most (an export from the
    same system comes with the same header every time; building them is a tenth of a CSV's
    rendering). Long header rows are not remembered: the memory stays small."""
    if sum(map(len, names)) > _LABELS_CACHE_CHARS:
        return Labels([label_words(n) for n in names])
    return _cached_labels(names)


@functools.lru_cache(maxsize=256)
def _cached_labels(names: tuple[str, ...]) -> Labels:
    return Labels([label_words(n) for n in names])


_LABELS_CACHE_CHARS = 2048


class Labels:
    """A header row, with its name columns found once rather than once per row. Not changed
    after it is built (labels_for hands the same one out again)."""

    def __init__(self, names: list[str]):
        self.names = names
        self.prefixes = [f"{name}: " if name else "" for name in names]
        self.first = [i for i, name in enumerate(names) if _FIRST.match(name)]
        self.last = [i for i, name in enumerate(names) if _LAST.match(name)]
        self.plain = not (self.first and self.last)  # no row gets a "Name:" added

    def line(self, cells: list[str]) -> str:
        prefixes = self.prefixes
        if len(cells) > len(prefixes):
            prefixes = prefixes + [""] * (len(cells) - len(prefixes))
        out = [prefix + value for prefix, value in zip(prefixes, cells, strict=False) if value]
        first, last = self._value(cells, self.first), self._value(cells, self.last)
        if first and last:
            out.append(f"Name: {first} {last}")  # split name columns still name a student
        return " ; ".join(out)

    @staticmethod
    def _value(cells: list[str], columns: list[int]) -> str:
        """The last non-empty cell among `columns` (as the row is read left to right)."""
        for i in reversed(columns):
            if i < len(cells) and cells[i]:
                return cells[i]
        return ""


# --- tables pasted into a text body ---------------------------------------------------------

# A block of three or more lines, each with at least two of one delimiter (one for a tab),
# blank lines between them allowed (an HTML table's rows come out so): a header and rows
# pasted from a spreadsheet. Each pattern starts with the line break before the block, a
# literal, so the regex engine tries it only at line starts (a `(?m)^` would be tried at
# every character).
_BLOCKS = {d: re.compile(rf"\n((?:(?:[^\n{e}]*{e}){{{n},}}[^\n{e}]*(?:(?:\n[ \t\r]*)+|\Z)){{3,}})")
           for d, e, n in (("\t", r"\t", 1), (",", ",", 2), (";", ";", 2), ("|", r"\|", 2))}


def render_pasted(text: str, delimiters: str = "\t,;|") -> str:
    """`text` with every pasted table rendered as `render` renders an attached one, each value
    next to its column header: a column headed SSN makes every value in it an SSN, however
    many rows and however wide they are. Text with no such table is returned as it is.

    Searching costs about as much as the rest of a body's inspection, so callers ask only
    when a table is likely: a tab in the text (a spreadsheet pasted into a mail keeps its
    tabs), or a record column header next to a delimiter (`gateway.inspect`)."""
    for delimiter, blocks in _BLOCKS.items():
        if delimiter in delimiters and delimiter in text:
            rendered = blocks.sub(lambda m, d=delimiter: "\n" + _render_block(m.group(1), d),
                                  "\n" + text)[1:]
            if rendered != text:  # rendered rows are " ; "-joined: not a table to read again
                return rendered
    return text


def _render_block(block: str, delimiter: str) -> str:
    import csv  # noqa: PLC0415 - only for the rare body with a pasted table

    lines = [line for line in block.split("\n") if line.strip()]
    rows = list(csv.reader((line.rstrip("\r") for line in lines), delimiter=delimiter))
    # Every row as wide as the header: a spreadsheet's rows are, lines of prose are not.
    if any(len(row) != len(rows[0]) for row in rows) or \
            not is_header([" ".join(c.split()) for c in rows[0]]):
        return block
    rendered = "\n".join(render(rows))
    return rendered + block[len(block.rstrip("\n \t\r")):]  # the blank lines after it
