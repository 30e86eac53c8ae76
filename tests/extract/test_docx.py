"""DOCX: paragraphs and tables both reach the detectors."""

from __future__ import annotations

from tests.factories import attached, detectors, docx


def test_docx_body_and_table(inspector):
    doc = docx(["Discipline report for Alex Jones."], [["Student ID", "Tardies"], ["517204", "9"]])
    result = inspector.inspect(attached("r.docx", doc))
    assert {"student_name", "student_number", "record_category", "roster"} <= detectors(result)
