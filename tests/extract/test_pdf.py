"""PDF with pypdf: pages, owner-only encryption, and the time budget checked inside a page
(a page content bomb found by fuzzing stops at the deadline)."""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter

from tests.factories import attached, detectors, message, pdf, pdf_with_content, stepped_inspector


def test_pdf_pages_and_owner_only_encryption(inspector):
    plain = pdf([["nothing"], ["Ava Patel immunization record"]])
    assert {"student_name", "record_category"} <= detectors(inspector.inspect(attached("a.pdf",
                                                                                    plain)))

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    result = inspector.inspect(attached("b.pdf", out.getvalue()))
    assert "student_name" in detectors(result) and result.complete


def test_pdf_page_content_bomb_stops_at_the_deadline() -> None:
    # Found as: a 170 KB attachment whose page inflates to 50 MB of text operators; pypdf
    # parsed it in pure Python for minutes, and the deadline was only checked between pages.
    bomb = pdf_with_content(b"BT /F1 11 Tf (482913 ) Tj ET\n" * 100_000)
    raw = message("x", attachments=[("p.pdf", bomb, "application/pdf")])
    result = stepped_inspector(time_budget=60, pdf_engine="pypdf").inspect(raw)
    assert not result.complete
    assert any(f.location == "attachment p.pdf, page 1 (time budget exceeded)"
               for f in result.findings)


def test_pdf_within_the_deadline_is_read_normally() -> None:
    raw = message("x", attachments=[("p.pdf", pdf([["Student ID 482913 Alex Jones"]]),
                                     "application/pdf")])
    result = stepped_inspector(time_budget=60).inspect(raw)
    assert result.complete and "student_number" in {f.detector for f in result.findings}
