"""Tables (CSV, XLSX, DOCX): each row rendered next to its column labels, the fast rows the
same as the generic path, and code-style column headers understood."""

from __future__ import annotations

import random

import pytest

from gateway.detectors.patternset import ENGINES
from gateway.extract import table
from gateway.extract.table import Labels, cell_text, is_header, label_words
from tests.factories import detectors, make_inspector, message


def test_table_rows_are_rendered_next_to_their_labels():
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


@pytest.mark.parametrize("header", ["student_id", "StudentID", "student-number"])
@pytest.mark.parametrize("engine", ENGINES)
def test_code_style_headers_identify_the_numbers_under_them(engine, header):
    rows = "\n".join(f"{700100 + i},Learner {i},B+" for i in range(5))
    csv = f"{header},name,grade\n{rows}\n".encode()
    result = make_inspector(engine).inspect(
        message("See attached.", attachments=[("list.csv", csv, "text/csv")]))
    assert "student_number_format" in detectors(result)


def test_a_pasted_table_is_rendered_with_its_labels():
    text = "Hi,\n\nName,SSN,DOB\nPat Doe,524-61-3378,01/02/1980\nChris Roe,524-61-3379,x\n\nBye"
    assert table.render_pasted(text) == (
        "Hi,\n\nName ; SSN ; DOB\nName: Pat Doe ; SSN: 524-61-3378 ; DOB: 01/02/1980\n"
        "Name: Chris Roe ; SSN: 524-61-3379 ; DOB: x\n\nBye")


@pytest.mark.parametrize("text", [
    "Hi, there, all\nThis, is, prose, too\nand, more, prose\n",  # rows of different widths
    "1,2,3\n4,5,6\n7,8,9\n",  # no header
    "Name,SSN\nPat,1\n",  # two lines only
    "Plain prose without any delimiters at all.",
])
def test_text_without_a_pasted_table_is_left_alone(text):
    assert table.render_pasted(text) == text


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_every_value_in_a_pasted_ssn_column_counts_however_many_rows(delimiter):
    rows = [delimiter.join(("Name", "Address", "SSN"))]
    rows += [delimiter.join((f"P {i}", "1 Main St " * 8, f"524-61-{3400 + i}"))
             for i in range(40)]
    result = make_inspector().inspect(message("\n".join(rows)))
    assert sum(f.count for f in result.findings if f.detector == "ssn") == 40
