"""CSV and TSV: the delimiter that is on every line, UTF-16 files, and the fast path for plain
exports, which must render as the csv module path does."""

from __future__ import annotations

import csv as csv_module
import importlib
import io
import random

import pytest

from gateway.extract import table
from gateway.extract.csv import _DIALECTS, _dialect, _first_lines, render_plain_table
from tests.factories import attached, detectors


def test_utf16_csv(inspector):
    data = "Student ID\tName\tGPA\n482913\tAlex Jones\t3.1\n".encode("utf-16")
    assert {"student_number", "student_name", "record_category"} <= detectors(
        inspector.inspect(attached("a.tsv", data)))


@pytest.mark.parametrize("text, delimiter", [
    ("a,b,c\n1,2,3\n", ","), ("a\tb\tc\n1\t2\t3\n", "\t"), ("a;b;c\n1;2;3\n", ";"),
    ("a|b\n1|2\n", "|"), ('name,"x; y",z\n1,"2;3",4\n', ","), ("single\nline\n", ","),
])
def test_csv_delimiter_is_the_one_on_every_line(text, delimiter):
    assert _dialect(text).delimiter == delimiter


def _generic_csv(text: str, delimiter: str) -> str:
    reader = csv_module.reader(io.StringIO(text, newline=""), dialect=_DIALECTS[delimiter])
    try:
        return "\n".join(table.render(reader))
    except csv_module.Error:
        return text


CLEAN_CELLS = ["Sam", "Lee", "123456", "Room 248", "8:30", "B plus", "50%", "%(x)s", "x\\y",
               "'q'", "9.5", "\\g<1>", "Ann Marie", "--", "#", "a\u00e9b"]
ODD_CELLS = ["", " ", " x", "x ", "a  b", "a\tb", "a\u00a0b", "a\x1cb", "a\x0bb", '"q"', 'a"b',
             "a,b", "a;b", "a|b", "a\xadb", "a\u200bb", "a\x85b", "a\u2028b", "a\u3000b", "\u00a0",
             "%s"]
CSV_CELLS = CLEAN_CELLS + ODD_CELLS
CSV_HEADERS = [["Student ID", "Grade", "Room"], ["day", "time", "activity", "room"],
               ["First Name", "Last Name", "ID"], ["given_name", "note"], ["", "Name", ""],
               ["note"], ["123", "456"], ["Stu\\dent", "a\\g<0>"], ["  padded ", "x"],
               ["Student ID", "Grade"] * 20, ["Score %", "Name %s"],
               ["Student ID", "Last Name", "First Name", "Grade", "DOB"],
               ["First", "Last", "first_name", "surname", "Grade"]]


def _csv_text(rng: random.Random, delimiter: str) -> str:
    header = list(rng.choice(CSV_HEADERS))
    rows = [header]
    messy = rng.random() < 0.5  # else an export: full rows of ordinary values
    for _ in range(rng.randint(0, 12)):
        width = len(header) if not messy or rng.random() < 0.8 else rng.randint(0, len(header) + 1)
        cells = CSV_CELLS if messy and rng.random() < 0.3 else CLEAN_CELLS
        rows.append([rng.choice(cells) for _ in range(width)])
    newline = rng.choice(["\n", "\r\n", "\n", "\r"])
    text = newline.join(delimiter.join(row) for row in rows)
    if rng.random() < 0.7:
        text += newline
    if rng.random() < 0.1:
        text = rng.choice(["\n", newline * 2, "x"]) + text
    return text


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_plain_csv_fast_path_renders_as_the_csv_module_path(delimiter):
    rng = random.Random(5125 + ord(delimiter))
    fast = 0
    for _ in range(3000):
        text = _csv_text(rng, delimiter)
        rendered = render_plain_table(text, delimiter)
        if rendered is not None:
            fast += 1
            assert rendered == _generic_csv(text, delimiter), repr(text)
    assert fast > 600  # the clean shapes do take the fast path


def test_plain_csv_fast_path_is_taken_for_an_export_and_not_for_quoted_fields():
    export = "Student ID,First,Grade\r\n123456,Sam,B\r\n234567,Ana,A\r\n"
    assert render_plain_table(export, ",") == (
        "Student ID ; First ; Grade\nStudent ID: 123456 ; First: Sam ; Grade: B\n"
        "Student ID: 234567 ; First: Ana ; Grade: A")
    assert render_plain_table('Name,ID\r\n"Lee, Sam",123456\r\n', ",") is None


def _lines_of_whole_sample(text: str) -> list[str]:
    """The delimiter guess's lines as computed before the 2 KB shortcut (reference)."""
    lines = [line for line in text[:8192].splitlines() if line.strip()]
    if len(text) > 8192 and len(lines) > 1:
        lines.pop()
    return lines[:10]


def _sniff_lines_of_whole_head(head: bytes) -> list[bytes]:
    return [line for line in head.splitlines()[:10] if line.strip()]


def test_first_lines_shortcuts_see_the_lines_the_whole_split_sees():
    """Delimiter guessing and CSV sniffing read only a prefix when it holds enough lines; on
    random texts (every line end Python knows, cut anywhere) they see the same ten lines."""
    sniff = importlib.import_module("gateway.extract.sniff")
    rng = random.Random(4180)
    pieces = ["a", "b,c", ";", "|", "\t", ",", " ", "\r\n", "\n", "\r", "\x0c", "\u2028",
              "x" * 60 + ","]
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.choice([3, 30, 120, 400, 1200])))
        shortcut = _first_lines(text)
        assert shortcut is None or shortcut == _lines_of_whole_sample(text), repr(text)
        head = text.encode()[:4096]
        assert sniff._first_lines(head) == _sniff_lines_of_whole_head(head), repr(head)
    assert sniff._delimited(b"a,b\r\n" * 400) and not sniff._delimited(b"a b\r\n" * 400)
