"""The quick search for base64 PDFs that lets the helper start before the walk: it guesses
only PDFs, and looks at a bounded number of candidates.

(With the real helper process: tests/integration/test_pdf_on_loop.py.)"""

from __future__ import annotations

from gateway.dispatch import pdfjobs
from tests.factories import NEWSLETTER_PDF, ROSTER_PDF, crlf, message


def test_the_quick_search_only_guesses_base64_pdfs() -> None:
    pdfs = [("a.pdf", ROSTER_PDF, "application/pdf"), ("b.pdf", NEWSLETTER_PDF, "application/pdf"),
            ("c.pdf", ROSTER_PDF + b" ", "application/pdf")]
    raw = crlf(message("x", attachments=pdfs))
    assert pdfjobs.pdf_parts(raw, 2) == [ROSTER_PDF, NEWSLETTER_PDF]
    fake = crlf(message("x", attachments=[("a.pdf", b"GIF89a not a pdf", "application/pdf")]))
    assert pdfjobs.pdf_parts(fake, 2) == []
    quoted = raw.replace(b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: 7bit")
    assert pdfjobs.pdf_parts(quoted, 2) == []


def test_the_quick_search_looks_at_a_bounded_number_of_candidates() -> None:
    """A message of nothing but PDF header lines must not cost a search and a decode each:
    at most four candidates per PDF wanted are looked at."""
    decoy = (b"\r\n--x\r\nContent-Type: application/pdf\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\nQUFBQUFBQUE=")  # not a PDF
    real = crlf(message("x", attachments=[("a.pdf", ROSTER_PDF, "application/pdf")]))
    cut = real.index(b"\r\nContent-Type: application/pdf")
    cut = real.rindex(b"\r\n--", 0, cut)  # the real part's boundary line
    assert pdfjobs.pdf_parts(real[:cut] + decoy * 3 + real[cut:], 1) == [ROSTER_PDF]
    assert pdfjobs.pdf_parts(real[:cut] + decoy * 4 + real[cut:], 1) == []
