"""Extractors and limits: every format, and fail-closed `uninspectable` for everything that
cannot be read (encrypted, corrupt, bombs, too deep, too many, too big, out of time)."""

from __future__ import annotations

import io
import random
import zipfile
from email.message import EmailMessage

import pytest

from gateway.config import InspectionSettings
from gateway.inspect import Inspector
from tests.inspection_helpers import (
    MP3,
    OLE,
    PNG,
    STUDENTS,
    by_detector,
    detectors,
    docx,
    encrypted_pdf,
    make_inspector,
    message,
    pdf,
    xlsx,
    zip_of,
)

OCTET = "application/octet-stream"


@pytest.fixture(scope="module")
def inspector():
    return make_inspector()


def attach(name: str, data: bytes, declared: str = OCTET) -> bytes:
    return message("see attached", attachments=[(name, data, declared)])


def reasons(result) -> set[str]:
    return {f.sample for f in by_detector(result).get("uninspectable", [])}


def test_xlsx_sheets_are_separate_locations(inspector):
    book = xlsx([["Student ID", "Grade"], ["482913", "A"], ["517204", "B"]],
                [["Name", "DOB"], ["Wei Chen", "2010-04-12"]])
    result = inspector.inspect(attach("g.xlsx", book))
    found = by_detector(result)
    assert {f.location for f in found["roster"]} == {"attachment g.xlsx, sheet 1"}
    assert {f.location for f in found["dob"]} == {"attachment g.xlsx, sheet 2"}
    assert found["roster"][0].distinct == 2


def test_docx_body_and_table(inspector):
    doc = docx(["Discipline report for Alex Jones."], [["Student ID", "Tardies"], ["517204", "9"]])
    result = inspector.inspect(attach("r.docx", doc))
    assert {"student_name", "student_number", "record_category", "roster"} <= detectors(result)


def test_pdf_pages_and_owner_only_encryption(inspector):
    plain = pdf([["nothing"], ["Ava Patel immunization record"]])
    assert {"student_name", "record_category"} <= detectors(inspector.inspect(attach("a.pdf",
                                                                                    plain)))
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    result = inspector.inspect(attach("b.pdf", out.getvalue()))
    assert "student_name" in detectors(result) and result.complete


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("locked.pdf", encrypted_pdf(["Alex Jones"]), "encrypted"),
    ("locked.zip", zip_of([("a.csv", b"x")], encrypted=["a.csv"]), "encrypted"),
    ("old.doc", OLE, "legacy Office file or password-protected document"),
    ("a.7z", b"7z\xbc\xaf\x27\x1c" + b"\x00" * 40, "unsupported archive"),
    ("cut.pdf", pdf([["Alex Jones GPA"]])[:120], "unreadable or corrupt file"),
    ("cut.xlsx", xlsx([["a", "b"]])[:300], "corrupt archive"),
])
def test_unreadable_files_fail_closed(inspector, name, data, reason):
    result = inspector.inspect(attach(name, data))
    assert reason in reasons(result)
    assert not result.complete


def test_zip_recursion_locations_and_media_inside(inspector):
    inner = zip_of([("deep/list.csv", b"Student ID,Name\n482913,Alex Jones\n"), ("v.mp3", MP3)])
    result = inspector.inspect(attach("outer.zip", zip_of([("inner.zip", inner)])))
    found = by_detector(result)
    assert {f.location for f in found["student_number"]} == {
        "attachment outer.zip/inner.zip/deep/list.csv"}
    assert {f.location for f in found["media"]} == {"attachment outer.zip/inner.zip/v.mp3"}


def test_decompression_bomb_is_not_inflated():
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.txt", b"0" * (8 * 1024 * 1024))
    result = make_inspector(max_expansion_ratio=100).inspect(attach("bomb.zip", bomb.getvalue()))
    assert reasons(result) == {"expansion ratio limit (possible decompression bomb)"}


def test_depth_limit_on_nested_archives():
    data = zip_of([("list.csv", b"SSN: 524-61-3378")])
    for level in range(6):
        data = zip_of([(f"z{level}.zip", data)])
    result = make_inspector(max_depth=3).inspect(attach("nest.zip", data))
    assert "nesting depth limit" in reasons(result) and "ssn" not in detectors(result)


def test_deep_mime_nesting_is_cut_not_crashed():
    part = EmailMessage()
    part.set_content("SSN 524-61-3378")
    for _ in range(60):
        outer = EmailMessage()
        outer.make_mixed()
        outer.attach(part)
        part = outer
    result = make_inspector(max_depth=10).inspect(part.as_bytes())
    assert "nesting depth limit" in reasons(result) and not result.complete


def test_part_count_limit():
    raw = message("x", attachments=[(f"f{i}.txt", b"hello", "text/plain") for i in range(12)])
    result = make_inspector(max_parts=5).inspect(raw)
    assert reasons(result) == {"part count limit"}


def test_part_size_limit_still_scans_the_text_it_keeps():
    text = b"SSN 524-61-3378 " + b"filler " * 40000
    result = make_inspector(max_part_bytes=100_000).inspect(attach("big.txt", text))
    assert reasons(result) == {"part size limit"} and "ssn" in detectors(result)


def test_extracted_text_limit():
    rows = "\n".join(f"row {i} text" for i in range(5000)).encode()
    result = make_inspector(max_extracted_bytes=10_000).inspect(attach("a.txt", rows))
    assert reasons(result) == {"extracted text limit"}


def test_time_budget_is_cooperative_and_fails_closed():
    ticks = iter(range(10_000))
    inspector = Inspector(InspectionSettings(time_budget=3.0), r"\b\d{6}\b", STUDENTS, {},
                          clock=lambda: float(next(ticks)))
    raw = message("x", attachments=[(f"f{i}.txt", b"hello", "text/plain") for i in range(10)])
    result = inspector.inspect(raw)
    assert reasons(result) == {"time budget exceeded"} and not result.complete


def test_images_and_unknown_binaries_carry_no_finding(inspector):
    result = inspector.inspect(message("x", attachments=[("a.png", PNG, "image/png"),
                                                         ("b.bin", bytes(range(256)) * 4, OCTET)]))
    assert result.findings == () and result.complete
    assert [a.content_type for a in result.attachments] == ["image/png",
                                                            "application/octet-stream"]


def test_utf16_csv(inspector):
    data = "Student ID\tName\tGPA\n482913\tAlex Jones\t3.1\n".encode("utf-16")
    assert {"student_number", "student_name", "record_category"} <= detectors(
        inspector.inspect(attach("a.tsv", data)))


@pytest.mark.parametrize("seed", range(8))
def test_random_and_mangled_files_never_raise(inspector, seed):
    rng = random.Random(seed)
    base = [xlsx([["a"]]), docx(["x"]), pdf([["x"]]), zip_of([("a", b"b")])][seed % 4]
    mangled = bytearray(base)
    for _ in range(20):
        mangled[rng.randrange(len(mangled))] = rng.randrange(256)
    result = inspector.inspect(attach("m.bin", bytes(mangled)))
    assert isinstance(result.findings, tuple)


@pytest.mark.parametrize("text, delimiter", [
    ("a,b,c\n1,2,3\n", ","), ("a\tb\tc\n1\t2\t3\n", "\t"), ("a;b;c\n1;2;3\n", ";"),
    ("a|b\n1|2\n", "|"), ('name,"x; y",z\n1,"2;3",4\n', ","), ("single\nline\n", ","),
])
def test_csv_delimiter_is_the_one_on_every_line(text, delimiter):
    from gateway.extract.csv import _dialect

    assert _dialect(text).delimiter == delimiter


def test_table_rows_are_rendered_next_to_their_labels():
    from gateway.extract import table
    rows = [["Student_ID", "First Name", "LastName", "Grade"],
            ["123456", "Sam", "Lee", 9.0],
            ["234567", "", "Jones", "  B  plus "],
            ["345678", "Ana", "Ruiz", None, "extra"]]
    assert list(table.render(rows)) == [
        "Student ID ; First Name ; Last Name ; Grade",
        "Student ID: 123456 ; First Name: Sam ; Last Name: Lee ; Grade: 9 ; Name: Sam Lee",
        "Student ID: 234567 ; Last Name: Jones ; Grade: B plus",
        "Student ID: 345678 ; First Name: Ana ; Last Name: Ruiz ; extra ; Name: Ana Ruiz"]


def _reference_render(rows):
    """table.render as first written (one generic path per row): the spec for the fast one."""
    from gateway.extract.table import Labels, cell_text, is_header, label_words
    labels = None
    for raw in rows:
        cells = [cell_text(v) for v in raw]
        if not any(cells):
            continue
        if labels is None and is_header(cells):
            labels = Labels([label_words(c) for c in cells])
            yield " ; ".join(labels.names)
            continue
        yield labels.line(cells) if labels else " ; ".join(c for c in cells if c)


@pytest.mark.parametrize("seed", range(40))
def test_table_fast_rows_render_as_the_generic_path(seed):
    """Ragged, empty, padded and non-text cells; headers late, missing, or with name columns."""
    from gateway.extract import table
    rng = random.Random(seed)
    headers = [["Student ID", "First", "Last", "Grade"], ["day", "time", "room"],
               ["", "Name", ""], ["given_name", "surname"], ["note"], ["123", "456"]]
    values = ["", " ", "Sam", "  Lee  ", "123456", "B\tplus", "x\ny", 9.0, 9.5, None, 0, "Ana"]
    rows = [[rng.choice(values) for _ in range(rng.randint(0, 5))]
            for _ in range(rng.randint(0, 3))]
    rows.append(list(rng.choice(headers)))
    width = len(rows[-1])
    for _ in range(rng.randint(0, 30)):
        n = width if rng.random() < 0.7 else rng.randint(0, width + 2)
        rows.append([rng.choice(values) for _ in range(n)])
    assert list(table.render(rows)) == list(_reference_render(rows))


def _generic_csv(text: str, delimiter: str) -> str:
    import csv as csv_module

    from gateway.extract import table
    from gateway.extract.csv import _DIALECTS
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
    from gateway.extract.csv import render_plain_table
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
    from gateway.extract.csv import render_plain_table
    export = "Student ID,First,Grade\r\n123456,Sam,B\r\n234567,Ana,A\r\n"
    assert render_plain_table(export, ",") == (
        "Student ID ; First ; Grade\nStudent ID: 123456 ; First: Sam ; Grade: B\n"
        "Student ID: 234567 ; First: Ana ; Grade: A")
    assert render_plain_table('Name,ID\r\n"Lee, Sam",123456\r\n', ",") is None


def test_sniffing_without_csv_detection_keeps_the_body_or_attachment_call():
    """The walker asks only "is this text?" of a body, so it skips telling CSV from text."""
    from gateway.extract.message import _BODY_TYPES
    from gateway.extract.sniff import OCTET, sniff
    rng = random.Random(11)
    samples = [b"a,b,c\nd,e,f\n", b"\xff\xfea\x00,\x00b\x00\n\x00c\x00,\x00d\x00\n\x00",
               b"%PDF-1.4", b"PK\x03\x04", b"<html><p>x", b"-----BEGIN PGP MESSAGE-----\n",
               b"From: a\nTo: b\nSubject: c\n\nx", b"plain words\n" * 50, b"x\ty\nz\tw\n"]
    samples += [bytes(rng.choice(b"ab,;\t|\n\x00\x01\xff<>") for _ in range(rng.randint(0, 300)))
                for _ in range(3000)]
    for data in samples:
        kind = sniff(data)
        assert sniff(data, tabular=False) == ("text/plain" if kind == "text/csv" else kind)
        assert (kind in (*_BODY_TYPES, OCTET)) == (sniff(data, tabular=False)
                                                   in (*_BODY_TYPES, OCTET))


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
    import importlib

    from gateway.extract.csv import _first_lines
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
