"""XLSX: one location per sheet; both readers (calamine, and openpyxl where calamine has no
wheel) give the detectors the same text: numbers as integers, date cells as dates."""

from __future__ import annotations

import datetime
import io
import sys

import openpyxl
import pytest

from gateway.extract import xlsx as xlsx_extractor
from tests.factories import attached, by_detector, make_inspector, message, xlsx


def test_xlsx_sheets_are_separate_locations(inspector):
    book = xlsx([["Student ID", "Grade"], ["482913", "A"], ["517204", "B"]],
                [["Name", "DOB"], ["Wei Chen", "2010-04-12"]])
    result = inspector.inspect(attached("g.xlsx", book))
    found = by_detector(result)
    assert {f.location for f in found["roster"]} == {"attachment g.xlsx, sheet 1"}
    assert {f.location for f in found["dob"]} == {"attachment g.xlsx, sheet 2"}
    assert found["roster"][0].distinct == 2


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook() -> bytes:
    roster = [["Student ID", "Name", "DOB", "GPA"],
              [482913, "Alex Jones", datetime.date(2010, 3, 14), 3.2],
              [517204, "Sam Lee", datetime.date(2009, 11, 2), 2.9]]
    return xlsx(roster, [["Note"], ["nothing here"]])


@pytest.fixture(params=["calamine", "openpyxl"])
def reader(request, monkeypatch):
    if request.param == "openpyxl":
        monkeypatch.setitem(sys.modules, "python_calamine", None)  # import fails: fallback
    return request.param


def test_both_readers_find_the_same_things(reader):
    result = make_inspector().inspect(
        message("See attached.", attachments=[("roster.xlsx", workbook(), XLSX_TYPE)]))
    found = by_detector(result)
    assert {f.location for f in found["student_number"]} == {"attachment roster.xlsx, sheet 1"}
    assert found["student_number"][0].distinct == 2
    assert "dob" in found  # date cells read as dates under the DOB header
    assert found["roster"][0].distinct == 2


def test_fallback_is_really_taken(monkeypatch):
    monkeypatch.setitem(sys.modules, "python_calamine", None)
    calls = []
    original = xlsx_extractor._extract_openpyxl
    monkeypatch.setattr(xlsx_extractor, "_extract_openpyxl",
                        lambda *a: calls.append(1) or original(*a))
    make_inspector().inspect(message("x", attachments=[("r.xlsx", workbook(), XLSX_TYPE)]))
    assert calls == [1]


def _masked_book(fmt: str, value: object) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Employee", "SSN"])
    sheet.append(["Pat Doe", value])
    sheet["B2"].number_format = fmt
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["000-00-0000", "000\\-00\\-0000", '000"-"00"-"0000'])
def test_a_number_is_read_as_its_digit_mask_shows_it(fmt):
    result = make_inspector().inspect(attached("staff.xlsx", _masked_book(fmt, 62956288)))
    (found,) = by_detector(result)["ssn"]
    assert found.sample == "***-**-6288"


@pytest.mark.parametrize(("number", "mask", "shown"), [
    (62956288, "000-00-0000", "062-95-6288"), (501, "00000", "00501"),
    (1234567890, "000-00-0000", "1234-56-7890"), (5551234, "(###) ###-####", "() 555-1234"),
])
def test_apply_mask(number, mask, shown):
    assert xlsx_extractor.apply_mask(number, mask) == shown


@pytest.mark.parametrize("fmt", ["0.00", "#,##0", "0%", "General", "0"])
def test_decimal_and_plain_formats_are_not_masks(fmt):
    assert xlsx_extractor._mask(fmt) is None
