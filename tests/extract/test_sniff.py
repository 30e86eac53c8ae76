"""File types from content, not names: images and unknown binaries carry no text, a body is
only asked whether it is text, and a ZIP version zipfile cannot read is a corrupt archive."""

from __future__ import annotations

import io
import random
import zipfile

from gateway.extract.message import _BODY_TYPES
from gateway.extract.sniff import OCTET, sniff
from tests.factories import PNG, locations, message, stepped_inspector, xlsx


def test_file_type_comes_from_content_not_name(inspector):
    book = xlsx([["Student ID", "Grade"], ["482913", "F"]])
    raw = message("x", attachments=[("notes.txt", book, "text/plain")])
    result = inspector.inspect(raw)
    assert result.attachments[0].content_type.endswith("spreadsheetml.sheet")
    assert locations(result, "student_number") == {"attachment notes.txt, sheet 1"}


def test_images_and_unknown_binaries_carry_no_finding(inspector):
    result = inspector.inspect(message("x", attachments=[("a.png", PNG, "image/png"),
                                                         ("b.bin", bytes(range(256)) * 4, OCTET)]))
    assert result.findings == () and result.complete
    assert [a.content_type for a in result.attachments] == ["image/png",
                                                            "application/octet-stream"]


def test_sniffing_without_csv_detection_keeps_the_body_or_attachment_call():
    """The walker asks only "is this text?" of a body, so it skips telling CSV from text."""
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


def test_zip_of_a_version_zipfile_cannot_read_is_a_corrupt_archive_not_an_internal_error() -> None:
    # Found as: a DOCX whose central directory says "version needed to extract: 8.3";
    # zipfile raises NotImplementedError for it, which the sniffer did not expect.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    data = bytearray(buf.getvalue())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        data[at + 6] = 83  # version needed to extract
        at = data.find(b"PK\x01\x02", at + 4)
    raw = message("x", attachments=[("r.docx", bytes(data), "application/octet-stream")])
    result = stepped_inspector(time_budget=60).inspect(raw)
    locations = {f.location for f in result.findings}
    assert not result.complete and "message (internal error)" not in locations
    assert any(loc.endswith("(corrupt archive)") for loc in locations)
