"""Evasions found in review: values split by HTML comments, full-width digits, code-style
column headers. Each must be found as plainly written values are, by every engine."""

from __future__ import annotations

import pytest

from tests.inspection_helpers import detectors, make_inspector, message

ENGINES = ["re", "re2", "hyperscan"]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_html_comment_does_not_split_an_ssn(engine):
    html = "<p>My SSN is 536-22-<!-- x -->8841</p>"
    found = detectors(make_inspector(engine).inspect(message("Hi.", html=html)))
    assert "ssn" in found


@pytest.mark.parametrize("engine", ENGINES)
def test_full_width_digits_read_as_digits(engine):
    body = "SSN: \uff15\uff13\uff16-\uff12\uff12-\uff18\uff18\uff14\uff11"
    assert "ssn" in detectors(make_inspector(engine).inspect(message(body)))


@pytest.mark.parametrize("header", ["student_id", "StudentID", "student-number"])
@pytest.mark.parametrize("engine", ENGINES)
def test_code_style_headers_identify_the_numbers_under_them(engine, header):
    rows = "\n".join(f"{700100 + i},Learner {i},B+" for i in range(5))
    csv = f"{header},name,grade\n{rows}\n".encode()
    result = make_inspector(engine).inspect(
        message("See attached.", attachments=[("list.csv", csv, "text/csv")]))
    assert "student_number_format" in detectors(result)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_unclosed_comment_is_still_read(engine):
    html = "<p>fine</p><!-- SSN: 536-22-8841 " + "<!--" * 2000
    assert "ssn" in detectors(make_inspector(engine).inspect(message("Hi.", html=html)))
