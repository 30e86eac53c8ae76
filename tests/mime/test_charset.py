"""Charsets as mail really labels them: wrong, unknown or missing labels still decode to the
text the detectors need."""

from __future__ import annotations

import pytest

from tests.factories import detectors, raw_message


@pytest.mark.parametrize(("charset", "body"), [
    ("us-ascii", "José Núñez: suspension".encode()),  # UTF-8 labelled as ASCII
    ("iso-8859-1", "José Núñez: suspension".encode()),  # UTF-8 labelled as Latin-1
    ("x-unknown-charset", "José Núñez: suspension".encode()),
    (None, "José Núñez: suspension".encode("cp1252")),  # no label, Windows-1252 bytes
    ("utf-8", "José Núñez: suspension".encode("cp1252")),  # wrong label, invalid UTF-8
])
def test_charsets_fall_back_sensibly(inspector, charset, body):
    ctype = "text/plain" + (f"; charset={charset}" if charset else "")
    raw = raw_message(f"Subject: x\nContent-Type: {ctype}\nContent-Transfer-Encoding: 8bit\n", body)
    assert {"student_name", "record_category"} <= detectors(inspector.inspect(raw))
